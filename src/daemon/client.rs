//! The Apache child's side of daemon mode: it hands a request to the
//! group's daemons over a pooled, authenticated connection, answers the
//! daemon's body reads from the client, and streams the response back,
//! flushing every chunk and holding it to the framing its head declares.
//!
//! A request that may have reached a daemon is never sent again: it may
//! have run. A pooled connection is checked before anything is sent on it;
//! after that only an explicit `Restart` ("not run"), or a connection that
//! provably died before the daemon read the request, lets the request go to
//! another process, and the latter only for a GET, HEAD or OPTIONS without
//! a body (see docs/daemon-mode.md).
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wsgi_core::deadline::DeadlineReader;
use wsgi_core::handshake::ChildHandshake;
use wsgi_core::protocol::{self, Frame, Limits, ProtocolError, RequestHead};
use wsgi_core::relay::{self, BodyLimit};

use super::conn::{waiting, Waiting};
use super::group::{size_socket_buffers, RuntimeGroup};
use crate::cgi::head::apply_head;
use crate::ffi::log::{self, Level};
use crate::ffi::request::{Brigade, ClientGone, Request};
use crate::ffi::sys;

/// Idle connections by group and process slot, reused across requests in
/// this child.
static POOL: Mutex<Option<HashMap<String, Vec<Vec<UnixStream>>>>> = Mutex::new(None);
/// Idle connections kept per group and child.
const MAX_IDLE: usize = 32;
/// How much of the body one `Read` may ask for at a time.
const READ_CHUNK: usize = 64 * 1024;
/// The buffer response frames are read through (large Data frames bypass it).
const RESPONSE_BUFFER: usize = 8 * 1024;

/// The process slot the next request of this child goes to first: the
/// slots take turns, whatever connections the pool holds, so that every
/// process of the group gets its share (a pool used last-in first-out
/// would keep sending to the processes it happens to hold connections to).
fn next_slot(g: &RuntimeGroup) -> usize {
    g.next_slot.fetch_add(1, Ordering::Relaxed).wrapping_add(std::process::id() as usize) % g.socket_paths.len()
}

/// An idle connection to `slot` that is still in step. One whose daemon
/// went away is dropped before anything is sent on it (so no request is
/// lost with it), as is one with bytes waiting that no request asked for.
fn checkout(g: &RuntimeGroup, slot: usize, req: Request) -> Option<UnixStream> {
    loop {
        let conn = POOL.lock().unwrap_or_else(|e| e.into_inner()).as_mut()?.get_mut(g.name())?.get_mut(slot)?.pop()?;
        match waiting(&conn) {
            Waiting::Nothing => return Some(conn),
            Waiting::Closed => {}
            Waiting::Bytes => log::request(&req, Level::Warning, &format!("a pooled connection to daemon process group '{}' had bytes waiting that no request asked for; dropped it", g.name())),
        }
    }
}

fn checkin(g: &RuntimeGroup, slot: usize, conn: UnixStream) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let slots = pool.get_or_insert_with(HashMap::new).entry(g.name().to_string()).or_insert_with(|| (0..g.socket_paths.len()).map(|_| Vec::new()).collect());
    if slots.iter().map(Vec::len).sum::<usize>() < MAX_IDLE {
        slots[slot].push(conn);
    }
}

/// How long a process slot may take to answer a new connection before the
/// next slot is tried as well (it is restarting, or all its threads are
/// busy). The first connection stays open and whichever daemon answers
/// first gets the request, so a request leaves at most one unanswered
/// connection queued per slot.
const SLOT_PATIENCE: Duration = Duration::from_millis(500);
/// The pauses before trying again while no slot would take a connection.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(250);

/// A new connection to one process slot, waiting for its daemon's answer.
struct Opening {
    stream: UnixStream,
    slot: usize,
    /// Who holds the socket (SO_PEERCRED), for messages.
    daemon_pid: i32,
    handshake: ChildHandshake,
    /// The socket file connected to, to notice when a restart replaces it.
    socket_file: Option<(u64, u64)>,
}

