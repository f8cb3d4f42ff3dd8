//! One connection from an Apache child as a daemon holds it: the stream,
//! the buffered reader its frames come through, whether it is
//! authenticated, registered with epoll, or out of step, and the current
//! request's response on its way out.
use std::io::{BufReader, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use wsgi_core::protocol::{self, Frame, Limits};

/// One connection from an Apache child, reused across requests.
pub struct Connection {
    pub stream: UnixStream,
    /// Frames from the child, read through one buffer for the connection's
    /// life (a Hello and the first Request arrive together).
    pub(super) reader: Mutex<BufReader<UnixStream>>,
    pub authenticated: AtomicBool,
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
    pub fn new(stream: UnixStream) -> std::io::Result<Self> {
        // Small: request frames are small, and a large Body bypasses it.
        let reader = Mutex::new(BufReader::with_capacity(8 * 1024, stream.try_clone()?));
        Ok(Connection {
            stream,
            reader,
            authenticated: AtomicBool::new(false),
            registered: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            reply: Mutex::new(Reply::default()),
            writing: Mutex::new(()),
        })
    }

    /// Reads the next frame from the child.
    pub fn read_frame(&self, limits: &Limits) -> Result<Frame, protocol::ProtocolError> {
        let read = protocol::read_frame(&mut *self.reader.lock().unwrap_or_else(|e| e.into_inner()), limits);
        if read.is_err() {
            self.broken.store(true, Ordering::SeqCst);
        }
        read
    }

    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// Writes whole frames (`encoded`, then `data` as Data frames if any);
    /// a failure marks the connection broken.
    pub(super) fn send_raw(&self, encoded: &[u8], data: Option<&[u8]>) -> std::io::Result<()> {
        let _whole = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let mut w = &self.stream;
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
        self.reply.lock().unwrap_or_else(|e| e.into_inner())
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
        let buffered = !self.reader.lock().unwrap_or_else(|e| e.into_inner()).buffer().is_empty();
        if self.authenticated.load(Ordering::SeqCst) && (buffered || waiting(&self.stream) == Waiting::Bytes) {
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
