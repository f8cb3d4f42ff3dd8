//! Embedded mode: the WSGI application runs inside Apache's own child
//! processes. `handler` decides whether a request is ours, `environ` builds
//! what the app sees, and `request_io` is the request state the Python
//! adapter reads from and writes to.
pub mod environ;
pub mod handler;
pub mod request_io;