/// A socket file's device and inode.
fn file_id(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Why an attempt gave no connection.
enum Failure {
    /// Worth trying again: the daemon is starting, restarting or busy.
    Retry(String),
    /// Trying again will not help, or must not be done.
    Fatal(String),
}

/// Connects and authenticates. Connects never block: they go round the
/// group's process slots, retrying while none can take a connection (its
/// listen-backlog is full, its daemon is starting), until `deadline`. Only
/// a daemon's answer to our Hello counts: a socket whose daemon cannot
/// start still queues connections. With connect-timeout=0 there is a
/// single attempt, as in mod_wsgi, whose daemon then has socket-timeout to
/// answer.
fn connect(g: &RuntimeGroup, first: usize, deadline: Instant, timeout: Duration) -> std::io::Result<(UnixStream, usize)> {
    let single = g.def.spec.connect_timeout.is_zero();
    let answer_by = if single { Instant::now() + timeout } else { deadline };
    let slots = g.socket_paths.len();
    let mut tried = 0;
    let mut opening: Vec<Opening> = Vec::new();
    let mut next_try = Instant::now();
    let mut pause = FIRST_PAUSE;
    let mut last = String::from("no daemon process answered");
    loop {
        let now = Instant::now();
        if now >= next_try && opening.len() < slots && !(single && tried > 0) {
            // One round over the slots not already waiting, up to the
            // first that takes the connection.
            let mut connected = false;
            for _ in 0..slots {
                let slot = (first + tried) % slots;
                tried += 1;
                if opening.iter().any(|o| o.slot == slot) {
                    continue;
                }
                match open(g, slot, timeout) {
                    Ok(o) => {
                        opening.push(o);
                        connected = true;
                        break;
                    }
                    Err(Failure::Retry(why)) => last = why,
                    Err(Failure::Fatal(why)) => return Err(std::io::Error::other(why)),
                }
                if single {
                    break;
                }
            }
            next_try = now + if connected { SLOT_PATIENCE } else { backoff(&mut pause) };
        }
        let now = Instant::now();
        if opening.is_empty() {
            if single || next_try >= deadline {
                return Err(gave_up(g, single, &last));
            }
            std::thread::sleep(next_try - now);
            continue;
        }
        if now >= answer_by {
            return Err(gave_up(g, single, "no daemon process answered"));
        }
        let more_to_try = !single && opening.len() < slots;
        let until = if more_to_try { next_try.min(answer_by) } else { answer_by };
        // Wake now and then to look for replaced sockets (below).
        let mut lost = false;
        for i in answered(&opening, until.min(now + SLOT_PATIENCE) - now).into_iter().rev() {
            // Highest index first: swap_remove only moves later entries.
            let o = opening.swap_remove(i);
            let slot = o.slot;
            match finish(g, o, answer_by, timeout) {
                Ok(stream) => return Ok((stream, slot)),
                Err(Failure::Retry(why)) => {
                    last = why;
                    lost = true;
                }
                Err(Failure::Fatal(why)) => return Err(std::io::Error::other(why)),
            }
        }
        // A restart puts new sockets at the paths; a connection queued at
        // the old one would only wait for a daemon that is going away.
        let waiting = opening.len();
        opening.retain(|o| file_id(&g.socket_paths[o.slot]) == o.socket_file);
        if opening.len() < waiting {
            last = "Apache restarted and replaced the group's sockets".into();
            lost = true;
        }
        // Connect again to a slot that lost its connection, soon.
        if lost {
            next_try = next_try.min(Instant::now() + backoff(&mut pause));
        }
    }
}

/// The next pause before trying again, growing up to LONGEST_PAUSE.
fn backoff(pause: &mut Duration) -> Duration {
    let wait = *pause;
    *pause = (wait * 2).min(LONGEST_PAUSE);
    wait
}

fn gave_up(g: &RuntimeGroup, single: bool, why: &str) -> std::io::Error {
    let how = if single { "in its one attempt (connect-timeout=0)".to_string() } else { format!("within connect-timeout ({}s)", g.def.spec.connect_timeout.as_secs()) };
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no daemon process took the connection {how}: {why}"))
}

/// Starts a connection to `slot`'s socket without blocking, checks who
/// holds the socket, and sends Hello.
fn open(g: &RuntimeGroup, slot: usize, timeout: Duration) -> Result<Opening, Failure> {
    use nix::errno::Errno;
    use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
    let path = &g.socket_paths[slot];
    let fatal = |e: &dyn std::fmt::Display| Failure::Fatal(format!("cannot connect to {path}: {e}"));
    let fd = socket::socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None).map_err(|e| fatal(&e))?;
    let spec = &g.def.spec;
    size_socket_buffers(&fd, spec.receive_buffer_size, spec.send_buffer_size);
    let addr = UnixAddr::new(path.as_str()).map_err(|e| fatal(&e))?;
    match socket::connect(fd.as_raw_fd(), &addr) {
        Ok(()) => {}
        // The backlog is full: the process's threads are all busy.
        Err(Errno::EAGAIN) => return Err(Failure::Retry(format!("the listen-backlog of {path} is full"))),
        Err(Errno::ECONNREFUSED) => return Err(Failure::Retry(format!("nothing listens on {path}"))),
        Err(Errno::EINTR) => return Err(Failure::Retry(format!("connecting to {path} was interrupted"))),
        Err(Errno::ENOENT) if g.stable_sockets => return Err(Failure::Retry(format!("{path} does not exist (yet)"))),
        Err(Errno::ENOENT) => {
            return Err(Failure::Fatal(format!(
                "{path} no longer exists: Apache has restarted since this child started, and the group's daemons listen on new sockets"
            )))
        }
        Err(e) => return Err(fatal(&e)),
    }
    let socket_file = file_id(path);
    let stream = UnixStream::from(fd);
    // Whoever last called listen() on the socket: the daemon, once it runs
    // as the group's user, and Apache's parent (root, which could read the
    // secret anyway) before that.
    let peer = socket::getsockopt(&stream, sockopt::PeerCredentials).map_err(|e| fatal(&e))?;
    if peer.uid() != g.uid && peer.uid() != 0 {
        return Err(Failure::Fatal(format!(
            "refused the daemon socket {path}: it is held by uid {} (pid {}), not by the group's user '{}' (uid {})",
            peer.uid(),
            peer.pid(),
            g.user_name,
            g.uid
        )));
    }
    stream.set_nonblocking(false).map_err(|e| fatal(&e))?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| fatal(&e))?;
    let handshake = ChildHandshake::new(std::process::id()).map_err(|e| fatal(&e))?;
    protocol::write_frame(&mut &stream, &handshake.hello()).map_err(|e| Failure::Retry(format!("{path}: {e}")))?;
    Ok(Opening { stream, slot, daemon_pid: peer.pid(), handshake, socket_file })
}

