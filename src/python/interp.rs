//! Application groups and their interpreters. `%{GLOBAL}` (the group named
//! "") is the main interpreter; every other group gets a sub-interpreter of
//! its own, created on its first use, so applications in different groups
//! share no modules, `sys.path` or module state (as in mod_wsgi). Each
//! interpreter has its own copy of the adapter, whose functions and
//! environ entries an [`Interpreter`] holds.
//!
//! Every caller gets in the same way: [`for_group`], then
//! [`Interpreter::enter`], which puts this thread into that interpreter
//! (see tstate.rs) and hands the work a `Python` token for it.
//!
//! pyo3 keeps some state per process, which must never carry an object from
//! one interpreter into another. Code that runs in any interpreter (this
//! file, native.rs, text.rs and the work callers pass to `enter`) therefore
//! does not use: `#[pyclass]`, `intern!`, `PyOnceLock`/`GILOnceCell`,
//! `PyModule::add_function` and `Python::run` (interned names), pyo3's
//! type-name helpers or `Display` of Python objects and errors (interned
//! names on their error paths), or pyo3's conversion errors (they name the
//! type the same way: convert with `cast` and raise our own). The one cache
//! every `PyErr` fetch reads, pyo3's `PanicException` type, is made in the
//! main interpreter before any sub-interpreter exists, and no native
//! function lets a panic reach pyo3. Checked against pyo3 0.30.1.
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, OnceLock, RwLock};
use std::time::Duration;

use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyModule, PyString, PyTuple};
use pyo3::PyTypeInfo;

use super::init;
use super::native;
use super::text::{decode_latin1, fs_path, to_string};
use super::tstate::{self, Interp};
use crate::ffi::log::{Level, LogTarget};
use crate::ffi::server::Server;
use wsgi_core::environ::is_path_key;

/// Facts about this process that the adapter's setup publishes to Python.
pub struct ProcessInfo {
    /// Where this process's own log lines about Python go.
    pub log_server: Server,
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
    /// `WSGIPerInterpreterGIL On`: each sub-interpreter gets its own GIL
    /// (Python 3.12 or later).
    pub per_interpreter_gil: bool,
    /// How many sub-interpreters this process may create.
    pub maximum_interpreters: usize,
}

/// One application group's interpreter and its copy of the adapter.
pub struct Interpreter {
    /// The application group ("" for the main interpreter).
    name: String,
    interp: &'static Interp,
    adapter: Adapter,
}

/// The adapter's functions and per-interpreter values.
struct Adapter {
    handle: Py<PyAny>,
    load: Py<PyAny>,
    call_script: Py<PyAny>,
    dispatch: Py<PyAny>,
    process_stopping: Py<PyAny>,
    loaded: Py<PyAny>,
    needs_reload: Py<PyAny>,
    log_exception: Py<PyAny>,
    finish_threads: Py<PyAny>,
    run_atexit: Py<PyAny>,
    base_environ: Py<PyDict>,
    /// Makes each request's `wsgi.errors`.
    error_log: Py<PyAny>,
}

static PROCESS: OnceLock<ProcessInfo> = OnceLock::new();
static MAIN: OnceLock<Interpreter> = OnceLock::new();

/// The sub-interpreters, by application group and in creation order.
#[derive(Default)]
struct Subs {
    by_name: HashMap<String, &'static Interpreter>,
    in_order: Vec<&'static Interpreter>,
}

static SUBS: LazyLock<RwLock<Subs>> = LazyLock::new(Default::default);
/// Held while a sub-interpreter is made, so each group gets exactly one.
static CREATING: Mutex<()> = Mutex::new(());

const ADAPTER_SOURCE: &str = include_str!("adapter.py");
const ADAPTER_MODULE: &str = "_mod_wsgi_rs";

impl Adapter {
    /// Loads the adapter into the current interpreter and runs its setup
    /// for application group `name`.
    fn create(py: Python<'_>, info: &ProcessInfo, name: &str) -> PyResult<Adapter> {
        let module = PyModule::new(py, ADAPTER_MODULE)?;
        native::register(&module)?;
        py.import("sys")?.getattr("modules")?.set_item(ADAPTER_MODULE, &module)?;
        let builtins = py.import("builtins")?;
        let code = builtins.getattr("compile")?.call1((ADAPTER_SOURCE, "<mod_wsgi-rs adapter>", "exec"))?;
        builtins.getattr("exec")?.call1((code, module.dict()))?;

        let settings = PyDict::new(py);
        settings.set_item("application_group", name)?;
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
        let base = module.getattr("setup")?.call1((settings,))?;
        let base = base.cast_into::<PyDict>().map_err(|_| pyo3::exceptions::PyTypeError::new_err("the adapter's setup() must return a dict"))?;

        let function = |name: &str| module.getattr(name).map(Bound::unbind);
        Ok(Adapter {
            handle: function("handle")?,
            load: function("_load")?,
            call_script: function("call_script")?,
            dispatch: function("dispatch")?,
            process_stopping: function("process_stopping")?,
            loaded: function("loaded")?,
            needs_reload: function("needs_reload")?,
            log_exception: function("log_exception")?,
            finish_threads: function("finish_threads")?,
            run_atexit: function("run_atexit")?,
            base_environ: base.unbind(),
            error_log: function("ErrorLog")?,
        })
    }
}

