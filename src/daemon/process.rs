//! One daemon process: it takes on the group's identity (fail-closed),
//! starts Python, and serves requests on worker threads that all wait on one
//! epoll set holding the group's listening socket and every idle pooled
//! connection, so an idle connection never ties up a thread.
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{Gid, Group, Uid, User};
use pyo3::types::PyDictMethods;
use wsgi_core::protocol::{Frame, Limits, RequestHead, PROTOCOL_VERSION};

use super::group::{self, RuntimeGroup};
use super::transport::{Connection, SocketTransport};
use crate::config::GlobalSettings;
use crate::ffi::log::{Level, LogTarget};
use crate::ffi::process as os;
use crate::ffi::server::{self, Server};
use crate::python::{init, interp, tstate};
use crate::wsgi::request as request_io;

/// Exit status of a daemon that could not take on its identity or start
/// Python; the supervisor waits before replacing it. (APR reports an exit
/// status and a killing signal alike, so this is above any signal number.)
pub const EXIT_STARTUP_FAILED: i32 = 100;

/// `name` or `#uid`.
pub fn lookup_user(spec: &str) -> Result<User, String> {
    let found = match spec.strip_prefix('#') {
        Some(id) => User::from_uid(Uid::from_raw(id.parse().map_err(|_| format!("'{spec}' is not a valid #uid"))?)),
        None => User::from_name(spec),
    };
    let user = found.ok().flatten().ok_or_else(|| format!("user '{spec}' does not exist"))?;
    if user.uid.is_root() {
        return Err(format!("user '{spec}' is root; daemon processes are blocked from running as root"));
    }
    Ok(user)
}

/// `name` or `#gid`.
pub fn lookup_group(spec: &str) -> Result<Group, String> {
    let found = match spec.strip_prefix('#') {
        Some(id) => Group::from_gid(Gid::from_raw(id.parse().map_err(|_| format!("'{spec}' is not a valid #gid"))?)),
        None => Group::from_name(spec),
    };
    found.ok().flatten().ok_or_else(|| format!("group '{spec}' does not exist"))
}

fn log(server: Server, level: Level, msg: &str) {
    LogTarget::Server(server).write(level, msg);
}

fn startup_failed(server: Server, msg: &str) -> ! {
    log(server, Level::Crit, msg);
    os::exit_now(EXIT_STARTUP_FAILED)
}

/// Becomes the group's user, fail-closed: any failed step ends the process
/// before it can serve anything.
fn drop_privileges(g: &RuntimeGroup) -> Result<(), String> {
    if !Uid::effective().is_root() {
        return Ok(());
    }
    let gid = Gid::from_raw(g.gid);
    nix::unistd::setgid(gid).map_err(|e| format!("setgid({}) failed: {e}", g.gid))?;
    match &g.supplementary_gids {
        Some(gids) => {
            let gids: Vec<Gid> = std::iter::once(gid).chain(gids.iter().map(|&x| Gid::from_raw(x))).collect();
            nix::unistd::setgroups(&gids).map_err(|e| format!("setgroups failed: {e}"))?;
        }
        None => {
            let user = CString::new(g.user_name.as_str()).map_err(|_| "user name has a NUL".to_string())?;
            nix::unistd::initgroups(&user, gid).map_err(|e| format!("initgroups({}) failed: {e}", g.user_name))?;
        }
    }
    nix::unistd::setuid(Uid::from_raw(g.uid)).map_err(|e| format!("setuid({}) failed: {e}", g.uid))?;
    if Uid::current().as_raw() != g.uid || Uid::effective().as_raw() != g.uid || Gid::current().as_raw() != g.gid {
        return Err("identity did not change as requested".to_string());
    }
    Ok(())
}

/// The process's shared state.
struct Daemon {
    group: Arc<RuntimeGroup>,
    server: Server,
    epoll: Epoll,
    listener: UnixListener,
    wake: EventFd,
    /// Idle connections, parked in the epoll set, by file descriptor.
    idle: Mutex<HashMap<RawFd, Arc<Connection>>>,
    limits: Limits,
    socket_timeout: Option<Duration>,
    apache_uid: u32,
    started: Instant,
    state: Mutex<State>,
    changed: Condvar,
    requests: AtomicU64,
    last_activity: Mutex<Instant>,
    stopping: AtomicBool,
    slots: Vec<Slot>,
    /// Since when the script has failed to load, for startup-timeout.
    load_failing_since: Mutex<Option<Instant>>,
    /// When the GIL was last taken by the deadlock watcher.
    gil_taken: Mutex<Instant>,
}

