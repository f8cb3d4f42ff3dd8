//! Embedded mode's transport: the response goes down Apache's output
//! filters of the request being served, and the body comes from its input.
use wsgi_core::response::Head;

use crate::ffi::log::LogTarget;
use crate::ffi::request::{ReadFailed, Brigade, ClientGone, Request};
use crate::cgi::head::apply_head;
use crate::wsgi::request::{IoError, Transport};

pub struct ApacheTransport {
    req: Request,
    out: Brigade,
    body_length: Option<u64>,
}

impl ApacheTransport {
    /// Call before any body byte is read: the body's length is taken now.
    pub fn new(req: Request) -> Self {
        ApacheTransport { req, out: req.new_brigade(), body_length: req.body_length() }
    }
}

fn client_gone(_: ClientGone) -> IoError {
    IoError::ClientGone
}

impl Transport for ApacheTransport {
    fn send_head(&mut self, head: &Head) -> Result<(), IoError> {
        apply_head(self.req, head.status.code, &head.status.line, &head.headers, head.content_length);
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), IoError> {
        self.out.write(data).map_err(client_gone)
    }

    fn can_send_files(&self) -> bool {
        true
    }

    fn send_file(&mut self, fd: i32, offset: u64, length: u64) -> Result<(), IoError> {
        self.out.send_file(fd, offset, length).map_err(client_gone)
    }

    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, ReadFailed> {
        self.req.read_body(buf)
    }

    fn body_length(&self) -> Option<u64> {
        self.body_length
    }

    fn finish(&mut self) -> Result<(), IoError> {
        // Apache ends the response (EOS) when the handler returns.
        Ok(())
    }

    fn abort(&mut self) {
        self.out.abort();
    }

    fn header_only(&self) -> bool {
        self.req.header_only()
    }

    fn log_target(&self) -> LogTarget {
        LogTarget::Request(self.req)
    }
}
