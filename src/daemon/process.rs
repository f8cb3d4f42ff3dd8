//! One daemon process: it takes on the group's identity (fail-closed),
//! starts Python, runs its worker threads (`workers`) and watchers
//! (`lifecycle`), tells the parent it is ready, and exits once it has
//! drained, within shutdown-timeout whatever Python does.
use std::collections::HashMap;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::signal::Signal;
use pyo3::exceptions::PySystemExit;
use pyo3::types::PyDict;
use signal_hook::iterator::Signals;
use wsgi_core::daemon_options::path_in_chroot;
use wsgi_core::protocol::Limits;

use super::conn::Connection;
use super::group::{self, RuntimeGroup};
use super::identity::{apply_priority, apply_process_settings, take_identity};
use super::lifecycle::{Slot, State, Stop};
use super::workers::{claim_listener, Admission};
use crate::config::GlobalSettings;
use crate::ffi::log::{Level, LogTarget};
use crate::ffi::process as os;
use crate::ffi::server::{self, Server};
use crate::python::{init, interp};

/// How a daemon process exits, for the parent's log. (Whether to back off
/// the parent learns from the process itself: see `report_ready`.) All are
/// above any signal number, as APR reports a killing signal as the status.
/// Stopped as planned: recycled, reloaded, or told to stop.
pub const EXIT_RECYCLED: i32 = 0;
/// Could not take on its identity or start Python or its threads.
pub const EXIT_STARTUP_FAILED: i32 = 100;
/// Ended itself after an internal error (a Rust panic) or a wedged GIL.
pub const EXIT_CRASHED: i32 = 101;

/// The request threads' stack unless `stack-size=` says otherwise: what
/// Apache's threads and mod_wsgi's get on Linux, so recursion that works
/// in embedded mode works here too.
const DEFAULT_STACK_SIZE: usize = 8 << 20;

pub(super) fn log(server: Server, level: Level, msg: &str) {
    LogTarget::Server(server).write(level, msg);
}

fn startup_failed(server: Server, msg: &str) -> ! {
    log(server, Level::Crit, msg);
    os::exit_now(EXIT_STARTUP_FAILED)
}

/// The process's shared state.
pub(super) struct Daemon {
    pub(super) group: Arc<RuntimeGroup>,
    pub(super) server: Server,
    pub(super) epoll: Epoll,
    pub(super) listener: UnixListener,
    pub(super) wake: EventFd,
    /// Idle connections, parked in the epoll set, by file descriptor.
    pub(super) idle: Mutex<HashMap<RawFd, Arc<Connection>>>,
    pub(super) limits: Limits,
    pub(super) socket_timeout: Duration,
    /// The user allowed to connect besides root: the socket's owner.
    pub(super) client_uid: u32,
    pub(super) started: Instant,
    pub(super) state: Mutex<State>,
    pub(super) changed: Condvar,
    pub(super) requests: AtomicU64,
    pub(super) last_activity: Mutex<Instant>,
    pub(super) stopping: AtomicBool,
    /// Whether Python may still be entered: cleared, under this lock, just
    /// before it is finalised.
    pub(super) python_open: Mutex<bool>,
    pub(super) slots: Vec<Slot>,
    /// Since when the script has failed to load, for startup-timeout.
    pub(super) load_failing_since: Mutex<Option<Instant>>,
    /// When the GIL was last taken by the deadlock watcher.
    pub(super) gil_taken: Mutex<Instant>,
    pub(super) admission: Admission,
}

pub(super) const LISTENER: u64 = u64::MAX;
pub(super) const WAKE: u64 = u64::MAX - 1;

