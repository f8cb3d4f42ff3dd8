//! A request inside a daemon process: the response goes back to the Apache
//! child as frames, and body bytes are pulled from it on demand.
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use wsgi_core::protocol::{self, Frame, Limits};
use wsgi_core::response::Head;

use crate::ffi::log::LogTarget;
use crate::wsgi::request::{IoError, Transport};

/// One connection from an Apache child, reused across requests.
pub struct Connection {
    pub stream: UnixStream,
    pub authenticated: AtomicBool,
    /// Whether the socket is in the epoll set (add once, then modify).
    pub registered: AtomicBool,
    /// Set when a write or read failed: the stream is out of step.
    broken: AtomicBool,
    /// Whether the current request's head went out.
    head_sent: AtomicBool,
    /// Serialises whole frames between the worker and the monitor thread.
    writing: Mutex<()>,
}

impl Connection {
    pub fn new(stream: UnixStream) -> Self {
        Connection {
            stream,
            authenticated: AtomicBool::new(false),
            registered: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            head_sent: AtomicBool::new(false),
            writing: Mutex::new(()),
        }
    }

    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// Writes one frame; a failure marks the connection broken.
    pub fn send(&self, frame: &Frame) -> std::io::Result<()> {
        let _whole = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let mut w = &self.stream;
        let sent = protocol::write_frame(&mut w, frame).and_then(|()| w.flush());
        if sent.is_err() {
            self.broken.store(true, Ordering::SeqCst);
        }
        sent
    }

    fn send_data(&self, data: &[u8]) -> std::io::Result<()> {
        let _whole = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let mut w = &self.stream;
        let sent = protocol::write_data(&mut w, data);
        if sent.is_err() {
            self.broken.store(true, Ordering::SeqCst);
        }
        sent
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

pub struct SocketTransport {
    conn: Arc<Connection>,
    log: LogTarget,
    limits: Limits,
    body_done: bool,
}

impl SocketTransport {
    pub fn new(conn: Arc<Connection>, log: LogTarget, limits: Limits) -> Self {
        conn.head_sent.store(false, Ordering::SeqCst);
        SocketTransport { conn, log, limits, body_done: false }
    }
}

fn gone(_: std::io::Error) -> IoError {
    IoError::ClientGone
}

impl Transport for SocketTransport {
    fn send_head(&mut self, head: &Head) -> Result<(), IoError> {
        let frame = Frame::Head { status: head.status.code, status_line: head.status.line.clone().into_bytes(), headers: head.headers.clone() };
        if protocol::payload_len(&frame) > self.limits.max_head {
            return Err(IoError::Start(wsgi_core::response::StartError::Invalid(format!(
                "response headers are larger than header-buffer-size ({} bytes)",
                self.limits.max_head
            ))));
        }
        if self.conn.head_sent.swap(true, Ordering::SeqCst) {
            // The monitor already answered for this request (request-timeout).
            return Err(IoError::ClientGone);
        }
        self.conn.send(&frame).map_err(gone)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), IoError> {
        self.conn.send_data(data).map_err(gone)
    }

    fn can_send_files(&self) -> bool {
        false
    }

    fn send_file(&mut self, _fd: i32, _offset: u64, _length: u64) -> Result<(), IoError> {
        Err(IoError::NotStarted)
    }

    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, ()> {
        if self.body_done || buf.is_empty() {
            return Ok(0);
        }
        let want = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        self.conn.send(&Frame::Read(want)).map_err(|_| ())?;
        let mut r = &self.conn.stream;
        match protocol::read_frame(&mut r, &self.limits) {
            Ok(Frame::Body(data)) if data.len() <= buf.len() => {
                buf[..data.len()].copy_from_slice(&data);
                Ok(data.len())
            }
            Ok(Frame::BodyEnd) => {
                self.body_done = true;
                Ok(0)
            }
            _ => {
                self.conn.broken.store(true, Ordering::SeqCst);
                Err(())
            }
        }
    }

    fn finish(&mut self) -> Result<(), IoError> {
        self.conn.send(&Frame::End).map_err(gone)
    }

    fn abort(&mut self) {
        let _ = self.conn.send(&Frame::Abort);
    }

    fn header_only(&self) -> bool {
        false
    }

    fn log_target(&self) -> LogTarget {
        self.log
    }
}
