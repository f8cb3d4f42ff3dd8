//! Pure logic shared by the Apache module: no Apache, no Python, no I/O.
//! Everything here is unit-tested with `cargo test -p wsgi_core`.
pub mod directives;
pub mod environ;
pub mod input;
pub mod response;
pub mod validate;
