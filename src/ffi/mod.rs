//! The raw httpd/APR layer. Every dereference of an Apache pointer lives
//! under this module; the rest of the crate sees safe wrappers.
#[allow(non_upper_case_globals, non_camel_case_types, non_snake_case, dead_code, unnecessary_transmutes, clippy::all)]
pub mod sys {
    include!(concat!(env!("OUT_DIR"), "/httpd_bindings.rs"));
}

pub mod cmd;
pub mod guard;
pub mod log;
pub mod pool;
pub mod process;
pub mod regex;
pub mod request;
pub mod secrets;
pub mod server;

use std::ffi::{c_char, CStr};

/// The bytes of a C string Apache owns, or `None` for NULL.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn cstr_bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p).to_bytes())
    }
}

/// Like [`cstr_bytes`], decoded lossily for messages and names.
pub(crate) unsafe fn cstr_string(p: *const c_char) -> Option<String> {
    cstr_bytes(p).map(|b| String::from_utf8_lossy(b).into_owned())
}