/// Runs the daemon process of the group at `group` (its registry index),
/// listening on `listener`; writes to `ready` once it serves. Never returns.
pub fn run(group: usize, listener: UnixListener, ready: OwnedFd, settings: &GlobalSettings) -> ! {
    os::close_listeners();
    let parent = nix::unistd::getppid();
    let Some(server) = group::at(group).map(|g| g.def.server) else { os::exit_now(EXIT_STARTUP_FAILED) };
    super::supervisor::wipe_lasting_secrets(server);
    let g = match group::keep_only(group) {
        Ok(g) => g,
        Err(msg) => startup_failed(server, &msg),
    };
    let spec = &g.def.spec;
    os::limit_malloc_arenas(2);
    // Writes to a closed socket must fail with EPIPE, not kill the process.
    let _ = os::ignore_signal(Signal::SIGPIPE);
    // Python installs a SIGINT handler of its own if it finds the default
    // one; the daemon's handlers come once it serves.
    let _ = os::ignore_signal(Signal::SIGINT);

    apply_priority(&g);
    let title_room = os::process_title_room();
    if let Err(msg) = take_identity(&g) {
        startup_failed(server, &format!("daemon process for group '{}' not started: {msg}", g.name()));
    }
    if let Err(msg) = claim_listener(&listener, spec.listen_backlog) {
        startup_failed(server, &format!("daemon process for group '{}' not started: {msg}", g.name()));
    }
    // Set after the identity change, which clears it; then make sure the
    // parent did not already go in between.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    if nix::unistd::getppid() != parent {
        os::exit_now(EXIT_RECYCLED)
    }
    // Named only once it is no longer root: a process shown as a daemon is
    // never one running with the parent's privileges.
    if let Some(title) = spec.process_title(g.name()) {
        os::set_process_title(server, &title, title_room);
    }
    apply_process_settings(&g);
    if let Err(msg) = start_python(&g, settings) {
        startup_failed(server, &format!("daemon process for group '{}' {msg}", g.name()));
    }
    if spec.threads == 0 {
        run_service(&g, ready, settings.destroy_interpreter != Some(false))
    }
    preload(&g);

    let daemon = match Daemon::new(g.clone(), listener) {
        Ok(d) => Arc::new(d),
        Err(e) => startup_failed(server, &format!("daemon process for group '{}': {e}", g.name())),
    };
    let workers = match daemon.start_threads() {
        Ok(workers) => workers,
        Err(e) => startup_failed(server, &format!("daemon process for group '{}' cannot start its threads: {e}", g.name())),
    };
    if let Err(e) = daemon.open() {
        startup_failed(server, &format!("daemon process for group '{}': {e}", g.name()));
    }
    report_ready(ready);
    log(server, Level::Info, &format!("daemon process {} for group '{}' started ({} threads)", std::process::id(), g.name(), spec.threads));

    let reason = daemon.wait_until_done();
    log(server, Level::Info, &format!("daemon process {} for group '{}' stopping ({})", std::process::id(), g.name(), reason.describe()));
    daemon.finish(reason, workers, settings.destroy_interpreter != Some(false))
}

/// Tells the parent this process got as far as serving, so that its end
/// is not taken for a failure to start.
fn report_ready(ready: OwnedFd) {
    let _ = nix::unistd::write(&ready, b"r");
}

/// Python with the group's home and path (falling back to the server-wide
/// settings) and the adapter.
fn start_python(g: &RuntimeGroup, settings: &GlobalSettings) -> Result<(), String> {
    let spec = &g.def.spec;
    let mut python = settings.clone();
    if spec.python_home.is_some() {
        python.home = spec.python_home.clone();
    }
    python.path = spec.home.iter().cloned().chain(spec.python_path.iter().cloned()).collect();
    python.switch_interval = spec.switch_interval.or(settings.switch_interval);
    python.python_eggs = spec.python_eggs.clone().or(settings.python_eggs.clone());
    if spec.threads == 0 {
        // As in mod_wsgi, a service script may handle signals itself.
        python.restrict_signal = Some(false);
    }
    init::start(&python).map_err(|msg| format!("cannot initialise Python: {msg}"))?;
    let info = interp::ProcessInfo {
        // As in mod_wsgi: a process that serves exactly one request.
        run_once: spec.threads == 1 && spec.maximum_requests == 1,
        ..crate::module_record::process_info(g.def.server, &python, g.name(), spec.processes as i32, spec.threads as i32)
    };
    interp::create_main(info)
}

