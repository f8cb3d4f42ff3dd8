//! One daemon process: it takes on the group's identity (fail-closed),
//! starts Python, runs its worker threads (`workers`) and watchers
//! (`lifecycle`), and exits once it has drained.
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::signal::{SigSet, Signal};
use wsgi_core::protocol::Limits;

use super::conn::Connection;
use super::group::{self, RuntimeGroup};
use super::identity::{apply_process_settings, drop_privileges};
use super::lifecycle::{Slot, State};
use crate::config::GlobalSettings;
use crate::ffi::log::{Level, LogTarget};
use crate::ffi::process as os;
use crate::ffi::server::{self, Server};
use crate::python::{init, interp, tstate};

/// Exit status of a daemon that could not take on its identity or start
/// Python; the supervisor waits before replacing it. (APR reports an exit
/// status and a killing signal alike, so this is above any signal number.)
pub const EXIT_STARTUP_FAILED: i32 = 100;

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
    pub(super) socket_timeout: Option<Duration>,
    pub(super) apache_uid: u32,
    pub(super) started: Instant,
    pub(super) state: Mutex<State>,
    pub(super) changed: Condvar,
    pub(super) requests: AtomicU64,
    pub(super) last_activity: Mutex<Instant>,
    pub(super) stopping: AtomicBool,
    pub(super) slots: Vec<Slot>,
    /// Since when the script has failed to load, for startup-timeout.
    pub(super) load_failing_since: Mutex<Option<Instant>>,
    /// When the GIL was last taken by the deadlock watcher.
    pub(super) gil_taken: Mutex<Instant>,
}

pub(super) const LISTENER: u64 = u64::MAX;
pub(super) const WAKE: u64 = u64::MAX - 1;

/// Runs the daemon process; never returns.
pub fn run(g: Arc<RuntimeGroup>, listener: UnixListener, settings: &GlobalSettings, startup_delay: Duration) -> ! {
    let spec = &g.def.spec;
    let server = g.def.server;
    crate::ffi::process::close_listeners();
    let parent = nix::unistd::getppid();
    group::retain_only(g.name());
    // A replacement for a daemon that failed to start waits first, so a
    // broken configuration does not spin.
    std::thread::sleep(startup_delay);
    os::limit_malloc_arenas(2);
    // Signals are taken by one thread with sigwait; every thread inherits the mask.
    let signals = SigSet::from_iter([Signal::SIGTERM, Signal::SIGINT, Signal::SIGUSR1, Signal::SIGHUP]);
    let _ = signals.thread_block();
    let _ = os::ignore_sigpipe();

    if let Err(msg) = drop_privileges(&g) {
        startup_failed(server, &format!("daemon process for group '{}' not started: {msg}", g.name()));
    }
    // Set after the identity change, which clears it; then make sure the
    // parent did not already go in between.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    if nix::unistd::getppid() != parent {
        os::exit_now(0)
    }
    // Named only once it is no longer root: a process shown as a daemon is
    // never one running with the parent's privileges.
    if let Some(title) = spec.process_title(g.name()) {
        crate::ffi::process::set_process_title(server, &title);
    }
    apply_process_settings(&g);
    if let Err(msg) = start_python(&g, settings) {
        startup_failed(server, &format!("daemon process for group '{}' {msg}", g.name()));
    }

    let daemon = match Daemon::new(g.clone(), listener) {
        Ok(d) => Arc::new(d),
        Err(e) => startup_failed(server, &format!("daemon process for group '{}': {e}", g.name())),
    };
    log(server, Level::Info, &format!("daemon process {} for group '{}' started ({} threads)", std::process::id(), g.name(), spec.threads));

    let mut workers = Vec::new();
    for n in 0..spec.threads as usize {
        let d = daemon.clone();
        workers.push(std::thread::spawn(move || d.worker(n)));
    }
    {
        let d = daemon.clone();
        std::thread::spawn(move || d.watch_signals(signals));
        let d = daemon.clone();
        std::thread::spawn(move || d.monitor());
        if spec.deadlock_timeout.is_some() {
            let d = daemon.clone();
            std::thread::spawn(move || d.watch_gil());
        }
    }
    let reason = daemon.wait_until_done();
    log(server, Level::Info, &format!("daemon process {} for group '{}' stopping ({})", std::process::id(), g.name(), reason.describe()));
    daemon.stopping.store(true, Ordering::SeqCst);
    let _ = daemon.wake.write(1);
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline && !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Subscribers hear of the exit even under WSGIDestroyInterpreter Off;
    // Python is not finalised under a worker still running it.
    interp::shut_down(reason.event_name(), settings.destroy_interpreter != Some(false), spec.shutdown_timeout);
    os::exit_now(0)
}

/// Python with the group's home and path (falling back to the server-wide
/// settings), the adapter, and the preloaded scripts.
fn start_python(g: &RuntimeGroup, settings: &GlobalSettings) -> Result<(), String> {
    let spec = &g.def.spec;
    let mut python = settings.clone();
    if spec.python_home.is_some() {
        python.home = spec.python_home.clone();
    }
    python.path = spec.home.iter().cloned().chain(spec.python_path.iter().cloned()).collect();
    python.switch_interval = spec.switch_interval.or(settings.switch_interval);
    python.python_eggs = spec.python_eggs.clone().or(settings.python_eggs.clone());
    init::start(&python).map_err(|msg| format!("cannot initialise Python: {msg}"))?;
    let info = interp::ProcessInfo {
        // As in mod_wsgi: a process that serves exactly one request.
        run_once: spec.threads == 1 && spec.maximum_requests == 1,
        ..crate::module_record::process_info(&python, g.name(), spec.processes as i32, spec.threads as i32)
    };
    tstate::with_gil(|py| {
        interp::create_main(py, &info).map_err(|e| format!("cannot set up the WSGI adapter: {e}"))?;
        let main = interp::for_group("").expect("just created");
        for script in &g.preload {
            if let Err(e) = main.preload(py, script) {
                main.log_exception(py, e, script);
            }
        }
        Ok(())
    })
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
        epoll.add(&listener, EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, LISTENER)).map_err(|e| format!("epoll: {e}"))?;
        epoll.add(&wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE)).map_err(|e| format!("epoll: {e}"))?;
        let (apache_uid, _, _) = crate::ffi::process::apache_identity();
        Ok(Daemon {
            server: group.def.server,
            limits: Limits { max_head: spec.header_buffer_size, ..Limits::default() },
            socket_timeout: spec.socket_timeout.or(Some(server::request_timeout(group.def.server))),
            slots: (0..spec.threads).map(|_| Slot::default()).collect(),
            group,
            epoll,
            listener,
            wake,
            idle: Mutex::new(HashMap::new()),
            apache_uid,
            started: Instant::now(),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            requests: AtomicU64::new(0),
            last_activity: Mutex::new(Instant::now()),
            stopping: AtomicBool::new(false),
            load_failing_since: Mutex::new(None),
            gil_taken: Mutex::new(Instant::now()),
        })
    }

    pub(super) fn spec(&self) -> &wsgi_core::daemon_options::DaemonSpec {
        &self.group.def.spec
    }
}
