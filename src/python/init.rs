//! Starting and stopping CPython in an Apache child process.
use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr::addr_of_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::ffi;

use crate::config::GlobalSettings;
use wsgi_core::directives::HashSeed;

/// The main thread state, released after start-up and taken back to finalise.
static MAIN_THREAD_STATE: AtomicPtr<ffi::PyThreadState> = AtomicPtr::new(std::ptr::null_mut());

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
    Ok(())
}

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
        let wide = ffi::Py_DecodeLocale(c.as_ptr(), std::ptr::null_mut());
        if wide.is_null() {
            return Err(format!("cannot decode WSGIPythonWarnings {option:?}"));
        }
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

unsafe fn check(status: ffi::PyStatus, what: &str) -> Result<(), String> {
    if ffi::PyStatus_Exception(status) == 0 {
        return Ok(());
    }
    let msg = if status.err_msg.is_null() { "unknown error".into() } else { CStr::from_ptr(status.err_msg).to_string_lossy() };
    Err(format!("{what}: {msg}"))
}

pub fn is_running() -> bool {
    !MAIN_THREAD_STATE.load(Ordering::SeqCst).is_null()
}

/// Finalises Python at child exit: atexit handlers run and modules are
/// torn down. Apache has stopped its worker threads by then.
pub fn stop() {
    let main = MAIN_THREAD_STATE.swap(std::ptr::null_mut(), Ordering::SeqCst);
    if main.is_null() {
        return;
    }
    // SAFETY: `main` is the thread state saved by start(); no request thread
    // is inside Python any more when the child pool is destroyed.
    unsafe {
        ffi::PyEval_RestoreThread(main);
        ffi::Py_FinalizeEx();
    }
}
