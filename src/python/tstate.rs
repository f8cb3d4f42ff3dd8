//! Thread states: how a thread gets into an interpreter.
//!
//! Every thread that serves requests (Apache's worker threads, mod_http2's
//! workers, a daemon's workers) keeps one thread state per interpreter it
//! has entered, for the thread's life, so that `threading.local` data
//! survives from request to request; they are deleted when the thread exits
//! so that data is released (a thread-local database connection gets
//! closed). This module also knows which threads are running Python for
//! us, so that Python is never finalised under them.
//!
//! A thread's first thread state is made through `PyGILState` in the main
//! interpreter, so that C extensions calling `PyGILState_Ensure` on our
//! threads land there. After that every entry, main interpreter or not,
//! restores the thread's own state for that interpreter
//! (`PyEval_RestoreThread`): `PyGILState_Ensure` cannot be used to get back
//! into the main interpreter, since on Python 3.12+ it returns whichever
//! thread state this thread used last, which may be a sub-interpreter's.
//!
//! The work runs inside a call of a native function made in that
//! interpreter ([`enter_here`]): pyo3 then counts the thread as attached, so
//! objects dropped in the work are released at once, in the interpreter
//! that owns them, never queued for whichever thread attaches next (the
//! build sets `pyo3_disable_reference_pool`, so a drop outside any
//! attachment aborts instead of reaching the wrong interpreter).
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::{null_mut, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::{ffi, wrap_pyfunction};

use super::init;

thread_local! {
    /// How many entries into Python this thread is inside (Python frames
    /// of ours may be on its stack, whether or not it holds a GIL now).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// This thread's own thread states, deleted when the thread exits.
    static OWN_STATES: OwnThreadStates = const { OwnThreadStates { main: Cell::new(null_mut()), subs: RefCell::new(Vec::new()) } };
    /// The work [`enter_here`] runs, set for the length of its call.
    static WORK: Cell<Option<Work>> = const { Cell::new(None) };
}

/// Work to run in an interpreter (see [`run_in_entry`]).
type Work = NonNull<dyn for<'py> FnMut(Python<'py>)>;

/// How many threads are inside Python for us (or deleting their thread states).
static THREADS_IN_PYTHON: AtomicUsize = AtomicUsize::new(0);

/// Whether this thread is inside Python for us: true when a shutdown runs
/// from a signal handler that interrupted a request here (prefork's SIGTERM).
pub fn inside_python_here() -> bool {
    DEPTH.with(Cell::get) > 0
}

/// How many threads are running Python for a request (or tearing down their
/// thread states) right now.
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

/// A pointer CPython owns, shared between threads under CPython's rules
/// (each use below says which).
struct Raw<T>(*mut T);

impl<T> PartialEq for Raw<T> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}
// SAFETY: only handed to CPython, which synchronises the use of interpreter
// and thread states itself; the comments at each use give the conditions.
unsafe impl<T> Send for Raw<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Raw<T> {}

/// One CPython interpreter as our threads enter it.
pub struct Interp {
    /// None for the main interpreter.
    sub: Option<Sub>,
    /// `enter_here`, made in this interpreter.
    entry: Py<PyAny>,
}

/// What a sub-interpreter keeps for being ended.
struct Sub {
    interp: Raw<ffi::PyInterpreterState>,
    /// The thread states our threads made here, and one that belongs to
    /// no thread, kept until the interpreter ends: Python 3.11 cannot give
    /// an interpreter a thread state again once it has had none (it reuses
    /// the first one's storage and aborts).
    states: Mutex<Vec<Raw<ffi::PyThreadState>>>,
}

/// The main interpreter's [`Interp`], made once, before any sub-interpreter
/// exists; `py` is the main interpreter's.
pub fn main_interp(py: Python<'_>) -> PyResult<&'static Interp> {
    let entry = wrap_pyfunction!(enter_here, py)?.into_any().unbind();
    Ok(Box::leak(Box::new(Interp { sub: None, entry })))
}

/// Runs `f` attached to the main interpreter through `PyGILState` (as
/// pyo3's `Python::attach` does): only at start-up, before any
/// sub-interpreter exists, when that is sure to be the main interpreter.
pub fn attach_at_start<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    let _inside = Inside::enter()?;
    OWN_STATES.with(OwnThreadStates::main_state);
    Some(Python::attach(f))
}

