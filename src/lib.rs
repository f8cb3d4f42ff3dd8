//! mod_wsgi-rs: an Apache httpd 2.4 module hosting Python WSGI applications,
//! a drop-in replacement for mod_wsgi.
//!
//! - `module_record`: what Apache loads; hooks and config constructors.
//! - `config`: directives and the configs Apache merges.
//! - `dispatch`: which requests are ours, and where each one runs.
//! - `cgi`: the environ from an Apache request, and the head handed back.
//! - `embedded`: running a request inside Apache's child processes.
//! - `daemon`: process groups supervised by Apache's parent.
//! - `python`: the embedded CPython and the WSGI adapter's Python half.
//! - `wsgi`: the request state the adapter reads and writes, in any mode.
//! - `ffi`: the only place that touches httpd/APR pointers.
pub mod cgi;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod embedded;
pub mod ffi;
pub mod module_record;
pub mod python;
pub mod wsgi;
