//! One Python thread state per thread that serves requests (Apache's worker
//! threads, mod_http2's workers, a daemon's workers), kept for the thread's
//! life so that `threading.local` data survives from request to request, and
//! deleted when the thread exits so that data is released (a thread-local
//! database connection gets closed). This module also knows which threads
//! are running Python for us, so that Python is never finalised under them.
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::{ffi, Python};

use super::init;

thread_local! {
    /// How many `with_gil` calls this thread is inside (Python frames of
    /// ours may be on its stack, whether or not it holds the GIL just now).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// This thread's own thread state, deleted when the thread exits.
    static OWN_STATE: OwnThreadState = const { OwnThreadState(Cell::new(false)) };
}

/// How many threads are inside `with_gil` (or deleting their thread state).
static THREADS_IN_PYTHON: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` holding the GIL on this thread's persistent thread state.
///
/// Panics (caught by the hook's guard, so the request gets a 500) when
/// Python is being shut down in this process.
pub fn with_gil<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    let _inside = Inside::enter().expect("Python is shutting down in this process");
    OWN_STATE.with(OwnThreadState::ensure);
    Python::attach(f)
}

/// Whether this thread is inside `with_gil`: true when a shutdown runs from
/// a signal handler that interrupted a request here (prefork's SIGTERM).
pub fn inside_python_here() -> bool {
    DEPTH.with(Cell::get) > 0
}

/// How many threads are running Python for a request (or tearing down their
/// thread state) right now.
pub fn threads_in_python() -> usize {
    THREADS_IN_PYTHON.load(Ordering::SeqCst)
}

/// Marks this thread as running Python while it lives. The count is raised
/// before the shutdown flag is read, and the shutdown sets its flag before
/// reading the count (both SeqCst), so either the thread sees the shutdown
/// and stays out, or the shutdown sees the thread and does not finalise.
struct Inside;

impl Inside {
    fn enter() -> Option<Inside> {
        let depth = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        let inside = Inside;
        if depth == 1 {
            THREADS_IN_PYTHON.fetch_add(1, Ordering::SeqCst);
            if init::is_stopping() {
                return None;
            }
        }
        Some(inside)
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| {
            d.set(d.get() - 1);
            d.get()
        });
        if depth == 0 {
            THREADS_IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Whether this thread has created its thread state.
struct OwnThreadState(Cell<bool>);

impl OwnThreadState {
    fn ensure(&self) {
        if self.0.get() {
            return;
        }
        // SAFETY: Python is initialised (callers check init::is_running).
        // One unmatched Ensure creates this thread's state and keeps it;
        // SaveThread then releases the GIL. Every later attach (a matched
        // Ensure/Release) reuses that state instead of creating and
        // destroying one per request.
        unsafe {
            ffi::PyGILState_Ensure();
            ffi::PyEval_SaveThread();
        }
        self.0.set(true);
    }
}

impl Drop for OwnThreadState {
    /// The thread is exiting: clear its thread state (its `threading.local`
    /// data goes, running any `__del__`) and delete it. Only while Python
    /// runs and is not being shut down, and never under Python frames of
    /// this same thread; otherwise finalisation (or process exit) takes it.
    fn drop(&mut self) {
        if !self.0.get() || inside_python_here() {
            return;
        }
        let Some(_inside) = Inside::enter() else { return };
        if !init::is_running() {
            return;
        }
        // SAFETY: this thread's state exists (created by ensure) and is not
        // current; Ensure makes it current with the GIL. Clear then runs the
        // destructors of its data on this thread, as CPython does for its own
        // threads, and DeleteCurrent frees it and releases the GIL.
        unsafe {
            ffi::PyGILState_Ensure();
            ffi::PyThreadState_Clear(ffi::PyThreadState_Get());
            ffi::PyThreadState_DeleteCurrent();
        }
    }
}
