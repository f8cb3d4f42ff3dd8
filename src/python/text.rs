//! Text between Apache and Python: byte strings turned into Python str the
//! way WSGI wants them, and Python objects described for error messages.
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

/// The name of `value`'s type, for error messages (read as a plain
/// attribute: pyo3's own type-name helpers use process-wide interned
/// strings, which must not cross interpreters).
pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .getattr("__name__")
        .ok()
        .and_then(|name| name.cast::<PyString>().ok().and_then(|s| s.to_cow().ok().map(|c| c.into_owned())))
        .unwrap_or_else(|| "?".into())
}

/// `repr(value)` for error messages, or a placeholder when that fails.
pub fn describe(value: &Bound<'_, PyAny>) -> String {
    value
        .repr()
        .ok()
        .and_then(|r| r.to_cow().ok().map(|c| c.into_owned()))
        .unwrap_or_else(|| format!("<unprintable {} object>", type_name(value)))
}

/// A str result (of a script's function) as a Rust string; `what` names it
/// in the TypeError otherwise.
pub fn to_string(value: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    let text = value
        .cast::<PyString>()
        .map_err(|_| pyo3::exceptions::PyTypeError::new_err(format!("{what} must be str, not {}", type_name(value))))?;
    Ok(text.to_cow()?.into_owned())
}
