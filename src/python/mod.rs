//! The embedded CPython: initialised in each Apache child and daemon (never
//! the parent), one interpreter per application group, one persistent
//! thread state per (thread, interpreter), and the WSGI adapter each
//! interpreter runs.
pub mod init;
pub mod interp;
pub mod text;
mod native;
pub mod request_rec;
mod tstate;