impl Interpreter {
    /// Runs `f` in this interpreter, on this thread's own thread state
    /// for it. Nothing `f` returns may hold a Python object.
    ///
    /// Panics (caught by the hook's guard, so the request gets a 500) when
    /// Python is being shut down in this process.
    pub fn enter<R>(&self, f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
        self.try_enter(f).expect("Python is shutting down in this process")
    }

    /// [`Self::enter`], or `None` when Python is being shut down.
    pub fn try_enter<R>(&self, f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
        self.interp.try_enter(f)
    }

    /// Enters during the shutdown, after entries were stopped.
    fn enter_to_stop<R>(&self, f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
        self.interp.attach_to_stop(f)
    }

    fn is_main(&self) -> bool {
        self.name.is_empty()
    }

    /// The interpreter, for log lines.
    fn describe(&self) -> String {
        if self.is_main() {
            "the main interpreter".into()
        } else {
            format!("the interpreter of application group '{}'", self.name)
        }
    }

    /// The environ for one request: the entries shared by every request,
    /// then `vars` (Latin-1 strings; file system paths decoded as such),
    /// then the typed per-request entries.
    pub fn environ<'py, K: AsRef<str>, V: AsRef<[u8]>>(&self, py: Python<'py>, vars: &[(K, V)], request_start: f64, thread_id: u64) -> PyResult<Bound<'py, PyDict>> {
        let env = self.adapter.base_environ.bind(py).copy()?;
        for (key, value) in vars {
            let (key, value) = (key.as_ref(), value.as_ref());
            let value = if is_path_key(key) { fs_path(py, value)? } else { decode_latin1(py, value)? };
            env.set_item(PyString::new(py, key), value)?;
        }
        env.set_item("mod_wsgi.request_start", request_start)?;
        env.set_item("mod_wsgi.thread_id", thread_id)?;
        // A stream of its own per request, so nothing an app sets on it
        // reaches another app's requests.
        env.set_item("wsgi.errors", self.adapter.error_log.bind(py).call1(("<wsgi.errors>",))?)?;
        Ok(env)
    }

    /// Runs the app in `script` for the current request.
    pub fn handle(&self, py: Python<'_>, script: &str, mtime: i64, reloading: bool, callable: &str, environ: Bound<'_, PyDict>) -> PyResult<()> {
        let args = PyTuple::new(py, [
            PyString::new(py, script).into_any(),
            mtime.into_pyobject(py)?.into_any(),
            PyBool::new(py, reloading).to_owned().into_any(),
            PyString::new(py, callable).into_any(),
            environ.into_any(),
        ])?;
        self.adapter.handle.bind(py).call1(args)?;
        Ok(())
    }

    /// Tells `mod_wsgi.subscribe_shutdown` subscribers the process is
    /// stopping, with mod_wsgi's name for why.
    fn publish_shutdown(&self, py: Python<'_>, reason: &str) {
        if let Err(e) = self.adapter.process_stopping.bind(py).call1((reason,)) {
            e.print(py);
        }
    }

    /// Calls `function(*args)` from an auth or access script.
    pub fn call_script<'py>(&self, py: Python<'py>, script: &str, function: &str, args: Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        self.adapter.call_script.bind(py).call1((script, file_mtime(script), function, args))
    }

    /// Runs a `WSGIDispatchScript` for one request: what its
    /// `process_group()`, `application_group()` and `callable_object()`
    /// chose (None where it did not choose).
    pub fn dispatch(&self, py: Python<'_>, script: &str, reloading: bool, environ: Bound<'_, PyDict>) -> PyResult<DispatchChoices> {
        let answers = self.adapter.dispatch.bind(py).call1((script, file_mtime(script), reloading, environ))?;
        // Three answers, each a str or None (the adapter checked them).
        let answer = |i: usize| -> PyResult<Option<String>> {
            let item = answers.get_item(i)?;
            if item.is_none() {
                Ok(None)
            } else {
                to_string(&item, "a dispatch script's answer").map(Some)
            }
        };
        Ok(DispatchChoices { process_group: answer(0)?, application_group: answer(1)?, callable_object: answer(2)? })
    }

    /// Loads a script ahead of its first request (daemon preloading), or
    /// runs a service process's script.
    pub fn preload(&self, py: Python<'_>, script: &str) -> PyResult<()> {
        self.adapter.load.bind(py).call1((script, file_mtime(script), false))?;
        Ok(())
    }

    /// Whether `script` has been loaded (successfully) here.
    pub fn is_loaded(&self, py: Python<'_>, script: &str) -> bool {
        self.adapter.loaded.bind(py).call1((script,)).and_then(|r| r.is_truthy()).unwrap_or(false)
    }

    /// Whether `script` was loaded here with another modification time, or
    /// its `reload_required(resource)` asks for it to be loaded afresh for a
    /// request for `resource` (the request's SCRIPT_FILENAME).
    pub fn script_changed(&self, py: Python<'_>, script: &str, mtime: i64, resource: Option<&[u8]>) -> bool {
        let resource = resource.map(|path| fs_path(py, path)).transpose();
        resource.and_then(|resource| self.adapter.needs_reload.bind(py).call1((script, mtime, resource))).and_then(|r| r.is_truthy()).unwrap_or(false)
    }

    /// Logs an app's exception, with its traceback, to the error log, and
    /// returns the status to answer with if nothing was sent yet (404 for a
    /// script without its callable, else 500).
    pub fn log_exception(&self, py: Python<'_>, err: PyErr, script: &str) -> u16 {
        let exc = err.into_value(py);
        match self.adapter.log_exception.bind(py).call1((exc, script)).and_then(|s| s.extract::<u16>()) {
            Ok(status) => status,
            Err(e) => {
                // The logger itself failed: fall back to Python's own printing.
                e.print(py);
                500
            }
        }
    }

    /// Calls one of the adapter's shutdown helpers, printing its failure.
    fn call_quietly(&self, py: Python<'_>, function: &Py<PyAny>) {
        if let Err(e) = function.bind(py).call0() {
            e.print(py);
        }
    }

    /// Ends this sub-interpreter at shutdown (see [`Interp::end`]); where
    /// threads the app started still run, only its `atexit` functions run.
    /// Returns whether it was ended.
    fn end(&self) -> bool {
        match self.interp.end(|py| self.call_quietly(py, &self.adapter.finish_threads)) {
            Ok(()) => true,
            Err(still_running) => {
                log(Level::Warning, &format!(
                    "{} is not destroyed in process {}: {still_running} thread(s) it started are still running; its atexit functions run now",
                    self.describe(),
                    std::process::id()
                ));
                self.enter_to_stop(|py| self.call_quietly(py, &self.adapter.run_atexit));
                false
            }
        }
    }
}

