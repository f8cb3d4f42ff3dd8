//! Deciding which requests are ours (`WSGIScriptAlias`, the `wsgi-script`
//! handler) and running them in the embedded Python.
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use wsgi_core::directives::{GroupContext, MapHeadToGet};
use wsgi_core::environ::alias_match_len;

use super::environ::{self, RequestFacts};
use super::transport::ApacheTransport;
use crate::config::AliasPattern;
use crate::ffi::log::{self, Level};
use crate::ffi::request::{FileKind, Request};
use crate::ffi::sys;
use crate::python::{init, interp, tstate};
use crate::wsgi::request as request_io;

/// The handler names that select us, as with mod_wsgi.
const HANDLER_NAMES: [&[u8]; 2] = [b"wsgi-script", b"application/x-httpd-wsgi"];
/// Set in r->notes by translate_name: the index of the alias that matched.
const ALIAS_NOTE: &std::ffi::CStr = c"mod_wsgi.script_alias";

/// `translate_name`: maps a URI under a `WSGIScriptAlias` onto the script
/// (plus the rest of the URI, which Apache's directory walk turns into
/// PATH_INFO) and marks the request for our handler.
pub fn translate_name(req: Request) -> i32 {
    let uri = String::from_utf8_lossy(req.uri());
    if !uri.starts_with('/') {
        return sys::DECLINED;
    }
    for (index, alias) in req.server_config().aliases.iter().enumerate() {
        let (target, consumed) = match &alias.pattern {
            AliasPattern::Prefix(prefix) => match alias_match_len(&uri, prefix) {
                Some(n) => (alias.target.clone(), n),
                None => continue,
            },
            AliasPattern::Regex(regex) => match regex.captures(&uri) {
                Some(groups) => {
                    let texts: Vec<Option<&str>> = groups.iter().map(|g| g.map(|(s, e)| &uri[s..e])).collect();
                    let end = groups[0].map_or(0, |(_, e)| e);
                    (wsgi_core::environ::substitute_captures(&alias.target, &texts), end)
                }
                None => continue,
            },
        };
        let filename = format!("{target}{}", &uri[consumed..]);
        req.set_filename(filename.as_bytes());
        req.set_handler(b"wsgi-script");
        req.set_note(ALIAS_NOTE, index.to_string().as_bytes());
        return sys::OK;
    }
    sys::DECLINED
}

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

#[track_caller]
fn fail(req: &Request, status: i32, message: &str) -> i32 {
    log::request(req.raw(), Level::Err, message);
    status
}

/// The content handler.
pub fn handle(req: Request) -> i32 {
    if !req.handler().is_some_and(|h| HANDLER_NAMES.contains(&h)) {
        return sys::DECLINED;
    }
    let script = String::from_utf8_lossy(req.filename()).into_owned();
    let alias = req
        .notes()
        .get(ALIAS_NOTE)
        .and_then(|i| std::str::from_utf8(i).ok()?.parse::<usize>().ok())
        .and_then(|i| req.server_config().aliases.get(i).cloned());
    if alias.is_none() && !req.allows_exec_cgi() {
        return fail(&req, sys::HTTP_FORBIDDEN as i32, &format!("Options ExecCGI is off in this directory: {script}"));
    }
    let mtime = match req.file_kind() {
        FileKind::Missing => return fail(&req, sys::HTTP_NOT_FOUND as i32, &format!("Target WSGI script not found or unable to stat: {script}")),
        FileKind::Directory => return fail(&req, sys::HTTP_FORBIDDEN as i32, &format!("Attempt to invoke directory as WSGI application: {script}")),
        FileKind::File { mtime_us } => mtime_us,
    };
    if req.rejects_path_info() && !req.path_info().is_empty() {
        return fail(&req, sys::HTTP_NOT_FOUND as i32, &format!("AcceptPathInfo is off and the URI has path info beyond {script}"));
    }

    let cfg = req.dir_config().resolve(alias.as_ref().map(|a| &a.options));
    if let Err(status) = req.setup_body(cfg.chunked_request) {
        return status;
    }
    let python = &req.server_config().global;
    if python.restrict_embedded == Some(true) {
        return fail(&req, sys::HTTP_INTERNAL_SERVER_ERROR as i32, &format!("Embedded mode of mod_wsgi-rs is disabled (WSGIRestrictEmbedded On); cannot run {script}"));
    }
    if !init::is_running() {
        return fail(&req, sys::HTTP_INTERNAL_SERVER_ERROR as i32, &format!("Python is not available in this Apache child (see the errors logged at its start); cannot run {script}"));
    }

    let (script_name, path_info) = environ::script_name_and_path_info(&req);
    let env_lookup = |name: &str| req.notes().get_string(name).or_else(|| req.subprocess_env().get_string(name)).or_else(|| std::env::var(name).ok());
    let server_name = String::from_utf8_lossy(req.server_name()).into_owned();
    let host = req.headers_in().get(c"Host").map(|h| String::from_utf8_lossy(h).into_owned());
    let group = cfg.application_group.expand(&GroupContext {
        server_name: &server_name,
        port: req.server_port(),
        host_header: host.as_deref(),
        script_name: &script_name,
        env: &env_lookup,
    });
    let head_as_get = req.method() == b"HEAD"
        && match cfg.map_head_to_get {
            MapHeadToGet::On => true,
            MapHeadToGet::Off => false,
            MapHeadToGet::Auto => req.has_content_filter(),
        };
    let facts = RequestFacts {
        script_name: &script_name,
        path_info: &path_info,
        method: if head_as_get { b"GET" } else { req.method() },
        application_group: &group,
        process_group: "",
        callable_object: &cfg.callable_object,
        pass_authorization: cfg.pass_authorization,
    };
    let vars = environ::collect(&req, &facts);
    let Some(interpreter) = interp::for_group(&group) else {
        return fail(&req, sys::HTTP_INTERNAL_SERVER_ERROR as i32, "the Python interpreter for this request is not available");
    };

    tstate::with_gil(|py| {
        let _current = request_io::install(Box::new(ApacheTransport::new(req)));
        let result = interpreter
            .environ(py, &vars, req.request_time(), thread_number())
            .and_then(|env| interpreter.handle(py, &script, mtime, cfg.script_reloading, &cfg.callable_object, env));
        let outcome = request_io::outcome();
        match result {
            Ok(()) => sys::OK,
            Err(_) if outcome.client_gone => {
                log::request(req.raw(), Level::Info, &format!("client closed the connection while {script} was responding"));
                sys::OK
            }
            Err(err) => {
                interpreter.log_exception(py, err, &script);
                if outcome.headers_sent {
                    // Too late for an error page: cut the response short.
                    request_io::abort_response();
                    sys::OK
                } else {
                    sys::HTTP_INTERNAL_SERVER_ERROR as i32
                }
            }
        }
    })
}