/// Creates a sub-interpreter (with its own GIL if `own_gil` and Python is
/// 3.12 or later) and runs `setup` in it. Called in the main interpreter,
/// which is current again when it returns.
pub fn create_sub<T>(py: Python<'_>, own_gil: bool, setup: impl FnOnce(Python<'_>) -> PyResult<T>) -> Result<(&'static Interp, T), String> {
    // SAFETY: `py` shows this thread is attached to the main interpreter.
    // The new interpreter's thread state is current (holding its GIL) from
    // its creation until it is saved; pyo3's count of this thread's
    // attachment stays raised by the caller's entry throughout, so `py`
    // serves the new interpreter too, and what `setup` drops is released
    // there. Then the main thread state is restored, as on entry.
    unsafe {
        let main_state = ffi::PyThreadState_Get();
        let first = new_interpreter(own_gil)?;
        let made = wrap_pyfunction!(enter_here, py).map(|f| f.into_any().unbind()).and_then(|entry| Ok((entry, setup(py)?)));
        match made {
            Ok((entry, value)) => {
                let interp = ffi::PyThreadState_GetInterpreter(first);
                ffi::PyEval_SaveThread();
                ffi::PyEval_RestoreThread(main_state);
                let anchor = ffi::PyThreadState_New(interp);
                assert!(!anchor.is_null(), "no memory for a Python thread state");
                let sub = Sub { interp: Raw(interp), states: Mutex::new(vec![Raw(first), Raw(anchor)]) };
                let interp: &'static Interp = Box::leak(Box::new(Interp { sub: Some(sub), entry }));
                // The first thread state is this thread's from now on.
                OWN_STATES.with(|own| own.subs.borrow_mut().push((interp, first)));
                Ok((interp, value))
            }
            Err(e) => {
                e.print(py);
                drop(e);
                end_current_interpreter(first);
                ffi::PyEval_RestoreThread(main_state);
                Err("its setup failed (the traceback is above)".into())
            }
        }
    }
}

/// A new interpreter, whose thread state is current on return.
///
/// # Safety
/// The thread must be attached to the main interpreter.
#[cfg(Py_3_12)]
unsafe fn new_interpreter(own_gil: bool) -> Result<*mut ffi::PyThreadState, String> {
    let config = if own_gil {
        // As CPython's default for isolated interpreters, except that
        // subprocess works (fork with exec); os.fork and daemon threads do not.
        ffi::PyInterpreterConfig { allow_exec: 1, ..ffi::_PyInterpreterConfig_INIT }
    } else {
        ffi::_PyInterpreterConfig_LEGACY_INIT
    };
    let mut state = null_mut();
    init::check(ffi::Py_NewInterpreterFromConfig(&mut state, &config), "Py_NewInterpreterFromConfig")?;
    if state.is_null() {
        return Err("Py_NewInterpreterFromConfig failed (see the error above)".into());
    }
    Ok(state)
}

/// A new interpreter, whose thread state is current on return.
///
/// # Safety
/// The thread must be attached to the main interpreter.
#[cfg(not(Py_3_12))]
unsafe fn new_interpreter(_own_gil: bool) -> Result<*mut ffi::PyThreadState, String> {
    let state = ffi::Py_NewInterpreter();
    if state.is_null() {
        return Err("Py_NewInterpreter failed (see the error above)".into());
    }
    Ok(state)
}

/// Ends the interpreter of `state`, the current thread state and the last
/// one of that interpreter. No thread state is current afterwards and no
/// GIL is held.
///
/// # Safety
/// As `Py_EndInterpreter` requires.
unsafe fn end_current_interpreter(state: *mut ffi::PyThreadState) {
    ffi::Py_EndInterpreter(state);
    // Before 3.12 the (one, shared) GIL is still held on return, with no
    // thread state current: it is given back through this thread's main
    // interpreter state (PyEval_ReleaseLock would need a current one).
    #[cfg(not(Py_3_12))]
    {
        ffi::PyThreadState_Swap(OWN_STATES.with(OwnThreadStates::main_state));
        ffi::PyEval_SaveThread();
    }
}

