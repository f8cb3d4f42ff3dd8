//! The CGI side of WSGI as an Apache child sees it, whichever mode runs the
//! application: the environ gathered from the request (`environ`) and the
//! response head handed back to Apache (`head`). Embedded mode, daemon
//! mode's client, and the auth and dispatch scripts all use it.
#![forbid(unsafe_code)]
pub mod environ;
pub mod head;
