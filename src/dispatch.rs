//! Deciding which requests are ours (`WSGIScriptAlias`, the `wsgi-script`
//! handler, `WSGIHandlerScript` names), what they run, and where each runs
//! (after a `WSGIDispatchScript` had its say): in this process's Python
//! (embedded mode) or in a daemon process group.
#![forbid(unsafe_code)]
use wsgi_core::directives::{dispatch_group_spec, expand_callable, AliasOptions, GroupContext, GroupSpec, HandlerScript, MapHeadToGet};
use wsgi_core::environ::alias_match_len;

use wsgi_core::protocol::RequestHead;

use crate::config::AliasPattern;
use crate::daemon::{client, group};
use crate::embedded::dispatch_script;
use crate::cgi::environ::{self, set_var, RequestFacts};
use crate::ffi::log::{self, Level};
use crate::ffi::request::{FileKind, Request};
use crate::ffi::sys;
use crate::python::interp;

/// The handler names that select us, as with mod_wsgi.
const HANDLER_NAMES: [&[u8]; 2] = [b"wsgi-script", b"application/x-httpd-wsgi"];
/// Set in r->notes by translate_name: the index of the alias that matched.
const ALIAS_NOTE: &std::ffi::CStr = c"mod_wsgi.script_alias";

/// `translate_name`: maps a URI under a `WSGIScriptAlias` onto the script
/// (plus the rest of the URI, which Apache's directory walk turns into
/// PATH_INFO) and marks the request for our handler.
pub fn translate_name(req: Request) -> i32 {
    // The URI's bytes as Apache decoded them: a %E9 stays the byte 0xE9.
    let uri = req.uri();
    if !uri.starts_with(b"/") {
        return sys::DECLINED;
    }
    for (index, alias) in req.server_config().aliases.iter().enumerate() {
        let (target, consumed) = match &alias.pattern {
            AliasPattern::Prefix(prefix) => match alias_match_len(uri, prefix, alias.target.ends_with('/')) {
                Some(n) => (alias.target.as_bytes().to_vec(), n),
                None => continue,
            },
            AliasPattern::Regex(regex) => match regex.captures(uri) {
                Some(groups) => {
                    let texts: Vec<Option<&[u8]>> = groups.iter().map(|g| g.map(|(s, e)| &uri[s..e])).collect();
                    let end = groups[0].map_or(0, |(_, e)| e);
                    (wsgi_core::environ::substitute_captures(&alias.target, &texts), end)
                }
                None => continue,
            },
        };
        req.set_filename(&[&target[..], &uri[consumed..]].concat());
        req.set_handler(b"wsgi-script");
        req.set_note(ALIAS_NOTE, index.to_string().as_bytes());
        return sys::OK;
    }
    sys::DECLINED
}

#[track_caller]
pub(crate) fn fail(req: &Request, status: i32, message: &str) -> i32 {
    log::request(req, Level::Err, message);
    status
}

/// What a request runs: the script file, its modification time (µs), and
/// the options that override the directory's settings.
struct Target {
    script: String,
    mtime: i64,
    options: AliasOptions,
    /// The `WSGIHandlerScript` path, or "" for a WSGI script file.
    handler_script: String,
}

/// The callable a `WSGIHandlerScript` calls, whatever WSGICallableObject says.
const HANDLER_CALLABLE: &str = "handle_request";

/// The WSGI script file Apache mapped the request to (`WSGIScriptAlias`,
/// or the `wsgi-script` handler on a file), once the checks mod_wsgi makes
/// on it pass; else the HTTP status to answer with.
fn script_file(req: &Request) -> Result<Target, i32> {
    let script = String::from_utf8_lossy(req.filename()).into_owned();
    let alias = req
        .notes()
        .get(ALIAS_NOTE)
        .and_then(|i| std::str::from_utf8(i).ok()?.parse::<usize>().ok())
        .and_then(|i| req.server_config().aliases.get(i).cloned());
    if alias.is_none() && !req.allows_exec_cgi() {
        return Err(fail(req, sys::HTTP_FORBIDDEN, &format!("Options ExecCGI is off in this directory: {script}")));
    }
    let mtime = match req.file_kind() {
        FileKind::Missing => return Err(fail(req, sys::HTTP_NOT_FOUND, &format!("Target WSGI script not found or unable to stat: {script}"))),
        FileKind::Directory => return Err(fail(req, sys::HTTP_FORBIDDEN, &format!("Attempt to invoke directory as WSGI application: {script}"))),
        FileKind::File { mtime_us } => mtime_us,
    };
    Ok(Target { script, mtime, options: alias.map(|a| a.options.clone()).unwrap_or_default(), handler_script: String::new() })
}

/// A `WSGIHandlerScript` serves whatever the request maps to: the file need
/// not exist (mod_wsgi-express sends every missing file to its handler),
/// and no `Options ExecCGI` is needed. Its script may be missing: loading
/// it then fails with 500 and the reason in the error log.
fn handler_script(handler: &HandlerScript) -> Target {
    let options = AliasOptions { callable_object: Some(HANDLER_CALLABLE.to_string()), ..handler.options.clone() };
    Target { script: handler.script.clone(), mtime: interp::file_mtime(&handler.script), options, handler_script: handler.script.clone() }
}