impl Interp {
    /// Runs `f` in this interpreter on this thread's persistent thread
    /// state; `None` when Python is being shut down in this process.
    ///
    /// Not to be called while this thread is attached to an interpreter,
    /// unless inside `Python::detach`.
    pub fn try_enter<R>(&'static self, f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
        let _inside = Inside::enter()?;
        Some(self.attach(f))
    }

    /// [`Self::try_enter`] for the thread shutting Python down, after
    /// entries have been stopped.
    pub fn attach_to_stop<R>(&'static self, f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
        self.attach(f)
    }

    fn attach<R>(&'static self, f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
        let state = OWN_STATES.with(|own| own.state_in(self));
        // SAFETY: `state` is this thread's own thread state in this
        // interpreter, and no thread state is current on this thread (see
        // above); restoring takes the interpreter's GIL, saving gives it
        // back. `entry` belongs to this interpreter.
        let outcome = unsafe {
            ffi::PyEval_RestoreThread(state);
            let outcome = run_in_entry(self.entry.as_ptr(), f);
            ffi::PyEval_SaveThread();
            outcome
        };
        // A panic in `f` continues here, outside Python.
        outcome.unwrap_or_else(|panic| resume_unwind(panic))
    }

    /// Ends this sub-interpreter from this thread, at shutdown, when no
    /// thread of ours can be in it any more. The other threads' (idle)
    /// states go first, then `finish` runs in it (the adapter waits there
    /// for the threads the app started, as ending it would); if threads the
    /// app started still run (daemon threads), ending it would abort the
    /// process: it is left, and their number returned. Ending it runs its
    /// `atexit` functions and tears its modules down.
    pub fn end(&'static self, finish: impl for<'py> FnOnce(Python<'py>)) -> Result<(), usize> {
        let Some(sub) = &self.sub else { return Ok(()) };
        let mine = OWN_STATES.with(|own| own.state_in(self));
        let others: Vec<_> = {
            let mut states = sub.states.lock().unwrap_or_else(|e| e.into_inner());
            let others = states.drain(..).filter(|s| s.0 != mine).collect();
            states.push(Raw(mine));
            others
        };
        // SAFETY: no other thread can enter (the shutdown stopped entries
        // and none was inside). This thread's state is restored, taking the
        // GIL; the other states are idle and are cleared and deleted under
        // it (a thread blocked on one, like threading's wait for the thread
        // that created the interpreter, is released). The thread list is
        // walked under the GIL, so threads neither start nor end meanwhile.
        // Py_EndInterpreter needs this thread's state current and last.
        unsafe {
            ffi::PyEval_RestoreThread(mine);
            for other in others {
                ffi::PyThreadState_Clear(other.0);
                ffi::PyThreadState_Delete(other.0);
            }
            let finished = run_in_entry(self.entry.as_ptr(), finish);
            let mut foreign = 0;
            let mut state = ffi::PyInterpreterState_ThreadHead(sub.interp.0);
            while !state.is_null() {
                foreign += usize::from(state != mine);
                state = ffi::PyThreadState_Next(state);
            }
            if foreign > 0 || finished.is_err() {
                ffi::PyEval_SaveThread();
                return finished.map_or_else(|panic| resume_unwind(panic), |()| Err(foreign));
            }
            end_current_interpreter(mine);
        }
        OWN_STATES.with(|own| own.subs.borrow_mut().retain(|(interp, _)| !std::ptr::eq(*interp, self)));
        Ok(())
    }
}

/// Runs `f` inside a call of `entry` (`enter_here`) on this thread.
///
/// # Safety
/// This thread must hold a current thread state of the interpreter `entry`
/// belongs to.
unsafe fn run_in_entry<R>(entry: *mut ffi::PyObject, f: impl for<'py> FnOnce(Python<'py>) -> R) -> std::thread::Result<R> {
    let mut f = Some(f);
    let mut outcome = None;
    let mut work = |py: Python<'_>| {
        if let Some(f) = f.take() {
            outcome = Some(catch_unwind(AssertUnwindSafe(|| f(py))));
        }
    };
    let work: &mut dyn for<'py> FnMut(Python<'py>) = &mut work;
    // SAFETY (lifetime): the pointer leaves WORK before this function
    // returns, and `work` outlives that.
    let work: Work = std::mem::transmute(NonNull::from(work));
    let previous = WORK.replace(Some(work));
    let result = ffi::PyObject_CallNoArgs(entry);
    WORK.set(previous);
    if result.is_null() {
        // Only a pending exception (a signal's) can make the call fail.
        ffi::PyErr_Print();
    } else {
        ffi::Py_DECREF(result);
    }
    outcome.unwrap_or_else(|| Err(Box::new("the Python interpreter could not be entered")))
}

