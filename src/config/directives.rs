//! The `WSGI…` directives: Apache's command table and one safe handler each.
use std::sync::Arc;

use wsgi_core::args::Args;
use wsgi_core::directives as parse;
use wsgi_core::interpreter_options::{self, Selectors};

use super::{AliasPattern, ScriptAlias};
use crate::ffi::cmd::{command_table, Cmd, CommandTable, Context, Directive, Handler, Result};

macro_rules! directive {
    ($name:literal, $context:ident, $kind:ident($handler:expr), $help:literal) => {
        Directive { name: $name, context: Context::$context, handler: Handler::$kind($handler), help: $help }
    };
}

/// Every directive we accept: all of mod_wsgi 6's, and
/// WSGIMaximumInterpreters (ours). Apache finds a handler by its index here.
pub const DIRECTIVES: &[Directive] = &[
    directive!(c"WSGIScriptAlias", Server, RawArgs(script_alias), c"URL-path file-or-directory [process-group=...] [application-group=...] [callable-object=...] [pass-authorization=On|Off]"),
    directive!(c"WSGIScriptAliasMatch", Server, RawArgs(script_alias_match), c"regex file-or-directory [options]"),
    directive!(c"WSGICallableObject", ServerDirFileInfo, Take1(callable_object), c"name of the WSGI callable in the script (default: application)"),
    directive!(c"WSGIApplicationGroup", ServerDirFileInfo, Take1(application_group), c"%{GLOBAL}, %{SERVER}, %{HOST}, %{RESOURCE}, %{ENV:var} or a name"),
    directive!(c"WSGIScriptReloading", ServerDirFileInfo, Flag(|cmd, on| set_dir(cmd, |d| d.script_reloading = Some(on))), c"On|Off: reload the script when its modification time changes"),
    directive!(c"WSGIPassAuthorization", ServerDirFileInfo, Flag(|cmd, on| set_dir(cmd, |d| d.pass_authorization = Some(on))), c"On|Off: pass the Authorization header as HTTP_AUTHORIZATION"),
    directive!(c"WSGIChunkedRequest", ServerDirFileInfo, Flag(|cmd, on| set_dir(cmd, |d| d.chunked_request = Some(on))), c"On|Off: accept chunked request bodies"),
    directive!(c"WSGIMapHEADToGET", ServerDirFileInfo, Take1(map_head_to_get), c"On|Off|Auto: present HEAD requests to the app as GET"),
    directive!(c"WSGIErrorOverride", ServerDirFileInfo, Flag(|cmd, on| set_dir(cmd, |d| d.error_override = Some(on))), c"On|Off: use Apache's error documents for daemon-mode error responses"),
    directive!(c"WSGIRestrictEmbedded", Global, Flag(|cmd, on| set_global(cmd, |p| p.restrict_embedded = Some(on))), c"On|Off: refuse to run applications inside Apache's child processes"),
    directive!(c"WSGIRestrictStdin", Global, Flag(|cmd, on| set_interpreter(cmd, |p| p.restrict_stdin = Some(on))), c"On|Off: make any use of sys.stdin an error"),
    directive!(c"WSGIRestrictStdout", Global, Flag(|cmd, on| set_interpreter(cmd, |p| p.restrict_stdout = Some(on))), c"On|Off: make any use of sys.stdout an error"),
    directive!(c"WSGIPythonHome", Global, Take1(python_home), c"the Python installation prefix or virtual environment to use"),
    directive!(c"WSGIPythonPath", Global, Take1(|cmd, v| set_interpreter(cmd, |p| p.path.extend(parse::parse_python_path(v)))), c"directories (':'-separated) to add to sys.path with site.addsitedir"),
    directive!(c"WSGIPythonOptimize", Global, Take1(python_optimize), c"0, 1 or 2: Python's optimisation level"),
    directive!(c"WSGIPythonHashSeed", Global, Take1(python_hash_seed), c"random or an integer 0-4294967295: Python's hash seed"),
    directive!(c"WSGIDontWriteBytecode", Global, Flag(|cmd, on| set_global(cmd, |p| p.dont_write_bytecode = Some(on))), c"On|Off: do not write .pyc files"),
    directive!(c"WSGIPythonWarnings", Global, Take1(python_warnings), c"a warnings filter, as for python -W (repeatable)"),
    directive!(c"WSGIPythonEggs", Global, Take1(|cmd, v| set_global(cmd, |p| p.python_eggs = Some(v.to_string()))), c"directory for PYTHON_EGG_CACHE"),
    directive!(c"WSGIDestroyInterpreter", Global, Flag(|cmd, on| set_global(cmd, |p| p.destroy_interpreter = Some(on))), c"On|Off: finalise Python when a process exits"),
    directive!(c"WSGISwitchInterval", Global, Take1(switch_interval), c"seconds (> 0): Python's thread switch interval"),
    directive!(c"WSGIPerInterpreterGIL", Global, Flag(per_interpreter_gil), c"On|Off: a GIL per sub-interpreter (Python 3.12 or later)"),
    directive!(c"WSGIMaximumInterpreters", Global, Take1(|cmd, v| { let n = parse::parse_maximum_interpreters(v)?; set_global(cmd, |p| p.maximum_interpreters = Some(n)) }), c"N (default 100): the most sub-interpreters (application groups other than %{GLOBAL}) a process creates; a mod_wsgi-rs extension"),
    directive!(c"WSGIFreeThreading", Global, Flag(free_threading), c"On|Off: run without the GIL (free-threaded Python 3.13 or later)"),
    directive!(c"<WSGIInterpreterOptions", Global, RawArgs(interpreter_options), c"[process-group=NAME] [application-group=NAME]> ... </WSGIInterpreterOptions>: settings for matching interpreters"),
    directive!(c"WSGITrustedProxyHeaders", ServerDirFileInfo, RawArgs(trusted_proxy_headers), c"proxy headers (X-Forwarded-For, X-Forwarded-Proto, ...) to honour"),
    directive!(c"WSGITrustedProxies", ServerDirFileInfo, RawArgs(trusted_proxies), c"addresses or networks of the proxies whose headers are honoured"),
    directive!(c"WSGIAuthUserScript", DirAuthConfig, RawArgs(|cmd, a| group_script(cmd, a, |d, s| d.auth_user_script = Some(s))), c"script [application-group=NAME]: check_password() for AuthBasicProvider wsgi"),
    directive!(c"WSGIAuthGroupScript", DirAuthConfig, RawArgs(|cmd, a| group_script(cmd, a, |d, s| d.auth_group_script = Some(s))), c"script [application-group=NAME]: groups_for_user() for Require wsgi-group"),
    directive!(c"WSGIAccessScript", DirAuthConfig, RawArgs(|cmd, a| group_script(cmd, a, |d, s| d.access_script = Some(s))), c"script [application-group=NAME]: allow_access() for each request"),
    directive!(c"WSGIGroupAuthoritative", DirAuthConfig, Flag(|_, _| Ok(())), c"On|Off: no effect, as in mod_wsgi 6"),
    directive!(c"WSGIDaemonProcess", Server, RawArgs(daemon_process), c"name [option=value ...]: define a daemon process group"),
    directive!(c"WSGIProcessGroup", ServerDir, Take1(process_group), c"a WSGIDaemonProcess name, %{GLOBAL} (embedded) or %{ENV:var}"),
    directive!(c"WSGIRestrictProcess", ServerDir, RawArgs(restrict_process), c"the process groups requests here may be sent to (%{GLOBAL} for embedded)"),
    directive!(c"WSGISocketPrefix", Global, Take1(socket_prefix), c"path prefix (relative to ServerRoot) for daemon sockets"),
    directive!(c"WSGISocketRotation", Global, Flag(|cmd, on| set_global(cmd, |g| g.socket_rotation = Some(on))), c"On|Off: new daemon socket names on each restart"),
    directive!(c"WSGIAcceptMutex", Global, Take1(|_, v| parse::parse_accept_mutex(v).map(drop)), c"default or an Apache Mutex method: no effect, daemons need no accept lock"),
    directive!(c"WSGIImportScript", Server, RawArgs(import_script), c"script process-group=NAME application-group=NAME: load a script when processes start"),
    directive!(c"WSGIHandlerScript", ServerDir, RawArgs(handler_script), c"name script [process-group=...] [application-group=...] [pass-authorization=On|Off]: a handler (for SetHandler/AddHandler) that runs handle_request() from the script"),
    directive!(c"WSGIDispatchScript", ServerDir, RawArgs(|cmd, a| group_script(cmd, a, |d, s| d.dispatch_script = Some(s))), c"script [application-group=NAME]: process_group(), application_group() and callable_object() for each request"),
    directive!(c"WSGIPassApacheRequest", ServerDir, Flag(|cmd, on| set_dir(cmd, |d| d.pass_apache_request = Some(on))), c"On|Off: pass apache.request_rec in the environ (embedded mode)"),
    directive!(c"WSGIRestrictSignal", Global, Flag(|cmd, on| set_interpreter(cmd, |g| g.restrict_signal = Some(on))), c"On|Off: refuse signal.signal() in applications"),
    directive!(c"WSGIServerMetrics", Global, Flag(|cmd, on| unapplied_if(cmd, on, "On is accepted, but mod_wsgi.server_metrics() is not provided yet")), c"On|Off: let embedded-mode code read Apache's scoreboard (accepted, not yet provided)"),
    directive!(c"WSGITelemetryService", Global, RawArgs(|cmd, line| telemetry(cmd, wsgi_core::telemetry::check_service(line))), c"unix:/path [interval=SECONDS]: accepted, no telemetry reporter yet"),
    directive!(c"WSGISlowRequests", Global, Take1(|cmd, value| telemetry(cmd, wsgi_core::telemetry::check_slow_requests(value))), c"SECONDS: accepted, no telemetry reporter yet"),
    directive!(c"WSGITelemetryOptions", Global, RawArgs(|cmd, line| telemetry(cmd, wsgi_core::telemetry::check_options(line))), c"[+|-]CaptureUserAgent | None | All: accepted, no telemetry reporter yet"),
    directive!(c"WSGIVerboseDebugging", Global, Flag(|cmd, on| unapplied_if(cmd, on, "On has no effect (nor has it in mod_wsgi 6); use LogLevel wsgi:debug")), c"no effect; use LogLevel wsgi:debug"),
    directive!(c"WSGICaseSensitivity", Global, Flag(|cmd, on| unapplied_if(cmd, !on, "Off is accepted, but file names are always compared case-sensitively")), c"On|Off: whether script file names are case-sensitive (Off is not applied)"),
    directive!(c"WSGIEnableSendfile", ServerDirFileInfo, Flag(|cmd, _| unapplied(cmd, NO_EFFECT)), c"On|Off: accepted; embedded mode always hands files to Apache"),
    directive!(c"WSGIIgnoreActivity", ServerDirFileInfo, Flag(|cmd, _| unapplied(cmd, NO_EFFECT)), c"On|Off: accepted; requests here still count as activity for inactivity-timeout"),
];

