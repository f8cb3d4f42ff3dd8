//! The CGI part of the WSGI environ, gathered from the request as plain
//! bytes: embedded mode turns it into a dict, daemon mode sends it to the
//! daemon. The keys and omissions are mod_wsgi 6's.
use std::borrow::Cow;

use wsgi_core::environ::{header_key, is_hidden_env, split_script_name};

use crate::ffi::request::Request;

/// What the handler has already worked out about the request. Paths and
/// group names are bytes, as Apache has them; the app sees them as Latin-1.
pub struct RequestFacts<'a> {
    pub script_name: &'a [u8],
    pub path_info: &'a [u8],
    pub method: &'a [u8],
    pub application_group: &'a [u8],
    pub process_group: &'a [u8],
    pub callable_object: &'a str,
    /// The `WSGIHandlerScript` serving the request, or "".
    pub handler_script: &'a str,
    pub pass_authorization: bool,
}

pub type Var<'r> = (Cow<'r, str>, Cow<'r, [u8]>);

/// Sets `key` to `value`, in place of any entry it had.
pub fn set_var(vars: &mut Vec<Var<'_>>, key: &'static str, value: &[u8]) {
    vars.retain(|(k, _)| k != key);
    vars.push((key.into(), Cow::Owned(value.to_vec())));
}

/// SCRIPT_NAME and PATH_INFO as mod_wsgi reports them, from the decoded
/// URI's bytes.
pub fn script_name_and_path_info(req: &Request) -> (Vec<u8>, Vec<u8>) {
    split_script_name(req.uri(), req.path_info())
}

/// The URI exactly as the client sent it, from the request line.
fn original_uri(req: &Request) -> &[u8] {
    let line = req.the_request();
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    words.next();
    words.next().unwrap_or(req.uri())
}

/// Every string-valued environ entry for the request, later entries
/// overriding earlier ones with the same key.
pub fn collect<'r>(req: &'r Request, facts: &RequestFacts<'_>) -> Vec<Var<'r>> {
    let mut vars: Vec<Var<'r>> = Vec::with_capacity(48);
    let mut put = |key: Cow<'r, str>, value: Cow<'r, [u8]>| vars.push((key, value));
    let owned = |b: &[u8]| Cow::Owned(b.to_vec());

    // Apache's environment first (SetEnv, mod_rewrite [E=], mod_ssl), so the
    // request's own variables below take precedence.
    for (name, value) in req.subprocess_env().entries() {
        let name = String::from_utf8_lossy(name);
        if !is_hidden_env(&name) {
            put(name, Cow::Borrowed(value));
        }
    }
    let pass_credentials = req.cgi_passes_auth();
    for (name, value) in req.headers_in().entries() {
        if let Some(key) = header_key(name, pass_credentials) {
            put(Cow::Owned(key), Cow::Borrowed(value));
        }
    }
    if facts.pass_authorization {
        if let Some(auth) = req.headers_in().get(c"Authorization") {
            put("HTTP_AUTHORIZATION".into(), Cow::Borrowed(auth));
        }
    }

    put("SERVER_SOFTWARE".into(), owned(crate::ffi::server::server_banner().as_bytes()));
    put("SERVER_NAME".into(), Cow::Borrowed(req.server_name_for_url()));
    put("SERVER_ADDR".into(), Cow::Borrowed(req.local_ip()));
    put("SERVER_PORT".into(), owned(req.server_port().to_string().as_bytes()));
    put("REMOTE_ADDR".into(), Cow::Borrowed(req.client_ip()));
    put("REMOTE_PORT".into(), owned(req.client_port().to_string().as_bytes()));
    put("DOCUMENT_ROOT".into(), Cow::Borrowed(req.document_root()));
    put("REQUEST_SCHEME".into(), Cow::Borrowed(req.scheme()));
    put("CONTEXT_PREFIX".into(), Cow::Borrowed(req.context_prefix()));
    put("CONTEXT_DOCUMENT_ROOT".into(), Cow::Borrowed(req.context_document_root()));
    if let Some(admin) = req.server_admin() {
        put("SERVER_ADMIN".into(), Cow::Borrowed(admin));
    }
    put("SCRIPT_FILENAME".into(), Cow::Borrowed(req.filename()));
    put("SERVER_PROTOCOL".into(), Cow::Borrowed(req.protocol()));
    put("REQUEST_METHOD".into(), owned(facts.method));
    put("QUERY_STRING".into(), Cow::Borrowed(req.args()));
    put("REQUEST_URI".into(), Cow::Borrowed(original_uri(req)));
    put("SCRIPT_NAME".into(), owned(facts.script_name));
    put("PATH_INFO".into(), owned(facts.path_info));
    if let Some(user) = req.user() {
        put("REMOTE_USER".into(), Cow::Borrowed(user));
    }
    if let Some(auth_type) = req.auth_type() {
        put("AUTH_TYPE".into(), Cow::Borrowed(auth_type));
    }
    // An internal redirect also brings REDIRECT_STATUS and the first
    // request's variables, renamed REDIRECT_*, through Apache's environment.
    if let Some(from) = req.redirected_from() {
        if let Some(user) = from.user {
            put("REDIRECT_REMOTE_USER".into(), Cow::Borrowed(user));
        }
        if let Some(url) = from.url {
            put("REDIRECT_URL".into(), Cow::Borrowed(url));
        }
        if let Some(query) = from.query {
            put("REDIRECT_QUERY_STRING".into(), Cow::Borrowed(query));
        }
    }

    // HTTPS itself is not passed on: the app has wsgi.url_scheme.
    let https = req.scheme() == b"https"
        || req.subprocess_env().get(c"HTTPS").is_some_and(|v| v.eq_ignore_ascii_case(b"on") || v == b"1");
    put("wsgi.url_scheme".into(), Cow::Borrowed(if https { b"https" } else { b"http" }));

    put("mod_wsgi.process_group".into(), owned(facts.process_group));
    put("mod_wsgi.application_group".into(), owned(facts.application_group));
    put("mod_wsgi.callable_object".into(), owned(facts.callable_object.as_bytes()));
    put("mod_wsgi.request_handler".into(), Cow::Borrowed(req.handler().unwrap_or(b"")));
    put("mod_wsgi.handler_script".into(), owned(facts.handler_script.as_bytes()));
    put("mod_wsgi.script_name".into(), owned(facts.script_name));
    put("mod_wsgi.path_info".into(), owned(facts.path_info));
    put("mod_wsgi.listener_host".into(), Cow::Borrowed(req.listener_host()));
    put("mod_wsgi.listener_port".into(), owned(req.local_port().to_string().as_bytes()));
    put("mod_wsgi.server_pid".into(), owned(std::process::id().to_string().as_bytes()));
    if let Some(id) = req.log_id() {
        put("mod_wsgi.request_id".into(), Cow::Borrowed(id));
    }
    if let Some(id) = req.connection_log_id() {
        put("mod_wsgi.connection_id".into(), Cow::Borrowed(id));
    }
    vars
}
