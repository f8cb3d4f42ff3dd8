//! The protocol between an Apache child and a daemon process, spoken over a
//! UNIX stream socket. Unlike mod_wsgi's (CGI-style head, chunked body, end
//! of response = close), every message is a length-prefixed frame, so a
//! response end is explicit and a connection can carry another request.
//!
//! A frame is `kind: u8`, `len: u32` big-endian, then `len` payload bytes.
//! Inside payloads integers are big-endian and strings/byte strings are a
//! `u32` length then the bytes.
//!
//! A new connection opens with a handshake in which each side proves it
//! knows the group's secret without sending it (see [`crate::handshake`]):
//! ```text
//! child                          daemon
//! Hello(version, child nonce)  →
//!                              ← Challenge(version, daemon nonce, daemon proof)
//! Proof(child proof)           →   sent only once the daemon's proof checks out
//! ```
//! Then, for each request:
//! ```text
//! Request                      →   (the first one follows Proof at once)
//!                              ← Read(n)       the app wants more body
//! Body(≤ n bytes) | BodyEnd    →
//!                              ← Head, Data…, End | Abort
//!                              ← or Error{status} | Restart
//! ```
//! The body is pulled, so neither side holds a whole upload and neither can
//! block writing while the other is also writing. `Read` may still come
//! after `Head` and `Data` (an app reading its input late, even in its
//! iterable's `close()`); nothing comes after `End`, `Abort`, `Error` or
//! `Restart`, which the daemon sends only once the app's call has returned.
//! After `Error` and `Abort` the connection stays in step and may carry the
//! next request, except after `Error{504}` (a daemon-side timeout), which
//! the daemon follows by closing the connection.
use std::fmt;
use std::io::{self, Read, Write};

/// 2: the challenge-response handshake (1 sent the secret itself).
pub const PROTOCOL_VERSION: u8 = 2;
/// Largest payload of any frame. A bigger declared length is refused before
/// anything is allocated.
pub const MAX_FRAME: usize = 16 << 20;
/// Largest payload of a `Data` or `Body` frame: a big chunk is split, so the
/// reader never holds more than this of it at once.
pub const MAX_DATA: usize = 256 << 10;
/// Largest number of environ pairs in a request.
pub const MAX_ENVIRON_PAIRS: usize = 4096;
/// Bytes before the payload: kind and length.
pub const FRAME_HEADER_LEN: usize = 5;
pub const SECRET_LEN: usize = 32;
/// A handshake nonce: fresh random bytes from each side.
pub const NONCE_LEN: usize = 32;
/// A handshake proof: an HMAC-SHA256.
pub const PROOF_LEN: usize = 32;
/// The largest handshake payload (a Challenge).
pub const MAX_HANDSHAKE_FRAME: usize = 1 + NONCE_LEN + PROOF_LEN;

// Child → daemon kinds are below 0x10, daemon → child kinds from 0x10, so a
// frame sent the wrong way is easy to spot in a dump.
const HELLO: u8 = 0x01;
const REQUEST: u8 = 0x02;
const BODY: u8 = 0x03;
const BODY_END: u8 = 0x04;
const PROOF: u8 = 0x05;
const READ: u8 = 0x10;
const HEAD: u8 = 0x11;
const DATA: u8 = 0x12;
const END: u8 = 0x13;
const ABORT: u8 = 0x14;
const ERROR: u8 = 0x15;
const RESTART: u8 = 0x16;
const CHALLENGE: u8 = 0x17;

/// What the child tells the daemon about one request.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The WSGI script file.
    pub script: String,
    /// Its mtime as the child saw it, for reload checks (seconds since the epoch).
    pub script_mtime: i64,
    /// The callable's name in the script (`WSGICallableObject`).
    pub callable: String,
    /// Whether `WSGIScriptReloading` is on for this request.
    pub reloading: bool,
    /// The interpreter to run in; "" is the main interpreter.
    pub application_group: String,
    /// When Apache accepted the request, in µs since the epoch.
    pub request_start_us: i64,
    /// The CGI/WSGI environ; values are raw bytes, keys are non-empty UTF-8.
    pub environ: Vec<(String, Vec<u8>)>,
}

#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// Child → daemon, first on every connection: the child's nonce.
    Hello { version: u8, nonce: [u8; NONCE_LEN] },
    /// Daemon → child, the answer to Hello: the daemon's nonce and its
    /// proof that it knows the group's secret.
    Challenge { version: u8, nonce: [u8; NONCE_LEN], proof: [u8; PROOF_LEN] },
    /// Child → daemon: the child's proof; the daemon reads no Request
    /// before it has checked this.
    Proof { proof: [u8; PROOF_LEN] },
    Request(RequestHead),
    /// Child → daemon: 1..=n body bytes answering `Read(n)`.
    Body(Vec<u8>),
    /// Child → daemon: the request body is complete.
    BodyEnd,
    /// Daemon → child: the app wants up to n more body bytes.
    Read(u32),
    /// Daemon → child: the response status and headers.
    Head { status: u16, status_line: Vec<u8>, headers: Vec<(Vec<u8>, Vec<u8>)> },
    /// Daemon → child: a chunk of response body, to be flushed to the client.
    Data(Vec<u8>),
    /// Daemon → child: the response is complete; the connection may be reused.
    End,
    /// Daemon → child: the app failed after `Head`; cut the response short.
    Abort,
    /// Daemon → child: no response was produced; answer with this status.
    Error { status: u16 },
    /// Daemon → child: the daemon is restarting and did not run the request;
    /// retry on a new connection.
    Restart,
}

impl RequestHead {
    /// The value of one environ entry (the last, if repeated).
    pub fn environ_value(&self, key: &str) -> Option<&[u8]> {
        self.environ.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }
}

