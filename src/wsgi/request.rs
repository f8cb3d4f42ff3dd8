//! The request a worker thread is serving. It is installed in a
//! thread-local for the length of the app call, so only the thread serving a
//! request can touch it, and using `wsgi.input` or `write()` after the
//! request raises instead of crashing.
use std::cell::{Cell, RefCell};

use pyo3::Python;
use wsgi_core::input::BodyReader;
use wsgi_core::response::{Head, ResponseState, StartError};

use crate::ffi::request::ReadFailed;
use crate::ffi::log::{Level, LogTarget};

#[derive(Debug)]
pub enum IoError {
    NoRequest,
    NotStarted,
    Start(StartError),
    ClientGone,
    ReadFailed,
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoError::NoRequest => write!(f, "no active request on this thread (the request has finished, or this is another thread)"),
            IoError::NotStarted => write!(f, "start_response() must be called before the response body is written"),
            IoError::Start(StartError::AlreadyStarted) => write!(f, "start_response() was already called; pass exc_info to replace the response"),
            IoError::Start(StartError::Invalid(msg)) => write!(f, "{msg}"),
            IoError::ClientGone => write!(f, "client closed the connection before the response was complete"),
            IoError::ReadFailed => write!(f, "request body read error: the client closed the connection or timed out"),
        }
    }
}

/// Where a response goes and where the body comes from. Methods that
/// block are called with the GIL released.
pub trait Transport: Send {
    /// Status and headers, once, before any body byte.
    fn send_head(&mut self, head: &Head) -> Result<(), IoError>;
    /// One chunk of body, flushed to the client.
    fn write(&mut self, data: &[u8]) -> Result<(), IoError>;
    /// Whether `send_file` is available (else the adapter iterates the file).
    fn can_send_files(&self) -> bool;
    /// `length` bytes of the regular file `fd` from `offset`.
    fn send_file(&mut self, fd: i32, offset: u64, length: u64) -> Result<(), IoError>;
    /// Request body bytes into `buf`; 0 at the end.
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, ReadFailed>;
    /// The response is complete.
    fn finish(&mut self) -> Result<(), IoError>;
    /// The last chunk of body and the end together (one round trip where
    /// the transport can).
    fn write_final(&mut self, data: &[u8]) -> Result<(), IoError> {
        self.write(data)?;
        self.finish()
    }
    /// Cuts short a response whose head is out: the client must see it
    /// truncated, not complete.
    fn abort(&mut self);
    /// HEAD: the body is never sent, so producing it can stop early.
    fn header_only(&self) -> bool;
    /// Where this request's log lines go.
    fn log_target(&self) -> LogTarget;
}

pub struct RequestIo {
    transport: Box<dyn Transport>,
    response: ResponseState,
    input: BodyReader,
    client_gone: bool,
}

thread_local! {
    static CURRENT: RefCell<Option<RequestIo>> = const { RefCell::new(None) };
    /// Set while a request is installed; log lines need it even when CURRENT
    /// is borrowed (a __del__ run by the garbage collector mid-call).
    static LOG_TARGET: Cell<Option<LogTarget>> = const { Cell::new(None) };
}

/// Removes the installed request when dropped, even if the call panicked.
pub struct Installed(());

