//! Embedded mode: the WSGI application runs inside Apache's own child
//! processes. `handler` decides whether a request is ours and runs it,
//! `environ` gathers what the app sees, and `transport` carries the
//! response through Apache's filters.
pub mod environ;
pub mod handler;
pub mod transport;
