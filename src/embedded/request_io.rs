//! The request a worker thread is serving, as the Python adapter's native
//! functions see it. It is installed in a thread-local for the length of the
//! app call, so only the thread serving a request can touch it, and using
//! `wsgi.input` or `write()` after the request raises instead of crashing.
use std::cell::{Cell, RefCell};

use pyo3::Python;
use wsgi_core::input::BodyReader;
use wsgi_core::response::{ResponseState, StartError};

use crate::ffi::log::{self, Level};
use crate::ffi::request::{Brigade, ClientGone, Request};

pub struct RequestIo {
    req: Request<'static>,
    out: Brigade<'static>,
    response: ResponseState,
    input: BodyReader,
    client_gone: bool,
}

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

thread_local! {
    static CURRENT: RefCell<Option<RequestIo>> = const { RefCell::new(None) };
    static CURRENT_LOG_TARGET: Cell<Option<Request<'static>>> = const { Cell::new(None) };
}

/// Removes the installed request when dropped, even if the call panicked.
pub struct Installed(());

impl Drop for Installed {
    fn drop(&mut self) {
        CURRENT_LOG_TARGET.with(|t| t.set(None));
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// Makes `req` the current request of this thread until the guard drops.
///
/// The 'static is a promise kept by the guard: the handler that owns `req`
/// outlives the guard, and nothing reaches the RequestIo once it is dropped.
pub fn install(req: Request<'_>) -> Installed {
    // SAFETY: see above; the lifetime is erased only for the thread-local's
    // type and the guard removes the value before the hook returns.
    let req: Request<'static> = unsafe { std::mem::transmute::<Request<'_>, Request<'static>>(req) };
    let io = RequestIo { req, out: req.new_brigade(), response: ResponseState::default(), input: BodyReader::default(), client_gone: false };
    CURRENT_LOG_TARGET.with(|t| t.set(Some(req)));
    CURRENT.with(|c| *c.borrow_mut() = Some(io));
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

/// Writes one line to the error log, against the current request if any.
pub fn log_line(level: Level, line: &str) {
    match CURRENT_LOG_TARGET.with(Cell::get) {
        Some(req) => log::request(req.raw(), level, line),
        None => log::server(std::ptr::null(), level, line),
    }
}

/// What the handler needs to know once the app has returned or failed.
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
        io.out.abort();
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

    /// Hands status and headers to Apache, once; they go out with the
    /// first body bytes passed down the filter chain.
    fn send_head(&mut self) -> Result<(), IoError> {
        if !self.response.started() {
            return Err(IoError::NotStarted);
        }
        let req = self.req;
        if let Some(head) = self.response.take_head_to_send() {
            req.set_status(head.status.code, head.status.line.as_bytes());
            for (name, value) in &head.headers {
                if name.eq_ignore_ascii_case(b"content-type") {
                    req.set_content_type(value);
                } else if name.eq_ignore_ascii_case(b"content-length") {
                    req.set_content_length(head.content_length.unwrap_or(0));
                } else {
                    req.add_header(name, value, name.eq_ignore_ascii_case(b"www-authenticate"));
                }
            }
            req.clear_expecting_100();
        }
        Ok(())
    }

    pub fn write(&mut self, py: Python<'_>, data: &[u8]) -> Result<(), IoError> {
        if data.is_empty() {
            return if self.response.started() { Ok(()) } else { Err(IoError::NotStarted) };
        }
        self.send_head()?;
        let n = self.response.clip(data.len());
        if n == 0 || self.req.header_only() {
            return Ok(());
        }
        let out = &mut self.out;
        let sent = py.detach(|| out.write(&data[..n]));
        sent.map_err(|ClientGone| {
            self.client_gone = true;
            IoError::ClientGone
        })
    }

    /// After the app's last chunk: sends headers if no body did, and cuts the
    /// connection if the app sent less than its Content-Length promised.
    pub fn finish(&mut self) -> Result<(), IoError> {
        self.send_head()?;
        let short = self.response.shortfall();
        if short > 0 && !self.req.header_only() {
            log::request(self.req.raw(), Level::Info, &format!("response ended {short} bytes short of its Content-Length; closing the connection"));
            self.out.abort();
        }
        Ok(())
    }

    /// The file_wrapper fast path; false when the response already has body
    /// bytes out, so the adapter iterates instead.
    pub fn send_file(&mut self, py: Python<'_>, fd: i32, offset: u64, length: u64) -> Result<bool, IoError> {
        if !self.response.started() {
            return Err(IoError::NotStarted);
        }
        if self.response.headers_sent() {
            return Ok(false);
        }
        let length = self.response.promise_length(length);
        self.send_head()?;
        let n = self.response.clip(length as usize) as u64;
        if n == 0 || self.req.header_only() {
            return Ok(true);
        }
        let out = &mut self.out;
        py.detach(|| out.send_file(fd, offset, n)).map_err(|ClientGone| {
            self.client_gone = true;
            IoError::ClientGone
        })?;
        Ok(true)
    }

    pub fn read(&mut self, py: Python<'_>, size: Option<usize>, line: bool) -> Result<Vec<u8>, IoError> {
        let (req, input) = (self.req, &mut self.input);
        let data = py.detach(move || {
            let mut fill = move |buf: &mut [u8]| req.read_body(buf);
            if line {
                input.readline(size, &mut fill)
            } else {
                input.read(size, &mut fill)
            }
        });
        data.map_err(|()| IoError::ReadFailed)
    }
}