/// The indexes of the connections whose daemons answered (or hung up)
/// within `wait`.
fn answered(opening: &[Opening], wait: Duration) -> Vec<usize> {
    use nix::poll::{poll, PollFd, PollFlags};
    let mut fds: Vec<PollFd> = opening.iter().map(|o| PollFd::new(o.stream.as_fd(), PollFlags::POLLIN)).collect();
    // Rounded up, so the wait never ends early and spins.
    let ms = u16::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
    match poll(&mut fds, ms) {
        Ok(n) if n > 0 => fds.iter().enumerate().filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty())).map(|(i, _)| i).collect(),
        _ => Vec::new(),
    }
}

/// Reads the daemon's answer to Hello and checks its proof; only then
/// sends ours, so the first Request can follow it at once.
fn finish(g: &RuntimeGroup, o: Opening, answer_by: Instant, timeout: Duration) -> Result<UnixStream, Failure> {
    let path = &g.socket_paths[o.slot];
    let answer = match protocol::read_frame(&mut DeadlineReader::new(&o.stream, answer_by), &Limits::handshake()) {
        Ok(frame) => frame,
        Err(e) if e.is_timeout() => return Err(Failure::Retry("no daemon process answered".into())),
        // A daemon drops a new connection it has no room for.
        Err(ProtocolError::Closed | ProtocolError::Io(_)) => return Err(Failure::Retry(format!("the daemon process on {path} closed the new connection"))),
        Err(e) => return Err(Failure::Fatal(format!("the daemon process on {path} (pid {}) broke the handshake: {e}", o.daemon_pid))),
    };
    let proof = o.handshake.answer(g.secret.bytes(), g.name(), answer).map_err(|e| {
        Failure::Fatal(format!("refused the process holding {path} (pid {}) as a daemon of the group: {e}; nothing was sent to it", o.daemon_pid))
    })?;
    let stream = o.stream;
    let settle = |e: std::io::Error| Failure::Retry(format!("{path}: {e}"));
    stream.set_read_timeout(Some(timeout)).map_err(settle)?;
    stream.set_write_timeout(Some(timeout)).map_err(settle)?;
    protocol::write_frame(&mut &stream, &proof).map_err(settle)?;
    Ok(stream)
}

