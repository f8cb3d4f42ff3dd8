//! Pure logic shared by the Apache module: no Apache, no Python, and I/O
//! only through the generic `Read`/`Write` of the daemon protocol.
//! Everything here is unit-tested with `cargo test -p wsgi_core`.
pub mod daemon_options;
pub mod directives;
pub mod environ;
pub mod proxy;
pub mod input;
pub mod protocol;
pub mod response;
pub mod validate;
