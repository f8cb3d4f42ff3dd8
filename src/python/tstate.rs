//! One Python thread state per Apache worker thread, kept for the thread's
//! life so that `threading.local` data survives from request to request.
use std::cell::Cell;

use pyo3::{ffi, Python};

thread_local! {
    static HAS_THREAD_STATE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` holding the GIL on this thread's persistent thread state.
pub fn with_gil<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    HAS_THREAD_STATE.with(|has| {
        if !has.get() {
            // SAFETY: Python is initialised (callers check init::is_running).
            // One unmatched Ensure creates this thread's state and keeps it;
            // SaveThread then releases the GIL. Every later attach (a
            // matched Ensure/Release) reuses that state instead of creating
            // and destroying one per request.
            unsafe {
                ffi::PyGILState_Ensure();
                ffi::PyEval_SaveThread();
            }
            has.set(true);
        }
    });
    Python::attach(f)
}