/// The native function an interpreter is entered through: pyo3 counts the
/// thread as attached while it runs. The work never unwinds into pyo3 (a
/// panic is caught by [`run_in_entry`]), so pyo3 never makes its
/// process-wide `PanicException` type here.
#[pyfunction]
fn enter_here(py: Python<'_>) {
    if let Some(mut work) = WORK.take() {
        // SAFETY: set by run_in_entry on this thread, which is waiting for
        // this call to return.
        unsafe { work.as_mut()(py) }
    }
}

/// This thread's own thread states.
struct OwnThreadStates {
    /// Its main interpreter state, made through PyGILState (null until then).
    main: Cell<*mut ffi::PyThreadState>,
    /// Its state in each sub-interpreter it entered.
    subs: RefCell<Vec<(&'static Interp, *mut ffi::PyThreadState)>>,
}

impl OwnThreadStates {
    /// This thread's main interpreter state, made on first use.
    fn main_state(&self) -> *mut ffi::PyThreadState {
        if self.main.get().is_null() {
            // SAFETY: Python is initialised (callers check init::is_running).
            // One unmatched Ensure makes this thread's state (PyGILState's,
            // so extensions calling it on this thread share it) and keeps
            // it; SaveThread releases the GIL and returns that state.
            self.main.set(unsafe {
                ffi::PyGILState_Ensure();
                ffi::PyEval_SaveThread()
            });
        }
        self.main.get()
    }

    fn state_in(&self, interp: &'static Interp) -> *mut ffi::PyThreadState {
        let main = self.main_state();
        let Some(sub) = &interp.sub else { return main };
        if let Some(&(_, state)) = self.subs.borrow().iter().find(|(i, _)| std::ptr::eq(*i, interp)) {
            return state;
        }
        // SAFETY: the interpreter is alive (ended only at shutdown, when no
        // thread enters); PyThreadState_New needs no GIL. The main state
        // made above is this thread's first, which PyGILState keeps.
        let state = unsafe { ffi::PyThreadState_New(sub.interp.0) };
        assert!(!state.is_null(), "no memory for a Python thread state");
        sub.states.lock().unwrap_or_else(|e| e.into_inner()).push(Raw(state));
        self.subs.borrow_mut().push((interp, state));
        state
    }
}

impl Drop for OwnThreadStates {
    /// The thread is exiting: clear its thread states (their
    /// `threading.local` data goes, running any `__del__`) and delete them.
    /// Only while Python runs and is not being shut down, and never under
    /// Python frames of this same thread; otherwise the shutdown (or the
    /// process exit) takes them.
    fn drop(&mut self) {
        if self.main.get().is_null() || inside_python_here() {
            return;
        }
        let Some(_inside) = Inside::enter() else { return };
        if !init::is_running() {
            return;
        }
        let subs = self.subs.get_mut().drain(..).map(|(interp, state)| {
            if let Some(sub) = &interp.sub {
                sub.states.lock().unwrap_or_else(|e| e.into_inner()).retain(|s| s.0 != state);
            }
            state
        });
        for state in subs.collect::<Vec<_>>().into_iter().chain([self.main.get()]) {
            // SAFETY: this thread's own state in a live interpreter, not
            // current; restoring it takes that interpreter's GIL, Clear runs
            // the destructors of its data on this thread, as CPython does
            // for its own threads, and DeleteCurrent frees it and releases
            // the GIL.
            unsafe {
                ffi::PyEval_RestoreThread(state);
                ffi::PyThreadState_Clear(state);
                ffi::PyThreadState_DeleteCurrent();
            }
        }
    }
}