#[derive(Default)]
struct State {
    /// Why the process is going away, once it is; `deadline` is when it
    /// stops waiting for requests in progress.
    draining: Option<(Stop, Instant)>,
    active: usize,
}

/// What a worker thread is doing, for the request-timeout check.
#[derive(Default)]
struct Slot {
    current: Mutex<Option<(Instant, Arc<Connection>)>>,
}

const LISTENER: u64 = u64::MAX;
const WAKE: u64 = u64::MAX - 1;

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
    if workers.iter().all(|w| w.is_finished()) && settings.destroy_interpreter != Some(false) {
        interp::shut_down(reason.event_name());
    }
    os::exit_now(0)
}

/// Limits, working directory and environment from the group's options.
fn apply_process_settings(g: &RuntimeGroup) {
    let spec = &g.def.spec;
    if let Some(mask) = spec.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    if spec.memory_limit > 0 {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_DATA, spec.memory_limit, spec.memory_limit);
    }
    // As in mod_wsgi: `home=`, else the user's home directory when the
    // daemon runs as another user than Apache's children.
    let (apache_uid, _, _) = crate::ffi::process::apache_identity();
    let home = spec.home.clone().or_else(|| g.user_home.clone().filter(|_| g.uid != apache_uid));
    if let Some(home) = &home {
        let _ = std::env::set_current_dir(home);
    }
    // No other thread exists yet to race on the environment.
    if let Some(user_home) = &g.user_home {
        std::env::set_var("HOME", user_home);
    }
    std::env::set_var("USER", &g.user_name);
    std::env::set_var("LOGNAME", &g.user_name);
    if let Some(lang) = &spec.lang {
        std::env::set_var("LANG", lang);
    }
    if let Some(locale) = &spec.locale {
        std::env::set_var("LC_ALL", locale);
    }
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
    let info = crate::module_record::process_info(&python, g.name(), spec.processes as i32, spec.threads as i32);
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

/// Why a daemon process goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Signal,
    Eviction,
    ScriptReload,
    MaximumRequests,
    RestartInterval,
    InactivityTimeout,
    RequestTimeout,
    StartupTimeout,
}

impl Stop {
    /// For the error log.
    fn describe(self) -> &'static str {
        match self {
            Stop::Signal => "shutdown signal",
            Stop::Eviction => "SIGUSR1: graceful restart",
            Stop::ScriptReload => "script reload",
            Stop::MaximumRequests => "maximum-requests",
            Stop::RestartInterval => "restart-interval",
            Stop::InactivityTimeout => "inactivity-timeout",
            Stop::RequestTimeout => "request-timeout",
            Stop::StartupTimeout => "startup-timeout",
        }
    }

    /// mod_wsgi's `shutdown_reason` for `process_stopping` subscribers.
    fn event_name(self) -> &'static str {
        match self {
            Stop::Signal => "shutdown_signal",
            Stop::Eviction => "graceful_signal",
            Stop::ScriptReload => "script_reload",
            Stop::MaximumRequests => "maximum_requests",
            Stop::RestartInterval => "restart_interval",
            Stop::InactivityTimeout => "inactivity_timeout",
            Stop::RequestTimeout => "request_timeout",
            Stop::StartupTimeout => "startup_timeout",
        }
    }
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// What becomes of a connection after a request.
enum After {
    Keep,
    Close,
    /// The script changed since this process loaded it: the request was not
    /// run, and the process makes way for one with the new code.
    Reload,
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

    fn spec(&self) -> &wsgi_core::daemon_options::DaemonSpec {
        &self.group.def.spec
    }

    /// Stops taking new work; the process exits once requests in progress
    /// finish or `drain` passes, whichever comes first.
    fn begin_drain(&self, reason: Stop, drain: Option<Duration>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.draining.is_none() {
            state.draining = Some((reason, Instant::now() + drain.unwrap_or(Duration::ZERO)));
            let _ = self.epoll.delete(&self.listener);
            self.changed.notify_all();
        }
    }

