//! Writing to Apache's error log under our module's name, so that
//! `LogLevel wsgi:debug` applies to our messages.
use std::ffi::CString;

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

/// Logs against a server (NULL means the main server).
#[track_caller]
pub fn server(s: *const sys::server_rec, level: Level, msg: &str) {
    let (file, line) = caller();
    let msg = c_string(msg);
    // SAFETY: s is NULL or a live server_rec; the message is passed as an
    // argument to a "%s" format.
    unsafe { sys::mrs_log_error(file.as_ptr(), line, module_index(), level as i32, 0, s, msg.as_ptr()) }
}

/// Logs against a request, with Apache's client and request decoration.
#[track_caller]
pub(crate) fn request(r: *const sys::request_rec, level: Level, msg: &str) {
    let (file, line) = caller();
    let msg = c_string(msg);
    // SAFETY: r is a live request_rec owned by the calling handler.
    unsafe { sys::mrs_log_rerror(file.as_ptr(), line, module_index(), level as i32, 0, r, msg.as_ptr()) }
}

/// Whether a message at `level` would be written for server `s`; saves
/// formatting debug messages nobody reads.
pub fn enabled(s: *const sys::server_rec, level: Level) -> bool {
    // SAFETY: s is NULL or a live server_rec.
    unsafe { sys::mrs_log_is_enabled(module_index(), level as i32, s) != 0 }
}

/// Where a request's log lines go: the request (client and vhost
/// decoration), a server (vhost) with no request, or the main server.
#[derive(Clone, Copy)]
pub enum LogTarget {
    Request(*const sys::request_rec),
    Server(*const sys::server_rec),
    MainServer,
}

// SAFETY: a target is only used on the thread serving its request, or
// names a server_rec, which is read-only after start-up.
unsafe impl Send for LogTarget {}

impl LogTarget {
    #[track_caller]
    pub fn write(self, level: Level, msg: &str) {
        match self {
            LogTarget::Request(r) => request(r, level, msg),
            LogTarget::Server(s) => server(s, level, msg),
            LogTarget::MainServer => server(std::ptr::null(), level, msg),
        }
    }
}