// Debug output shows shapes, not contents: frames carry handshake nonces
// and proofs, cookies and Authorization headers, and may end up in a log
// line.
impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("script", &self.script)
            .field("script_mtime", &self.script_mtime)
            .field("callable", &self.callable)
            .field("reloading", &self.reloading)
            .field("application_group", &self.application_group)
            .field("request_start_us", &self.request_start_us)
            .field("environ_keys", &self.environ.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frame::Hello { version, .. } => write!(f, "Hello {{ version: {version}, nonce: <redacted> }}"),
            Frame::Challenge { version, .. } => write!(f, "Challenge {{ version: {version}, nonce: <redacted>, proof: <redacted> }}"),
            Frame::Proof { .. } => f.write_str("Proof { proof: <redacted> }"),
            Frame::Request(head) => f.debug_tuple("Request").field(head).finish(),
            Frame::Body(data) => write!(f, "Body({} bytes)", data.len()),
            Frame::BodyEnd => f.write_str("BodyEnd"),
            Frame::Read(n) => write!(f, "Read({n})"),
            Frame::Head { status, status_line, headers } => write!(
                f,
                "Head {{ status: {status}, status_line: {:?}, headers: {} }}",
                String::from_utf8_lossy(status_line),
                headers.len()
            ),
            Frame::Data(data) => write!(f, "Data({} bytes)", data.len()),
            Frame::End => f.write_str("End"),
            Frame::Abort => f.write_str("Abort"),
            Frame::Error { status } => write!(f, "Error {{ status: {status} }}"),
            Frame::Restart => f.write_str("Restart"),
        }
    }
}

/// Per-connection caps on payloads, checked against the declared length
/// before the payload is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `Head` payload: the group's header-buffer-size.
    pub max_head: usize,
    /// Largest `Request` payload.
    pub max_request: usize,
    /// Largest payload of any kind.
    pub max_frame: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_head: crate::daemon_options::DEFAULT_HEADER_BUFFER, max_request: MAX_FRAME, max_frame: MAX_FRAME }
    }
}

impl Limits {
    /// Before authentication only handshake frames are read: anything
    /// larger (a Request, a Data) is refused on its header alone.
    pub fn handshake() -> Self {
        Limits { max_head: 0, max_request: 0, max_frame: MAX_HANDSHAKE_FRAME }
    }
}

/// Why no frame could be read. After any of these the connection must be
/// dropped: part of a frame may have been consumed, so the stream is out of
/// step (`Closed` just means the peer already went).
#[derive(Debug)]
pub enum ProtocolError {
    /// The peer closed the stream cleanly between frames.
    Closed,
    /// The stream ended inside a frame.
    Truncated,
    /// The declared payload length is above the cap for that kind.
    Oversize { kind: u8, len: usize, max: usize },
    UnknownKind(u8),
    /// The payload does not decode, or breaks a rule (CR in a header, …).
    Malformed(String),
    Io(io::Error),
}

impl ProtocolError {
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            ProtocolError::Io(e) => Some(e.kind()),
            _ => None,
        }
    }

    /// A socket timeout (SO_RCVTIMEO reports WouldBlock on Linux), as
    /// opposed to a reset or a protocol fault.
    pub fn is_timeout(&self) -> bool {
        matches!(self.io_kind(), Some(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }

    /// The peer went away (closed or reset the connection), as opposed to
    /// sending something this side refuses.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, ProtocolError::Closed | ProtocolError::Truncated)
            || matches!(self.io_kind(), Some(io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe))
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Closed => f.write_str("the peer closed the connection"),
            ProtocolError::Truncated => f.write_str("the connection ended in the middle of a frame"),
            ProtocolError::Oversize { kind, len, max } => {
                write!(f, "a {} frame declares {len} bytes, above the limit of {max}", kind_name(*kind))
            }
            ProtocolError::UnknownKind(kind) => write!(f, "unknown frame kind 0x{kind:02x}"),
            ProtocolError::Malformed(why) => write!(f, "malformed frame: {why}"),
            ProtocolError::Io(e) => write!(f, "I/O error on the daemon connection: {e}"),
        }
    }
}

impl std::error::Error for ProtocolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProtocolError::Io(e) => Some(e),
            _ => None,
        }
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        HELLO => "Hello",
        REQUEST => "Request",
        BODY => "Body",
        BODY_END => "BodyEnd",
        PROOF => "Proof",
        CHALLENGE => "Challenge",
        READ => "Read",
        HEAD => "Head",
        DATA => "Data",
        END => "End",
        ABORT => "Abort",
        ERROR => "Error",
        RESTART => "Restart",
        _ => "unknown",
    }
}

fn kind_of(frame: &Frame) -> u8 {
    match frame {
        Frame::Hello { .. } => HELLO,
        Frame::Challenge { .. } => CHALLENGE,
        Frame::Proof { .. } => PROOF,
        Frame::Request(_) => REQUEST,
        Frame::Body(_) => BODY,
        Frame::BodyEnd => BODY_END,
        Frame::Read(_) => READ,
        Frame::Head { .. } => HEAD,
        Frame::Data(_) => DATA,
        Frame::End => END,
        Frame::Abort => ABORT,
        Frame::Error { .. } => ERROR,
        Frame::Restart => RESTART,
    }
}

impl Frame {
    /// The frame's kind, for messages ("a Request frame").
    pub fn kind_name(&self) -> &'static str {
        kind_name(kind_of(self))
    }
}

/// The payload size of `frame` once encoded; a daemon compares a `Head`'s
/// against the group's header-buffer-size before sending it.
pub fn payload_len(frame: &Frame) -> usize {
    match frame {
        Frame::Hello { .. } => 1 + NONCE_LEN,
        Frame::Challenge { .. } => 1 + NONCE_LEN + PROOF_LEN,
        Frame::Proof { .. } => PROOF_LEN,
        Frame::Request(h) => {
            let strings = h.script.len() + h.callable.len() + h.application_group.len();
            3 * 4 + strings + 8 + 1 + 8 + 4 + h.environ.iter().map(|(k, v)| 8 + k.len() + v.len()).sum::<usize>()
        }
        Frame::Body(data) | Frame::Data(data) => data.len(),
        Frame::BodyEnd | Frame::End | Frame::Abort | Frame::Restart => 0,
        Frame::Read(_) => 4,
        Frame::Head { status_line, headers, .. } => {
            2 + 4 + status_line.len() + 4 + headers.iter().map(|(n, v)| 8 + n.len() + v.len()).sum::<usize>()
        }
        Frame::Error { .. } => 2,
    }
}

