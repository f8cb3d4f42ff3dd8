//! A daemon's worker threads: they all wait on one epoll set holding the
//! group's listening socket and every idle pooled connection, take a
//! connection when it has a frame, and run its request in Python.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use nix::sys::epoll::{EpollEvent, EpollFlags};
use pyo3::types::PyDictMethods;
use wsgi_core::protocol::{Frame, RequestHead, PROTOCOL_VERSION};

use super::conn::Connection;
use super::lifecycle::Stop;
use super::process::{log, now_us, Daemon, LISTENER, WAKE};
use super::transport::SocketTransport;
use crate::ffi::log::{Level, LogTarget};
use crate::python::{interp, tstate};
use crate::wsgi::request as request_io;

/// What becomes of a connection after a request.
enum After {
    Keep,
    Close,
    /// The script changed since this process loaded it: the request was not
    /// run, and the process makes way for one with the new code.
    Reload,
}

impl Daemon {
    pub(super) fn worker(&self, slot: usize) {
        let mut events = [EpollEvent::empty(); 4];
        while !self.stopping.load(Ordering::SeqCst) {
            let n = match self.epoll.wait(&mut events[..1], 1000u16) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            for event in &events[..n] {
                match event.data() {
                    WAKE => {
                        self.turn_away_idle();
                        return;
                    }
                    LISTENER => self.accept_one(),
                    fd => {
                        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).remove(&(fd as RawFd));
                        if let Some(conn) = conn {
                            if let After::Keep = self.serve_connection(slot, &conn) {
                                self.park(conn);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Takes one connection: a process only accepts while one of its
    /// workers is free to wait, and one at a time, so that the group's
    /// processes share new connections.
    fn accept_one(&self) {
        if let Ok((stream, _)) = self.listener.accept() {
            if let Some(conn) = self.admit(stream) {
                self.park(Arc::new(conn));
            }
        }
        if !self.draining() {
            let _ = self.epoll.modify(&self.listener, &mut EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, LISTENER));
        }
    }

    /// Only Apache's children (or root) may talk to a daemon.
    fn admit(&self, stream: UnixStream) -> Option<Connection> {
        let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).ok()?;
        if peer.uid() != self.apache_uid && peer.uid() != 0 {
            log(self.server, Level::Err, &format!("refused a connection to group '{}' from uid {} (pid {}): only Apache's user may connect", self.group.name(), peer.uid(), peer.pid()));
            return None;
        }
        stream.set_read_timeout(self.socket_timeout).ok()?;
        stream.set_write_timeout(self.socket_timeout).ok()?;
        Connection::new(stream).ok()
    }

    /// The process is stopping: no worker reads the idle connections again.
    fn turn_away_idle(&self) {
        let idle: Vec<_> = self.idle.lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, conn)| conn).collect();
        idle.iter().for_each(|conn| conn.turn_away());
    }

    fn park(&self, conn: Arc<Connection>) {
        let fd = conn.stream.as_raw_fd();
        let event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT | EpollFlags::EPOLLRDHUP, fd as u64);
        {
            // `stopping` is set before the workers are woken to turn the
            // idle connections away; checked under the lock, no connection
            // parked after that is missed.
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if self.stopping.load(Ordering::SeqCst) {
                drop(idle);
                conn.turn_away();
                return;
            }
            idle.insert(fd, conn.clone());
        }
        // SAFETY-free borrow: the fd stays open while the connection is in `idle`.
        let borrowed: BorrowedFd<'_> = conn.stream.as_fd();
        let registered = if conn.registered.swap(true, Ordering::SeqCst) {
            self.epoll.modify(borrowed, &mut event.clone())
        } else {
            self.epoll.add(borrowed, event)
        };
        if registered.is_err() {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).remove(&fd);
        }
    }

