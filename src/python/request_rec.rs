//! `apache.request_rec` (`WSGIPassApacheRequest On`, embedded mode): a
//! capsule holding the request's `request_rec *`, with no name, as mod_wsgi
//! makes it (`PyCapsule_GetPointer(capsule, NULL)` gives the pointer).
//!
//! The request_rec lives in the request's pool, which Apache frees when the
//! request ends, but an application may keep the environ. So the capsule
//! is valid only while the request's Python call runs: when it returns the
//! capsule is renamed, so `PyCapsule_GetPointer(capsule, NULL)` raises
//! ValueError and `PyCapsule_IsValid(capsule, NULL)` is false, and its
//! pointer is replaced by one to a zeroed block, never the freed request.
use std::ffi::c_void;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::ffi;

use crate::ffi::sys::request_rec;

pub const ENVIRON_KEY: &str = "apache.request_rec";

/// What an expired capsule points to: a zeroed request_rec, so that code
/// that reads through a pointer it kept finds NULLs, not freed memory.
#[repr(C, align(16))]
struct Expired([u8; std::mem::size_of::<request_rec>()]);
static EXPIRED: Expired = Expired([0; std::mem::size_of::<request_rec>()]);
const EXPIRED_NAME: &std::ffi::CStr = c"mod_wsgi-rs: apache.request_rec of a finished request";

/// The capsule of one request; expires when dropped.
pub struct RequestRecCapsule<'py>(Bound<'py, PyAny>);

impl<'py> RequestRecCapsule<'py> {
    /// Puts a capsule for the request `raw` into `environ`.
    pub fn attach(environ: &Bound<'py, PyDict>, raw: *const request_rec) -> PyResult<Self> {
        let py = environ.py();
        // SAFETY: the capsule only stores the pointer (no destructor: Apache
        // owns the request); a new reference or NULL with an exception set
        // comes back, and either is taken over here.
        let capsule = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyCapsule_New(raw as *mut c_void, std::ptr::null(), None))? };
        environ.set_item(ENVIRON_KEY, &capsule)?;
        Ok(RequestRecCapsule(capsule))
    }
}

impl Drop for RequestRecCapsule<'_> {
    fn drop(&mut self) {
        // SAFETY: a live capsule of ours, in the interpreter this thread is
        // attached to (the Bound says so); the name and the block are
        // statics, so they outlive it. Neither call fails for a valid
        // capsule and a non-NULL pointer.
        unsafe {
            ffi::PyCapsule_SetPointer(self.0.as_ptr(), std::ptr::addr_of!(EXPIRED) as *mut c_void);
            ffi::PyCapsule_SetName(self.0.as_ptr(), EXPIRED_NAME.as_ptr());
        }
    }
}
