//! Byte strings from Apache turned into Python str, the way WSGI wants them.
use pyo3::prelude::*;
use pyo3::types::PyString;
use pyo3::{ffi, Bound};

/// Decodes as Latin-1 (PEP 3333's "native strings"): every byte maps to one
/// code point, so nothing is lost and the app can re-encode.
pub fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    if let Ok(ascii) = std::str::from_utf8(bytes) {
        if ascii.is_ascii() {
            return PyString::new(py, ascii);
        }
    }
    // SAFETY: the pointer and length describe `bytes`; Latin-1 decoding
    // cannot fail, and the new reference is owned by the returned Bound.
    unsafe {
        let obj = ffi::PyUnicode_DecodeLatin1(bytes.as_ptr() as *const _, bytes.len() as ffi::Py_ssize_t, std::ptr::null());
        Bound::from_owned_ptr(py, obj).cast_into_unchecked()
    }
}

/// Decodes a file system path the way Python's os module does (UTF-8 with
/// surrogateescape here), falling back to Latin-1.
pub fn fs_path<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    // SAFETY: as above; a NULL result (decode error) is handled below.
    unsafe {
        let obj = ffi::PyUnicode_DecodeFSDefaultAndSize(bytes.as_ptr() as *const _, bytes.len() as ffi::Py_ssize_t);
        if obj.is_null() {
            ffi::PyErr_Clear();
            return latin1(py, bytes);
        }
        Bound::from_owned_ptr(py, obj).cast_into_unchecked()
    }
}
