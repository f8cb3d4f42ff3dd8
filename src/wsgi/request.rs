//! The request a worker thread is serving. It is installed in a
//! thread-local for the length of the app call, so only the thread serving a
//! request can touch it, and using `wsgi.input` or `write()` after the
//! request raises instead of crashing.
//!
//! Requests nest: an output filter (mod_include's `#include virtual`) or an
//! error page (`ErrorDocument`) can run another WSGI request on this thread
//! while ours is passing a brigade. So the current request is taken out of
//! the thread-local while it is used, never borrowed across a call into
//! Apache, and each install restores what was there before.
use std::cell::Cell;

use pyo3::Python;
use wsgi_core::input::{BodyReader, ReadError};
use wsgi_core::response::{Head, ResponseState, StartError};

use crate::ffi::request::ReadFailed;
use crate::ffi::log::{Level, LogTarget};

#[derive(Debug)]
pub enum IoError {
    NoRequest,
    NotStarted,
    Start(StartError),
    ClientGone,
    Read(ReadError),
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoError::NoRequest => write!(f, "no active request on this thread (the request has finished, or this is another thread)"),
            IoError::NotStarted => write!(f, "start_response() must be called before the response body is written"),
            IoError::Start(StartError::AlreadyStarted) => write!(f, "start_response() was already called; pass exc_info to replace the response"),
            IoError::Start(StartError::Invalid(msg)) => write!(f, "{msg}"),
            IoError::ClientGone => write!(f, "client closed the connection before the response was complete"),
            IoError::Read(ReadError::Failed) => write!(f, "request body read error: the client closed the connection, timed out or sent a malformed body"),
            IoError::Read(ReadError::FailedBefore) => write!(f, "request body read error: wsgi.input is in an error state after an earlier read failed"),
            IoError::Read(ReadError::NoMemory) => write!(f, "not enough memory to read the request body (nothing was consumed)"),
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
    /// Request body bytes into `buf`; 0 at the end. An empty `buf` reads
    /// nothing but may tell the client to send its body (100 Continue).
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, ReadFailed>;
    /// The request body's length, when known before reading it (a
    /// Content-Length): reads are then sized to it exactly.
    fn body_length(&self) -> Option<u64> {
        None
    }
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
    /// The client asked with HEAD: whatever body passes is dropped by
    /// Apache, and a body short of the Content-Length is no error.
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
    /// The request this thread serves; empty while it is in use (see the
    /// module comment) or when there is none.
    static CURRENT: Cell<Option<RequestIo>> = const { Cell::new(None) };
    /// Set while a request is installed, even while it is in use: log
    /// lines need it then too (a __del__ run by the garbage collector).
    static LOG_TARGET: Cell<Option<LogTarget>> = const { Cell::new(None) };
}

/// Puts back, when dropped, the request and log target that were current
/// before [`install`], even if the call panicked.
pub struct Installed {
    previous: Option<RequestIo>,
    previous_log: Option<LogTarget>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        LOG_TARGET.with(|l| l.set(self.previous_log));
        let finished = CURRENT.with(|c| c.replace(self.previous.take()));
        drop(finished);
    }
}

/// Makes `transport` the current request of this thread until the guard
/// drops, then restores whichever request was current before.
pub fn install(transport: Box<dyn Transport>) -> Installed {
    let log = transport.log_target();
    let input = BodyReader::new(transport.body_length());
    let io = RequestIo { transport, response: ResponseState::default(), input, client_gone: false };
    let previous = CURRENT.with(|c| c.replace(Some(io)));
    let previous_log = LOG_TARGET.with(|l| l.replace(Some(log)));
    Installed { previous, previous_log }
}

/// Runs `f` on this thread's current request, taken out of the
/// thread-local meanwhile (so a request nested inside `f` finds none).
pub fn with_current<R>(f: impl FnOnce(&mut RequestIo) -> Result<R, IoError>) -> Result<R, IoError> {
    struct PutBack(Option<RequestIo>);
    impl Drop for PutBack {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0.take()));
        }
    }
    // None also when re-entered while in use (a __del__ run by the
    // garbage collector mid-call): that code cannot touch the request.
    let mut io = PutBack(CURRENT.with(Cell::take));
    match io.0.as_mut() {
        Some(current) => f(current),
        None => Err(IoError::NoRequest),
    }
}

/// Writes one line to the error log, for the current request if any.
/// Call with the GIL released: the log may be a pipe that blocks.
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
pub fn abort_response(py: Python<'_>) {
    let _ = with_current(|io| {
        io.abort(py);
        Ok(())
    });
}

