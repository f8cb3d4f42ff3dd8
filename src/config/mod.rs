//! Our configuration as Apache merges it: one [`ServerConfig`] per server
//! and virtual host, one [`DirConfig`] per directory section, and the
//! per-request [`RequestConfig`] resolved from both.
#![forbid(unsafe_code)]
pub mod directives;

use std::sync::Arc;

use wsgi_core::directives::{AliasOptions, GroupSpec, HandlerScript, HashSeed, ImportScript, MapHeadToGet};
use wsgi_core::proxy::Network;

use crate::ffi::regex::Regex;

/// How a `WSGIScriptAlias` or `WSGIScriptAliasMatch` matches the URI.
pub enum AliasPattern {
    Prefix(String),
    Regex(Regex),
}

pub struct ScriptAlias {
    pub pattern: AliasPattern,
    /// The file or directory; for the Match form it may hold `$1`…`$9`.
    pub target: String,
    pub options: AliasOptions,
}

/// Server-wide settings (main server only): the Python runtime in Apache's
/// children, and where daemon sockets live.
#[derive(Default, Clone)]
pub struct GlobalSettings {
    pub home: Option<String>,
    pub path: Vec<String>,
    pub optimize: Option<i32>,
    pub hash_seed: Option<HashSeed>,
    pub dont_write_bytecode: Option<bool>,
    pub warnings: Vec<String>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    pub restrict_embedded: Option<bool>,
    pub destroy_interpreter: Option<bool>,
    pub switch_interval: Option<f64>,
    pub python_eggs: Option<String>,
    /// `WSGISocketPrefix`, already made absolute.
    pub socket_prefix: Option<String>,
    /// `WSGISocketRotation` (default On): socket names change each generation.
    pub socket_rotation: Option<bool>,
    /// `WSGIRestrictSignal` (default On): `signal.signal` is refused.
    pub restrict_signal: Option<bool>,
    /// `WSGIPerInterpreterGIL`: a GIL per sub-interpreter (Python 3.12+).
    pub per_interpreter_gil: Option<bool>,
    /// `WSGIMaximumInterpreters`: how many sub-interpreters a process may create.
    pub maximum_interpreters: Option<usize>,
}

/// Per server or virtual host. Built while parsing, read-only afterwards.
#[derive(Default)]
pub struct ServerConfig {
    /// The vhost's aliases first, then the main server's; first match wins.
    pub aliases: Vec<Arc<ScriptAlias>>,
    pub global: GlobalSettings,
    /// What this server's config asks for that we accept but do not act on
    /// yet, one message each, warned about once at start-up.
    pub unapplied: Vec<String>,
    /// `WSGIDaemonProcess` groups defined in this server.
    pub daemon_groups: Vec<Arc<crate::daemon::group::DaemonGroup>>,
    /// `WSGIImportScript`s.
    pub import_scripts: Vec<ImportScript>,
}

impl ServerConfig {
    /// The start-up warnings for what this server accepts but does not act
    /// on, or cannot here.
    pub fn unapplied_warnings(&self) -> impl Iterator<Item = String> + '_ {
        let options = self.daemon_groups.iter().flat_map(|g| {
            let ignored = g.spec.ignored.iter().map(move |o| format!("WSGIDaemonProcess {} option {o}= {}", g.spec.name, directives::NO_EFFECT));
            ignored.chain(g.cannot_apply())
        });
        self.unapplied.iter().cloned().chain(options)
    }

    pub fn merge(parent: &ServerConfig, child: &ServerConfig) -> ServerConfig {
        ServerConfig {
            aliases: child.aliases.iter().chain(parent.aliases.iter()).cloned().collect(),
            // Global settings are the main server's wherever they are read.
            global: parent.global.clone(),
            unapplied: child.unapplied.clone(),
            daemon_groups: child.daemon_groups.clone(),
            import_scripts: child.import_scripts.clone(),
        }
    }
}

/// Per directory section (and the server-level defaults). `None` = unset.
#[derive(Default, Clone)]
pub struct DirConfig {
    pub callable_object: Option<String>,
    pub application_group: Option<GroupSpec>,
    pub process_group: Option<GroupSpec>,
    /// `WSGIRestrictProcess`: the process groups requests here may use.
    pub restrict_process: Option<Vec<String>>,
    pub script_reloading: Option<bool>,
    pub pass_authorization: Option<bool>,
    pub chunked_request: Option<bool>,
    pub map_head_to_get: Option<MapHeadToGet>,
    /// `WSGITrustedProxyHeaders`, as environ keys in configuration order.
    pub trusted_proxy_headers: Option<Vec<&'static str>>,
    /// `WSGITrustedProxies`; unset means any peer may send them.
    pub trusted_proxies: Option<Vec<Network>>,
    /// `WSGIAuthUserScript`, `WSGIAuthGroupScript`, `WSGIAccessScript`:
    /// a script and the application group it runs in.
    pub auth_user_script: Option<(String, Option<GroupSpec>)>,
    pub auth_group_script: Option<(String, Option<GroupSpec>)>,
    pub access_script: Option<(String, Option<GroupSpec>)>,
    /// `WSGIDispatchScript`: a script and the application group it runs in.
    pub dispatch_script: Option<(String, Option<GroupSpec>)>,
    /// `WSGIHandlerScript`s: handler names `SetHandler`/`AddHandler` may
    /// select. A section's replace the server's of the same name.
    pub handler_scripts: Vec<Arc<HandlerScript>>,
    /// `WSGIPassApacheRequest`: `apache.request_rec` in embedded environs.
    pub pass_apache_request: Option<bool>,
    /// Daemon mode only: Apache's ErrorDocument replaces app error bodies.
    pub error_override: Option<bool>,
}

