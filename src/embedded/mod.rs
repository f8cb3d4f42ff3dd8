//! Embedded mode: the WSGI application runs inside Apache's own child
//! processes. `transport` carries the response through Apache's filters;
//! `auth`, `script` and `dispatch_script` run the auth, access and dispatch
//! scripts, which always run in the Apache child.
#![forbid(unsafe_code)]
pub mod auth;
pub mod dispatch_script;
mod script;
pub mod transport;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::RequestConfig;
use crate::dispatch::fail;
use crate::ffi::log::{self, Level};
use crate::ffi::request::Request;
use crate::ffi::sys;
use crate::python::request_rec::RequestRecCapsule;
use crate::python::{init, interp};
use crate::wsgi::request as request_io;
use crate::cgi::environ::Var;
use transport::ApacheTransport;

/// A number for each worker thread (mod_wsgi.thread_id), given on its first request.
fn thread_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static NUMBER: Cell<u64> = const { Cell::new(0) });
    NUMBER.with(|n| {
        if n.get() == 0 {
            n.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        n.get()
    })
}

/// Runs the request's application in this process's Python.
pub fn run(req: Request, script: &str, mtime: i64, cfg: &RequestConfig, application_group: &str, vars: &[Var<'_>]) -> i32 {
    if req.server_config().global.restrict_embedded == Some(true) {
        return fail(&req, sys::HTTP_INTERNAL_SERVER_ERROR, &format!("Embedded mode of mod_wsgi-rs is disabled (WSGIRestrictEmbedded On); cannot run {script}"));
    }
    if !init::is_running() {
        return fail(&req, sys::HTTP_INTERNAL_SERVER_ERROR, &format!("Python is not available in this Apache child (see the errors logged at its start); cannot run {script}"));
    }
    let interpreter = match interp::for_group(application_group) {
        Ok(interpreter) => interpreter,
        Err(msg) => return fail(&req, sys::HTTP_INTERNAL_SERVER_ERROR, &format!("{msg}; cannot run {script}")),
    };
    let (status, client_gone) = interpreter.enter(|py| {
        let _current = request_io::install(Box::new(ApacheTransport::new(req)));
        let result = interpreter
            .environ(py, vars, req.request_time(), thread_number())
            .and_then(|env| {
                // Valid only until the app's call (its close() included) returns.
                let _capsule = if cfg.pass_apache_request { Some(RequestRecCapsule::attach(&env, req.raw())?) } else { None };
                interpreter.handle(py, script, mtime, cfg.script_reloading, &cfg.callable_object, env)
            });
        let outcome = request_io::outcome();
        match result {
            Ok(()) => (sys::OK, false),
            Err(_) if outcome.client_gone => (sys::OK, true),
            Err(err) => {
                let status = interpreter.log_exception(py, err, script);
                if outcome.headers_sent {
                    // Too late for an error page: cut the response short.
                    request_io::abort_response(py);
                    (sys::OK, false)
                } else {
                    (i32::from(status), false)
                }
            }
        }
    });
    if client_gone {
        log::request(&req, Level::Info, &format!("client closed the connection while {script} was responding"));
    }
    status
}