impl RequestIo {
    pub fn start(&mut self, status: &[u8], headers: Vec<(Vec<u8>, Vec<u8>)>, replace: bool) -> Result<(), IoError> {
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

    /// Body bytes already clipped to the Content-Length, to the client.
    /// The body goes down Apache's filters even for HEAD: Apache drops it
    /// after the filters that set headers from it (DEFLATE, the
    /// Content-Length filter) have seen it, so HEAD's headers are GET's.
    fn pass(&mut self, py: Python<'_>, data: &[u8]) -> Result<(), IoError> {
        let transport = &mut self.transport;
        py.detach(|| transport.write(data)).map_err(|e| self.gone(e))
    }

    /// One chunk of body. An empty one is skipped, even before
    /// start_response (an app may yield b'' first).
    pub fn write(&mut self, py: Python<'_>, data: &[u8]) -> Result<(), IoError> {
        if data.is_empty() {
            return Ok(());
        }
        self.send_head()?;
        match self.response.clip(data.len()) {
            0 => Ok(()),
            n => self.pass(py, &data[..n]),
        }
    }

    /// The app's only chunk, then the end of the response.
    pub fn write_final(&mut self, py: Python<'_>, data: &[u8]) -> Result<(), IoError> {
        self.send_head()?;
        let n = self.response.clip(data.len());
        if n == 0 || self.response.falls_short(self.transport.header_only()) {
            // Nothing to send, or short of the app's Content-Length:
            // finish() ends or cuts the response.
            if n > 0 {
                self.pass(py, &data[..n])?;
            }
            return self.finish(py);
        }
        let transport = &mut self.transport;
        py.detach(|| transport.write_final(&data[..n])).map_err(|e| self.gone(e))
    }

    /// After the app's last chunk: sends the head if no body did, and cuts
    /// the response if it fell short of its Content-Length.
    pub fn finish(&mut self, py: Python<'_>) -> Result<(), IoError> {
        self.send_head()?;
        if self.response.falls_short(self.transport.header_only()) {
            let message = format!("response ended {} bytes short of its Content-Length; cutting the connection", self.response.shortfall());
            let transport = &mut self.transport;
            py.detach(|| {
                transport.log_target().write(Level::Info, &message);
                transport.abort();
            });
            return Ok(());
        }
        let transport = &mut self.transport;
        py.detach(|| transport.finish()).map_err(|e| self.gone(e))
    }

    /// Cuts short a response whose headers are out.
    fn abort(&mut self, py: Python<'_>) {
        let transport = &mut self.transport;
        py.detach(|| transport.abort());
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
        if n > 0 {
            let transport = &mut self.transport;
            py.detach(|| transport.send_file(fd, offset, n)).map_err(|e| self.gone(e))?;
        }
        Ok(true)
    }

    /// The most bytes `read(size)` can return, when known (see
    /// [`BodyReader::bound`]): the caller allocates that much up front.
    pub fn read_bound(&self, size: Option<usize>) -> Option<usize> {
        self.input.bound(size)
    }

    /// `read(n)` into a buffer the caller provides (a bytes object's).
    /// The GIL is released only when the client has to be waited for.
    pub fn read_into(&mut self, py: Python<'_>, out: &mut [u8]) -> Result<usize, IoError> {
        let (transport, input) = (&mut self.transport, &mut self.input);
        let mut fill = |buf: &mut [u8]| transport.read_body(buf);
        let got = if input.ready(out.len()) { input.read_into(out, &mut fill) } else { py.detach(|| input.read_into(out, &mut fill)) };
        got.map_err(IoError::Read)
    }

    /// `read(size)` or `readline(size)` whose size is not known up front.
    /// The GIL is released only when the client has to be waited for.
    pub fn read(&mut self, py: Python<'_>, size: Option<usize>, line: bool) -> Result<Vec<u8>, IoError> {
        let (transport, input) = (&mut self.transport, &mut self.input);
        let ready = if line { input.line_ready(size) } else { input.ready(size.unwrap_or(usize::MAX)) };
        let mut read = move || {
            let mut fill = |buf: &mut [u8]| transport.read_body(buf);
            if line {
                input.readline(size, &mut fill)
            } else {
                input.read(size, &mut fill)
            }
        };
        let data = if ready { read() } else { py.detach(read) };
        data.map_err(IoError::Read)
    }

    /// Gives back bytes a read returned that could not be handed to the
    /// app (no memory for a bytes object): the next read returns them.
    pub fn unread(&mut self, data: Vec<u8>) {
        self.input.unread_bytes(data);
    }
}
