//! The WSGI request as the Python adapter sees it, whichever process runs
//! it: a [`request::Transport`] carries the response out and the body in
//! (Apache's filters in embedded mode, the daemon socket in daemon mode).
#![forbid(unsafe_code)]
pub mod request;