impl Drop for Installed {
    fn drop(&mut self) {
        LOG_TARGET.with(|l| l.set(None));
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// Makes `transport` the current request of this thread until the guard drops.
pub fn install(transport: Box<dyn Transport>) -> Installed {
    LOG_TARGET.with(|l| l.set(Some(transport.log_target())));
    CURRENT.with(|c| *c.borrow_mut() = Some(RequestIo { transport, response: ResponseState::default(), input: BodyReader::default(), client_gone: false }));
    Installed(())
}

/// Runs `f` on this thread's current request.
pub fn with_current<R>(f: impl FnOnce(&mut RequestIo) -> Result<R, IoError>) -> Result<R, IoError> {
    CURRENT.with(|c| match c.try_borrow_mut() {
        Ok(mut slot) => match slot.as_mut() {
            Some(io) => f(io),
            None => Err(IoError::NoRequest),
        },
        // Re-entered (a __del__ run by the garbage collector mid-call).
        Err(_) => Err(IoError::NoRequest),
    })
}

/// Writes one line to the error log, for the current request if any.
pub fn log_line(level: Level, line: &str) {
    LOG_TARGET.with(Cell::get).unwrap_or(LogTarget::MainServer).write(level, line);
}

/// What the caller needs to know once the app has returned or failed.
pub struct Outcome {
    pub headers_sent: bool,
    pub client_gone: bool,
}

pub fn outcome() -> Outcome {
    with_current(|io| Ok(Outcome { headers_sent: io.response.headers_sent(), client_gone: io.client_gone }))
        .unwrap_or(Outcome { headers_sent: false, client_gone: false })
}

/// Cuts short a response whose headers are out (the app failed mid-body).
pub fn abort_response() {
    let _ = with_current(|io| {
        io.transport.abort();
        Ok(())
    });
}

impl RequestIo {
    pub fn start(&mut self, status: &str, headers: Vec<(Vec<u8>, Vec<u8>)>, replace: bool) -> Result<(), IoError> {
        self.response.start(status, headers, replace).map_err(IoError::Start)
    }

    pub fn headers_sent(&self) -> bool {
        self.response.headers_sent()
    }

    fn send_head(&mut self) -> Result<(), IoError> {
        if !self.response.started() {
            return Err(IoError::NotStarted);
        }
        let Some(head) = self.response.take_head_to_send() else { return Ok(()) };
        let sent = self.transport.send_head(head);
        if let Err(IoError::Start(_)) = sent {
            self.response.head_refused();
        }
        sent
    }

    fn gone(&mut self, err: IoError) -> IoError {
        if let IoError::ClientGone = err {
            self.client_gone = true;
        }
        err
    }

    pub fn write(&mut self, py: Python<'_>, data: &[u8]) -> Result<(), IoError> {
        if data.is_empty() {
            return if self.response.started() { Ok(()) } else { Err(IoError::NotStarted) };
        }
        self.send_head()?;
        let n = self.response.clip(data.len());
        if n == 0 || self.transport.header_only() {
            return Ok(());
        }
        let transport = &mut self.transport;
        py.detach(|| transport.write(&data[..n])).map_err(|e| self.gone(e))
    }

    /// The app's only chunk, then the end of the response.
    pub fn write_final(&mut self, py: Python<'_>, data: &[u8]) -> Result<(), IoError> {
        if data.is_empty() || self.transport.header_only() {
            self.write(py, data)?;
            return self.finish(py);
        }
        self.send_head()?;
        let n = self.response.clip(data.len());
        if n == 0 || self.response.shortfall() > 0 {
            // Short of the app's Content-Length: finish() cuts the response.
            if n > 0 {
                let transport = &mut self.transport;
                py.detach(|| transport.write(&data[..n])).map_err(|e| self.gone(e))?;
            }
            return self.finish(py);
        }
        let transport = &mut self.transport;
        py.detach(|| transport.write_final(&data[..n])).map_err(|e| self.gone(e))
    }

    /// After the app's last chunk: sends the head if no body did, and cuts
    /// the response if the app sent less than its Content-Length promised.
    pub fn finish(&mut self, py: Python<'_>) -> Result<(), IoError> {
        self.send_head()?;
        let short = self.response.shortfall();
        if short > 0 && !self.transport.header_only() {
            self.transport.log_target().write(Level::Info, &format!("response ended {short} bytes short of its Content-Length; cutting the connection"));
            self.transport.abort();
            return Ok(());
        }
        let transport = &mut self.transport;
        py.detach(|| transport.finish()).map_err(|e| self.gone(e))
    }

    /// The file_wrapper fast path; false when the response already has body
    /// bytes out or the transport cannot send files, so the adapter iterates.
    pub fn send_file(&mut self, py: Python<'_>, fd: i32, offset: u64, length: u64) -> Result<bool, IoError> {
        if !self.response.started() {
            return Err(IoError::NotStarted);
        }
        if self.response.headers_sent() || !self.transport.can_send_files() {
            return Ok(false);
        }
        let length = self.response.promise_length(length);
        self.send_head()?;
        let n = self.response.clip(length as usize) as u64;
        if n == 0 || self.transport.header_only() {
            return Ok(true);
        }
        let transport = &mut self.transport;
        py.detach(|| transport.send_file(fd, offset, n)).map_err(|e| self.gone(e))?;
        Ok(true)
    }

    /// `read(n)` into a buffer the caller provides (a bytes object's).
    pub fn read_into(&mut self, py: Python<'_>, out: &mut [u8]) -> Result<usize, IoError> {
        let (transport, input) = (&mut self.transport, &mut self.input);
        let got = py.detach(move || input.read_into(out, &mut |buf: &mut [u8]| transport.read_body(buf)));
        got.map_err(|ReadFailed| IoError::ReadFailed)
    }

    pub fn read(&mut self, py: Python<'_>, size: Option<usize>, line: bool) -> Result<Vec<u8>, IoError> {
        let (transport, input) = (&mut self.transport, &mut self.input);
        let data = py.detach(move || {
            let mut fill = |buf: &mut [u8]| transport.read_body(buf);
            if line {
                input.readline(size, &mut fill)
            } else {
                input.read(size, &mut fill)
            }
        });
        data.map_err(|ReadFailed| IoError::ReadFailed)
    }
}