/// How one attempt at a request ended.
enum Attempt {
    /// Answered: the handler returns `status` (OK once a response went
    /// out), and the connection may be reused if `reusable`.
    Done { status: i32, reusable: bool },
    /// The daemon is restarting and did not run the request: try another.
    Restart,
    /// The connection died before the daemon could read the whole request,
    /// so it cannot have run it: why.
    Unread(String),
}

impl Attempt {
    fn status(status: i32) -> Self {
        Attempt::Done { status, reusable: false }
    }

    /// The client went away: the connection is dropped, so that the
    /// daemon's next write fails and the app's iterable is closed.
    fn client_gone() -> Self {
        Attempt::Done { status: sys::OK, reusable: false }
    }
}

pub struct Settings {
    pub error_override: bool,
    /// Apache's `Timeout`, used when the group sets no socket-timeout.
    pub apache_timeout: Duration,
}

pub fn run(req: Request, g: &Arc<RuntimeGroup>, head: RequestHead, settings: &Settings) -> i32 {
    let spec = &g.def.spec;
    let timeout = spec.socket_timeout.unwrap_or(settings.apache_timeout).max(Duration::from_millis(1));
    let deadline = Instant::now() + spec.connect_timeout;
    let limits = Limits { max_head: spec.header_buffer_size, ..Limits::default() };
    let mut request = Vec::new();
    if let Err(e) = protocol::write_frame(&mut request, &Frame::Request(head)) {
        log::request(&req, Level::Err, &format!("cannot pass the request to daemon process group '{}': {e}", g.name()));
        return sys::HTTP_INTERNAL_SERVER_ERROR;
    }
    let mut may_resend = harmless_to_resend(req);
    let mut out = req.new_brigade();
    loop {
        let first = next_slot(g);
        let (conn, slot) = match checkout(g, first, req) {
            Some(conn) => (conn, first),
            None => match connect(g, first, deadline, timeout) {
                Ok(connected) => connected,
                Err(e) => {
                    log::request(&req, Level::Err, &format!("cannot connect to daemon process group '{}': {e}", g.name()));
                    return sys::HTTP_SERVICE_UNAVAILABLE;
                }
            },
        };
        match exchange(req, &mut out, &conn, &request, &limits, settings, g) {
            Attempt::Done { status, reusable } => {
                if reusable {
                    checkin(g, slot, conn);
                }
                return status;
            }
            Attempt::Restart if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Attempt::Restart => {
                log::request(&req, Level::Err, &format!("daemon process group '{}' kept restarting; no process took the request within connect-timeout", g.name()));
                return sys::HTTP_SERVICE_UNAVAILABLE;
            }
            Attempt::Unread(why) if may_resend => {
                may_resend = false;
                log::request(&req, Level::Info, &format!("daemon process of group '{}' went away before it read the request ({why}); sending it to another process", g.name()));
            }
            Attempt::Unread(why) => {
                log::request(&req, Level::Err, &format!("daemon process of group '{}' went away before it read the request ({why}); not sending it again (only a GET, HEAD or OPTIONS without a body is, once)", g.name()));
                return sys::HTTP_BAD_GATEWAY;
            }
        }
    }
}