impl DirConfig {
    /// Child wins, field by field.
    pub fn merge(parent: &DirConfig, child: &DirConfig) -> DirConfig {
        fn pick<T: Clone>(child: &Option<T>, parent: &Option<T>) -> Option<T> {
            child.clone().or_else(|| parent.clone())
        }
        DirConfig {
            callable_object: pick(&child.callable_object, &parent.callable_object),
            application_group: pick(&child.application_group, &parent.application_group),
            process_group: pick(&child.process_group, &parent.process_group),
            restrict_process: pick(&child.restrict_process, &parent.restrict_process),
            script_reloading: pick(&child.script_reloading, &parent.script_reloading),
            pass_authorization: pick(&child.pass_authorization, &parent.pass_authorization),
            chunked_request: pick(&child.chunked_request, &parent.chunked_request),
            map_head_to_get: pick(&child.map_head_to_get, &parent.map_head_to_get),
            trusted_proxy_headers: pick(&child.trusted_proxy_headers, &parent.trusted_proxy_headers),
            trusted_proxies: pick(&child.trusted_proxies, &parent.trusted_proxies),
            auth_user_script: pick(&child.auth_user_script, &parent.auth_user_script),
            auth_group_script: pick(&child.auth_group_script, &parent.auth_group_script),
            access_script: pick(&child.access_script, &parent.access_script),
            dispatch_script: pick(&child.dispatch_script, &parent.dispatch_script),
            handler_scripts: child
                .handler_scripts
                .iter()
                .chain(parent.handler_scripts.iter().filter(|p| !child.handler_scripts.iter().any(|c| c.handler == p.handler)))
                .cloned()
                .collect(),
            pass_apache_request: pick(&child.pass_apache_request, &parent.pass_apache_request),
            error_override: pick(&child.error_override, &parent.error_override),
        }
    }

    /// The `WSGIHandlerScript` registered here under the handler name `handler`.
    pub fn handler_script(&self, handler: &[u8]) -> Option<&Arc<HandlerScript>> {
        self.handler_scripts.iter().find(|h| h.handler.as_bytes() == handler)
    }

    /// The settings for one request: alias options over the directory
    /// config over mod_wsgi's defaults.
    pub fn resolve(&self, alias: Option<&AliasOptions>) -> RequestConfig {
        let alias_opts = alias.cloned().unwrap_or_default();
        RequestConfig {
            callable_object: alias_opts.callable_object.or_else(|| self.callable_object.clone()).unwrap_or_else(|| "application".to_string()),
            application_group: alias_opts.application_group.or_else(|| self.application_group.clone()).unwrap_or(GroupSpec::Resource),
            process_group: alias_opts.process_group.or_else(|| self.process_group.clone()).unwrap_or(GroupSpec::Global),
            restrict_process: self.restrict_process.clone(),
            error_override: self.error_override.unwrap_or(false),
            script_reloading: self.script_reloading.unwrap_or(true),
            pass_authorization: alias_opts.pass_authorization.or(self.pass_authorization).unwrap_or(false),
            chunked_request: self.chunked_request.unwrap_or(false),
            map_head_to_get: self.map_head_to_get.unwrap_or(MapHeadToGet::Auto),
            trusted_proxy_headers: self.trusted_proxy_headers.clone().unwrap_or_default(),
            trusted_proxies: self.trusted_proxies.clone(),
            dispatch_script: self.dispatch_script.clone(),
            pass_apache_request: self.pass_apache_request.unwrap_or(false),
        }
    }
}

/// Everything the handler needs to know about one request's settings.
pub struct RequestConfig {
    pub callable_object: String,
    pub application_group: GroupSpec,
    /// `%{GLOBAL}` (the default) means embedded mode.
    pub process_group: GroupSpec,
    pub restrict_process: Option<Vec<String>>,
    pub error_override: bool,
    pub script_reloading: bool,
    pub pass_authorization: bool,
    pub chunked_request: bool,
    pub map_head_to_get: MapHeadToGet,
    pub trusted_proxy_headers: Vec<&'static str>,
    pub trusted_proxies: Option<Vec<Network>>,
    pub dispatch_script: Option<(String, Option<GroupSpec>)>,
    pub pass_apache_request: bool,
}