/// The rules both ends enforce beyond the byte layout. The writer checks
/// them too, so a bug shows up where the bad frame is made.
fn check(frame: &Frame) -> Result<(), String> {
    let clean = |what: &str, bytes: &[u8]| {
        if bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            Err(format!("{what} contains CR, LF or NUL"))
        } else {
            Ok(())
        }
    };
    match frame {
        Frame::Request(h) => {
            if h.script.is_empty() || h.callable.is_empty() {
                return Err("a Request needs a script and a callable".into());
            }
            if h.environ.len() > MAX_ENVIRON_PAIRS {
                return Err(format!("a Request has {} environ pairs, above {MAX_ENVIRON_PAIRS}", h.environ.len()));
            }
            if h.environ.iter().any(|(k, _)| k.is_empty()) {
                return Err("a Request has an empty environ key".into());
            }
        }
        // An empty Body would be ambiguous with BodyEnd and could spin a reader.
        Frame::Body(data) if data.is_empty() => return Err("an empty Body (the end of the body is BodyEnd)".into()),
        Frame::Read(0) => return Err("Read(0) asks for nothing".into()),
        Frame::Head { status, status_line, headers } => {
            if !(100..=999).contains(status) {
                return Err(format!("Head status {status} is not three digits"));
            }
            clean("the status line", status_line)?;
            for (name, value) in headers {
                if name.is_empty() {
                    return Err("a header name is empty".into());
                }
                clean("a header name", name)?;
                clean("a header value", value)?;
            }
        }
        Frame::Error { status } if !(400..=599).contains(status) => {
            return Err(format!("Error status {status} is not an HTTP error status"));
        }
        _ => {}
    }
    Ok(())
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

fn header(kind: u8, len: usize) -> [u8; FRAME_HEADER_LEN] {
    let len = (len as u32).to_be_bytes();
    [kind, len[0], len[1], len[2], len[3]]
}

fn put_blob(out: &mut Vec<u8>, bytes: &[u8]) {
    // Lengths fit: the whole payload was checked against MAX_FRAME first.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Writes one frame with a single `write_all` (so a frame written straight
/// to a socket is never interleaved with another thread's).
pub fn write_frame<W: Write + ?Sized>(w: &mut W, frame: &Frame) -> io::Result<()> {
    check(frame).map_err(invalid)?;
    let len = payload_len(frame);
    let max = max_payload(kind_of(frame));
    if len > max {
        return Err(invalid(format!("a {} payload of {len} bytes is above {max}", kind_name(kind_of(frame)))));
    }
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + len);
    out.extend_from_slice(&header(kind_of(frame), len));
    match frame {
        Frame::Hello { version, nonce } => {
            out.push(*version);
            out.extend_from_slice(nonce);
        }
        Frame::Challenge { version, nonce, proof } => {
            out.push(*version);
            out.extend_from_slice(nonce);
            out.extend_from_slice(proof);
        }
        Frame::Proof { proof } => out.extend_from_slice(proof),
        Frame::Request(h) => {
            put_blob(&mut out, h.script.as_bytes());
            out.extend_from_slice(&h.script_mtime.to_be_bytes());
            put_blob(&mut out, h.callable.as_bytes());
            out.push(h.reloading as u8);
            put_blob(&mut out, h.application_group.as_bytes());
            out.extend_from_slice(&h.request_start_us.to_be_bytes());
            out.extend_from_slice(&(h.environ.len() as u32).to_be_bytes());
            for (key, value) in &h.environ {
                put_blob(&mut out, key.as_bytes());
                put_blob(&mut out, value);
            }
        }
        Frame::Body(data) | Frame::Data(data) => out.extend_from_slice(data),
        Frame::BodyEnd | Frame::End | Frame::Abort | Frame::Restart => {}
        Frame::Read(n) => out.extend_from_slice(&n.to_be_bytes()),
        Frame::Head { status, status_line, headers } => {
            out.extend_from_slice(&status.to_be_bytes());
            put_blob(&mut out, status_line);
            out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
            for (name, value) in headers {
                put_blob(&mut out, name);
                put_blob(&mut out, value);
            }
        }
        Frame::Error { status } => out.extend_from_slice(&status.to_be_bytes()),
    }
    debug_assert_eq!(out.len(), FRAME_HEADER_LEN + len);
    w.write_all(&out)
}

/// Writes a frame header and `payload` without copying large payloads.
fn write_raw<W: Write + ?Sized>(w: &mut W, kind: u8, payload: &[u8]) -> io::Result<()> {
    // Small pieces (the common streamed chunk) go out in one write.
    const SMALL: usize = 4096;
    if payload.len() <= SMALL {
        let mut buf = [0u8; FRAME_HEADER_LEN + SMALL];
        buf[..FRAME_HEADER_LEN].copy_from_slice(&header(kind, payload.len()));
        buf[FRAME_HEADER_LEN..FRAME_HEADER_LEN + payload.len()].copy_from_slice(payload);
        return w.write_all(&buf[..FRAME_HEADER_LEN + payload.len()]);
    }
    w.write_all(&header(kind, payload.len()))?;
    w.write_all(payload)
}

/// Writes response body bytes as `Data` frames straight from `data`, split
/// at [`MAX_DATA`]; an empty slice writes one empty `Data`.
pub fn write_data<W: Write + ?Sized>(w: &mut W, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return write_raw(w, DATA, data);
    }
    data.chunks(MAX_DATA).try_for_each(|chunk| write_raw(w, DATA, chunk))
}

/// Writes one `Body` frame straight from `data`, which must hold 1 to
/// [`MAX_DATA`] bytes (a `Read(n)` is answered by exactly one frame).
pub fn write_body<W: Write + ?Sized>(w: &mut W, data: &[u8]) -> io::Result<()> {
    if data.is_empty() || data.len() > MAX_DATA {
        return Err(invalid(format!("a Body must hold 1 to {MAX_DATA} bytes, not {}", data.len())));
    }
    write_raw(w, BODY, data)
}