/// Whether a request that provably did not run may be sent once more: a
/// GET, HEAD or OPTIONS without a body.
fn harmless_to_resend(req: Request) -> bool {
    let headers = req.headers_in();
    let body = headers.get(c"Transfer-Encoding").is_some() || headers.get(c"Content-Length").is_some_and(|length| length != b"0");
    matches!(req.method(), b"GET" | b"HEAD" | b"OPTIONS") && !body
}

/// When the body passed on so far goes out to the client. Apache's core
/// holds small writes back until a flush; the child flushes once the
/// daemon has sent nothing more for response-flush-delay, before it waits
/// for the client's request body, at the end, and (as a guard against a
/// filter that keeps everything) after response-buffer-size bytes without
/// a flush. Writing on while the daemon keeps sending makes fewer, larger
/// writes, which pacing filters such as mod_ratelimit need.
struct Flusher {
    delay: Duration,
    limit: usize,
    unflushed: usize,
}

impl Flusher {
    fn new(g: &RuntimeGroup) -> Self {
        Flusher { delay: g.def.spec.response_flush_delay, limit: g.def.spec.response_buffer_size, unflushed: 0 }
    }

    /// Passes `data` on; flushes unless `more_within(delay)` says the
    /// daemon sent more by then.
    fn write(&mut self, out: &mut Brigade, data: &[u8], more_within: impl FnOnce(Duration) -> bool) -> Result<(), ClientGone> {
        out.write_unflushed(data)?;
        self.unflushed += data.len();
        if self.unflushed > self.limit || !more_within(self.delay) {
            self.flush(out)?;
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut Brigade) -> Result<(), ClientGone> {
        if self.unflushed == 0 {
            return Ok(());
        }
        self.unflushed = 0;
        out.flush()
    }
}

/// Whether the daemon sent (or closed) anything within `wait`: bytes
/// already buffered, or the socket readable in time.
fn more_within(r: &BufReader<&UnixStream>, wait: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    if !r.buffer().is_empty() {
        return true;
    }
    let mut fds = [PollFd::new(r.get_ref().as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX)).is_ok_and(|n| n > 0)
}

/// The client socket's timeout while a response body goes out:
/// response-socket-timeout, else socket-timeout (else Apache's `Timeout`
/// stays). The connection's own is put back afterwards, for the requests
/// that follow on it.
struct ClientTimeout {
    req: Request,
    saved: Duration,
}

impl ClientTimeout {
    fn apply(req: Request, g: &RuntimeGroup) -> Option<ClientTimeout> {
        let spec = &g.def.spec;
        let timeout = spec.response_socket_timeout.or(spec.socket_timeout)?;
        let saved = req.client_socket_timeout()?;
        req.set_client_socket_timeout(timeout);
        Some(ClientTimeout { req, saved })
    }
}

impl Drop for ClientTimeout {
    fn drop(&mut self) {
        self.req.set_client_socket_timeout(self.saved);
    }
}

/// The response as far as it went to the client.
struct Response {
    /// The head was applied: the body is held to it.
    body: Option<BodyLimit>,
    /// `WSGIErrorOverride`: the daemon's error status, whose body is dropped
    /// so that Apache answers with its own error document.
    overridden: Option<i32>,
}

impl Response {
    fn head_sent(&self) -> bool {
        self.body.is_some() && self.overridden.is_none()
    }