const COMMAND_COUNT: usize = DIRECTIVES.len() + 1;
/// What `wsgi_module.cmds` points at.
pub static COMMANDS: CommandTable<COMMAND_COUNT> = CommandTable(command_table(DIRECTIVES));

fn set_dir(cmd: &mut Cmd, f: impl FnOnce(&mut super::DirConfig)) -> Result {
    f(cmd.dir_config());
    Ok(())
}

fn set_global(cmd: &mut Cmd, f: impl FnOnce(&mut super::GlobalSettings)) -> Result {
    f(&mut cmd.server_config().global);
    Ok(())
}

fn script_alias(cmd: &mut Cmd, line: &str) -> Result {
    let (location, target, options) = parse::parse_script_alias(cmd.name(), line)?;
    if !location.starts_with('/') {
        return Err(format!("{}: the URL-path must start with '/', not '{location}'", cmd.name()));
    }
    let alias = ScriptAlias { pattern: AliasPattern::Prefix(location), target, options };
    cmd.server_config().aliases.push(Arc::new(alias));
    Ok(())
}

fn script_alias_match(cmd: &mut Cmd, line: &str) -> Result {
    let (pattern, target, options) = parse::parse_script_alias(cmd.name(), line)?;
    let regex = cmd.compile_regex(&pattern)?;
    let alias = ScriptAlias { pattern: AliasPattern::Regex(regex), target, options };
    cmd.server_config().aliases.push(Arc::new(alias));
    Ok(())
}

