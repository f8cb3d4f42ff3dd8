//! The Apache child's side of daemon mode: it hands a request to the
//! group's daemons over a pooled, authenticated connection, answers the
//! daemon's body reads from the client, and streams the response back,
//! flushing every chunk.
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wsgi_core::protocol::{self, Frame, Limits, ProtocolError, RequestHead, PROTOCOL_VERSION};

use super::group::RuntimeGroup;
use crate::embedded::transport::apply_head;
use crate::ffi::log::{self, Level};
use crate::ffi::request::{ReadFailed, Brigade, Request};
use crate::ffi::sys;

/// Idle connections by group, reused across requests in this child.
static POOL: Mutex<Option<HashMap<String, Vec<UnixStream>>>> = Mutex::new(None);
/// Idle connections kept per group and child.
const MAX_IDLE: usize = 32;
/// How much of the body one `Read` may ask for at a time.
const READ_CHUNK: usize = 64 * 1024;
/// The buffer response frames are read through (large Data frames bypass it).
const RESPONSE_BUFFER: usize = 8 * 1024;

fn checkout(g: &RuntimeGroup) -> Option<UnixStream> {
    POOL.lock().unwrap_or_else(|e| e.into_inner()).as_mut()?.get_mut(g.name())?.pop()
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
        let retry = !gone && (matches!(err.raw_os_error(), Some(libc::ECONNREFUSED | libc::EAGAIN | libc::ENOENT)) || err.kind() == std::io::ErrorKind::WouldBlock);
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
    protocol::write_frame(&mut w, &Frame::Hello { version: PROTOCOL_VERSION, secret: g.secret })?;
    let mut r = &stream;
    match protocol::read_frame(&mut r, &Limits::default()) {
        Ok(Frame::Hello { secret, .. }) if secret == g.secret => Ok(stream),
        Ok(other) => Err(std::io::Error::other(format!("unexpected answer to Hello: {other:?}"))),
        Err(e) if e.is_timeout() => Err(std::io::Error::new(std::io::ErrorKind::WouldBlock, "no daemon process answered")),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// How one attempt at a request ended.
enum Attempt {
    /// The response was passed on; the connection may be reused if `reusable`.
    Done { reusable: bool },
    /// Answer with this HTTP status (nothing was sent yet).
    Status(i32),
    /// The daemon is restarting and did not run the request: try another.
    Retry,
    /// A pooled connection turned out dead before anything happened.
    Stale,
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
    let mut out = req.new_brigade();
    let request = Frame::Request(head);
    loop {
        let (conn, reused) = match checkout(g) {
            Some(conn) => (conn, true),
            None => match connect(g, deadline, timeout) {
                Ok(conn) => (conn, false),
                Err(e) => {
                    log::request(&req, Level::Err, &format!("cannot connect to daemon process group '{}' within connect-timeout: {e}", g.name()));
                    return sys::HTTP_SERVICE_UNAVAILABLE;
                }
            },
        };
        match exchange(req, &mut out, &conn, &request, &limits, reused, settings, g) {
            Attempt::Done { reusable } => {
                if reusable {
                    checkin(g, conn);
                }
                return sys::OK;
            }
            Attempt::Status(status) => return status,
            Attempt::Stale => continue,
            Attempt::Retry if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Attempt::Retry => {
                log::request(&req, Level::Err, &format!("daemon process group '{}' kept restarting; no process took the request within connect-timeout", g.name()));
                return sys::HTTP_SERVICE_UNAVAILABLE;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn exchange(req: Request, out: &mut Brigade, conn: &UnixStream, request: &Frame, limits: &Limits, reused: bool, settings: &Settings, g: &RuntimeGroup) -> Attempt {
    let mut w = conn;
    if let Err(e) = protocol::write_frame(&mut w, request).and_then(|()| w.flush()) {
        if reused {
            return Attempt::Stale;
        }
        return lost(req, out, false, g, &format!("while it was sent the request ({e})"));
    }
    let (mut head_sent, mut body_touched, mut overridden) = (false, false, None);
    let mut buf = Vec::new();
    // Nothing follows a response's last frame, so the buffer can go with it.
    let mut r = BufReader::with_capacity(RESPONSE_BUFFER, conn);
    loop {
        match protocol::read_frame(&mut r, limits) {
            Ok(Frame::Read(n)) => {
                body_touched = true;
                buf.resize((n as usize).min(READ_CHUNK), 0);
                let sent = match read_up_to(req, &mut buf) {
                    Ok(0) => protocol::write_frame(&mut w, &Frame::BodyEnd),
                    Ok(k) => protocol::write_body(&mut w, &buf[..k]),
                    Err(ReadFailed) => {
                        log::request(&req, Level::Info, "request body read failed (client closed the connection or timed out)");
                        return Attempt::Status(sys::HTTP_BAD_REQUEST);
                    }
                };
                if sent.is_err() {
                    return lost(req, out, head_sent, g, "while sending it the request body");
                }
            }
            Ok(Frame::Head { status, status_line, headers }) => {
                head_sent = true;
                if settings.error_override && status >= 400 {
                    overridden = Some(status as i32);
                    continue;
                }
                let content_length = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(b"content-length")).and_then(|(_, v)| wsgi_core::validate::content_length(v).ok());
                apply_head(req, status, &status_line, &headers, content_length);
            }
            Ok(Frame::Data(data)) if head_sent => {
                if overridden.is_none() && !req.header_only() && out.write(&data).is_err() {
                    // The client went away: drop this connection so the
                    // daemon's next write fails and the app's iterable closes.
                    return Attempt::Done { reusable: false };
                }
            }
            Ok(Frame::End) if head_sent => {
                return match overridden {
                    Some(status) => Attempt::Status(status),
                    None => Attempt::Done { reusable: true },
                };
            }
            Ok(Frame::Abort) if head_sent => {
                out.abort();
                return Attempt::Done { reusable: true };
            }
            Ok(Frame::Error { status }) => {
                if head_sent {
                    out.abort();
                    return Attempt::Done { reusable: false };
                }
                return Attempt::Status(status as i32);
            }
            Ok(Frame::Restart) if !body_touched && !head_sent => return Attempt::Retry,
            Ok(other) => {
                log::request(&req, Level::Err, &format!("protocol error from daemon process group '{}': unexpected {other:?}", g.name()));
                return fail(out, head_sent, sys::HTTP_BAD_GATEWAY);
            }
            Err(e) if reused && !head_sent && !body_touched && is_dead_peer(&e) => return Attempt::Stale,
            Err(e) if e.is_timeout() => {
                log::request(&req, Level::Err, &format!("timeout waiting for daemon process group '{}' (socket-timeout)", g.name()));
                return fail(out, head_sent, sys::HTTP_GATEWAY_TIME_OUT);
            }
            Err(e) => return lost(req, out, head_sent, g, &format!("({e})")),
        }
    }
}

/// Fills `buf` from the request body (Apache hands it over a few KB at a
/// time), stopping early only at the end: the app asked for that much, and
/// each answer costs the daemon a round trip.
fn read_up_to(req: Request, buf: &mut [u8]) -> Result<usize, ReadFailed> {
    let mut got = 0;
    while got < buf.len() {
        match req.read_body(&mut buf[got..])? {
            0 => break,
            k => got += k,
        }
    }
    Ok(got)
}

/// EOF or a reset on a connection that was idle in the pool: its daemon
/// went away in the meantime.
fn is_dead_peer(e: &ProtocolError) -> bool {
    matches!(e, ProtocolError::Closed) || matches!(e.io_kind(), Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe))
}

fn lost(req: Request, out: &mut Brigade, head_sent: bool, g: &RuntimeGroup, what: &str) -> Attempt {
    log::request(&req, Level::Err, &format!("daemon process of group '{}' closed the connection {what}; it may have crashed or been restarted", g.name()));
    fail(out, head_sent, sys::HTTP_BAD_GATEWAY)
}

fn fail(out: &mut Brigade, head_sent: bool, status: i32) -> Attempt {
    if head_sent {
        out.abort();
        Attempt::Done { reusable: false }
    } else {
        Attempt::Status(status)
    }
}
