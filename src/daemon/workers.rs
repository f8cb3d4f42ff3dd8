//! A daemon's worker threads: they all wait on one epoll set holding the
//! group's listening socket and every idle pooled connection, take a
//! connection when it has a frame, and run its request in Python.
//!
//! Until a connection has completed the handshake it costs no thread: its
//! frames are gathered without blocking, it must finish within
//! `HANDSHAKE_DEADLINE`, and only `MAX_UNAUTHENTICATED` may wait at once.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::epoll::{EpollEvent, EpollFlags};
use pyo3::types::PyDictMethods;
use wsgi_core::protocol::{Frame, RequestHead};

use super::conn::{lock, Connection, Handshake};
use super::group::size_socket_buffers;
use super::lifecycle::Stop;
use super::process::{log, now_us, Daemon, LISTENER, WAKE};
use super::transport::SocketTransport;
use crate::ffi::log::{Level, LogTarget};
use crate::python::interp;
use crate::wsgi::request as request_io;

/// What becomes of a connection after a request.
enum After {
    Keep,
    Close,
    /// The script changed since this process loaded it: the request was not
    /// run, and the process makes way for one with the new code.
    Reload,
}

/// How long a new connection has to complete the handshake.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(2);
/// How many connections may wait to complete the handshake at once; a new
/// one beyond that closes the oldest.
const MAX_UNAUTHENTICATED: usize = 32;
/// How long accepting stops after running out of file descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_secs(1);
/// How often a worker looks for overdue handshakes and a pause that ended.
const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(250);
/// After a refused peer is logged, further refusals within this time are
/// logged at debug level only.
const REFUSALS_QUIET: Duration = Duration::from_secs(60);

/// The state of taking new connections.
pub(super) struct Admission {
    /// The most connections the process keeps, in use or idle; a new one
    /// beyond that closes the least recently used idle one.
    max_connections: usize,
    /// Until when accepting is paused for lack of file descriptors.
    paused_until: Mutex<Option<Instant>>,
    /// Whether the shortage was logged (once until an accept succeeds).
    short_of_fds: AtomicBool,
    next_housekeeping: Mutex<Instant>,
    /// When a refusal was last logged as a warning, and how many went to
    /// debug level since.
    refusals: Mutex<(Option<Instant>, usize)>,
}

impl Admission {
    pub(super) fn new(threads: usize) -> Admission {
        use nix::sys::resource::{getrlimit, Resource};
        // One descriptor per connection; leave half of them to the application.
        let fds = getrlimit(Resource::RLIMIT_NOFILE).map(|(soft, _)| soft).unwrap_or(1024);
        let max_connections = usize::try_from(fds / 2).unwrap_or(usize::MAX).max(threads + MAX_UNAUTHENTICATED);
        Admission {
            max_connections,
            paused_until: Mutex::new(None),
            short_of_fds: AtomicBool::new(false),
            next_housekeeping: Mutex::new(Instant::now()),
            refusals: Mutex::new((None, 0)),
        }
    }
}

/// Listens again on the group's socket, now as the group's user. A
/// client's SO_PEERCRED names whoever last called listen() on the socket
/// (until now Apache's parent, as root), and Apache's children check that
/// it is the group's user.
pub(super) fn claim_listener(listener: &UnixListener, backlog: u32) -> Result<(), String> {
    let backlog = nix::sys::socket::Backlog::new(backlog.min(i32::MAX as u32) as i32).map_err(|e| format!("listen-backlog: {e}"))?;
    nix::sys::socket::listen(listener, backlog).map_err(|e| format!("cannot listen on the group's socket as its user: {e}"))
}

fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