    fn draining(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).draining.is_some()
    }

    fn wait_until_done(&self) -> Stop {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((reason, deadline)) = state.draining {
                if state.active == 0 || Instant::now() >= deadline {
                    return reason;
                }
                let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(200));
                state = self.changed.wait_timeout(state, wait).unwrap_or_else(|e| e.into_inner()).0;
            } else {
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    fn watch_signals(&self, signals: SigSet) {
        loop {
            match signals.wait() {
                Ok(Signal::SIGUSR1) => {
                    let drain = self.spec().eviction_timeout.or(self.spec().graceful_timeout);
                    self.begin_drain(Stop::Eviction, drain);
                }
                // Apache's parent waits 3 s after SIGTERM before SIGKILL.
                Ok(_) => self.begin_drain(Stop::Signal, Some(self.spec().shutdown_timeout.unwrap_or(Duration::from_secs(2)).min(Duration::from_millis(2500)))),
                Err(_) => return,
            }
        }
    }

    /// Once a second: the timeouts that recycle the process.
    /// Takes the GIL once a second, so the monitor can tell a deadlocked
    /// interpreter; stops before Python is finalised.
    fn watch_gil(&self) {
        while !self.stopping.load(Ordering::SeqCst) {
            tstate::with_gil(|_| ());
            *self.gil_taken.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn monitor(&self) {
        let spec = self.spec();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = Instant::now();
            if let Some(limit) = spec.request_timeout {
                for slot in &self.slots {
                    let stuck = slot.current.lock().unwrap_or_else(|e| e.into_inner()).as_ref().filter(|(start, c)| now - *start > limit && !c.is_broken()).map(|(_, c)| c.clone());
                    if let Some(conn) = stuck {
                        log(self.server, Level::Err, &format!("request in daemon process {} of group '{}' ran longer than request-timeout ({}s); restarting the process", std::process::id(), self.group.name(), limit.as_secs()));
                        conn.fail_with(504);
                        self.begin_drain(Stop::RequestTimeout, spec.graceful_timeout);
                    }
                }
            }
            if spec.deadlock_timeout.is_some_and(|limit| now - *self.gil_taken.lock().unwrap_or_else(|e| e.into_inner()) > limit) {
                log(self.server, Level::Err, &format!("daemon process {} of group '{}' could not take the Python GIL for deadlock-timeout; restarting it", std::process::id(), self.group.name()));
                // The GIL is stuck: nothing in Python can be waited for.
                os::exit_now(0)
            }
            if spec.restart_interval.is_some_and(|limit| now - self.started > limit) {
                self.begin_drain(Stop::RestartInterval, spec.graceful_timeout);
            }
            let failing = *self.load_failing_since.lock().unwrap_or_else(|e| e.into_inner());
            if spec.startup_timeout.zip(failing).is_some_and(|(limit, since)| now - since > limit) {
                log(self.server, Level::Err, &format!("the WSGI script of group '{}' has not loaded within startup-timeout; restarting daemon process {}", self.group.name(), std::process::id()));
                self.begin_drain(Stop::StartupTimeout, None);
            }
            let idle = self.state.lock().unwrap_or_else(|e| e.into_inner()).active == 0;
            if idle && spec.inactivity_timeout.is_some_and(|limit| now - *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) > limit) {
                self.begin_drain(Stop::InactivityTimeout, None);
            }
        }
    }

    fn worker(&self, slot: usize) {
        let mut events = [EpollEvent::empty(); 4];
        while !self.stopping.load(Ordering::SeqCst) {
            let n = match self.epoll.wait(&mut events[..1], 1000u16) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            for event in &events[..n] {
                match event.data() {
                    WAKE => return,
                    LISTENER => self.accept_one(),
                    fd => {
                        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).remove(&(fd as RawFd));
                        if let Some(conn) = conn {
                            if let After::Keep = self.serve_connection(slot, &conn) {
                                self.park(conn);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Takes one connection: a process only accepts while one of its
    /// workers is free to wait, and one at a time, so that the group's
    /// processes share new connections.
    fn accept_one(&self) {
        if let Ok((stream, _)) = self.listener.accept() {
            if let Some(conn) = self.admit(stream) {
                self.park(Arc::new(conn));
            }
        }
        if !self.draining() {
            let _ = self.epoll.modify(&self.listener, &mut EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, LISTENER));
        }
    }

    /// Only Apache's children (or root) may talk to a daemon.
    fn admit(&self, stream: UnixStream) -> Option<Connection> {
        let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).ok()?;
        if peer.uid() != self.apache_uid && peer.uid() != 0 {
            log(self.server, Level::Err, &format!("refused a connection to group '{}' from uid {} (pid {}): only Apache's user may connect", self.group.name(), peer.uid(), peer.pid()));
            return None;
        }
        stream.set_read_timeout(self.socket_timeout).ok()?;
        stream.set_write_timeout(self.socket_timeout).ok()?;
        Connection::new(stream).ok()
    }

    fn park(&self, conn: Arc<Connection>) {
        let fd = conn.stream.as_raw_fd();
        let event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT | EpollFlags::EPOLLRDHUP, fd as u64);
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).insert(fd, conn.clone());
        // SAFETY-free borrow: the fd stays open while the connection is in `idle`.
        let borrowed: BorrowedFd<'_> = conn.stream.as_fd();
        let registered = if conn.registered.swap(true, Ordering::SeqCst) {
            self.epoll.modify(borrowed, &mut event.clone())
        } else {
            self.epoll.add(borrowed, event)
        };
        if registered.is_err() {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).remove(&fd);
        }
    }

    fn serve_connection(&self, slot: usize, conn: &Arc<Connection>) -> After {
        let frame = conn.read_frame(&self.limits);
        if !conn.authenticated.load(Ordering::SeqCst) {
            return match frame {
                Ok(Frame::Hello { version, secret }) if version == PROTOCOL_VERSION && constant_time_eq(&secret, &self.group.secret) => {
                    conn.authenticated.store(true, Ordering::SeqCst);
                    // The answer tells the child a live daemon of the group
                    // took the connection (not just the socket's backlog).
                    match conn.send(&Frame::Hello { version: PROTOCOL_VERSION, secret: self.group.secret }) {
                        Ok(()) => After::Keep,
                        Err(_) => After::Close,
                    }
                }
                Ok(_) => {
                    log(self.server, Level::Err, &format!("refused a connection to group '{}': it did not authenticate", self.group.name()));
                    After::Close
                }
                Err(_) => After::Close,
            };
        }
        match frame {
            Ok(Frame::Request(head)) => self.serve_request(slot, conn, head),
            Ok(other) => {
                log(self.server, Level::Err, &format!("protocol error on a connection to group '{}': unexpected {other:?}", self.group.name()));
                After::Close
            }
            Err(_) => After::Close,
        }
    }

    fn serve_request(&self, slot: usize, conn: &Arc<Connection>, head: RequestHead) -> After {
        let spec = self.spec();
        if self.draining() {
            let _ = conn.send(&Frame::Restart);
            return After::Close;
        }
        let waited_us = now_us() - head.request_start_us;
        if spec.queue_timeout.is_some_and(|limit| waited_us > limit.as_micros() as i64) {
            log(self.server, Level::Err, &format!("request for {} waited {:.1}s for group '{}', over queue-timeout; answering 504", head.script, waited_us as f64 / 1e6, self.group.name()));
            let _ = conn.send(&Frame::Error { status: 504 });
            return After::Close;
        }
        let interp = interp::for_group("").expect("created at start-up");
        self.state.lock().unwrap_or_else(|e| e.into_inner()).active += 1;
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        *self.slots[slot].current.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), conn.clone()));
        let daemon_start = now_us() as f64 / 1e6;

        let after = tstate::with_gil(|py| {
            if head.reloading && interp.script_changed(py, &head.script, head.script_mtime) {
                return After::Reload;
            }
            let _current = request_io::install(Box::new(SocketTransport::new(conn.clone(), LogTarget::Server(self.server), self.limits)));
            let result = interp.environ(py, &head.environ, head.request_start_us as f64 / 1e6, slot as u64 + 1).and_then(|env| {
                env.set_item("mod_wsgi.queue_start", head.request_start_us as f64 / 1e6)?;
                env.set_item("mod_wsgi.daemon_start", daemon_start)?;
                interp.handle(py, &head.script, head.script_mtime, false, &head.callable, env)
            });
            let outcome = request_io::outcome();
            match result {
                Ok(()) => {
                    *self.load_failing_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    After::Keep
                }
                Err(_) if outcome.client_gone => After::Close,
                Err(err) => {
                    let status = interp.log_exception(py, err, &head.script);
                    let mut since = self.load_failing_since.lock().unwrap_or_else(|e| e.into_inner());
                    *since = if interp.is_loaded(py, &head.script) { None } else { since.or(Some(Instant::now())) };
                    drop(since);
                    if outcome.headers_sent {
                        request_io::abort_response();
                        After::Keep
                    } else {
                        match conn.send(&Frame::Error { status }) {
                            Ok(()) => After::Keep,
                            Err(_) => After::Close,
                        }
                    }
                }
            }
        });

        *self.slots[slot].current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.active -= 1;
            self.changed.notify_all();
        }
        let served = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if spec.maximum_requests > 0 && served >= spec.maximum_requests {
            self.begin_drain(Stop::MaximumRequests, spec.graceful_timeout);
        }
        if let After::Reload = after {
            log(self.server, Level::Info, &format!("{} changed; restarting daemon process {} of group '{}'", head.script, std::process::id(), self.group.name()));
            let _ = conn.send(&Frame::Restart);
            self.begin_drain(Stop::ScriptReload, spec.graceful_timeout);
            return After::Close;
        }
        if conn.is_broken() {
            After::Close
        } else {
            after
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