    fn serve_connection(&self, slot: usize, conn: &Arc<Connection>) -> After {
        let frame = conn.read_frame(&self.limits);
        if !conn.authenticated.load(Ordering::SeqCst) {
            return match frame {
                Ok(Frame::Hello { version, secret }) if version == PROTOCOL_VERSION && constant_time_eq(&secret, self.group.secret.bytes()) => {
                    conn.authenticated.store(true, Ordering::SeqCst);
                    // The answer tells the child a live daemon of the group
                    // took the connection (not just the socket's backlog).
                    match conn.send(&Frame::Hello { version: PROTOCOL_VERSION, secret: *self.group.secret.bytes() }) {
                        Ok(()) => After::Keep,
                        Err(_) => After::Close,
                    }
                }
                Ok(_) => {
                    log(self.server, Level::Err, &format!("refused a connection to group '{}': it did not authenticate", self.group.name()));
                    After::Close
                }
                Err(_) => After::Close,
            };
        }
        match frame {
            Ok(Frame::Request(head)) => self.serve_request(slot, conn, head),
            Ok(other) => {
                log(self.server, Level::Err, &format!("protocol error on a connection to group '{}': unexpected {other:?}", self.group.name()));
                After::Close
            }
            Err(_) => After::Close,
        }
    }

    fn serve_request(&self, slot: usize, conn: &Arc<Connection>, head: RequestHead) -> After {
        let spec = self.spec();
        if self.draining() {
            let _ = conn.send(&Frame::Restart);
            return After::Close;
        }
        let waited_us = now_us() - head.request_start_us;
        if spec.queue_timeout.is_some_and(|limit| waited_us > limit.as_micros() as i64) {
            log(self.server, Level::Err, &format!("request for {} waited {:.1}s for group '{}', over queue-timeout; answering 504", head.script, waited_us as f64 / 1e6, self.group.name()));
            let _ = conn.send(&Frame::Error { status: 504 });
            return After::Close;
        }
        let interp = interp::for_group("").expect("created at start-up");
        self.state.lock().unwrap_or_else(|e| e.into_inner()).active += 1;
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        conn.start_reply();
        *self.slots[slot].current.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), conn.clone()));
        let daemon_start = now_us() as f64 / 1e6;

        // The script's age as this process sees it, not as the child saw it:
        // a request stat'ed before a touch must not restart a process that
        // already runs the new code.
        let mtime = interp::file_mtime(&head.script);
        let after = tstate::with_gil(|py| {
            if head.reloading && interp.script_changed(py, &head.script, mtime) {
                return After::Reload;
            }
            let _current = request_io::install(Box::new(SocketTransport::new(conn.clone(), LogTarget::Server(self.server), self.limits)));
            let result = interp.environ(py, &head.environ, head.request_start_us as f64 / 1e6, slot as u64 + 1).and_then(|env| {
                env.set_item("mod_wsgi.queue_start", head.request_start_us as f64 / 1e6)?;
                env.set_item("mod_wsgi.daemon_start", daemon_start)?;
                interp.handle(py, &head.script, mtime, false, &head.callable, env)
            });
            let outcome = request_io::outcome();
            match result {
                Ok(()) => {
                    *self.load_failing_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    After::Keep
                }
                Err(_) if outcome.client_gone => After::Close,
                Err(err) => {
                    let status = interp.log_exception(py, err, &head.script);
                    let mut since = self.load_failing_since.lock().unwrap_or_else(|e| e.into_inner());
                    *since = if interp.is_loaded(py, &head.script) { None } else { since.or(Some(Instant::now())) };
                    drop(since);
                    if outcome.headers_sent {
                        // Refused (and logged) if the response was already
                        // complete, e.g. when only close() raised: it stands.
                        request_io::abort_response();
                        After::Keep
                    } else {
                        match conn.answer_error(status) {
                            Ok(()) => After::Keep,
                            Err(_) => After::Close,
                        }
                    }
                }
            }
        });
        // The app's call, its iterable's close() included, has returned:
        // only now may the response end, so nothing can follow End.
        let after = match after {
            After::Keep if conn.finish_reply().is_err() => After::Close,
            other => other,
        };

        *self.slots[slot].current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.active -= 1;
            self.changed.notify_all();
        }
        let served = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if spec.maximum_requests > 0 && served >= spec.maximum_requests {
            self.begin_drain(Stop::MaximumRequests, spec.graceful_timeout);
        }
        if let After::Reload = after {
            let _ = conn.send(&Frame::Restart);
            if self.begin_drain(Stop::ScriptReload, spec.graceful_timeout) {
                log(self.server, Level::Info, &format!("{} changed; restarting daemon process {} of group '{}'", head.script, std::process::id(), self.group.name()));
            }
            return After::Close;
        }
        if conn.is_broken() {
            After::Close
        } else {
            after
        }
    }
}
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