impl Daemon {
    pub(super) fn worker(&self, slot: usize) {
        let mut events = [EpollEvent::empty(); 4];
        while !self.stopping.load(Ordering::SeqCst) {
            self.housekeeping();
            let n = match self.epoll.wait(&mut events[..1], 1000u16) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            for event in &events[..n] {
                match event.data() {
                    WAKE => {
                        self.turn_away_idle();
                        return;
                    }
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
        match self.listener.accept() {
            Ok((stream, _)) => {
                self.admission.short_of_fds.store(false, Ordering::SeqCst);
                if let Some(conn) = self.admit(stream) {
                    self.make_room();
                    self.park(Arc::new(conn));
                }
            }
            // The connection stays queued and the listener readable:
            // re-arming now would spin. Housekeeping re-arms it later.
            Err(e) if out_of_descriptors(&e) => return self.pause_accepting(&e),
            Err(_) => {}
        }
        self.arm_listener();
    }

    fn arm_listener(&self) {
        if !self.draining() {
            let _ = self.epoll.modify(&self.listener, &mut EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, LISTENER));
        }
    }

    fn pause_accepting(&self, e: &std::io::Error) {
        *lock(&self.admission.paused_until) = Some(Instant::now() + ACCEPT_PAUSE);
        if !self.admission.short_of_fds.swap(true, Ordering::SeqCst) {
            log(self.server, Level::Err, &format!("daemon process {} of group '{}' cannot accept connections: {e}; retrying every {}s (logged once until it recovers)", std::process::id(), self.group.name(), ACCEPT_PAUSE.as_secs()));
        }
    }

    /// Closes connections that did not complete the handshake in time, and
    /// resumes accepting after a pause; run by whichever worker comes by.
    fn housekeeping(&self) {
        let now = Instant::now();
        {
            let mut next = lock(&self.admission.next_housekeeping);
            if now < *next {
                return;
            }
            *next = now + HOUSEKEEPING_EVERY;
        }
        let mut overdue = Vec::new();
        lock(&self.idle).retain(|_, c| {
            let keep = c.is_authenticated() || now - c.accepted <= HANDSHAKE_DEADLINE;
            if !keep {
                overdue.push(c.clone());
            }
            keep
        });
        if !overdue.is_empty() {
            log(self.server, Level::Debug, &format!("closed {} connection(s) to group '{}' that did not complete the handshake within {}s", overdue.len(), self.group.name(), HANDSHAKE_DEADLINE.as_secs()));
        }
        let resume = {
            let mut paused = lock(&self.admission.paused_until);
            let over = paused.is_some_and(|until| now >= until);
            if over {
                *paused = None;
            }
            over
        };
        if resume {
            self.arm_listener();
        }
    }

    /// Keeps a new connection within the caps: the oldest connection still
    /// in its handshake goes when too many are, and the least recently used
    /// idle one when the process has too many in all.
    fn make_room(&self) {
        let mut idle = lock(&self.idle);
        let mut closing = Vec::new();
        let waiting = idle.values().filter(|c| !c.is_authenticated()).count();
        if waiting >= MAX_UNAUTHENTICATED {
            let oldest = idle.iter().filter(|(_, c)| !c.is_authenticated()).min_by_key(|(_, c)| c.accepted).map(|(fd, _)| *fd);
            closing.extend(oldest.and_then(|fd| idle.remove(&fd)));
        }
        if idle.len() + self.spec().threads as usize >= self.admission.max_connections {
            let least_used = idle.iter().min_by_key(|(_, c)| c.idle_since()).map(|(fd, _)| *fd);
            closing.extend(least_used.and_then(|fd| idle.remove(&fd)));
        }
        drop(idle);
        if !closing.is_empty() {
            log(self.server, Level::Debug, &format!("group '{}' has too many connections; closed {} to make room", self.group.name(), closing.len()));
        }
    }

    /// Logs a refused peer: as a warning, then at debug level for a while,
    /// so a peer that keeps trying cannot flood the log.
    fn refused(&self, msg: &str) {
        let now = Instant::now();
        let mut refusals = lock(&self.admission.refusals);
        let (last_warned, quiet) = &mut *refusals;
        if last_warned.is_some_and(|at| now - at < REFUSALS_QUIET) {
            *quiet += 1;
            drop(refusals);
            log(self.server, Level::Debug, msg);
            return;
        }
        let since = if *quiet > 0 { format!("; {quiet} more were logged at debug level before this one") } else { String::new() };
        *last_warned = Some(now);
        *quiet = 0;
        drop(refusals);
        log(self.server, Level::Warning, &format!("{msg}{since} (refusals in the next {}s are logged at debug level)", REFUSALS_QUIET.as_secs()));
    }

    /// Advances a new connection's handshake with what has arrived. The
    /// daemon's answer to Hello also tells the child that a live daemon of
    /// the group took the connection, not just the socket's backlog.
    fn continue_handshake(&self, conn: &Connection) -> After {
        match conn.continue_handshake(self.group.secret.bytes(), self.group.name()) {
            // Parked: a Request already sent behind the proof wakes a
            // worker at once.
            Handshake::Authenticated => After::Keep,
            Handshake::Waiting if conn.accepted.elapsed() <= HANDSHAKE_DEADLINE => After::Keep,
            Handshake::Waiting | Handshake::Gone => After::Close,
            Handshake::Refused(why) => {
                self.refused(&format!("refused a connection to group '{}' from pid {}: it did not authenticate: {why}", self.group.name(), conn.peer_pid));
                After::Close
            }
        }
    }

    /// Only Apache's children (or root) may talk to a daemon: the user the
    /// socket belongs to.
    fn admit(&self, stream: UnixStream) -> Option<Connection> {
        let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).ok()?;
        if peer.uid() != self.client_uid && peer.uid() != 0 {
            self.refused(&format!("refused a connection to group '{}' from uid {} (pid {}): only the socket's owner, uid {}, may connect", self.group.name(), peer.uid(), peer.pid(), self.client_uid));
            return None;
        }
        let spec = self.spec();
        size_socket_buffers(&stream, spec.send_buffer_size, spec.receive_buffer_size);
        let timeout = self.socket_timeout.max(Duration::from_millis(1));
        stream.set_write_timeout(Some(timeout)).ok()?;
        Connection::new(stream, peer.pid() as u32, timeout).ok()
    }

    /// The process is stopping: no worker reads the idle connections again.
    fn turn_away_idle(&self) {
        let idle: Vec<_> = self.idle.lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, conn)| conn).collect();
        idle.iter().for_each(|conn| conn.turn_away());
    }

    fn park(&self, conn: Arc<Connection>) {
        let fd = conn.stream.as_raw_fd();
        let event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT | EpollFlags::EPOLLRDHUP, fd as u64);
        conn.mark_idle();
        {
            // `stopping` is set before the workers are woken to turn the
            // idle connections away; checked under the lock, no connection
            // parked after that is missed.
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if self.stopping.load(Ordering::SeqCst) {
                drop(idle);
                conn.turn_away();
                return;
            }
            idle.insert(fd, conn.clone());
        }
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
        if !conn.is_authenticated() {
            return self.continue_handshake(conn);
        }
        match conn.read_frame(&self.limits) {
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
        let interp = match interp::for_group(&head.application_group) {
            Ok(interp) => interp,
            Err(msg) => {
                log(self.server, Level::Err, &format!("{msg}; cannot run {}", head.script));
                let _ = conn.send(&Frame::Error { status: 500 });
                return After::Close;
            }
        };
        self.state.lock().unwrap_or_else(|e| e.into_inner()).active += 1;
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        conn.start_reply();
        *self.slots[slot].current.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), conn.clone()));
        let daemon_start = now_us() as f64 / 1e6;

        // The script's age as this process sees it, not as the child saw it:
        // a request stat'ed before a touch must not restart a process that
        // already runs the new code.
        let mtime = interp::file_mtime(&head.script);
        let after = interp.enter(|py| {
            if head.reloading && interp.script_changed(py, &head.script, mtime, head.environ_value("SCRIPT_FILENAME")) {
                return After::Reload;
            }
            let _current = request_io::install(Box::new(SocketTransport::new(conn.clone(), LogTarget::Server(self.server), self.limits)));
            let result = interp.environ(py, &head.environ, head.request_start_us as f64 / 1e6, slot as u64 + 1).and_then(|env| {
                env.set_item("mod_wsgi.queue_start", head.request_start_us as f64 / 1e6)?;
                env.set_item("mod_wsgi.daemon_start", daemon_start)?;
                interp.handle(py, &head.script, mtime, false, &head.callable, env)
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
                        // Refused (and logged) if the response was already
                        // complete, e.g. when only close() raised: it stands.
                        request_io::abort_response(py);
                        After::Keep
                    } else {
                        match conn.answer_error(status) {
                            Ok(()) => After::Keep,
                            Err(_) => After::Close,
                        }
                    }
                }
            }
        });
        // The app's call, its iterable's close() included, has returned:
        // only now may the response end, so nothing can follow End.
        let after = match after {
            After::Keep if conn.finish_reply().is_err() => After::Close,
            other => other,
        };

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
            let _ = conn.send(&Frame::Restart);
            if self.begin_drain(Stop::ScriptReload, spec.graceful_timeout) {
                log(self.server, Level::Info, &format!("{} changed; restarting daemon process {} of group '{}'", head.script, std::process::id(), self.group.name()));
            }
            return After::Close;
        }
        if conn.is_broken() {
            After::Close
        } else {
            after
        }
    }
}

