//! Byte strings from Apache turned into Python str, the way WSGI wants them.
use pyo3::prelude::*;
use pyo3::types::PyString;
use pyo3::{ffi, Bound};

/// Decodes as Latin-1 (PEP 3333's "native strings"): every byte maps to one
/// code point, so nothing is lost and the app can re-encode. Fails only
/// when there is no memory for the string (MemoryError).
pub fn decode_latin1<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    if let Ok(ascii) = std::str::from_utf8(bytes) {
        if ascii.is_ascii() {
            return Ok(PyString::new(py, ascii));
        }
    }
    // SAFETY: the pointer and length describe `bytes`; a new reference or
    // NULL with an exception set comes back, and either is taken over here.
    unsafe {
        let obj = ffi::PyUnicode_DecodeLatin1(bytes.as_ptr() as *const _, bytes.len() as ffi::Py_ssize_t, std::ptr::null());
        Ok(Bound::from_owned_ptr_or_err(py, obj)?.cast_into_unchecked())
    }
}

/// Decodes a file system path the way Python's os module does (UTF-8 with
/// surrogateescape here), falling back to Latin-1.
pub fn fs_path<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: as above; a NULL result (decode error) is handled below.
    unsafe {
        let obj = ffi::PyUnicode_DecodeFSDefaultAndSize(bytes.as_ptr() as *const _, bytes.len() as ffi::Py_ssize_t);
        if obj.is_null() {
            ffi::PyErr_Clear();
            return decode_latin1(py, bytes);
        }
        Ok(Bound::from_owned_ptr(py, obj).cast_into_unchecked())
    }
}
