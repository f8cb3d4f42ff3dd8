//! Starting and stopping CPython in an Apache child or a daemon process.
use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr::addr_of_mut;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use pyo3::ffi;

use crate::config::GlobalSettings;
use crate::ffi::log::{self, Level};
use wsgi_core::directives::HashSeed;

/// The main thread state, released after start-up and taken back to finalise.
static MAIN_THREAD_STATE: AtomicPtr<ffi::PyThreadState> = AtomicPtr::new(std::ptr::null_mut());
/// Set once the process has begun shutting Python down: no thread enters
/// Python for a request after this, nor deletes its thread state.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Initialises CPython with `settings` and releases the GIL. On failure
/// Python is left uninitialised and the message says why.
pub fn start(settings: &GlobalSettings) -> Result<(), String> {
    // SAFETY: called once per process, on the child's main thread, before
    // any other thread touches Python; every PyConfig field is set through
    // CPython's own setters and the config is cleared afterwards.
    unsafe {
        let mut config: ffi::PyConfig = std::mem::zeroed();
        let cfg = addr_of_mut!(config);
        ffi::PyConfig_InitPythonConfig(cfg);
        // Apache owns the signals and the C stdio of its children.
        (*cfg).install_signal_handlers = 0;
        (*cfg).configure_c_stdio = 0;
        (*cfg).parse_argv = 0;
        let result = configure(cfg, settings).and_then(|()| check(ffi::Py_InitializeFromConfig(cfg), "Py_InitializeFromConfig"));
        ffi::PyConfig_Clear(cfg);
        result?;
        MAIN_THREAD_STATE.store(ffi::PyEval_SaveThread(), Ordering::SeqCst);
    }
    check_version()
}

/// The Python loaded must be the one this module was built for.
fn check_version() -> Result<(), String> {
    // SAFETY: Py_GetVersion returns a static string and needs no GIL.
    let version = unsafe { CStr::from_ptr(ffi::Py_GetVersion()) }.to_string_lossy();
    let running: Vec<&str> = version.split(' ').next().unwrap_or_default().splitn(3, '.').take(2).collect();
    let running = running.join(".");
    if running != BUILD_VERSION {
        return Err(format!("this module was built for Python {BUILD_VERSION} but Python {running} was loaded"));
    }
    Ok(())
}

/// The `major.minor` Python version this module is built for.
pub const BUILD_VERSION: &str = env!("MRS_PYTHON_BUILD_VERSION");

unsafe fn configure(cfg: *mut ffi::PyConfig, settings: &GlobalSettings) -> Result<(), String> {
    if let Some(home) = &settings.home {
        // A virtual environment is found through its interpreter path (which
        // makes CPython read pyvenv.cfg); setting `home` to one breaks it.
        if Path::new(home).join("pyvenv.cfg").exists() {
            set_string(cfg, addr_of_mut!((*cfg).program_name), &format!("{home}/bin/python"))?;
        } else {
            set_string(cfg, addr_of_mut!((*cfg).home), home)?;
        }
    }
    if let Some(level) = settings.optimize {
        (*cfg).optimization_level = level;
    }
    if settings.dont_write_bytecode == Some(true) {
        (*cfg).write_bytecode = 0;
    }
    match settings.hash_seed {
        Some(HashSeed::Fixed(seed)) => {
            (*cfg).use_hash_seed = 1;
            (*cfg).hash_seed = seed.into();
        }
        Some(HashSeed::Random) => (*cfg).use_hash_seed = 0,
        None => {}
    }
    for option in &settings.warnings {
        let c = CString::new(option.as_str()).map_err(|_| "NUL in WSGIPythonWarnings".to_string())?;
        // Decoded by the config's own setter, which pre-initialises Python
        // first (so the locale and UTF-8 mode are Python's, as CPython
        // requires), into a string we then own.
        let mut wide: *mut libc::wchar_t = std::ptr::null_mut();
        check(ffi::PyConfig_SetBytesString(cfg, &mut wide, c.as_ptr()), "WSGIPythonWarnings")?;
        let status = ffi::PyWideStringList_Append(addr_of_mut!((*cfg).warnoptions), wide);
        ffi::PyMem_RawFree(wide as *mut _);
        check(status, "WSGIPythonWarnings")?;
    }
    Ok(())
}

unsafe fn set_string(cfg: *mut ffi::PyConfig, field: *mut *mut libc::wchar_t, value: &str) -> Result<(), String> {
    let c = CString::new(value).map_err(|_| format!("NUL in path {value:?}"))?;
    check(ffi::PyConfig_SetBytesString(cfg, field, c.as_ptr()), value)
}

pub(super) unsafe fn check(status: ffi::PyStatus, what: &str) -> Result<(), String> {
    if ffi::PyStatus_Exception(status) == 0 {
        return Ok(());
    }
    let msg = if status.err_msg.is_null() { "unknown error".into() } else { CStr::from_ptr(status.err_msg).to_string_lossy() };
    Err(format!("{what}: {msg}"))
}

/// Whether Python is up and no shutdown has begun.
pub fn is_running() -> bool {
    !MAIN_THREAD_STATE.load(Ordering::SeqCst).is_null() && !is_stopping()
}

pub fn is_stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Begins the shutdown: from now on no thread enters Python for a request
/// (nor deletes its thread states).
pub fn stop_entries() {
    STOPPING.store(true, Ordering::SeqCst);
}

/// Finalises Python (the main interpreter's atexit functions run, modules
/// are torn down). Only after [`stop_entries`], on the thread that started
/// Python, when no thread is inside Python for us and every sub-interpreter
/// has been ended.
pub fn finalize() {
    let main = MAIN_THREAD_STATE.swap(std::ptr::null_mut(), Ordering::SeqCst);
    if main.is_null() {
        return;
    }
    // SAFETY: `main` is the thread state saved by start(), and no thread is
    // inside Python for a request nor can enter it any more (STOPPING).
    unsafe {
        ffi::PyEval_RestoreThread(main);
        ffi::Py_FinalizeEx();
    }
}

/// Ends the process with `_exit` if it is still alive `limit` after being
/// armed and not yet dropped: a shutdown subscriber that blocks, or a
/// non-daemon thread that ending an interpreter waits for, must not keep a
/// stopping process around. The log line names the step the shutdown was
/// at (see [`shutdown_step`]).
pub struct ExitWatchdog {
    _disarm: mpsc::Sender<()>,
}

/// What the shutdown is doing now, for the watchdog's log line.
static SHUTDOWN_STEP: Mutex<String> = Mutex::new(String::new());

/// Names the step the shutdown is now at.
pub fn shutdown_step(step: String) {
    *SHUTDOWN_STEP.lock().unwrap_or_else(|e| e.into_inner()) = step;
}

impl ExitWatchdog {
    pub fn arm(limit: Duration) -> std::io::Result<ExitWatchdog> {
        let (disarm, disarmed) = mpsc::channel::<()>();
        std::thread::Builder::new().name("python-shutdown-watchdog".into()).spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(limit) {
                let step = SHUTDOWN_STEP.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let step = if step.is_empty() { String::new() } else { format!(" (it was {step})") };
                log::server(None, Level::Err, &format!("Python did not shut down within {:.1}s in process {}; exiting without waiting for it{step}", limit.as_secs_f64(), std::process::id()));
                crate::ffi::process::exit_now(0);
            }
        })?;
        Ok(ExitWatchdog { _disarm: disarm })
    }
}