/// Reads exactly one frame: never a byte of the next, which may already be
/// on the stream.
pub fn read_frame<R: Read + ?Sized>(r: &mut R, limits: &Limits) -> Result<Frame, ProtocolError> {
    let mut head = [0u8; FRAME_HEADER_LEN];
    let mut got = 0;
    while got < FRAME_HEADER_LEN {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Err(ProtocolError::Closed),
            Ok(0) => return Err(ProtocolError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ProtocolError::Io(e)),
        }
    }
    let (kind, len) = parse_header(&head, limits)?;
    // Grow with what actually arrives rather than trusting `len` up front.
    let mut payload = Vec::with_capacity(len.min(64 * 1024));
    (&mut *r).take(len as u64).read_to_end(&mut payload).map_err(ProtocolError::Io)?;
    if payload.len() < len {
        return Err(ProtocolError::Truncated);
    }
    finish_frame(kind, payload)
}

/// The kind and payload length a header declares, refused (before any of
/// the payload is read) when the kind is unknown or the length is not one
/// `limits` allow for it.
fn parse_header(head: &[u8; FRAME_HEADER_LEN], limits: &Limits) -> Result<(u8, usize), ProtocolError> {
    let kind = head[0];
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let (min, max) = match kind {
        HELLO => (1 + NONCE_LEN, 1 + NONCE_LEN),
        CHALLENGE => (MAX_HANDSHAKE_FRAME, MAX_HANDSHAKE_FRAME),
        PROOF => (PROOF_LEN, PROOF_LEN),
        REQUEST => (0, limits.max_request),
        HEAD => (0, limits.max_head),
        BODY | DATA => (0, max_payload(kind)),
        READ => (4, 4),
        ERROR => (2, 2),
        BODY_END | END | ABORT | RESTART => (0, 0),
        _ => return Err(ProtocolError::UnknownKind(kind)),
    };
    let max = max.min(limits.max_frame).min(MAX_FRAME);
    if len > max {
        return Err(ProtocolError::Oversize { kind, len, max });
    }
    if len < min {
        return Err(ProtocolError::Malformed(format!("a {} payload of {len} bytes is too short", kind_name(kind))));
    }
    Ok((kind, len))
}

fn finish_frame(kind: u8, payload: Vec<u8>) -> Result<Frame, ProtocolError> {
    let frame = decode(kind, payload)?;
    check(&frame).map_err(ProtocolError::Malformed)?;
    Ok(frame)
}

/// The largest payload a frame of `kind` may have.
fn max_payload(kind: u8) -> usize {
    match kind {
        BODY | DATA => MAX_DATA,
        _ => MAX_FRAME,
    }
}

/// One frame gathered from a non-blocking stream over as many reads as it
/// takes, never reading past its end. A daemon reads the handshake this
/// way, so a peer that sends part of a frame and stops holds no thread
/// while it waits.
#[derive(Default)]
pub struct PartialFrame {
    head: [u8; FRAME_HEADER_LEN],
    got: usize,
    /// The kind and length, once the header is complete and allowed.
    declared: Option<(u8, usize)>,
    payload: Vec<u8>,
}

impl PartialFrame {
    /// Reads what has arrived of the frame: `Ok(None)` when `r` would
    /// block before the frame is complete (call again when more arrives),
    /// else the frame. The header is checked against `limits` as soon as
    /// it is complete, so an oversized frame is refused unread.
    pub fn read_from<R: Read + ?Sized>(&mut self, r: &mut R, limits: &Limits) -> Result<Option<Frame>, ProtocolError> {
        let (kind, len) = loop {
            if let Some(declared) = self.declared {
                break declared;
            }
            match r.read(&mut self.head[self.got..]) {
                Ok(0) if self.got == 0 => return Err(ProtocolError::Closed),
                Ok(0) => return Err(ProtocolError::Truncated),
                Ok(n) => self.got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ProtocolError::Io(e)),
            }
            if self.got == FRAME_HEADER_LEN {
                self.declared = Some(parse_header(&self.head, limits)?);
            }
        };
        let missing = (len - self.payload.len()) as u64;
        match (&mut *r).take(missing).read_to_end(&mut self.payload) {
            // read_to_end keeps what it read before the error.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(ProtocolError::Io(e)),
            Ok(_) if self.payload.len() < len => return Err(ProtocolError::Truncated),
            Ok(_) => {}
        }
        let payload = std::mem::take(self).payload;
        finish_frame(kind, payload).map(Some)
    }
}

/// A cursor over one complete payload; running off its end is a malformed
/// payload (the frame itself arrived whole).
struct Payload<'a> {
    rest: &'a [u8],
    kind: u8,
}

