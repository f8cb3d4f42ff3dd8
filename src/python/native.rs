//! The native functions the adapter (adapter.py) calls. Each acts on the
//! request the calling thread is serving (see wsgi::request).
use pyo3::exceptions::{PyMemoryError, PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyModule, PyString};

use crate::wsgi::request::{self as request_io, IoError};
use crate::ffi::log::Level;
use wsgi_core::input::ReadError;
use wsgi_core::response::StartError;

fn to_py(err: IoError) -> PyErr {
    let msg = err.to_string();
    match err {
        IoError::NoRequest | IoError::NotStarted | IoError::Start(StartError::AlreadyStarted) => PyRuntimeError::new_err(msg),
        IoError::Start(StartError::Invalid(_)) => PyValueError::new_err(msg),
        IoError::Read(ReadError::NoMemory) => PyMemoryError::new_err(msg),
        IoError::ClientGone | IoError::Read(_) => PyOSError::new_err(msg),
    }
}

/// A status line, header name or value (`what`) encoded to Latin-1
/// bytes: a str of code points below 256 (PEP 3333's native strings).
fn encode_latin1(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    let s = value
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be str, not {}", type_name(value))))?;
    s.to_cow()?
        .chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| PyValueError::new_err(format!("{what} {s} is not latin-1 encodable"))))
        .collect()
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

#[pyfunction]
fn _start(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>, replace: bool) -> PyResult<()> {
    let status = encode_latin1(status, "status")?;
    let list = headers
        .cast::<pyo3::types::PyList>()
        .map_err(|_| PyTypeError::new_err(format!("response headers must be a list, not {}", type_name(headers))))?;
    let mut copied = Vec::with_capacity(list.len());
    for item in list.iter() {
        let pair = item
            .cast::<pyo3::types::PyTuple>()
            .ok()
            .filter(|t| t.len() == 2)
            .ok_or_else(|| PyTypeError::new_err(format!("each response header must be a (name, value) tuple, not {item}")))?;
        copied.push((encode_latin1(&pair.get_item(0)?, "response header name")?, encode_latin1(&pair.get_item(1)?, "response header value")?));
    }
    request_io::with_current(|io| io.start(&status, copied, replace)).map_err(to_py)
}

fn body_bytes<'a, 'py>(data: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyBytes>> {
    data.cast::<PyBytes>().map_err(|_| {
        PyTypeError::new_err(format!(
            "response body items must be bytes, not {}; bytes were expected (encode text first, e.g. body.encode('utf-8'))",
            type_name(data)
        ))
    })
}

#[pyfunction]
fn _write(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
    let bytes = body_bytes(data)?;
    request_io::with_current(|io| io.write(py, bytes.as_bytes())).map_err(to_py)
}

/// The last (here: only) chunk of a response, then its end.
#[pyfunction]
fn _write_final(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
    let bytes = body_bytes(data)?;
    request_io::with_current(|io| io.write_final(py, bytes.as_bytes())).map_err(to_py)
}

#[pyfunction]
fn _finish(py: Python<'_>) -> PyResult<()> {
    request_io::with_current(|io| io.finish(py)).map_err(to_py)
}

#[pyfunction]
fn _headers_sent() -> PyResult<bool> {
    request_io::with_current(|io| Ok(io.headers_sent())).map_err(to_py)
}

#[pyfunction]
fn _sendfile(py: Python<'_>, fd: i32, offset: u64, length: u64) -> PyResult<bool> {
    request_io::with_current(|io| io.send_file(py, fd, offset, length)).map_err(to_py)
}

/// `read(n)` whose result is at most this size goes straight into the
/// bytes object returned; larger ones grow with the data that arrives.
const DIRECT_READ_MAX: usize = 256 * 1024;

#[pyfunction]
fn _read(py: Python<'_>, size: isize) -> PyResult<Bound<'_, PyBytes>> {
    let size = usize::try_from(size).ok();
    let bound = request_io::with_current(|io| Ok(io.read_bound(size))).map_err(to_py)?;
    match bound.or(size) {
        Some(n) if n <= DIRECT_READ_MAX => read_direct(py, n),
        _ => read_growing(py, size, false),
    }
}

#[pyfunction]
fn _readline(py: Python<'_>, size: isize) -> PyResult<Bound<'_, PyBytes>> {
    read_growing(py, usize::try_from(size).ok(), true)
}

unsafe extern "C" {
    // Part of CPython's C API, not exported by pyo3-ffi.
    fn _PyBytes_Resize(bytes: *mut *mut pyo3::ffi::PyObject, newsize: pyo3::ffi::Py_ssize_t) -> std::ffi::c_int;
}

/// Reads into a new bytes object of `n` bytes, shrunk if the body ends
/// first. Allocating it may fail (MemoryError) before anything is read.
fn read_direct(py: Python<'_>, n: usize) -> PyResult<Bound<'_, PyBytes>> {
    let mut got = 0;
    let bytes = PyBytes::new_with(py, n, |buf| {
        got = request_io::with_current(|io| io.read_into(py, buf)).map_err(to_py)?;
        Ok(())
    })?;
    if got == n {
        return Ok(bytes);
    }
    let mut ptr = bytes.into_ptr();
    // SAFETY: we own the only reference to a bytes object nobody else has
    // seen, which is what _PyBytes_Resize requires; on failure it frees the
    // object, sets an exception and leaves NULL.
    unsafe {
        if _PyBytes_Resize(&mut ptr, got as pyo3::ffi::Py_ssize_t) != 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(Bound::from_owned_ptr(py, ptr).cast_into_unchecked())
    }
}

/// `read(size)` or `readline(size)` of a size not known up front. When
/// there is no memory for the bytes object, the data goes back to
/// wsgi.input, so a later read still gets it.
fn read_growing(py: Python<'_>, size: Option<usize>, line: bool) -> PyResult<Bound<'_, PyBytes>> {
    let data = request_io::with_current(|io| io.read(py, size, line)).map_err(to_py)?;
    let bytes = PyBytes::new_with(py, data.len(), |buf| {
        buf.copy_from_slice(&data);
        Ok(())
    });
    if bytes.is_err() {
        let _ = request_io::with_current(|io| {
            io.unread(data);
            Ok(())
        });
    }
    bytes
}

#[pyfunction]
fn _log(py: Python<'_>, line: &str) {
    // The error log may be a pipe that blocks: let other threads run.
    py.detach(|| request_io::log_line(Level::Err, line));
}

/// Adds the native functions to the adapter's namespace.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(_start, module)?)?;
    module.add_function(wrap_pyfunction!(_write, module)?)?;
    module.add_function(wrap_pyfunction!(_write_final, module)?)?;
    module.add_function(wrap_pyfunction!(_finish, module)?)?;
    module.add_function(wrap_pyfunction!(_headers_sent, module)?)?;
    module.add_function(wrap_pyfunction!(_sendfile, module)?)?;
    module.add_function(wrap_pyfunction!(_read, module)?)?;
    module.add_function(wrap_pyfunction!(_readline, module)?)?;
    module.add_function(wrap_pyfunction!(_log, module)?)?;
    Ok(())
}