/// The group's scripts (application group, path), with the paths a process
/// in its `chroot=` sees: one given under the chroot directory loses that
/// prefix, any other is taken to be a path inside it already.
fn scripts(g: &RuntimeGroup) -> impl Iterator<Item = (&str, String)> + '_ {
    let root = g.def.spec.chroot.as_deref();
    g.preload.iter().map(move |s| (s.application_group.as_str(), root.and_then(|root| path_in_chroot(root, &s.script)).unwrap_or_else(|| s.script.clone())))
}

/// Loads the group's scripts ahead of their first request; a failure is
/// logged, and the script is tried again when a request needs it.
fn preload(g: &RuntimeGroup) {
    for (group, script) in scripts(g) {
        interp::preload(group, &script);
    }
}

/// A service process looks settled, and is replaced at once when it ends,
/// once its scripts have run this long; one that ends sooner is replaced
/// with the back-off of a process that failed to start, so that a script
/// that fails at once does not make the process spin.
const SERVICE_SETTLED: Duration = Duration::from_secs(1);

/// Installed in a service process: SIGTERM raises SystemExit in the script
/// (Python runs signal handlers in the main interpreter only).
const EXIT_ON_SIGTERM: &std::ffi::CStr = c"import signal, sys\nsignal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))";

/// A service process (threads=0): runs the group's scripts one after the
/// other in its main thread, and exits once they return. SystemExit, which
/// SIGTERM (Apache stopping or restarting) raises, ends them quietly, and
/// the scripts after. It takes no requests: Apache's children send none to
/// a group without threads.
fn run_service(g: &RuntimeGroup, ready: OwnedFd, destroy_python: bool) -> ! {
    let server = g.def.server;
    if g.preload.is_empty() {
        log(server, Level::Warning, &format!("daemon process group '{}' has threads=0 but no WSGIImportScript names it: its processes have nothing to run", g.name()));
    }
    let _ = std::thread::Builder::new().name("wsgi-service-ready".into()).spawn(move || {
        std::thread::sleep(SERVICE_SETTLED);
        report_ready(ready);
    });
    log(server, Level::Info, &format!("service process {} for group '{}' started", std::process::id(), g.name()));
    if let Ok(main) = interp::for_group("") {
        main.enter(|py| {
            if let Err(e) = py.run(EXIT_ON_SIGTERM, Some(&PyDict::new(py)), None) {
                main.log_exception(py, e, "(the SIGTERM handler of a service process)");
            }
        });
    }
    for (group, script) in scripts(g) {
        let interpreter = match interp::for_group(group) {
            Ok(interpreter) => interpreter,
            Err(msg) => {
                log(server, Level::Err, &format!("{script} not run: {msg}"));
                continue;
            }
        };
        let exited = interpreter.enter(|py| match interpreter.preload(py, &script) {
            Ok(()) => false,
            Err(e) if e.is_instance_of::<PySystemExit>(py) => true,
            Err(e) => {
                interpreter.log_exception(py, e, &script);
                false
            }
        });
        if exited {
            break;
        }
    }
    log(server, Level::Info, &format!("service process {} for group '{}' stopping: its scripts returned", std::process::id(), g.name()));
    // mod_wsgi gives no shutdown reason here.
    interp::shut_down("", destroy_python, g.def.spec.shutdown_timeout);
    os::exit_now(EXIT_RECYCLED)
}

pub(super) fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