    /// Ends the attempt after a failure: a response already under way is
    /// cut short, else the handler answers `status`.
    fn fail(&self, out: &mut Brigade, status: i32) -> Attempt {
        if self.head_sent() {
            out.abort();
            Attempt::Done { status: sys::OK, reusable: false }
        } else {
            Attempt::status(status)
        }
    }

    /// The response is over; the connection may carry the next request
    /// if it is `in_step`.
    fn done(&self, in_step: bool) -> Attempt {
        Attempt::Done { status: self.overridden.unwrap_or(sys::OK), reusable: in_step }
    }
}

fn exchange(req: Request, out: &mut Brigade, conn: &UnixStream, request: &[u8], limits: &Limits, settings: &Settings, g: &RuntimeGroup) -> Attempt {
    let mut w = conn;
    if let Err(e) = w.write_all(request) {
        return match e.kind() {
            // The daemon's end was closed: it has not read all of it.
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => Attempt::Unread(format!("sending the request failed: {e}")),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                log::request(&req, Level::Err, &format!("timeout sending the request to daemon process group '{}' (socket-timeout)", g.name()));
                Attempt::status(sys::HTTP_GATEWAY_TIME_OUT)
            }
            _ => lost(req, g, &format!("while it was sent the request ({e})")),
        };
    }
    let mut response = Response { body: None, overridden: None };
    let mut body_touched = false;
    let mut buf = Vec::new();
    let mut flusher = Flusher::new(g);
    let mut _client_timeout = None;
    // Nothing follows a response's last frame, so the buffer can go with it
    // (bytes left in it would mean the daemon is out of step).
    let mut r = BufReader::with_capacity(RESPONSE_BUFFER, conn);
    loop {
        match protocol::read_frame(&mut r, limits) {
            Ok(Frame::Read(n)) => {
                body_touched = true;
                // The client may wait for what it was sent before it sends more.
                if flusher.flush(out).is_err() {
                    return Attempt::client_gone();
                }
                buf.resize((n as usize).min(READ_CHUNK), 0);
                let sent = match read_up_to(req, &mut buf) {
                    Ok(0) => protocol::write_frame(&mut w, &Frame::BodyEnd),
                    Ok(k) => protocol::write_body(&mut w, &buf[..k]),
                    Err(status) => {
                        // The daemon's read fails with the connection.
                        log::request(&req, Level::Info, &format!("reading the request body from the client failed (HTTP status {status})"));
                        return response.fail(out, status);
                    }
                };
                if sent.is_err() {
                    return response.fail(out, lost_status(req, g, "while it was sent the request body"));
                }
            }
            Ok(Frame::Head { status, status_line, headers }) if response.body.is_none() => {
                let head = match relay::check_head(status, &headers) {
                    Ok(head) => head,
                    Err(why) => {
                        log::request(&req, Level::Err, &format!("daemon process group '{}' sent a response head that cannot be passed on: {why}", g.name()));
                        return Attempt::status(sys::HTTP_BAD_GATEWAY);
                    }
                };
                if !head.dropped.is_empty() {
                    let names: Vec<_> = head.dropped.iter().map(|n| String::from_utf8_lossy(n)).collect();
                    log::request(&req, Level::Info, &format!("left out hop-by-hop response headers from daemon process group '{}': {}", g.name(), names.join(", ")));
                }
                if settings.error_override && status >= 400 {
                    response.overridden = Some(status as i32);
                    response.body = Some(BodyLimit::discarding(status));
                    continue;
                }
                if head.close_client {
                    req.close_connection();
                }
                apply_head(req, status, &status_line, &head.headers, head.content_length);
                response.body = Some(BodyLimit::new(status, req.header_only(), head.content_length));
                _client_timeout = ClientTimeout::apply(req, g);
            }
            Ok(Frame::Data(data)) => {
                let Some(limit) = response.body.as_mut() else {
                    return unexpected(req, out, &response, g, &Frame::Data(data));
                };
                let take = limit.take(data.len());
                if response.overridden.is_none() && take.pass > 0 && flusher.write(out, &data[..take.pass], |wait| more_within(&r, wait)).is_err() {
                    return Attempt::client_gone();
                }
                if take.excess > 0 {
                    log::request(&req, Level::Err, &format!("daemon process group '{}' sent more body than the response's Content-Length; the rest was dropped, and the connection with it", g.name()));
                    return response.done(false);
                }
            }
            Ok(Frame::End) if response.body.is_some() => {
                let short = response.body.as_ref().map_or(0, BodyLimit::shortfall);
                if short > 0 && response.head_sent() {
                    log::request(&req, Level::Info, &format!("response from daemon process group '{}' ended {short} bytes short of its Content-Length; cutting the connection", g.name()));
                    out.abort();
                } else if flusher.flush(out).is_err() {
                    return Attempt::client_gone();
                }
                return response.done(r.buffer().is_empty());
            }
            Ok(Frame::Abort) if response.body.is_some() => {
                if response.head_sent() {
                    out.abort();
                }
                return response.done(r.buffer().is_empty());
            }
            // Before the head the daemon kept the connection in step (except
            // after its own timeouts, which it follows by closing).
            Ok(Frame::Error { status }) if response.body.is_none() => {
                return Attempt::Done { status: status as i32, reusable: status != 504 && r.buffer().is_empty() };
            }
            Ok(Frame::Restart) if !body_touched && response.body.is_none() => return Attempt::Restart,
            Ok(other) => return unexpected(req, out, &response, g, &other),
            Err(e) if e.is_timeout() => {
                log::request(&req, Level::Err, &format!("timeout waiting for daemon process group '{}' (socket-timeout)", g.name()));
                return response.fail(out, sys::HTTP_GATEWAY_TIME_OUT);
            }
            // A UNIX socket is reset when its owner closes it with bytes
            // unread: before any answer, some of the request's.
            Err(e) if !body_touched && response.body.is_none() && e.io_kind() == Some(std::io::ErrorKind::ConnectionReset) => {
                return Attempt::Unread("it closed the connection with the request unread".into());
            }
            Err(e) if e.is_disconnect() => return response.fail(out, lost_status(req, g, &format!("({e})"))),
            Err(e) => {
                log::request(&req, Level::Err, &format!("daemon process group '{}' sent a frame the child refuses: {e}", g.name()));
                return response.fail(out, sys::HTTP_BAD_GATEWAY);
            }
        }
    }
}

