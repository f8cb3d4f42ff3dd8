//! Pure logic shared by the Apache module: no Apache, no Python, and I/O
//! only through the generic `Read`/`Write` of the daemon protocol (plus a
//! UNIX-socket reader with a deadline, and the kernel's random bytes for
//! handshake nonces).
//! Everything here is unit-tested with `cargo test -p wsgi_core`.
#![forbid(unsafe_code)]
pub mod args;
pub mod daemon_options;
pub mod deadline;
pub mod directives;
pub mod environ;
pub mod handshake;
pub mod proxy;
pub mod relay;
pub mod input;
pub mod interpreter_options;
pub mod protocol;
pub mod response;
pub mod telemetry;
pub mod validate;

/// Helpers shared by the unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    /// Each `(input, expected)` fails to parse with a message that starts
    /// with `directive` and contains `expected`.
    pub fn assert_refused<T: std::fmt::Debug>(directive: &str, parse: impl Fn(&str) -> Result<T, String>, cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            let err = parse(input).unwrap_err();
            assert!(err.starts_with(directive) && err.contains(expected), "{input:?}: {err}");
        }
    }
}
