//! One connection from an Apache child as a daemon holds it: the stream,
//! the handshake until the child has proved itself, the buffered reader
//! its frames then come through (each under a deadline), whether it is
//! registered with epoll or out of step, and the current request's
//! response on its way out.
use std::io::{BufReader, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use wsgi_core::deadline::DeadlineReader;
use wsgi_core::handshake::DaemonHandshake;
use wsgi_core::protocol::{self, Frame, Limits, PartialFrame, ProtocolError, SECRET_LEN};

/// One connection from an Apache child, reused across requests.
pub struct Connection {
    pub stream: Arc<UnixStream>,
    /// Frames from the authenticated child, read through one buffer for
    /// the connection's life.
    reader: Mutex<BufReader<DeadlineReader<Arc<UnixStream>>>>,
    /// How long the child may take to send one whole frame (socket-timeout).
    frame_timeout: Duration,
    /// The handshake so far, and the frame being gathered for it.
    opening: Mutex<(DaemonHandshake, PartialFrame)>,
    authenticated: AtomicBool,
    /// When it was accepted: the handshake has a deadline from then.
    pub(super) accepted: Instant,
    /// The child's pid (SO_PEERCRED), which the handshake's proofs cover.
    pub(super) peer_pid: u32,
    /// When it was last parked idle, to close the least recently used.
    idle_since: Mutex<Instant>,
    /// Whether the socket is in the epoll set (add once, then modify).
    pub registered: AtomicBool,
    /// Set when a write or read failed: the stream is out of step.
    pub(super) broken: AtomicBool,
    /// The current request's response; shared with the monitor thread,
    /// which may answer for a stuck request. Never held during a write.
    reply: Mutex<Reply>,
    /// Serialises whole frames between the worker and the monitor thread.
    writing: Mutex<()>,
}

/// The current request's response on its way out. Frames wait in `pending`
/// so that a small response leaves in one write: the head until the first
/// body bytes, and `End` until the app's call (its iterable's `close()`
/// included) has returned, since nothing may follow `End` on the connection.
#[derive(Default)]
struct Reply {
    pending: Vec<u8>,
    /// `pending` holds the head.
    head_pending: bool,
    /// The head has gone out (or is going out).
    head_out: bool,
    /// The app's response is complete: `End` is due, and no more body.
    ended: bool,
    /// The response is over already: cut short with `Abort`, answered with
    /// `Error`, or taken over by the monitor. Nothing more goes out.
    closed: bool,
}

/// Where a connection's handshake stands.
pub(super) enum Handshake {
    /// The next frame has not (fully) arrived.
    Waiting,
    Authenticated,
    /// The peer went away.
    Gone,
    /// The peer failed the handshake or broke the protocol: why.
    Refused(String),
}

/// Locks `m`, also after a panic elsewhere left it poisoned.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a part of the response was not sent.
#[derive(Debug)]
pub(super) enum ReplyError {
    /// The app's response was already complete.
    Ended,
    /// The response is over (cut short, or answered by the monitor).
    Closed,
    /// The write failed: the child went away, or the stream is stuck.
    Failed,
}

impl Connection {
    pub fn new(stream: UnixStream, peer_pid: u32, frame_timeout: Duration) -> std::io::Result<Self> {
        // Until the child is authenticated its frames are gathered without
        // blocking, so a peer that sends part of one holds no thread.
        stream.set_nonblocking(true)?;
        let stream = Arc::new(stream);
        let now = Instant::now();
        // Small: request frames are small, and a large Body bypasses it.
        let reader = Mutex::new(BufReader::with_capacity(8 * 1024, DeadlineReader::new(stream.clone(), now)));
        Ok(Connection {
            stream,
            reader,
            frame_timeout,
            opening: Mutex::new(Default::default()),
            authenticated: AtomicBool::new(false),
            accepted: now,
            peer_pid,
            idle_since: Mutex::new(now),
            registered: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            reply: Mutex::new(Reply::default()),
            writing: Mutex::new(()),
        })
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::SeqCst)
    }

    /// Reads the handshake frames that have arrived, byte-exact (the
    /// child's first Request may follow its proof at once), and answers
    /// them. Only handshake frames are accepted: anything larger is refused
    /// on its header.
    pub(super) fn continue_handshake(&self, secret: &[u8; SECRET_LEN], group: &str) -> Handshake {
        let mut opening = lock(&self.opening);
        let (handshake, partial) = &mut *opening;
        loop {
            let frame = match partial.read_from(&mut &*self.stream, &Limits::handshake()) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Handshake::Waiting,
                Err(ProtocolError::Closed | ProtocolError::Truncated | ProtocolError::Io(_)) => return Handshake::Gone,
                Err(e) => return Handshake::Refused(format!("{e} before authenticating")),
            };
            match handshake.step(secret, group, self.peer_pid, frame) {
                Ok(Some(answer)) => {
                    if self.send(&answer).is_err() {
                        return Handshake::Gone;
                    }
                }
                Ok(None) => {
                    // From now on frames are read blocking, each under
                    // socket-timeout.
                    if self.stream.set_nonblocking(false).is_err() {
                        return Handshake::Gone;
                    }
                    self.authenticated.store(true, Ordering::SeqCst);
                    return Handshake::Authenticated;
                }
                Err(e) => return Handshake::Refused(e.to_string()),
            }
        }
    }

    /// Reads the next frame from the authenticated child; the whole frame
    /// must arrive within socket-timeout.
    pub fn read_frame(&self, limits: &Limits) -> Result<Frame, protocol::ProtocolError> {
        let mut reader = lock(&self.reader);
        reader.get_mut().set_deadline(Instant::now() + self.frame_timeout);
        let read = protocol::read_frame(&mut *reader, limits);
        if read.is_err() {
            self.broken.store(true, Ordering::SeqCst);
        }
        read
    }

    pub(super) fn mark_idle(&self) {
        *lock(&self.idle_since) = Instant::now();
    }

    pub(super) fn idle_since(&self) -> Instant {
        *lock(&self.idle_since)
    }

    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// Writes whole frames (`encoded`, then `data` as Data frames if any);
    /// a failure marks the connection broken.
    pub(super) fn send_raw(&self, encoded: &[u8], data: Option<&[u8]>) -> std::io::Result<()> {
        let _whole = lock(&self.writing);
        let mut w: &UnixStream = &self.stream;
        let mut sent = w.write_all(encoded);
        if let (Ok(()), Some(data)) = (&sent, data) {
            sent = protocol::write_data(&mut w, data);
        }
        if sent.is_err() {
            self.broken.store(true, Ordering::SeqCst);
        }
        sent
    }

    pub fn send(&self, frame: &Frame) -> std::io::Result<()> {
        let mut encoded = Vec::new();
        protocol::write_frame(&mut encoded, frame)?;
        self.send_raw(&encoded, None)
    }

    fn reply(&self) -> MutexGuard<'_, Reply> {
        lock(&self.reply)
    }

    /// A new request: nothing of its response is out yet.
    pub(super) fn start_reply(&self) {
        *self.reply() = Reply::default();
    }

    /// Queues the head: it leaves with the first body bytes or with `End`.
    pub(super) fn queue_head(&self, head: &Frame) -> Result<(), ReplyError> {
        let mut reply = self.open_reply()?;
        protocol::write_frame(&mut reply.pending, head).map_err(|_| ReplyError::Failed)?;
        reply.head_pending = true;
        Ok(())
    }

    /// Sends what is queued plus `data` as Data frames (small data is
    /// copied behind the queue, so both go out in one write). With
    /// `completes` this is the app's last chunk: `End` is due, and a small
    /// chunk waits to leave with it.
    pub(super) fn send_body(&self, data: &[u8], completes: bool) -> Result<(), ReplyError> {
        const COALESCE: usize = 64 * 1024;
        let mut reply = self.open_body()?;
        reply.ended = completes;
        if data.len() > COALESCE {
            return self.flush(reply, Some(data));
        }
        protocol::write_data(&mut reply.pending, data).map_err(|_| ReplyError::Failed)?;
        if completes {
            return Ok(());
        }
        self.flush(reply, None)
    }

    /// The app's response is complete: `End` goes out once its call returns.
    pub(super) fn end_body(&self) -> Result<(), ReplyError> {
        self.open_body()?.ended = true;
        Ok(())
    }

    /// Asks the child for up to `want` body bytes (what is queued goes
    /// first). Allowed until `End` is out, so an iterable's `close()` may
    /// still read the input, as in embedded mode.
    pub(super) fn request_body(&self, want: u32) -> Result<(), ReplyError> {
        let mut reply = self.open_reply()?;
        protocol::write_frame(&mut reply.pending, &Frame::Read(want)).map_err(|_| ReplyError::Failed)?;
        self.flush(reply, None)
    }

    /// Cuts short a response whose head is out; refused once it is complete.
    pub(super) fn abort_body(&self) -> Result<(), ReplyError> {
        let reply = self.open_body()?;
        self.close_with(reply, &Frame::Abort)
    }

    /// Answers a request that produced no head with `status`, unless the
    /// monitor already answered for it.
    pub(super) fn answer_error(&self, status: u16) -> Result<(), ReplyError> {
        let mut reply = self.open_reply()?;
        if reply.head_out {
            return Err(ReplyError::Closed);
        }
        reply.pending.clear();
        reply.head_pending = false;
        self.close_with(reply, &Frame::Error { status })
    }

    /// After the app's call has returned: sends what is queued and `End`,
    /// unless the response is already over. `Ok` means the connection is in
    /// step for the next request.
    pub(super) fn finish_reply(&self) -> Result<(), ReplyError> {
        let reply = self.reply();
        if reply.closed {
            return if self.is_broken() { Err(ReplyError::Closed) } else { Ok(()) };
        }
        self.close_with(reply, &Frame::End)
    }

    /// The reply lock, if the response is not over yet.
    fn open_reply(&self) -> Result<MutexGuard<'_, Reply>, ReplyError> {
        let reply = self.reply();
        if reply.closed {
            // Cut short, or the monitor answered for the request.
            return Err(ReplyError::Closed);
        }
        Ok(reply)
    }

    /// The reply lock, if the app's response may still grow.
    fn open_body(&self) -> Result<MutexGuard<'_, Reply>, ReplyError> {
        let reply = self.open_reply()?;
        if reply.ended {
            return Err(ReplyError::Ended);
        }
        Ok(reply)
    }

    /// Sends what is queued and then `last`, the response's final frame.
    fn close_with(&self, mut reply: MutexGuard<'_, Reply>, last: &Frame) -> Result<(), ReplyError> {
        protocol::write_frame(&mut reply.pending, last).map_err(|_| ReplyError::Failed)?;
        reply.closed = true;
        self.flush(reply, None)
    }

    /// Writes the queue and then `data`. The caller checked the state under
    /// the lock; the write itself happens without it, so the monitor is
    /// never stuck behind a slow child.
    fn flush(&self, mut reply: MutexGuard<'_, Reply>, data: Option<&[u8]>) -> Result<(), ReplyError> {
        reply.head_out |= std::mem::take(&mut reply.head_pending);
        let mut queued = std::mem::take(&mut reply.pending);
        drop(reply);
        let sent = self.send_raw(&queued, data).map_err(|_| ReplyError::Failed);
        queued.clear();
        let mut reply = self.reply();
        if reply.pending.is_empty() {
            // Keep the buffer for the next frames of this response.
            reply.pending = queued;
        }
        sent
    }

    /// Answers a stuck request with `status` (if its head has not gone out)
    /// and retires the connection: the worker may still try to write to it,
    /// and is refused.
    pub fn fail_with(&self, status: u16) {
        let answer = {
            let mut reply = self.reply();
            let answer = !reply.head_out && !reply.closed;
            reply.closed = true;
            answer
        };
        if answer {
            let _ = self.send(&Frame::Error { status });
        }
        self.broken.store(true, Ordering::SeqCst);
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// The process is stopping and will not read this idle connection
    /// again. Its read side is shut first, so nothing more can arrive
    /// unseen (a child's later write fails at once); a request that already
    /// arrived is answered `Restart` (it was not run, so the child may send
    /// it elsewhere); otherwise the child's next look finds the end.
    pub(super) fn turn_away(&self) {
        let _ = self.stream.shutdown(Shutdown::Read);
        let buffered = !lock(&self.reader).buffer().is_empty();
        if self.is_authenticated() && (buffered || waiting(&self.stream) == Waiting::Bytes) {
            let _ = self.send(&Frame::Restart);
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// What an idle connection holds, seen without reading or blocking.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Waiting {
    Nothing,
    /// Bytes are waiting to be read.
    Bytes,
    /// The peer closed or reset the connection.
    Closed,
}

pub(super) fn waiting(stream: &UnixStream) -> Waiting {
    use nix::sys::socket::{recv, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut byte = [0u8; 1];
    loop {
        return match recv(stream.as_raw_fd(), &mut byte, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT) {
            Ok(0) => Waiting::Closed,
            Ok(_) => Waiting::Bytes,
            Err(nix::errno::Errno::EAGAIN) => Waiting::Nothing,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => Waiting::Closed,
        };
    }
}