/// What the start-up warning says of a setting we accept for compatibility
/// but do not act on.
pub const NO_EFFECT: &str = concat!("is accepted for compatibility but has no effect in mod_wsgi-rs ", env!("CARGO_PKG_VERSION"), " (see docs/directives.md)");

/// Notes that this directive is accepted but not acted on, for one warning
/// at start-up: "<directive> <why>".
fn unapplied(cmd: &mut Cmd, why: &str) -> Result {
    let message = format!("{} {why}", cmd.name());
    note_unapplied(cmd, message)
}

fn note_unapplied(cmd: &mut Cmd, message: String) -> Result {
    let unapplied = &mut cmd.server_config().unapplied;
    if !unapplied.contains(&message) {
        unapplied.push(message);
    }
    Ok(())
}

/// [`unapplied`] when the value asks for something we do not do yet.
fn unapplied_if(cmd: &mut Cmd, asks: bool, why: &str) -> Result {
    if asks {
        unapplied(cmd, why)?;
    }
    Ok(())
}

fn telemetry(cmd: &mut Cmd, checked: Result) -> Result {
    checked?;
    unapplied(cmd, "is accepted, but mod_wsgi-rs has no telemetry reporter yet, so nothing is reported")
}

/// The Python this module is built for (and refuses to run any other).
fn python_version() -> (u32, u32) {
    interpreter_options::python_version(env!("MRS_PYTHON_BUILD_VERSION")).expect("build.rs sets major.minor")
}