/// Logs about this process's Python to its server's error log.
#[track_caller]
fn log(level: Level, msg: &str) {
    PROCESS.get().map_or(LogTarget::MainServer, |info| LogTarget::Server(info.log_server)).write(level, msg);
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

/// Sets up the main interpreter (`%{GLOBAL}`); called once per process,
/// after Python starts. `info` serves every interpreter made later.
pub fn create_main(info: ProcessInfo) -> Result<(), String> {
    let info = PROCESS.get_or_init(|| info);
    let created = tstate::attach_at_start(|py| {
        // pyo3 makes this type on first use and every PyErr fetch compares
        // with it: made here, it is never made in a sub-interpreter.
        PanicException::type_object(py);
        let made = tstate::main_interp(py).and_then(|interp| Ok(Interpreter { name: String::new(), interp, adapter: Adapter::create(py, info, "")? }));
        made.map_err(|e| e.print(py))
    });
    match created {
        Some(Ok(main)) => {
            let _ = MAIN.set(main);
            Ok(())
        }
        Some(Err(())) => Err("cannot set up the WSGI adapter in the main interpreter (the traceback is above)".into()),
        None => Err("Python is shutting down".into()),
    }
}

/// The interpreter of an application group: the main one for `%{GLOBAL}`
/// (""), else the group's sub-interpreter, created on its first use. The
/// error says why there is none (it is worth a log line).
pub fn for_group(name: &str) -> Result<&'static Interpreter, String> {
    let main = MAIN.get().ok_or("Python is not available in this process")?;
    if name.is_empty() {
        return Ok(main);
    }
    if let Some(found) = SUBS.read().unwrap_or_else(|e| e.into_inner()).by_name.get(name) {
        return Ok(found);
    }
    let _creating = CREATING.lock().unwrap_or_else(|e| e.into_inner());
    let count = {
        let subs = SUBS.read().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = subs.by_name.get(name) {
            return Ok(found);
        }
        subs.in_order.len()
    };
    let info = PROCESS.get().ok_or("Python is not available in this process")?;
    if count >= info.maximum_interpreters {
        return Err(format!(
            "cannot create a Python interpreter for application group '{name}' in process {}: it already has {count} \
             sub-interpreters, the most WSGIMaximumInterpreters allows (a %{{HOST}} or %{{ENV:...}} application group \
             can take many values; %{{GLOBAL}} or a fixed name does not)",
            std::process::id()
        ));
    }
    // A GIL per interpreter needs Python 3.12 (the directive warns otherwise).
    let own_gil = info.per_interpreter_gil && cfg!(Py_3_12);
    let (interp, adapter) = main
        .try_enter(|py| tstate::create_sub(py, own_gil, |py| Adapter::create(py, info, name)))
        .ok_or("Python is shutting down")?
        .map_err(|e| format!("cannot create a Python interpreter for application group '{name}' in process {}: {e}", std::process::id()))?;
    let interpreter: &'static Interpreter = Box::leak(Box::new(Interpreter { name: name.to_string(), interp, adapter }));
    let mut subs = SUBS.write().unwrap_or_else(|e| e.into_inner());
    subs.by_name.insert(name.to_string(), interpreter);
    subs.in_order.push(interpreter);
    log(Level::Info, &format!(
        "created the Python interpreter of application group '{name}' in process {}{}",
        std::process::id(),
        if own_gil { " (with its own GIL)" } else { "" }
    ));
    Ok(interpreter)
}

