//! The embedded CPython: initialised in each Apache child (never the parent),
//! one persistent thread state per Apache worker thread, and the per-
//! interpreter state the WSGI adapter runs in.
pub mod init;
pub mod interp;
pub mod text;
mod native;
pub mod request_rec;
pub mod tstate;
