//! The WSGI environ for a request, with mod_wsgi 6's keys and omissions.
use pyo3::prelude::*;
use pyo3::types::PyDict;
use wsgi_core::environ::{header_key, is_hidden_env, split_script_name};

use crate::ffi::request::Request;
use crate::python::interp::Interpreter;
use crate::python::text::{fs_path, latin1};

/// What the handler has already worked out about the request.
pub struct RequestFacts<'a> {
    pub script_name: &'a str,
    pub path_info: &'a str,
    pub method: &'a [u8],
    pub application_group: &'a str,
    pub callable_object: &'a str,
    pub pass_authorization: bool,
    pub thread_id: u64,
}

/// SCRIPT_NAME and PATH_INFO as mod_wsgi reports them.
pub fn script_name_and_path_info(req: &Request<'_>) -> (String, String) {
    let uri = String::from_utf8_lossy(req.uri());
    let path_info = String::from_utf8_lossy(req.path_info());
    split_script_name(&uri, &path_info)
}

/// The URI exactly as the client sent it, from the request line.
fn original_uri<'a>(req: &Request<'a>) -> &'a [u8] {
    let line = req.the_request();
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    words.next();
    words.next().unwrap_or(req.uri())
}

pub fn build<'py>(py: Python<'py>, interp: &Interpreter, req: &Request<'_>, facts: &RequestFacts<'_>) -> PyResult<Bound<'py, PyDict>> {
    let env = interp.new_environ(py)?;
    let set = |key: &str, value: &[u8]| env.set_item(key, latin1(py, value));

    // Apache's environment first (SetEnv, mod_rewrite [E=], mod_ssl), so the
    // request's own variables below take precedence.
    for (name, value) in req.subprocess_env().entries() {
        let name = String::from_utf8_lossy(name);
        if !is_hidden_env(&name) {
            set(&name, value)?;
        }
    }
    for (name, value) in req.headers_in().entries() {
        let Some(key) = header_key(name) else { continue };
        match env.get_item(&key)? {
            // Repeated headers are joined, as HTTP allows.
            Some(previous) if key.starts_with("HTTP_") => {
                let joined = format!("{}, {}", previous.extract::<String>()?, String::from_utf8_lossy(value));
                env.set_item(&key, joined)?;
            }
            _ => set(&key, value)?,
        }
    }
    if facts.pass_authorization {
        if let Some(auth) = req.headers_in().get(c"Authorization") {
            set("HTTP_AUTHORIZATION", auth)?;
        }
    }

    set("SERVER_SOFTWARE", crate::ffi::server::server_banner().as_bytes())?;
    set("SERVER_NAME", req.server_name())?;
    set("SERVER_ADDR", req.local_ip())?;
    set("SERVER_PORT", req.server_port().to_string().as_bytes())?;
    set("REMOTE_ADDR", req.client_ip())?;
    set("REMOTE_PORT", req.client_port().to_string().as_bytes())?;
    env.set_item("DOCUMENT_ROOT", fs_path(py, req.document_root()))?;
    set("REQUEST_SCHEME", req.scheme())?;
    set("CONTEXT_PREFIX", req.context_prefix())?;
    set("CONTEXT_DOCUMENT_ROOT", req.context_document_root())?;
    if let Some(admin) = req.server_admin() {
        set("SERVER_ADMIN", admin)?;
    }
    env.set_item("SCRIPT_FILENAME", fs_path(py, req.filename()))?;
    set("SERVER_PROTOCOL", req.protocol())?;
    set("REQUEST_METHOD", facts.method)?;
    set("QUERY_STRING", req.args())?;
    set("REQUEST_URI", original_uri(req))?;
    set("SCRIPT_NAME", facts.script_name.as_bytes())?;
    set("PATH_INFO", facts.path_info.as_bytes())?;
    if let Some(user) = req.user() {
        set("REMOTE_USER", user)?;
    }
    if let Some(auth_type) = req.auth_type() {
        set("AUTH_TYPE", auth_type)?;
    }

    let https = req.scheme() == b"https"
        || req.subprocess_env().get(c"HTTPS").is_some_and(|v| v.eq_ignore_ascii_case(b"on") || v == b"1");
    if https && !env.contains("HTTPS")? {
        env.set_item("HTTPS", "on")?;
    }
    env.set_item("wsgi.url_scheme", if https { "https" } else { "http" })?;

    env.set_item("mod_wsgi.application_group", facts.application_group)?;
    env.set_item("mod_wsgi.callable_object", facts.callable_object)?;
    env.set_item("mod_wsgi.script_name", facts.script_name)?;
    env.set_item("mod_wsgi.path_info", facts.path_info)?;
    env.set_item("mod_wsgi.request_start", req.request_time())?;
    set("mod_wsgi.listener_host", req.local_ip())?;
    env.set_item("mod_wsgi.listener_port", req.local_port().to_string())?;
    env.set_item("mod_wsgi.server_pid", std::process::id().to_string())?;
    env.set_item("mod_wsgi.thread_id", facts.thread_id)?;
    if let Some(id) = req.log_id() {
        set("mod_wsgi.request_id", id)?;
    }
    if let Some(id) = req.connection_log_id() {
        set("mod_wsgi.connection_id", id)?;
    }
    Ok(env)
}
