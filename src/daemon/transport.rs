//! A request inside a daemon process: the response goes back to the Apache
//! child as frames, and body bytes are pulled from it on demand.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use wsgi_core::protocol::{self, Frame, Limits};
use wsgi_core::response::Head;

use super::conn::Connection;
use crate::ffi::request::ReadFailed;
use crate::ffi::log::LogTarget;
use crate::wsgi::request::{IoError, Transport};

pub struct SocketTransport {
    conn: Arc<Connection>,
    log: LogTarget,
    limits: Limits,
    body_done: bool,
    /// Encoded frames not yet written: the head waits for the first body
    /// bytes, so a small response goes out in one write.
    pending: Vec<u8>,
}

/// Body chunks up to this size are copied behind pending frames so both go
/// out in one write; larger ones are written in place.
const COALESCE: usize = 64 * 1024;

impl SocketTransport {
    pub fn new(conn: Arc<Connection>, log: LogTarget, limits: Limits) -> Self {
        conn.head_sent.store(false, Ordering::SeqCst);
        SocketTransport { conn, log, limits, body_done: false, pending: Vec::new() }
    }

    /// Writes what is pending, plus `data` as Data frames and `end` after.
    fn flush(&mut self, data: Option<&[u8]>, end: bool) -> Result<(), IoError> {
        let mut tail = None;
        if let Some(data) = data {
            if data.len() <= COALESCE {
                protocol::write_data(&mut self.pending, data).map_err(gone)?;
            } else {
                tail = Some(data);
            }
        }
        if end && tail.is_none() {
            protocol::write_frame(&mut self.pending, &Frame::End).map_err(gone)?;
        }
        let sent = self.conn.send_raw(&self.pending, tail);
        self.pending.clear();
        sent.map_err(gone)?;
        if end && tail.is_some() {
            self.conn.send(&Frame::End).map_err(gone)?;
        }
        Ok(())
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
        protocol::write_frame(&mut self.pending, &frame).map_err(gone)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), IoError> {
        self.flush(Some(data), false)
    }

    fn write_final(&mut self, data: &[u8]) -> Result<(), IoError> {
        self.flush(Some(data), true)
    }

    fn can_send_files(&self) -> bool {
        false
    }

    fn send_file(&mut self, _fd: i32, _offset: u64, _length: u64) -> Result<(), IoError> {
        Err(IoError::NotStarted)
    }

    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, ReadFailed> {
        if self.body_done || buf.is_empty() {
            return Ok(0);
        }
        let want = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        protocol::write_frame(&mut self.pending, &Frame::Read(want)).map_err(|_| ReadFailed)?;
        self.flush(None, false).map_err(|_| ReadFailed)?;
        match self.conn.read_frame(&self.limits) {
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
                Err(ReadFailed)
            }
        }
    }

    fn finish(&mut self) -> Result<(), IoError> {
        self.flush(None, true)
    }

    fn abort(&mut self) {
        if protocol::write_frame(&mut self.pending, &Frame::Abort).is_ok() {
            let _ = self.flush(None, false);
        }
    }

    fn header_only(&self) -> bool {
        false
    }

    fn log_target(&self) -> LogTarget {
        self.log
    }
}
