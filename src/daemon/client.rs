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
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wsgi_core::protocol::{self, Frame, Limits, ProtocolError, RequestHead, PROTOCOL_VERSION};
use wsgi_core::relay::{self, BodyLimit};

use super::conn::{waiting, Waiting};
use super::group::RuntimeGroup;
use crate::embedded::transport::apply_head;
use crate::ffi::log::{self, Level};
use crate::ffi::request::{Brigade, Request};
use crate::ffi::sys;

/// Idle connections by group, reused across requests in this child.
static POOL: Mutex<Option<HashMap<String, Vec<UnixStream>>>> = Mutex::new(None);
/// Idle connections kept per group and child.
const MAX_IDLE: usize = 32;
/// How much of the body one `Read` may ask for at a time.
const READ_CHUNK: usize = 64 * 1024;
/// The buffer response frames are read through (large Data frames bypass it).
const RESPONSE_BUFFER: usize = 8 * 1024;

/// An idle connection that is still in step. One whose daemon went away is
/// dropped before anything is sent on it (so no request is lost with it),
/// as is one with bytes waiting that no request asked for.
fn checkout(g: &RuntimeGroup, req: Request) -> Option<UnixStream> {
    loop {
        let conn = POOL.lock().unwrap_or_else(|e| e.into_inner()).as_mut()?.get_mut(g.name())?.pop()?;
        match waiting(&conn) {
            Waiting::Nothing => return Some(conn),
            Waiting::Closed => {}
            Waiting::Bytes => log::request(&req, Level::Warning, &format!("a pooled connection to daemon process group '{}' had bytes waiting that no request asked for; dropped it", g.name())),
        }
    }
}

fn checkin(g: &RuntimeGroup, conn: UnixStream) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let idle = pool.get_or_insert_with(HashMap::new).entry(g.name().to_string()).or_default();
    if idle.len() < MAX_IDLE {
        idle.push(conn);
    }
}

/// How long a process slot may take to answer a new connection before the
/// next slot is tried (it is restarting, or all its threads are busy).
const SLOT_PATIENCE: Duration = Duration::from_millis(500);

/// Connects and authenticates, going round the group's process slots and
/// retrying while daemons are starting or busy, until `deadline`. Only a
/// daemon's answer to our Hello counts: a socket whose daemon cannot start
/// still queues connections.
fn connect(g: &RuntimeGroup, deadline: Instant, timeout: Duration) -> std::io::Result<UnixStream> {
    let mut pause = Duration::from_millis(10);
    loop {
        let slot = (g.next_slot.fetch_add(1, Ordering::Relaxed) + std::process::id() as usize) % g.socket_paths.len();
        let patience = if g.socket_paths.len() > 1 { deadline.min(Instant::now() + SLOT_PATIENCE) } else { deadline };
        let err = match UnixStream::connect(&g.socket_paths[slot]).and_then(|stream| handshake(g, stream, patience)) {
            Ok(stream) => {
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))?;
                return Ok(stream);
            }
            Err(e) => e,
        };
        // A missing socket file belongs to an earlier generation of Apache,
        // unless names are stable across restarts (then it is coming back).
        let gone = err.raw_os_error() == Some(libc::ENOENT) && !g.stable_sockets;
        // A reset before the daemon answered our Hello (the listener closed
        // with the connection still queued: its process slot is being
        // replaced, or Apache is restarting) sent nothing of the request.
        let retry = !gone
            && (matches!(err.raw_os_error(), Some(libc::ECONNREFUSED | libc::EAGAIN | libc::ENOENT))
                || matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe));
        if !retry || Instant::now() + pause >= deadline {
            return Err(err);
        }
        if err.kind() != std::io::ErrorKind::WouldBlock {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
}

fn handshake(g: &RuntimeGroup, stream: UnixStream, deadline: Instant) -> std::io::Result<UnixStream> {
    let wait = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
    stream.set_read_timeout(Some(wait))?;
    stream.set_write_timeout(Some(wait))?;
    let mut w = &stream;
    protocol::write_frame(&mut w, &Frame::Hello { version: PROTOCOL_VERSION, secret: *g.secret.bytes() })?;
    let mut r = &stream;
    match protocol::read_frame(&mut r, &Limits::default()) {
        Ok(Frame::Hello { secret, .. }) if &secret == g.secret.bytes() => Ok(stream),
        Ok(other) => Err(std::io::Error::other(format!("unexpected answer to Hello: {other:?}"))),
        Err(e) if e.is_timeout() => Err(std::io::Error::new(std::io::ErrorKind::WouldBlock, "no daemon process answered")),
        Err(e) if matches!(e, ProtocolError::Closed) || matches!(e.io_kind(), Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe)) => {
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, format!("the daemon socket closed before a daemon answered ({e})")))
        }
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
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
        let conn = match checkout(g, req) {
            Some(conn) => conn,
            None => match connect(g, deadline, timeout) {
                Ok(conn) => conn,
                Err(e) => {
                    log::request(&req, Level::Err, &format!("cannot connect to daemon process group '{}' within connect-timeout: {e}", g.name()));
                    return sys::HTTP_SERVICE_UNAVAILABLE;
                }
            },
        };
        match exchange(req, &mut out, &conn, &request, &limits, settings, g) {
            Attempt::Done { status, reusable } => {
                if reusable {
                    checkin(g, conn);
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
    // Nothing follows a response's last frame, so the buffer can go with it
    // (bytes left in it would mean the daemon is out of step).
    let mut r = BufReader::with_capacity(RESPONSE_BUFFER, conn);
    loop {
        match protocol::read_frame(&mut r, limits) {
            Ok(Frame::Read(n)) => {
                body_touched = true;
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
            }
            Ok(Frame::Data(data)) => {
                let Some(limit) = response.body.as_mut() else {
                    return unexpected(req, out, &response, g, &Frame::Data(data));
                };
                let take = limit.take(data.len());
                if response.overridden.is_none() && take.pass > 0 && out.write(&data[..take.pass]).is_err() {
                    // The client went away: drop this connection so the
                    // daemon's next write fails and the app's iterable closes.
                    return Attempt::Done { status: sys::OK, reusable: false };
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