/// Loads `script` at process start in the interpreter of `group`
/// (`WSGIImportScript`, daemon preloading); failures are logged.
pub fn preload(group: &str, script: &str) {
    match for_group(group) {
        Ok(interpreter) => interpreter.enter(|py| {
            if let Err(e) = interpreter.preload(py, script) {
                interpreter.log_exception(py, e, script);
            }
        }),
        Err(msg) => log(Level::Err, &format!("{script} not loaded: {msg}")),
    }
}

/// The main interpreter, then the sub-interpreters in creation order.
fn every_interpreter() -> Vec<&'static Interpreter> {
    MAIN.get().into_iter().chain(SUBS.read().unwrap_or_else(|e| e.into_inner()).in_order.iter().copied()).collect()
}

/// Takes each interpreter's GIL in turn (a daemon's deadlock check);
/// false once Python is being shut down.
pub fn touch_every_gil() -> bool {
    every_interpreter().iter().all(|interpreter| interpreter.try_enter(|_| ()).is_some())
}

/// Shuts Python down in this process: tells every interpreter's
/// `subscribe_shutdown` subscribers why (mod_wsgi's reason names), then,
/// if `finalize` (`WSGIDestroyInterpreter`, on by default), ends the
/// sub-interpreters, newest first, and finalises the main one; each runs
/// its `atexit` functions. With a `limit`, a watchdog ends the process if
/// all that takes longer.
///
/// Called from a signal handler that interrupted this thread's own Python
/// code (prefork runs the child's cleanups from SIGTERM), it only stops new
/// entries into Python: running Python code there could deadlock on the
/// interrupted code's locks or pull frames from under it. (It does not log
/// either: logging is not safe in a signal handler.)
pub fn shut_down(reason: &str, finalize: bool, limit: Option<Duration>) {
    if !init::is_running() {
        return;
    }
    if tstate::inside_python_here() {
        init::stop_entries();
        return;
    }
    let _watchdog = match limit.map(init::ExitWatchdog::arm).transpose() {
        Ok(watchdog) => watchdog,
        Err(e) => {
            log(Level::Warning, &format!("cannot start the Python shutdown watchdog ({e}); leaving Python as it is"));
            init::stop_entries();
            return;
        }
    };
    let at = init::shutdown_step;
    for interpreter in every_interpreter() {
        at(format!("telling shutdown subscribers in {}", interpreter.describe()));
        interpreter.try_enter(|py| interpreter.publish_shutdown(py, reason));
    }
    init::stop_entries();
    if !finalize {
        return;
    }
    let busy = tstate::threads_in_python();
    if busy > 0 {
        log(Level::Warning, &format!("Python not finalised in process {}: {busy} thread(s) still running Python for a request", std::process::id()));
        return;
    }
    // Read again: none can be made any more (making one is an entry), and
    // finalising with one left would abort the process.
    let mut all_ended = true;
    for interpreter in every_interpreter().iter().rev().filter(|i| !i.is_main()) {
        at(format!("ending {}", interpreter.describe()));
        all_ended &= interpreter.end();
    }
    let Some(main) = MAIN.get() else { return };
    at(format!("ending {}", main.describe()));
    if all_ended {
        init::finalize();
    } else {
        main.enter_to_stop(|py| main.call_quietly(py, &main.adapter.run_atexit));
    }
}
