//! Per-interpreter state: the adapter's functions and the environ entries
//! that never change. Everything a request needs from Python is reached
//! through an [`Interpreter`], never through process-wide pyo3 caches, so
//! that sub-interpreters can each get their own later.
use std::ffi::CString;
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyModule, PyString, PyTuple};

use super::native;
use super::text::{decode_latin1, fs_path};
use wsgi_core::environ::is_path_key;

/// Facts about this process that the adapter's setup publishes to Python.
pub struct ProcessInfo {
    pub compat_version: (u32, u32, u32),
    pub apache_version: (u32, u32, u32),
    pub description: String,
    pub mpm_name: String,
    /// The daemon process group, or "" in Apache's own children.
    pub process_group: String,
    pub maximum_processes: i32,
    pub threads_per_process: i32,
    pub restrict_stdin: bool,
    pub restrict_stdout: bool,
    pub restrict_signal: bool,
    pub python_path: Vec<String>,
    pub switch_interval: Option<f64>,
    pub python_eggs: Option<String>,
    /// `wsgi.run_once`: a daemon with one thread that serves one request.
    pub run_once: bool,
}

pub struct Interpreter {
    handle: Py<PyAny>,
    load: Py<PyAny>,
    call_script: Py<PyAny>,
    dispatch: Py<PyAny>,
    process_stopping: Py<PyAny>,
    loaded: Py<PyAny>,
    needs_reload: Py<PyAny>,
    log_exception: Py<PyAny>,
    base_environ: Py<PyDict>,
    /// Makes each request's `wsgi.errors`.
    error_log: Py<PyAny>,
    /// The thread-local the `mod_wsgi.application_group` attribute reads.
    thread_group: Py<PyAny>,
}

/// Only the main interpreter exists for now: every application group runs
/// in it (as with `WSGIApplicationGroup %{GLOBAL}`).
static MAIN: OnceLock<Interpreter> = OnceLock::new();

const ADAPTER_SOURCE: &str = include_str!("adapter.py");
const ADAPTER_MODULE: &str = "_mod_wsgi_rs";

impl Interpreter {
    /// Loads the adapter into the current interpreter and runs its setup.
    fn create(py: Python<'_>, info: &ProcessInfo) -> PyResult<Interpreter> {
        let module = PyModule::new(py, ADAPTER_MODULE)?;
        native::register(&module)?;
        py.import("sys")?.getattr("modules")?.set_item(ADAPTER_MODULE, &module)?;
        let source = CString::new(ADAPTER_SOURCE).expect("adapter source has no NUL");
        py.run(&source, Some(&module.dict()), None)?;

        let settings = PyDict::new(py);
        settings.set_item("version", info.compat_version)?;
        settings.set_item("apache_version", info.apache_version)?;
        settings.set_item("description", &info.description)?;
        settings.set_item("mpm_name", &info.mpm_name)?;
        settings.set_item("process_group", &info.process_group)?;
        settings.set_item("maximum_processes", info.maximum_processes)?;
        settings.set_item("threads_per_process", info.threads_per_process)?;
        settings.set_item("restrict_stdin", info.restrict_stdin)?;
        settings.set_item("restrict_stdout", info.restrict_stdout)?;
        settings.set_item("restrict_signal", info.restrict_signal)?;
        settings.set_item("python_path", PyList::new(py, &info.python_path)?)?;
        settings.set_item("switch_interval", info.switch_interval)?;
        settings.set_item("python_eggs", &info.python_eggs)?;
        settings.set_item("run_once", info.run_once)?;
        let base = module.getattr("setup")?.call1((settings,))?.cast_into::<PyDict>()?;

        Ok(Interpreter {
            handle: module.getattr("handle")?.unbind(),
            load: module.getattr("_load")?.unbind(),
            call_script: module.getattr("call_script")?.unbind(),
            dispatch: module.getattr("dispatch")?.unbind(),
            process_stopping: module.getattr("process_stopping")?.unbind(),
            loaded: module.getattr("loaded")?.unbind(),
            needs_reload: module.getattr("needs_reload")?.unbind(),
            log_exception: module.getattr("log_exception")?.unbind(),
            base_environ: base.unbind(),
            error_log: module.getattr("ErrorLog")?.unbind(),
            thread_group: module.getattr("_thread_group")?.unbind(),
        })
    }