impl Daemon {
    fn new(group: Arc<RuntimeGroup>, listener: UnixListener) -> Result<Daemon, String> {
        let spec = &group.def.spec;
        listener.set_nonblocking(true).map_err(|e| format!("listener: {e}"))?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| format!("epoll: {e}"))?;
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).map_err(|e| format!("eventfd: {e}"))?;
        epoll.add(&wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE)).map_err(|e| format!("epoll: {e}"))?;
        Ok(Daemon {
            client_uid: group.def.socket_owner(),
            server: group.def.server,
            limits: Limits { max_head: spec.header_buffer_size, ..Limits::default() },
            socket_timeout: spec.socket_timeout.unwrap_or_else(|| server::request_timeout(group.def.server)),
            slots: (0..spec.threads).map(|_| Slot::default()).collect(),
            admission: Admission::new(spec.threads as usize),
            group,
            epoll,
            listener,
            wake,
            idle: Mutex::new(HashMap::new()),
            started: Instant::now(),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            requests: AtomicU64::new(0),
            last_activity: Mutex::new(Instant::now()),
            stopping: AtomicBool::new(false),
            python_open: Mutex::new(true),
            load_failing_since: Mutex::new(None),
            gil_taken: Mutex::new(Instant::now()),
        })
    }

    /// Starts accepting connections: only once every thread runs, so that
    /// a process that fails to start never took a request.
    fn open(&self) -> Result<(), String> {
        self.epoll.add(&self.listener, EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, LISTENER)).map_err(|e| format!("epoll: {e}"))
    }

    pub(super) fn spec(&self) -> &wsgi_core::daemon_options::DaemonSpec {
        &self.group.def.spec
    }

    /// The request threads (returned, to wait for at exit) and the
    /// watchers. The signal handlers only write to a pipe that a watcher
    /// reads: no signal is blocked, so programs the application starts get
    /// a clean signal mask.
    fn start_threads(self: &Arc<Self>) -> std::io::Result<Vec<JoinHandle<()>>> {
        let spec = self.spec();
        let stack = spec.stack_size.unwrap_or(DEFAULT_STACK_SIZE);
        let workers = (0..spec.threads as usize)
            .map(|n| self.spawn(format!("wsgi-worker-{n}"), Some(stack), Some(n), move |d| d.worker(n)))
            .collect::<std::io::Result<Vec<_>>>()?;
        let signals = Signals::new([Signal::SIGTERM, Signal::SIGINT, Signal::SIGUSR1, Signal::SIGHUP].map(|s| s as i32))?;
        self.spawn("wsgi-signals".into(), None, None, move |d| d.watch_signals(signals))?;
        self.spawn("wsgi-monitor".into(), None, None, Daemon::monitor)?;
        if spec.deadlock_timeout.is_some() {
            self.spawn("wsgi-gil-watch".into(), None, None, Daemon::watch_gil)?;
        }
        Ok(workers)
    }

    /// Starts one of the process's threads. A panic in it is a bug: it is
    /// logged (Rust's panic hook writes to the error log), the request it
    /// was running is let go, and the process recycles.
    fn spawn(self: &Arc<Self>, name: String, stack: Option<usize>, worker: Option<usize>, body: impl FnOnce(&Daemon) + Send + 'static) -> std::io::Result<JoinHandle<()>> {
        let d = self.clone();
        let mut builder = std::thread::Builder::new().name(name.clone());
        if let Some(stack) = stack {
            builder = builder.stack_size(stack);
        }
        builder.spawn(move || {
            if catch_unwind(AssertUnwindSafe(|| body(&d))).is_err() {
                d.after_panic(&name, worker);
            }
        })
    }

    /// Stops the process: the threads are told to finish, shutdown
    /// subscribers hear of it, Python is finalised (unless a thread is still
    /// running it for a request) and the process exits. A watchdog bounds
    /// all of it by shutdown-timeout: non-daemon Python threads, atexit
    /// handlers or shutdown subscribers that block cannot keep the slot from
    /// its next process.
    fn finish(&self, reason: Stop, workers: Vec<JoinHandle<()>>, destroy_python: bool) -> ! {
        let code = reason.exit_code();
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.wake.write(1);
        let _watchdog = match self.spec().shutdown_timeout.map(init::ExitWatchdog::arm).transpose() {
            Ok(watchdog) => watchdog,
            Err(_) => os::exit_now(code),
        };
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline && !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
        }
        // The GIL watcher is out of Python for good before shutdown begins.
        *self.python_open.lock().unwrap_or_else(|e| e.into_inner()) = false;
        interp::shut_down(reason.event_name(), destroy_python, None);
        os::exit_now(code)
    }
}