/// The content handler: `wsgi-script` (and `application/x-httpd-wsgi`),
/// and every handler name a `WSGIHandlerScript` registered.
pub fn handle(req: Request) -> i32 {
    let Some(handler) = req.handler() else { return sys::DECLINED };
    let target = if HANDLER_NAMES.contains(&handler) {
        match script_file(&req) {
            Ok(target) => target,
            Err(status) => return status,
        }
    } else if let Some(registered) = req.dir_config().handler_script(handler) {
        handler_script(registered)
    } else {
        return sys::DECLINED;
    };
    let script = &target.script;
    if req.rejects_path_info() && !req.path_info().is_empty() {
        return fail(&req, sys::HTTP_NOT_FOUND, &format!("AcceptPathInfo is off and the URI has path info beyond {}", String::from_utf8_lossy(req.filename())));
    }

    let mut cfg = req.dir_config().resolve(Some(&target.options));
    if let Err(status) = req.setup_body(cfg.chunked_request) {
        return status;
    }
    let (script_name, path_info) = environ::script_name_and_path_info(&req);
    let mut group = expand_group(&req, &cfg.application_group, &script_name);
    let mut process_group = expand_group(&req, &cfg.process_group, &script_name);
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
        process_group: &process_group,
        callable_object: &cfg.callable_object,
        handler_script: &target.handler_script,
        pass_authorization: cfg.pass_authorization,
    };
    let mut vars = environ::collect(&req, &facts);
    wsgi_core::proxy::apply(&mut vars, &cfg.trusted_proxy_headers, cfg.trusted_proxies.as_deref());

    if let Some(dispatch) = &cfg.dispatch_script {
        let Some(choices) = dispatch_script::run(&req, dispatch, &vars, cfg.script_reloading) else {
            return fail(&req, sys::HTTP_INTERNAL_SERVER_ERROR, &format!("WSGI dispatch script {} failed (see above); cannot run {script}", dispatch.0));
        };
        if let Some(name) = choices.process_group {
            process_group = expand_group(&req, &dispatch_group_spec(&name), &script_name);
            set_var(&mut vars, "mod_wsgi.process_group", &process_group);
        }
        if let Some(name) = choices.application_group {
            group = expand_group(&req, &dispatch_group_spec(&name), &script_name);
            set_var(&mut vars, "mod_wsgi.application_group", &group);
        }
        if let Some(name) = choices.callable_object {
            cfg.callable_object = expand_callable(&name, &|var| request_env(&req, var));
            set_var(&mut vars, "mod_wsgi.callable_object", cfg.callable_object.as_bytes());
        }
    }

    let process_group_name = String::from_utf8_lossy(&process_group);
    if cfg.restrict_process.as_ref().is_some_and(|allowed| !allowed.iter().any(|name| name.as_bytes() == process_group)) {
        return fail(&req, sys::HTTP_INTERNAL_SERVER_ERROR, &format!("process group '{process_group_name}' is not allowed here by WSGIRestrictProcess; cannot run {script}"));
    }
    // Names go on as Latin-1 text: one char per byte, nothing lost.
    let group = latin1_string(&group);
    if process_group.is_empty() {
        return crate::embedded::run(req, script, target.mtime, &cfg, &group, &vars);
    }

    let Some(daemon) = std::str::from_utf8(&process_group).ok().and_then(group::find) else {
        return fail(&req, sys::HTTP_INTERNAL_SERVER_ERROR, &format!("No WSGI daemon process called '{process_group_name}' has been configured (WSGIProcessGroup); cannot run {script}"));
    };
    if !daemon.def.usable_from(req.server()) {
        return fail(&req, sys::HTTP_INTERNAL_SERVER_ERROR, &format!("WSGI daemon process group '{process_group_name}' is defined in another virtual host and cannot be used here; cannot run {script}"));
    }
    if daemon.def.spec.threads == 0 {
        return fail(&req, sys::HTTP_INTERNAL_SERVER_ERROR, &format!("WSGI daemon process group '{process_group_name}' has threads=0: it runs service scripts and takes no requests; cannot run {script}"));
    }
    if let Err(why) = daemon.def.check_script_owner(script) {
        return fail(&req, sys::HTTP_FORBIDDEN, &format!("WSGI script {script} may not run in daemon process group '{process_group_name}': {why}"));
    }
    let mut head = RequestHead {
        script: target.script.clone(),
        script_mtime: target.mtime,
        callable: cfg.callable_object.clone(),
        reloading: cfg.script_reloading,
        application_group: group,
        request_start_us: req.request_time_us(),
        environ: vars.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
    };
    if let Err(why) = daemon.def.confine(&mut head) {
        return fail(&req, sys::HTTP_INTERNAL_SERVER_ERROR, &format!("cannot run {script}: {why}"));
    }
    let settings = client::Settings { error_override: cfg.error_override, apache_timeout: crate::ffi::server::request_timeout(req.server()) };
    client::run(req, &daemon, head, &settings)
}

/// `%{ENV:NAME}`: the request's notes, then its environment, then the process's.
fn request_env(req: &Request, name: &str) -> Option<Vec<u8>> {
    let key = std::ffi::CString::new(name).ok()?;
    let from_request = req.notes().get(&key).or_else(|| req.subprocess_env().get(&key)).map(<[u8]>::to_vec);
    from_request.or_else(|| std::env::var_os(name).map(std::ffi::OsString::into_encoded_bytes))
}

/// Expands a group selector for this request. `%{SERVER}` and
/// `%{RESOURCE}` use the virtual host's ServerName and `%{HOST}` the host
/// Apache parsed from the request, never the raw Host header.
pub(crate) fn expand_group(req: &Request, spec: &GroupSpec, script_name: &[u8]) -> Vec<u8> {
    let env = |name: &str| request_env(req, name);
    spec.expand(&GroupContext { server_hostname: req.server_hostname(), port: req.server_port(), hostname: req.hostname(), script_name, env: &env })
}

/// Bytes as Latin-1 text: one char per byte, so nothing is lost.
pub(crate) fn latin1_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}