/// The selectors of the `<WSGIInterpreterOptions>` the directive is in, if any.
fn interpreter_section(cmd: &Cmd) -> Option<Selectors> {
    let (name, args) = cmd.enclosing_section()?;
    // Its tag was checked when the section started.
    name.eq_ignore_ascii_case(interpreter_options::SECTION.trim_end_matches('>')).then(|| interpreter_options::parse_section(&args).unwrap_or_default())
}

/// A setting `<WSGIInterpreterOptions>` may scope. Outside a section it
/// applies to every interpreter; inside one it is checked, and the section
/// as a whole is noted as not applied yet.
fn set_interpreter(cmd: &mut Cmd, f: impl FnOnce(&mut super::GlobalSettings)) -> Result {
    if interpreter_section(cmd).is_some() {
        return Ok(());
    }
    set_global(cmd, f)
}

fn interpreter_options(cmd: &mut Cmd, args: &str) -> Result {
    interpreter_options::parse_section(args)?;
    interpreter_options::check_section_contents(&cmd.section_directives())?;
    cmd.walk_section()?;
    let message = format!("{} is accepted, but the settings inside it are not applied yet (see docs/directives.md)", interpreter_options::SECTION);
    note_unapplied(cmd, message)
}

fn per_interpreter_gil(cmd: &mut Cmd, on: bool) -> Result {
    if let Some(note) = interpreter_options::per_interpreter_gil_note(python_version()).filter(|_| on) {
        unapplied(cmd, &format!("On {note}"))?;
    }
    set_interpreter(cmd, |p| p.per_interpreter_gil = Some(on))
}

fn free_threading(cmd: &mut Cmd, on: bool) -> Result {
    if interpreter_section(cmd).is_some_and(|s| s.application_group.is_some()) {
        // As in mod_wsgi: free threading is per process, never per application group.
        return unapplied(cmd, "inside <WSGIInterpreterOptions application-group=...> is ignored: free threading is a process-wide setting");
    }
    unapplied_if(cmd, on, &format!("On {}", interpreter_options::free_threading_note(python_version())))
}

fn handler_script(cmd: &mut Cmd, line: &str) -> Result {
    let script = Arc::new(parse::parse_handler_script(line)?);
    set_dir(cmd, |d| {
        // A later line for the same name replaces the earlier one.
        d.handler_scripts.retain(|h| h.handler != script.handler);
        d.handler_scripts.push(script);
    })
}

fn switch_interval(cmd: &mut Cmd, value: &str) -> Result {
    let seconds = parse::parse_switch_interval(value)?;
    set_interpreter(cmd, |p| p.switch_interval = Some(seconds))
}

/// The words of a directive that takes a list.
fn words(cmd: &Cmd, line: &str) -> std::result::Result<Vec<String>, String> {
    Args::new(cmd.name(), line).words()
}