impl<'a> Payload<'a> {
    fn malformed(&self, why: &str) -> ProtocolError {
        ProtocolError::Malformed(format!("{} payload: {why}", kind_name(self.kind)))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if n > self.rest.len() {
            return Err(self.malformed("ends early"));
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        self.array().map(u32::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, ProtocolError> {
        self.array().map(i64::from_be_bytes)
    }

    fn bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn string(&mut self, what: &str) -> Result<String, ProtocolError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.malformed(&format!("{what} is not UTF-8")))
    }

    /// A count of items each at least `min_item` bytes long, refused when
    /// the rest of the payload could not hold them (bounds the allocation).
    fn count(&mut self, min_item: usize, cap: usize) -> Result<usize, ProtocolError> {
        let n = self.u32()? as usize;
        if n > cap || n.saturating_mul(min_item) > self.rest.len() {
            return Err(self.malformed(&format!("count {n} does not fit")));
        }
        Ok(n)
    }

    fn finish<T>(self, value: T) -> Result<T, ProtocolError> {
        if !self.rest.is_empty() {
            return Err(self.malformed(&format!("{} bytes left over", self.rest.len())));
        }
        Ok(value)
    }
}

fn decode(kind: u8, payload: Vec<u8>) -> Result<Frame, ProtocolError> {
    // Body bytes are the payload itself: moved, not copied.
    match kind {
        BODY => return Ok(Frame::Body(payload)),
        DATA => return Ok(Frame::Data(payload)),
        _ => {}
    }
    let mut p = Payload { rest: &payload, kind };
    let frame = match kind {
        HELLO => Frame::Hello { version: p.array::<1>()?[0], nonce: p.array()? },
        CHALLENGE => Frame::Challenge { version: p.array::<1>()?[0], nonce: p.array()?, proof: p.array()? },
        PROOF => Frame::Proof { proof: p.array()? },
        REQUEST => {
            let script = p.string("the script path")?;
            let script_mtime = p.i64()?;
            let callable = p.string("the callable name")?;
            let reloading = match p.array::<1>()?[0] {
                0 => false,
                1 => true,
                _ => return Err(p.malformed("the reloading flag is not 0 or 1")),
            };
            let application_group = p.string("the application group")?;
            let request_start_us = p.i64()?;
            let pairs = p.count(8, MAX_ENVIRON_PAIRS)?;
            let mut environ = Vec::with_capacity(pairs);
            for _ in 0..pairs {
                let key = p.string("an environ key")?;
                environ.push((key, p.bytes()?.to_vec()));
            }
            Frame::Request(RequestHead {
                script,
                script_mtime,
                callable,
                reloading,
                application_group,
                request_start_us,
                environ,
            })
        }
        BODY_END => Frame::BodyEnd,
        END => Frame::End,
        ABORT => Frame::Abort,
        RESTART => Frame::Restart,
        READ => Frame::Read(p.u32()?),
        ERROR => Frame::Error { status: p.array().map(u16::from_be_bytes)? },
        HEAD => {
            let status = p.array().map(u16::from_be_bytes)?;
            let status_line = p.bytes()?.to_vec();
            let count = p.count(8, usize::MAX)?;
            let mut headers = Vec::with_capacity(count);
            for _ in 0..count {
                let name = p.bytes()?.to_vec();
                headers.push((name, p.bytes()?.to_vec()));
            }
            Frame::Head { status, status_line, headers }
        }
        _ => return Err(ProtocolError::UnknownKind(kind)),
    };
    p.finish(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn request() -> RequestHead {
        RequestHead {
            script: "/srv/app/app.wsgi".into(),
            script_mtime: 1_700_000_000,
            callable: "application".into(),
            reloading: true,
            application_group: String::new(),
            request_start_us: -5,
            environ: vec![
                ("REQUEST_METHOD".into(), b"GET".to_vec()),
                ("HTTP_X_RAW".into(), vec![0xff, 0, b'\r']),
                ("EMPTY".into(), Vec::new()),
            ],
        }
    }

    #[test]
    fn environ_value_is_the_last_entry() {
        let mut head = request();
        assert_eq!(head.environ_value("REQUEST_METHOD"), Some(&b"GET"[..]));
        assert_eq!(head.environ_value("EMPTY"), Some(&b""[..]));
        assert_eq!(head.environ_value("SCRIPT_FILENAME"), None);
        head.environ.push(("REQUEST_METHOD".into(), b"POST".to_vec()));
        assert_eq!(head.environ_value("REQUEST_METHOD"), Some(&b"POST"[..]));
    }

    fn head() -> Frame {
        Frame::Head {
            status: 200,
            status_line: b"200 OK".to_vec(),
            headers: vec![(b"Content-Type".to_vec(), b"text/plain".to_vec()), (b"X-Empty".to_vec(), Vec::new())],
        }
    }

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::Hello { version: PROTOCOL_VERSION, nonce: [7; NONCE_LEN] },
            Frame::Challenge { version: PROTOCOL_VERSION, nonce: [8; NONCE_LEN], proof: [9; PROOF_LEN] },
            Frame::Proof { proof: [10; PROOF_LEN] },
            Frame::Request(request()),
            Frame::Request(RequestHead { environ: Vec::new(), ..request() }),
            Frame::Body(b"some body".to_vec()),
            Frame::BodyEnd,
            Frame::Read(65536),
            head(),
            Frame::Head { status: 204, status_line: b"204 No Content".to_vec(), headers: Vec::new() },
            Frame::Data(b"chunk".to_vec()),
            Frame::Data(Vec::new()),
            Frame::End,
            Frame::Abort,
            Frame::Error { status: 504 },
            Frame::Restart,
        ]
    }