fn unexpected(req: Request, out: &mut Brigade, response: &Response, g: &RuntimeGroup, frame: &Frame) -> Attempt {
    log::request(&req, Level::Err, &format!("protocol error from daemon process group '{}': unexpected {frame:?}", g.name()));
    response.fail(out, sys::HTTP_BAD_GATEWAY)
}

/// Fills `buf` from the request body (Apache hands it over a few KB at a
/// time), stopping early only at the end: the app asked for that much, and
/// each answer costs the daemon a round trip. A failure is the HTTP status
/// that answers it.
fn read_up_to(req: Request, buf: &mut [u8]) -> Result<usize, i32> {
    let mut got = 0;
    while got < buf.len() {
        match req.read_body_or_status(&mut buf[got..])? {
            0 => break,
            k => got += k,
        }
    }
    Ok(got)
}

/// Logs a daemon that went away after it may have read the request; the
/// request is not sent again, since it may have run. Gives 502.
fn lost_status(req: Request, g: &RuntimeGroup, what: &str) -> i32 {
    log::request(&req, Level::Err, &format!("daemon process of group '{}' closed the connection {what}; it may have crashed or been restarted, and the request is not sent again", g.name()));
    sys::HTTP_BAD_GATEWAY
}

fn lost(req: Request, g: &RuntimeGroup, what: &str) -> Attempt {
    Attempt::status(lost_status(req, g, what))
}