fn trusted_proxy_headers(cmd: &mut Cmd, line: &str) -> Result {
    let keys = words(cmd, line)?.iter().map(|a| wsgi_core::proxy::parse_header(a)).collect::<std::result::Result<Vec<_>, _>>()?;
    // Repeated lines add up within one section.
    set_dir(cmd, |d| d.trusted_proxy_headers.get_or_insert_with(Vec::new).extend(keys))
}

fn trusted_proxies(cmd: &mut Cmd, line: &str) -> Result {
    let networks = words(cmd, line)?.iter().map(|a| wsgi_core::proxy::parse_network(a)).collect::<std::result::Result<Vec<_>, _>>()?;
    set_dir(cmd, |d| d.trusted_proxies.get_or_insert_with(Vec::new).extend(networks))
}

fn group_script(cmd: &mut Cmd, line: &str, store: fn(&mut super::DirConfig, (String, Option<parse::GroupSpec>))) -> Result {
    let script = parse::parse_group_script(cmd.name(), line)?;
    set_dir(cmd, |d| store(d, script))
}

fn import_script(cmd: &mut Cmd, line: &str) -> Result {
    let script = parse::parse_import_script(line)?;
    let process_group = &script.process_group;
    if !process_group.is_empty() && !crate::daemon::group::is_defined(process_group) {
        return Err(format!("WSGIImportScript: no WSGIDaemonProcess '{process_group}' is defined before this line"));
    }
    cmd.server_config().import_scripts.push(script);
    Ok(())
}

fn daemon_process(cmd: &mut Cmd, line: &str) -> Result {
    let spec = wsgi_core::daemon_options::parse_daemon_process(line)?;
    let group = crate::daemon::group::DaemonGroup::new(spec, cmd.server())?;
    crate::daemon::group::claim_name(&group.spec.name)?;
    cmd.server_config().daemon_groups.push(Arc::new(group));
    Ok(())
}

fn process_group(cmd: &mut Cmd, value: &str) -> Result {
    let spec = parse::parse_group_spec(cmd.name(), value)?;
    set_dir(cmd, |d| d.process_group = Some(spec))
}

fn restrict_process(cmd: &mut Cmd, line: &str) -> Result {
    let args = words(cmd, line)?;
    if args.is_empty() {
        return Err(format!("{} needs at least one process group name", cmd.name()));
    }
    let names = args.into_iter().map(|a| if a == "%{GLOBAL}" { String::new() } else { a }).collect();
    set_dir(cmd, |d| d.restrict_process = Some(names))
}

fn socket_prefix(cmd: &mut Cmd, value: &str) -> Result {
    if value.is_empty() {
        return Err(format!("{} needs a path", cmd.name()));
    }
    let path = crate::ffi::process::server_root_path(cmd.pool(), value);
    set_global(cmd, |g| g.socket_prefix = Some(path))
}

fn callable_object(cmd: &mut Cmd, value: &str) -> Result {
    if value.is_empty() {
        return Err(format!("{} needs the name of a callable", cmd.name()));
    }
    set_dir(cmd, |d| d.callable_object = Some(value.to_string()))
}

fn application_group(cmd: &mut Cmd, value: &str) -> Result {
    let spec = parse::parse_group_spec(cmd.name(), value)?;
    set_dir(cmd, |d| d.application_group = Some(spec))
}

fn map_head_to_get(cmd: &mut Cmd, value: &str) -> Result {
    let mode = parse::parse_map_head_to_get(value)?;
    set_dir(cmd, |d| d.map_head_to_get = Some(mode))
}

fn python_home(cmd: &mut Cmd, value: &str) -> Result {
    let home = parse::parse_python_home(value)?;
    set_global(cmd, |p| p.home = Some(home))
}

fn python_optimize(cmd: &mut Cmd, value: &str) -> Result {
    let level = parse::parse_optimize(value)?;
    set_global(cmd, |p| p.optimize = Some(level))
}

fn python_hash_seed(cmd: &mut Cmd, value: &str) -> Result {
    let seed = parse::parse_hash_seed(value)?;
    set_global(cmd, |p| p.hash_seed = Some(seed))
}

fn python_warnings(cmd: &mut Cmd, value: &str) -> Result {
    let option = parse::parse_warning_option(value)?;
    set_global(cmd, |p| p.warnings.push(option))
}
