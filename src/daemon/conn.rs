//! One connection from an Apache child as a daemon holds it: the stream,
//! the buffered reader its frames come through, and whether it is
//! authenticated, registered with epoll, or out of step.
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

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
    /// Whether the current request's head went out.
    pub(super) head_sent: AtomicBool,
    /// Serialises whole frames between the worker and the monitor thread.
    writing: Mutex<()>,
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
            head_sent: AtomicBool::new(false),
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

    /// Answers a stuck request with `status` (if its head has not gone out)
    /// and retires the connection: the worker may still write to it later.
    pub fn fail_with(&self, status: u16) {
        if !self.head_sent.swap(true, Ordering::SeqCst) {
            let _ = self.send(&Frame::Error { status });
        }
        self.broken.store(true, Ordering::SeqCst);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
