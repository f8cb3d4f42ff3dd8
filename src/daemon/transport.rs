//! A request inside a daemon process: the response goes back to the Apache
//! child as frames, and body bytes are pulled from it on demand. The frames
//! are queued and sent by the connection (`Connection::send_body` and the
//! rest), which also keeps `End` back until the app's call has returned.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use wsgi_core::protocol::{self, Frame, Limits};
use wsgi_core::response::{Head, StartError};

use super::conn::{Connection, ReplyError};
use crate::ffi::log::{Level, LogTarget};
use crate::ffi::request::ReadFailed;
use crate::wsgi::request::{IoError, Transport};

pub struct SocketTransport {
    conn: Arc<Connection>,
    log: LogTarget,
    limits: Limits,
    body_done: bool,
}

impl SocketTransport {
    /// `conn.start_reply()` must have been called for this request.
    pub fn new(conn: Arc<Connection>, log: LogTarget, limits: Limits) -> Self {
        SocketTransport { conn, log, limits, body_done: false }
    }

    /// Maps a refused or failed send to what the app sees.
    fn refused(&self, what: &str, err: ReplyError) -> IoError {
        match err {
            ReplyError::Ended => {
                self.log.write(Level::Err, &format!("the application tried to {what} after its response was complete (from its iterable's close()?); refused"));
                IoError::NoRequest
            }
            ReplyError::Closed | ReplyError::Failed => IoError::ClientGone,
        }
    }
}

impl Transport for SocketTransport {
    fn send_head(&mut self, head: &Head) -> Result<(), IoError> {
        if (100..200).contains(&head.status.code) {
            // An informational status is not a response: the child would
            // refuse it, so say why here, where the app's error is logged.
            return Err(IoError::Start(StartError::Invalid(format!("status {} is informational (1xx); a WSGI application must give a final status", head.status.code))));
        }
        let frame = Frame::Head { status: head.status.code, status_line: head.status.line.clone(), headers: head.headers.clone() };
        if protocol::payload_len(&frame) > self.limits.max_head {
            return Err(IoError::Start(StartError::Invalid(format!(
                "response headers are larger than header-buffer-size ({} bytes)",
                self.limits.max_head
            ))));
        }
        self.conn.queue_head(&frame).map_err(|e| self.refused("send the response headers", e))
    }

    fn write(&mut self, data: &[u8]) -> Result<(), IoError> {
        self.conn.send_body(data, false).map_err(|e| self.refused(&format!("write {} bytes", data.len()), e))
    }

    fn write_final(&mut self, data: &[u8]) -> Result<(), IoError> {
        self.conn.send_body(data, true).map_err(|e| self.refused(&format!("write {} bytes", data.len()), e))
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
        self.conn.request_body(want).map_err(|_| ReadFailed)?;
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
        self.conn.end_body().map_err(|e| self.refused("end the response again", e))
    }

    fn abort(&mut self) {
        if let Err(ReplyError::Ended) = self.conn.abort_body() {
            self.log.write(Level::Err, "the application failed after its response was complete (in its iterable's close()?); the response stands as sent");
        }
    }

    fn header_only(&self) -> bool {
        false
    }

    fn log_target(&self) -> LogTarget {
        self.log
    }
}
