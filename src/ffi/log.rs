//! Writing to Apache's error log under our module's name, so that
//! `LogLevel wsgi:debug` applies to our messages.
use std::ffi::CString;

use super::request::Request;
use super::server::Server;
use super::sys;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Crit = sys::APLOG_CRIT as isize,
    Err = sys::APLOG_ERR as isize,
    Warning = sys::APLOG_WARNING as isize,
    Notice = sys::APLOG_NOTICE as isize,
    Info = sys::APLOG_INFO as isize,
    Debug = sys::APLOG_DEBUG as isize,
}

fn module_index() -> i32 {
    crate::module_record::module_index()
}

/// Apache truncates at NUL; replace it so the rest of the line survives.
fn c_string(msg: &str) -> CString {
    CString::new(msg.replace('\0', "\\0")).expect("NULs replaced")
}

/// The Rust source position of the caller, for Apache's debug-level
/// "file(line)" decoration.
#[track_caller]
fn caller() -> (CString, i32) {
    let at = std::panic::Location::caller();
    (c_string(at.file()), at.line() as i32)
}

fn raw(s: Option<Server>) -> *const sys::server_rec {
    s.map_or(std::ptr::null(), |s| s.raw())
}

/// Logs against a server (`None`: the main server).
#[track_caller]
pub fn server(s: Option<Server>, level: Level, msg: &str) {
    let (file, line) = caller();
    let msg = c_string(msg);
    // SAFETY: NULL or a live server_rec; the message is passed as an
    // argument to a "%s" format.
    unsafe { sys::mrs_log_error(file.as_ptr(), line, module_index(), level as i32, 0, raw(s), msg.as_ptr()) }
}

/// Logs against a request, with Apache's client and request decoration.
#[track_caller]
pub fn request(r: &Request, level: Level, msg: &str) {
    let (file, line) = caller();
    let msg = c_string(msg);
    // SAFETY: a live request_rec, by Request's contract.
    unsafe { sys::mrs_log_rerror(file.as_ptr(), line, module_index(), level as i32, 0, r.raw(), msg.as_ptr()) }
}

/// Whether a message at `level` would be written for server `s`; saves
/// formatting debug messages nobody reads.
pub fn enabled(s: Option<Server>, level: Level) -> bool {
    // SAFETY: NULL or a live server_rec.
    unsafe { sys::mrs_log_is_enabled(module_index(), level as i32, raw(s)) != 0 }
}

/// Where a request's log lines go: the request (client and vhost
/// decoration), a server (vhost) with no request, or the main server.
#[derive(Clone, Copy)]
pub enum LogTarget {
    Request(Request),
    Server(Server),
    MainServer,
}

impl LogTarget {
    #[track_caller]
    pub fn write(self, level: Level, msg: &str) {
        match self {
            LogTarget::Request(r) => request(&r, level, msg),
            LogTarget::Server(s) => server(Some(s), level, msg),
            LogTarget::MainServer => server(None, level, msg),
        }
    }
}
