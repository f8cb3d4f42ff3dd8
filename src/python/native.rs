//! The native functions the adapter (adapter.py) calls. Each acts on the
//! request the calling thread is serving (see wsgi::request).
//!
//! They run in every interpreter, so they touch none of pyo3's process-wide
//! caches (see interp.rs): arguments are taken as plain objects and
//! converted here (a failed pyo3 conversion would name the type through an
//! interned string), and a panic becomes a RuntimeError here (pyo3 would
//! make its own exception type for it).
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyMemoryError, PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyModule, PyString, PyTuple};

use crate::wsgi::request::{self as request_io, IoError};
use super::text::{type_name, describe};
use crate::ffi::guard::panic_message;
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

/// Runs a native function's body; a panic (a bug) becomes a RuntimeError.
fn guarded<R>(body: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| Err(PyRuntimeError::new_err(format!("internal error in mod_wsgi-rs: {}", panic_message(&panic)))))
}

#[pyfunction]
fn _start(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>, replace: &Bound<'_, PyAny>) -> PyResult<()> {
    guarded(|| {
        let status = encode_latin1(status, "status")?;
        let list = headers
            .cast::<PyList>()
            .map_err(|_| PyTypeError::new_err(format!("response headers must be a list, not {}", type_name(headers))))?;
        let mut copied = Vec::with_capacity(list.len());
        for item in list.iter() {
            let pair = item
                .cast::<PyTuple>()
                .ok()
                .filter(|t| t.len() == 2)
                .ok_or_else(|| PyTypeError::new_err(format!("each response header must be a (name, value) tuple, not {}", describe(&item))))?;
            copied.push((encode_latin1(&pair.get_item(0)?, "response header name")?, encode_latin1(&pair.get_item(1)?, "response header value")?));
        }
        let replace = replace.is_truthy()?;
        request_io::with_current(|io| io.start(&status, copied, replace)).map_err(to_py)
    })
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
    guarded(|| {
        let bytes = body_bytes(data)?;
        request_io::with_current(|io| io.write(py, bytes.as_bytes())).map_err(to_py)
    })
}

/// The last (here: only) chunk of a response, then its end.
#[pyfunction]
fn _write_final(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
    guarded(|| {
        let bytes = body_bytes(data)?;
        request_io::with_current(|io| io.write_final(py, bytes.as_bytes())).map_err(to_py)
    })
}

#[pyfunction]
fn _finish(py: Python<'_>) -> PyResult<()> {
    guarded(|| request_io::with_current(|io| io.finish(py)).map_err(to_py))
}

#[pyfunction]
fn _headers_sent() -> PyResult<bool> {
    guarded(|| request_io::with_current(|io| Ok(io.headers_sent())).map_err(to_py))
}

#[pyfunction]
fn _sendfile(py: Python<'_>, fd: &Bound<'_, PyAny>, offset: &Bound<'_, PyAny>, length: &Bound<'_, PyAny>) -> PyResult<bool> {
    guarded(|| {
        // Integers convert by Python's own rules, with Python's errors.
        let (fd, offset, length) = (fd.extract::<i32>()?, offset.extract::<u64>()?, length.extract::<u64>()?);
        request_io::with_current(|io| io.send_file(py, fd, offset, length)).map_err(to_py)
    })
}

/// `read(n)` whose result is at most this size goes straight into the
/// bytes object returned; larger ones grow with the data that arrives.
const DIRECT_READ_MAX: usize = 256 * 1024;

/// A read size: a negative one means "all".
fn size_arg(size: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
    Ok(usize::try_from(size.extract::<isize>()?).ok())
}

#[pyfunction]
fn _read<'py>(py: Python<'py>, size: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    guarded(|| {
        let size = size_arg(size)?;
        let bound = request_io::with_current(|io| Ok(io.read_bound(size))).map_err(to_py)?;
        match bound.or(size) {
            Some(n) if n <= DIRECT_READ_MAX => read_direct(py, n),
            _ => read_growing(py, size, false),
        }
    })
}

#[pyfunction]
fn _readline<'py>(py: Python<'py>, size: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    guarded(|| read_growing(py, size_arg(size)?, true))
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
fn _log(py: Python<'_>, line: &Bound<'_, PyAny>) -> PyResult<()> {
    guarded(|| {
        let line = line.cast::<PyString>().map_err(|_| PyTypeError::new_err(format!("log lines must be str, not {}", type_name(line))))?.to_cow()?;
        // The error log may be a pipe that blocks: let other threads run.
        py.detach(|| request_io::log_line(Level::Err, &line));
        Ok(())
    })
}

/// Adds the native functions to the adapter's namespace (under their own
/// names; pyo3's `add_function` would use its interned names).
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let namespace = module.dict();
    for function in [
        wrap_pyfunction!(_start, module)?,
        wrap_pyfunction!(_write, module)?,
        wrap_pyfunction!(_write_final, module)?,
        wrap_pyfunction!(_finish, module)?,
        wrap_pyfunction!(_headers_sent, module)?,
        wrap_pyfunction!(_sendfile, module)?,
        wrap_pyfunction!(_read, module)?,
        wrap_pyfunction!(_readline, module)?,
        wrap_pyfunction!(_log, module)?,
    ] {
        namespace.set_item(function.getattr("__name__")?, function)?;
    }
    Ok(())
}