    /// The environ for one request: the entries shared by every request,
    /// then `vars` (Latin-1 strings; file system paths decoded as such),
    /// then the typed per-request entries. Also tells `mod_wsgi` which
    /// application group this thread now serves.
    pub fn environ<'py, K: AsRef<str>, V: AsRef<[u8]>>(&self, py: Python<'py>, vars: &[(K, V)], request_start: f64, thread_id: u64) -> PyResult<Bound<'py, PyDict>> {
        let env = self.base_environ.bind(py).copy()?;
        for (key, value) in vars {
            let (key, value) = (key.as_ref(), value.as_ref());
            let value = if is_path_key(key) { fs_path(py, value)? } else { decode_latin1(py, value)? };
            env.set_item(PyString::new(py, key), value)?;
        }
        env.set_item("mod_wsgi.request_start", request_start)?;
        env.set_item("mod_wsgi.thread_id", thread_id)?;
        // A stream of its own per request, so nothing an app sets on it
        // reaches another app's requests.
        env.set_item("wsgi.errors", self.error_log.bind(py).call1(("<wsgi.errors>",))?)?;
        if let Some(group) = env.get_item("mod_wsgi.application_group")? {
            self.thread_group.bind(py).setattr("name", group)?;
        }
        Ok(env)
    }

    /// Runs the app in `script` for the current request.
    pub fn handle(&self, py: Python<'_>, script: &str, mtime: i64, reloading: bool, callable: &str, environ: Bound<'_, PyDict>) -> PyResult<()> {
        let args = PyTuple::new(py, [
            PyString::new(py, script).into_any(),
            mtime.into_pyobject(py)?.into_any(),
            pyo3::types::PyBool::new(py, reloading).to_owned().into_any(),
            PyString::new(py, callable).into_any(),
            environ.into_any(),
        ])?;
        self.handle.bind(py).call1(args)?;
        Ok(())
    }

    /// Tells `mod_wsgi.subscribe_shutdown` subscribers the process is
    /// stopping, with mod_wsgi's name for why.
    pub fn publish_shutdown(&self, py: Python<'_>, reason: &str) {
        if let Err(e) = self.process_stopping.bind(py).call1((reason,)) {
            e.print(py);
        }
    }

    /// Calls `function(*args)` from an auth or access script.
    pub fn call_script<'py>(&self, py: Python<'py>, script: &str, function: &str, args: Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        self.call_script.bind(py).call1((script, file_mtime(script), function, args))
    }

    /// Runs a `WSGIDispatchScript` for one request: what its
    /// `process_group()`, `application_group()` and `callable_object()`
    /// chose (None where it did not choose).
    pub fn dispatch(&self, py: Python<'_>, script: &str, reloading: bool, environ: Bound<'_, PyDict>) -> PyResult<DispatchChoices> {
        let answers = self.dispatch.bind(py).call1((script, file_mtime(script), reloading, environ))?;
        let (process_group, application_group, callable_object) = answers.extract()?;
        Ok(DispatchChoices { process_group, application_group, callable_object })
    }

    /// Loads a script ahead of its first request (daemon preloading).
    pub fn preload(&self, py: Python<'_>, script: &str) -> PyResult<()> {
        self.load.bind(py).call1((script, file_mtime(script), false))?;
        Ok(())
    }

    /// Whether `script` has been loaded (successfully) here.
    pub fn is_loaded(&self, py: Python<'_>, script: &str) -> bool {
        self.loaded.bind(py).call1((script,)).and_then(|r| r.is_truthy()).unwrap_or(false)
    }

    /// Whether `script` was loaded here with another modification time, or
    /// its `reload_required(resource)` asks for it to be loaded afresh for a
    /// request for `resource` (the request's SCRIPT_FILENAME).
    pub fn script_changed(&self, py: Python<'_>, script: &str, mtime: i64, resource: Option<&[u8]>) -> bool {
        let resource = resource.map(|path| fs_path(py, path)).transpose();
        resource.and_then(|resource| self.needs_reload.bind(py).call1((script, mtime, resource))).and_then(|r| r.is_truthy()).unwrap_or(false)
    }

    /// Logs an app's exception, with its traceback, to the error log, and
    /// returns the status to answer with if nothing was sent yet (404 for a
    /// script without its callable, else 500).
    pub fn log_exception(&self, py: Python<'_>, err: PyErr, script: &str) -> u16 {
        let exc = err.into_value(py);
        match self.log_exception.bind(py).call1((exc, script)).and_then(|s| s.extract::<u16>()) {
            Ok(status) => status,
            Err(e) => {
                // The logger itself failed: fall back to Python's own printing.
                e.print(py);
                500
            }
        }
    }
}

/// What a `WSGIDispatchScript` chose for a request.
pub struct DispatchChoices {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
}

/// A file's modification time in µs, as Apache reports it for scripts (0
/// when it cannot be read: loading it then fails and says why).
pub fn file_mtime(path: &str) -> i64 {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros() as i64)
}

/// Sets up the main interpreter; called once per child after Python starts.
pub fn create_main(py: Python<'_>, info: &ProcessInfo) -> PyResult<()> {
    let interp = Interpreter::create(py, info)?;
    let _ = MAIN.set(interp);
    Ok(())
}

/// Shuts Python down in this process: tells every interpreter's
/// `subscribe_shutdown` subscribers why (mod_wsgi's reason names), then,
/// if `finalize` (`WSGIDestroyInterpreter`, on by default), finalises it.
/// With a `limit`, a watchdog ends the process if that takes longer.
///
/// Called from a signal handler that interrupted this thread's own Python
/// code (prefork runs the child's cleanups from SIGTERM), it only stops new
/// entries into Python: running Python code there could deadlock on the
/// interrupted code's locks or pull frames from under it. (It does not log
/// either: logging is not safe in a signal handler.)
pub fn shut_down(reason: &str, finalize: bool, limit: Option<std::time::Duration>) {
    if !super::init::is_running() {
        return;
    }
    if super::tstate::inside_python_here() {
        super::init::stop(false);
        return;
    }
    let _watchdog = match limit.map(super::init::ExitWatchdog::arm).transpose() {
        Ok(watchdog) => watchdog,
        Err(e) => {
            crate::ffi::log::server(None, crate::ffi::log::Level::Warning, &format!("cannot start the Python shutdown watchdog ({e}); leaving Python as it is"));
            super::init::stop(false);
            return;
        }
    };
    if let Some(main) = MAIN.get() {
        super::tstate::with_gil(|py| main.publish_shutdown(py, reason));
    }
    super::init::stop(finalize);
}

/// The interpreter for an application group. Until sub-interpreters are
/// supported every group maps to the main interpreter.
pub fn for_group(_group: &str) -> Option<&'static Interpreter> {
    MAIN.get()
}