    fn encode(frame: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, frame).unwrap();
        out
    }

    fn read(bytes: &[u8]) -> Result<Frame, ProtocolError> {
        read_frame(&mut Cursor::new(bytes), &Limits::default())
    }

    /// Replaces the one occurrence of `marker` in `bytes` with `with`.
    fn patch(bytes: &mut [u8], marker: &[u8], with: &[u8]) {
        let at = bytes.windows(marker.len()).position(|w| w == marker).expect("marker present");
        bytes[at..at + with.len()].copy_from_slice(with);
    }

    #[test]
    fn every_kind_round_trips() {
        for frame in all_frames() {
            let bytes = encode(&frame);
            assert_eq!(bytes.len(), FRAME_HEADER_LEN + payload_len(&frame), "{frame:?}");
            let mut cursor = Cursor::new(&bytes[..]);
            assert_eq!(read_frame(&mut cursor, &Limits::default()).unwrap(), frame);
            assert_eq!(cursor.position() as usize, bytes.len());
        }
    }

    #[test]
    fn zero_copy_writers_match_frames() {
        for size in [0, 1, 4096, 4097, 100_000] {
            let data = vec![b'x'; size];
            let mut out = Vec::new();
            write_data(&mut out, &data).unwrap();
            assert_eq!(out, encode(&Frame::Data(data.clone())), "{size}");
            if size > 0 {
                let mut out = Vec::new();
                write_body(&mut out, &data).unwrap();
                assert_eq!(out, encode(&Frame::Body(data)));
            }
        }
        assert_eq!(write_body(&mut Vec::new(), b"").unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let most = vec![2u8; MAX_DATA];
        let mut out = Vec::new();
        write_body(&mut out, &most).unwrap();
        assert_eq!(read(&out).unwrap(), Frame::Body(most));
        let big = vec![1u8; MAX_DATA + 10];
        assert!(write_body(&mut Vec::new(), &big).is_err());
        assert!(write_frame(&mut Vec::new(), &Frame::Data(big.clone())).is_err());
        assert!(write_frame(&mut Vec::new(), &Frame::Body(big.clone())).is_err());
        // A chunk as large as a frame may be is split into Data frames of
        // at most MAX_DATA, so a reader never holds more than that of it.
        let huge = vec![3u8; 2 * MAX_DATA + 10];
        let mut out = Vec::new();
        write_data(&mut out, &huge).unwrap();
        let mut cursor = Cursor::new(&out[..]);
        for expected in [MAX_DATA, MAX_DATA, 10] {
            assert_eq!(read_frame(&mut cursor, &Limits::default()).unwrap(), Frame::Data(vec![3; expected]));
        }
        assert!(matches!(read_frame(&mut cursor, &Limits::default()), Err(ProtocolError::Closed)));
    }

    /// Hands out one byte per read, with a `gap` error before each: EINTR
    /// to show that short reads are resumed and the reader stops exactly at
    /// frame ends, WouldBlock for a non-blocking socket whose peer sends
    /// slowly.
    struct Trickle<'a> {
        bytes: &'a [u8],
        pos: usize,
        gap: io::ErrorKind,
        gap_next: bool,
    }

    impl<'a> Trickle<'a> {
        fn new(bytes: &'a [u8], gap: io::ErrorKind) -> Self {
            Trickle { bytes, pos: 0, gap, gap_next: false }
        }
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.gap_next = !self.gap_next;
            if self.gap_next {
                return Err(self.gap.into());
            }
            if buf.is_empty() || self.pos == self.bytes.len() {
                return Ok(0);
            }
            buf[0] = self.bytes[self.pos];
            self.pos += 1;
            Ok(1)
        }
    }

    #[test]
    fn frames_back_to_back_are_read_one_at_a_time() {
        let frames = all_frames();
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for frame in &frames {
            write_frame(&mut stream, frame).unwrap();
            ends.push(stream.len());
        }
        let mut cursor = Cursor::new(&stream[..]);
        for (frame, end) in frames.iter().zip(&ends) {
            assert_eq!(&read_frame(&mut cursor, &Limits::default()).unwrap(), frame);
            assert_eq!(cursor.position() as usize, *end, "read past the end of {frame:?}");
        }
        assert!(matches!(read_frame(&mut cursor, &Limits::default()), Err(ProtocolError::Closed)));

        let mut trickle = Trickle::new(&stream, io::ErrorKind::Interrupted);
        for (frame, end) in frames.iter().zip(&ends) {
            assert_eq!(&read_frame(&mut trickle, &Limits::default()).unwrap(), frame);
            assert_eq!(trickle.pos, *end);
        }
        assert!(matches!(read_frame(&mut trickle, &Limits::default()), Err(ProtocolError::Closed)));
    }

    #[test]
    fn truncation_anywhere_is_reported() {
        assert!(matches!(read(b""), Err(ProtocolError::Closed)));
        for frame in all_frames() {
            let bytes = encode(&frame);
            for cut in 1..bytes.len() {
                match read(&bytes[..cut]) {
                    Err(ProtocolError::Truncated) => {}
                    other => panic!("{frame:?} cut at {cut}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn oversize_is_refused_before_reading_the_payload() {
        // Only the header is present: a Truncated error would mean the reader
        // went on to read (and size a buffer for) the payload.
        let huge = header(DATA, MAX_DATA + 1);
        assert!(matches!(read(&huge), Err(ProtocolError::Oversize { kind: DATA, max: MAX_DATA, .. })));
        assert!(matches!(read(&header(BODY, MAX_DATA + 1)), Err(ProtocolError::Oversize { kind: BODY, max: MAX_DATA, .. })));
        let all = [DATA, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(read(&all), Err(ProtocolError::Oversize { len: 0xffff_ffff, .. })));
        let tight = Limits { max_head: 20, max_request: 50, max_frame: MAX_FRAME };
        let head_bytes = encode(&head());
        match read_frame(&mut Cursor::new(&head_bytes[..]), &tight) {
            Err(ProtocolError::Oversize { kind: HEAD, max: 20, len }) => assert_eq!(len, payload_len(&head())),
            other => panic!("{other:?}"),
        }
        let request_bytes = encode(&Frame::Request(request()));
        assert!(matches!(read_frame(&mut Cursor::new(&request_bytes[..]), &tight), Err(ProtocolError::Oversize { .. })));
        assert!(matches!(read(&header(READ, 5)), Err(ProtocolError::Oversize { .. })));
        assert!(matches!(read(&header(END, 1)), Err(ProtocolError::Oversize { .. })));
        assert!(matches!(read(&header(HELLO, 2)), Err(ProtocolError::Malformed(_))));
        assert!(matches!(read(&header(PROOF, PROOF_LEN + 1)), Err(ProtocolError::Oversize { .. })));
    }

    #[test]
    fn handshake_limits_refuse_everything_but_handshake_frames_on_their_header() {
        let limits = Limits::handshake();
        for frame in all_frames() {
            let bytes = encode(&frame);
            let len = payload_len(&frame);
            // Frames no larger than a Challenge pass the size check (the
            // handshake then refuses their kind); requests and heads never do.
            let small = len <= MAX_HANDSHAKE_FRAME && !matches!(frame, Frame::Request(_) | Frame::Head { .. });
            // Only the header: a frame that is let through wants its payload.
            match read_frame(&mut Cursor::new(&bytes[..FRAME_HEADER_LEN]), &limits) {
                Err(ProtocolError::Truncated) => assert!(small && len > 0, "{frame:?} was let through"),
                Err(ProtocolError::Oversize { .. }) => assert!(!small, "{frame:?}"),
                Ok(_) => assert_eq!(len, 0, "{frame:?}"),
                other => panic!("{frame:?}: {other:?}"),
            }
        }
        // A Request declaring 16 MiB, or 4 GiB, is refused on its header.
        for len in [MAX_FRAME, u32::MAX as usize] {
            assert!(matches!(read_frame(&mut Cursor::new(&header(REQUEST, len)[..]), &limits), Err(ProtocolError::Oversize { kind: REQUEST, max: 0, .. })));
        }
        assert!(matches!(read_frame(&mut Cursor::new(&header(DATA, 1000)[..]), &limits), Err(ProtocolError::Oversize { max: MAX_HANDSHAKE_FRAME, .. })));
    }

    #[test]
    fn partial_frames_resume_and_stop_at_the_frame_end() {
        let hello = Frame::Hello { version: PROTOCOL_VERSION, nonce: [3; NONCE_LEN] };
        let proof = Frame::Proof { proof: [4; PROOF_LEN] };
        let stream = [encode(&hello), encode(&proof), encode(&Frame::Request(request()))].concat();
        let mut r = Trickle::new(&stream, io::ErrorKind::WouldBlock);
        let mut partial = PartialFrame::default();
        let limits = Limits::handshake();
        let mut next = |r: &mut Trickle| {
            let mut waits = 0;
            loop {
                match partial.read_from(r, &limits) {
                    Ok(None) => waits += 1,
                    done => return (done, waits),
                }
            }
        };
        let (first, waits) = next(&mut r);
        assert_eq!(first.unwrap(), Some(hello.clone()));
        assert_eq!((r.pos, waits), (FRAME_HEADER_LEN + payload_len(&hello), r.pos));
        assert_eq!(next(&mut r).0.unwrap(), Some(proof.clone()));
        // Nothing of the Request behind it was read...
        let request_at = r.pos;
        assert_eq!(request_at, 2 * FRAME_HEADER_LEN + payload_len(&hello) + payload_len(&proof));
        // ...and under the handshake limits it is refused on its header.
        let (refused, _) = next(&mut r);
        assert!(matches!(refused, Err(ProtocolError::Oversize { kind: REQUEST, .. })), "{refused:?}");
        assert_eq!(r.pos, request_at + FRAME_HEADER_LEN, "read past the header");
    }

    #[test]
    fn partial_frame_reports_the_end_of_the_stream() {
        let limits = Limits::handshake();
        assert!(matches!(PartialFrame::default().read_from(&mut Cursor::new(&b""[..]), &limits), Err(ProtocolError::Closed)));
        let hello = encode(&Frame::Hello { version: PROTOCOL_VERSION, nonce: [3; NONCE_LEN] });
        for cut in [1, FRAME_HEADER_LEN, hello.len() - 1] {
            let got = PartialFrame::default().read_from(&mut Cursor::new(&hello[..cut]), &limits);
            assert!(matches!(got, Err(ProtocolError::Truncated)), "{cut}: {got:?}");
        }
    }

    #[test]
    fn unknown_kinds_and_bad_payloads() {
        for kind in [0x00, 0x06, 0x0f, 0x18, 0xee] {
            assert!(matches!(read(&header(kind, 0)), Err(ProtocolError::UnknownKind(k)) if k == kind));
        }
        // A payload longer than its contents.
        let mut bytes = encode(&Frame::Read(1));
        bytes[4] += 1;
        bytes.push(0);
        assert!(matches!(read(&bytes), Err(ProtocolError::Oversize { .. })));
        let mut bytes = encode(&head());
        bytes[4] += 1;
        bytes.push(0);
        assert!(read(&bytes).unwrap_err().to_string().contains("left over"));
        let mut bytes = encode(&Frame::Request(request()));
        patch(&mut bytes, b"\x00\x00\x00\x03", b"\x00\x01\x00\x00");
        assert!(matches!(read(&bytes), Err(ProtocolError::Malformed(_))));
        // Well-formed bytes that break the rules.
        let raw = |kind: u8, payload: &[u8]| [&header(kind, payload.len())[..], payload].concat();
        for (bad, bytes) in [
            (Frame::Read(0), raw(READ, &[0; 4])),
            (Frame::Error { status: 200 }, raw(ERROR, &[0, 200])),
            (Frame::Body(Vec::new()), raw(BODY, &[])),
        ] {
            assert!(matches!(read(&bytes), Err(ProtocolError::Malformed(_))), "{bad:?}");
            assert_eq!(write_frame(&mut Vec::new(), &bad).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
    }

    /// A Request frame built by hand, to get bytes the writer would refuse.
    fn raw_request(reloading: u8, pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut p = Vec::new();
        put_blob(&mut p, b"/srv/app.wsgi");
        p.extend_from_slice(&0i64.to_be_bytes());
        put_blob(&mut p, b"application");
        p.push(reloading);
        put_blob(&mut p, b"");
        p.extend_from_slice(&0i64.to_be_bytes());
        p.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
        for (key, value) in pairs {
            put_blob(&mut p, key);
            put_blob(&mut p, value);
        }
        [&header(REQUEST, p.len())[..], &p].concat()
    }

    #[test]
    fn request_rules() {
        assert!(matches!(read(&raw_request(1, &[(b"KEY", b"\xff\r\n")])), Ok(Frame::Request(h)) if h.reloading));
        let err = read(&raw_request(0, &[(b"KEY\xff", b"")])).unwrap_err();
        assert!(err.to_string().contains("environ key is not UTF-8"), "{err}");
        let err = read(&raw_request(0, &[(b"", b"v")])).unwrap_err();
        assert!(err.to_string().contains("empty environ key"), "{err}");
        let err = read(&raw_request(2, &[])).unwrap_err();
        assert!(err.to_string().contains("reloading flag"), "{err}");
        let mut bytes = encode(&Frame::Request(request()));
        patch(&mut bytes, b"\x00\x00\x00\x03\x00\x00\x00\x0eREQUEST", b"\x00\x00\x10\x01");
        assert!(read(&bytes).unwrap_err().to_string().contains("count"));

        for bad in [
            RequestHead { environ: vec![(String::new(), Vec::new())], ..request() },
            RequestHead { script: String::new(), ..request() },
            RequestHead { callable: String::new(), ..request() },
            RequestHead { environ: vec![("K".into(), Vec::new()); MAX_ENVIRON_PAIRS + 1], ..request() },
        ] {
            assert_eq!(write_frame(&mut Vec::new(), &Frame::Request(bad)).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        let most = RequestHead { environ: vec![("K".into(), Vec::new()); MAX_ENVIRON_PAIRS], ..request() };
        assert_eq!(read(&encode(&Frame::Request(most.clone()))).unwrap(), Frame::Request(most));
    }

    #[test]
    fn head_rules() {
        for (marker, with) in [(&b"200 OK"[..], &b"200\rOK"[..]), (b"text/plain", b"text\nplain"), (b"Content-Type", b"Content\0Type")] {
            let mut bytes = encode(&head());
            patch(&mut bytes, marker, with);
            let err = read(&bytes).unwrap_err();
            assert!(err.to_string().contains("CR, LF or NUL"), "{err}");
        }
        let bad_heads = [
            Frame::Head { status: 200, status_line: b"200 OK\r\nX: y".to_vec(), headers: Vec::new() },
            Frame::Head { status: 200, status_line: b"200 OK".to_vec(), headers: vec![(b"X".to_vec(), b"a\nb".to_vec())] },
            Frame::Head { status: 200, status_line: b"200 OK".to_vec(), headers: vec![(Vec::new(), b"v".to_vec())] },
            Frame::Head { status: 99, status_line: b"99 Odd".to_vec(), headers: Vec::new() },
        ];
        for bad in bad_heads {
            assert_eq!(write_frame(&mut Vec::new(), &bad).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        let mut bytes = encode(&head());
        patch(&mut bytes, b"\x00\xc8", b"\x03\xe8");
        assert!(read(&bytes).unwrap_err().to_string().contains("1000"));
    }

    struct Failing(io::ErrorKind);

    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(self.0.into())
        }
    }

    #[test]
    fn io_errors_keep_their_kind() {
        let timeout = read_frame(&mut Failing(io::ErrorKind::WouldBlock), &Limits::default()).unwrap_err();
        assert!(timeout.is_timeout() && timeout.io_kind() == Some(io::ErrorKind::WouldBlock));
        assert!(read_frame(&mut Failing(io::ErrorKind::TimedOut), &Limits::default()).unwrap_err().is_timeout());
        let reset = read_frame(&mut Failing(io::ErrorKind::ConnectionReset), &Limits::default()).unwrap_err();
        assert!(!reset.is_timeout() && reset.io_kind() == Some(io::ErrorKind::ConnectionReset));
        assert!(std::error::Error::source(&reset).is_some());
        // A timeout inside the payload is still an I/O error, not truncation.
        let bytes = encode(&Frame::Data(b"abc".to_vec()));
        let mut chained = Cursor::new(&bytes[..FRAME_HEADER_LEN]).chain(Failing(io::ErrorKind::WouldBlock));
        assert!(read_frame(&mut chained, &Limits::default()).unwrap_err().is_timeout());
        assert!(ProtocolError::Truncated.io_kind().is_none());
    }

    #[test]
    fn disconnects_are_told_from_refused_frames() {
        assert!(ProtocolError::Closed.is_disconnect() && ProtocolError::Truncated.is_disconnect());
        for kind in [io::ErrorKind::ConnectionReset, io::ErrorKind::ConnectionAborted, io::ErrorKind::BrokenPipe] {
            assert!(read_frame(&mut Failing(kind), &Limits::default()).unwrap_err().is_disconnect(), "{kind:?}");
        }
        assert!(!read_frame(&mut Failing(io::ErrorKind::WouldBlock), &Limits::default()).unwrap_err().is_disconnect());
        // An oversized or malformed frame is the peer's doing, not a hang-up.
        let tight = Limits { max_head: 20, max_request: 50, max_frame: MAX_FRAME };
        let oversized = read_frame(&mut Cursor::new(&encode(&head())[..]), &tight).unwrap_err();
        assert!(!oversized.is_disconnect(), "{oversized}");
        assert!(!read(&header(0xee, 0)).unwrap_err().is_disconnect());
        assert!(!read(&header(READ, 5)).unwrap_err().is_disconnect());
    }

    #[test]
    fn debug_hides_secrets() {
        for frame in [
            Frame::Hello { version: 2, nonce: [0xab; NONCE_LEN] },
            Frame::Challenge { version: 2, nonce: [0xab; NONCE_LEN], proof: [0xab; PROOF_LEN] },
            Frame::Proof { proof: [0xab; PROOF_LEN] },
        ] {
            let shown = format!("{frame:?}");
            assert!(shown.contains("redacted") && !shown.contains("171") && !shown.to_lowercase().contains("ab,"), "{shown}");
        }
        let request = format!("{:?}", Frame::Request(request()));
        assert!(request.contains("HTTP_X_RAW") && !request.contains("GET"), "{request}");
        assert_eq!(format!("{:?}", Frame::Data(vec![0; 3])), "Data(3 bytes)");
    }

    /// A tiny LCG (Knuth's MMIX constants) so the fuzz loops need no crate.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u8 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 56) as u8
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Lcg(0x5eed);
        let kinds = [HELLO, CHALLENGE, PROOF, REQUEST, BODY, BODY_END, READ, HEAD, DATA, END, ABORT, ERROR, RESTART];
        for _ in 0..20_000 {
            let len = rng.next() as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next()).collect();
            // Steer most inputs to plausible headers so payload decoding runs.
            if bytes.len() >= FRAME_HEADER_LEN && rng.next() < 200 {
                bytes[0] = kinds[rng.next() as usize % kinds.len()];
                let body = (bytes.len() - FRAME_HEADER_LEN) as u32;
                let claimed = if rng.next() < 220 { body } else { body.wrapping_add(rng.next() as u32) };
                bytes[1..5].copy_from_slice(&claimed.to_be_bytes());
            }
            let mut cursor = Cursor::new(&bytes[..]);
            while read_frame(&mut cursor, &Limits::default()).is_ok() {}
        }
        // Mutations of valid frames reach deeper into the decoders.
        let frames = all_frames();
        for round in 0..20_000 {
            let mut bytes = encode(&frames[round % frames.len()]);
            for _ in 0..=(rng.next() % 4) {
                let at = rng.next() as usize % bytes.len();
                bytes[at] = rng.next();
            }
            if let Ok(frame) = read(&bytes) {
                // Anything accepted must survive a second trip unchanged.
                assert_eq!(read(&encode(&frame)).unwrap(), frame);
            }
        }
    }
}
