//! Parsing of the values `WSGI…` directives take. Each function returns the
//! message Apache prints when `apache2 -t` fails, naming the directive and
//! what it accepts.
use crate::args::Args;

/// `WSGIMapHEADToGET`: whether a HEAD request reaches the app as GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapHeadToGet {
    Off,
    On,
    /// Only when an output filter that could depend on the body (below the
    /// protocol level, such as DEFLATE) is in the chain.
    Auto,
}

pub fn parse_map_head_to_get(value: &str) -> Result<MapHeadToGet, String> {
    match value.to_ascii_lowercase().as_str() {
        "off" => Ok(MapHeadToGet::Off),
        "on" => Ok(MapHeadToGet::On),
        "auto" => Ok(MapHeadToGet::Auto),
        _ => Err(format!("WSGIMapHEADToGET must be On, Off or Auto, not '{value}'")),
    }
}

pub fn parse_optimize(value: &str) -> Result<i32, String> {
    match value {
        "0" => Ok(0),
        "1" => Ok(1),
        "2" => Ok(2),
        _ => Err(format!("WSGIPythonOptimize must be 0, 1 or 2, not '{value}'")),
    }
}

/// `WSGIPythonHashSeed`: `random`, or a seed in 0..=4294967295.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashSeed {
    Random,
    Fixed(u32),
}

pub fn parse_hash_seed(value: &str) -> Result<HashSeed, String> {
    if value.eq_ignore_ascii_case("random") {
        return Ok(HashSeed::Random);
    }
    value
        .parse::<u32>()
        .map(HashSeed::Fixed)
        .map_err(|_| format!("WSGIPythonHashSeed must be 'random' or an integer from 0 to 4294967295, not '{value}'"))
}

/// `WSGIPythonWarnings`: the `-W` syntax, `action:message:category:module:lineno`,
/// of which only the action is required.
pub fn parse_warning_option(value: &str) -> Result<String, String> {
    let action = value.split(':').next().unwrap_or("");
    const ACTIONS: [&str; 6] = ["default", "error", "ignore", "always", "module", "once"];
    if value.split(':').count() > 5 || !ACTIONS.iter().any(|a| a.starts_with(action) && !action.is_empty()) {
        return Err(format!(
            "WSGIPythonWarnings takes 'action[:message[:category[:module[:lineno]]]]' with action one of {}, not '{value}'",
            ACTIONS.join(", ")
        ));
    }
    Ok(value.to_string())
}

/// An interpreter or process-group selector (`WSGIApplicationGroup`,
/// `WSGIProcessGroup`), expanded per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSpec {
    /// `%{GLOBAL}`: the main interpreter (or, for a process group, embedded mode).
    Global,
    /// `%{SERVER}`: the virtual host's ServerName, plus `:port` unless 80 or 443.
    Server,
    /// `%{HOST}`: the host the client asked for (Apache's lowercased
    /// `r->hostname`, no port), falling back to ServerName, plus `:port`.
    Host,
    /// `%{RESOURCE}`: `ServerName[:port]|SCRIPT_NAME`.
    Resource,
    /// `%{ENV:NAME}`: the request's notes, then its environment, then the process's.
    Env(String),
    Literal(String),
}

pub fn parse_group_spec(directive: &str, value: &str) -> Result<GroupSpec, String> {
    Ok(match value {
        "%{GLOBAL}" => GroupSpec::Global,
        "%{SERVER}" => GroupSpec::Server,
        "%{HOST}" => GroupSpec::Host,
        "%{RESOURCE}" => GroupSpec::Resource,
        _ => {
            if let Some(name) = value.strip_prefix("%{ENV:").and_then(|v| v.strip_suffix('}')) {
                if name.is_empty() {
                    return Err(format!("{directive} %{{ENV:…}} needs a variable name"));
                }
                GroupSpec::Env(name.to_string())
            } else if value.starts_with("%{") {
                return Err(format!(
                    "{directive} takes a name or one of %{{GLOBAL}}, %{{SERVER}}, %{{HOST}}, %{{RESOURCE}}, %{{ENV:variable}}, not '{value}'"
                ));
            } else {
                GroupSpec::Literal(value.to_string())
            }
        }
    })
}

/// A group name returned by a `WSGIDispatchScript`'s `process_group()` or
/// `application_group()`: expanded as the directive's value is, except that
/// a `%{…}` form that is not one of the known ones stays a literal name, as
/// in mod_wsgi (a directive's value would be refused at start-up instead).
pub fn dispatch_group_spec(value: &str) -> GroupSpec {
    parse_group_spec("", value).unwrap_or_else(|_| GroupSpec::Literal(value.to_string()))
}

/// The callable a `WSGIDispatchScript`'s `callable_object()` named: a plain
/// name as it is; `%{ENV:NAME}` looked up with `env` (notes, the request's
/// environment, the process's); any other `%` form, or an unset variable,
/// means `application`, as in mod_wsgi.
pub fn expand_callable(value: &str, env: &dyn Fn(&str) -> Option<Vec<u8>>) -> String {
    const DEFAULT: &str = "application";
    if !value.starts_with('%') {
        return value.to_string();
    }
    value
        .strip_prefix("%{ENV:")
        .and_then(|v| v.strip_suffix('}'))
        .and_then(env)
        .map_or_else(|| DEFAULT.to_string(), |found| String::from_utf8_lossy(&found).into_owned())
}

/// The inputs a [`GroupSpec`] expands from; gathered from the request by the
/// caller so expansion stays pure. Names are bytes, as Apache keeps them.
pub struct GroupContext<'a> {
    /// The configured ServerName of the virtual host that took the request
    /// (never the client's Host header).
    pub server_hostname: &'a [u8],
    pub port: u16,
    /// The host the request named, lowercased and without a port.
    pub hostname: Option<&'a [u8]>,
    pub script_name: &'a [u8],
    /// Looks up `%{ENV:NAME}` in notes, then the request environment, then the process.
    pub env: &'a dyn Fn(&str) -> Option<Vec<u8>>,
}

impl GroupSpec {
    pub fn expand(&self, ctx: &GroupContext<'_>) -> Vec<u8> {
        let with_port = |name: &[u8]| {
            let mut out = name.to_vec();
            if ctx.port != 80 && ctx.port != 443 {
                out.extend_from_slice(format!(":{}", ctx.port).as_bytes());
            }
            out
        };
        match self {
            GroupSpec::Global => Vec::new(),
            GroupSpec::Server => with_port(ctx.server_hostname),
            GroupSpec::Host => with_port(ctx.hostname.filter(|h| !h.is_empty()).unwrap_or(ctx.server_hostname)),
            GroupSpec::Resource => {
                let mut name = with_port(ctx.server_hostname);
                name.push(b'|');
                name.extend_from_slice(ctx.script_name);
                name
            }
            GroupSpec::Env(name) => (ctx.env)(name).unwrap_or_default(),
            GroupSpec::Literal(name) => name.as_bytes().to_vec(),
        }
    }
}

/// Options that may follow the script of `WSGIScriptAlias`,
/// `WSGIScriptAliasMatch`, `WSGIHandlerScript`, `WSGIImportScript` and the
/// auth and dispatch scripts (each takes its own subset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasOptions {
    pub process_group: Option<GroupSpec>,
    pub application_group: Option<GroupSpec>,
    pub callable_object: Option<String>,
    pub pass_authorization: Option<bool>,
}

pub fn parse_on_off(directive: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{directive} must be On or Off, not '{value}'")),
    }
}

const PROCESS_GROUP: &str = "process-group";
const APPLICATION_GROUP: &str = "application-group";
const CALLABLE_OBJECT: &str = "callable-object";
const PASS_AUTHORIZATION: &str = "pass-authorization";

/// "a=, b= and c=" for error messages.
fn option_list(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("{n}=")).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The script options in `args`, of which the directive takes `allowed`.
fn script_options(directive: &str, args: Args<'_>, allowed: &[&str]) -> Result<AliasOptions, String> {
    let mut parsed = AliasOptions::default();
    for (name, value) in args.options()? {
        if !allowed.contains(&name.as_str()) {
            return Err(format!("{directive}: unknown option '{name}'; it takes {}", option_list(allowed)));
        }
        if value.is_empty() {
            return Err(format!("{directive}: {name}= needs a value"));
        }
        match name.as_str() {
            PROCESS_GROUP => parsed.process_group = Some(parse_group_spec(directive, &value)?),
            APPLICATION_GROUP => parsed.application_group = Some(parse_group_spec(directive, &value)?),
            CALLABLE_OBJECT => parsed.callable_object = Some(value),
            _ => parsed.pass_authorization = Some(parse_on_off(&format!("{directive} {name}="), &value)?),
        }
    }
    Ok(parsed)
}

/// `WSGIScriptAlias` and `WSGIScriptAliasMatch`: `location script [options]`.
pub fn parse_script_alias(directive: &str, line: &str) -> Result<(String, String, AliasOptions), String> {
    let mut args = Args::new(directive, line);
    let needs = format!("a URL-path and a script file or directory, e.g. `{directive} / /srv/app/app.wsgi`");
    let location = args.required(&needs)?;
    let script = args.required(&needs)?;
    let options = script_options(directive, args, &[PROCESS_GROUP, APPLICATION_GROUP, CALLABLE_OBJECT, PASS_AUTHORIZATION])?;
    Ok((location, script, options))
}

/// `WSGIMaximumInterpreters`: how many sub-interpreters a process may
/// create, at least 1.
pub fn parse_maximum_interpreters(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=MAXIMUM_INTERPRETERS_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!("WSGIMaximumInterpreters must be a number of sub-interpreters from 1 to {MAXIMUM_INTERPRETERS_LIMIT}, not '{value}'")),
    }
}

/// The most `WSGIMaximumInterpreters` accepts: each sub-interpreter takes
/// megabytes, so more than this per process is a configuration mistake.
const MAXIMUM_INTERPRETERS_LIMIT: usize = 10_000;

/// `WSGISwitchInterval`: seconds, a number above zero.
pub fn parse_switch_interval(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(seconds),
        _ => Err(format!("WSGISwitchInterval must be a number of seconds above 0, such as 0.005, not '{value}'")),
    }
}

/// `WSGIImportScript path process-group=NAME application-group=NAME`: a
/// script loaded when the processes of a group start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportScript {
    pub script: String,
    /// The daemon process group, or "" for Apache's own children.
    pub process_group: String,
    /// The application group (interpreter), or "" for the main one.
    pub application_group: String,
}

/// Both options are required and must be fixed names or `%{GLOBAL}`,
/// since the script loads before any request.
pub fn parse_import_script(line: &str) -> Result<ImportScript, String> {
    const D: &str = "WSGIImportScript";
    let mut args = Args::new(D, line);
    let script = args.required("a script path, process-group= and application-group=")?;
    let options = script_options(D, args, &[PROCESS_GROUP, APPLICATION_GROUP])?;
    let fixed = |spec: Option<GroupSpec>, option: &str| match spec {
        Some(GroupSpec::Global) => Ok(String::new()),
        Some(GroupSpec::Literal(name)) => Ok(name),
        Some(_) => Err(format!("{D}: {option}= must be a fixed name or %{{GLOBAL}}, since the script is loaded at process start")),
        None => Err(format!("{D} needs both process-group= and application-group=")),
    };
    Ok(ImportScript {
        script,
        process_group: fixed(options.process_group, PROCESS_GROUP)?,
        application_group: fixed(options.application_group, APPLICATION_GROUP)?,
    })
}

/// `WSGIAuthUserScript`, `WSGIAuthGroupScript`, `WSGIAccessScript` and
/// `WSGIDispatchScript`: `path [application-group=NAME]`.
pub fn parse_group_script(directive: &str, line: &str) -> Result<(String, Option<GroupSpec>), String> {
    let mut args = Args::new(directive, line);
    let path = args.required("the path of a script")?;
    let options = script_options(directive, args, &[APPLICATION_GROUP])?;
    Ok((path, options.application_group))
}

/// `WSGIHandlerScript name path [options]`: a script that Apache handler
/// `name` (set by `SetHandler` or `AddHandler`) runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerScript {
    pub handler: String,
    pub script: String,
    pub options: AliasOptions,
}

pub fn parse_handler_script(line: &str) -> Result<HandlerScript, String> {
    const D: &str = "WSGIHandlerScript";
    let mut args = Args::new(D, line);
    let needs = "a handler name and a script path, e.g. `WSGIHandlerScript my-handler /srv/app/handler.wsgi`";
    let handler = args.required(needs)?;
    let script = args.required(needs)?;
    let options = script_options(D, args, &[PROCESS_GROUP, APPLICATION_GROUP, PASS_AUTHORIZATION])?;
    Ok(HandlerScript { handler, script, options })
}

/// `WSGIAcceptMutex`: the lock daemon processes of one group would take
/// around `accept()`. The methods are Apache's `Mutex` mechanisms on Linux.
pub fn parse_accept_mutex(value: &str) -> Result<String, String> {
    const METHODS: [&str; 6] = ["default", "flock", "fcntl", "sysvsem", "posixsem", "pthread"];
    let method = value.to_ascii_lowercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(format!("WSGIAcceptMutex must be one of {}, not '{value}'", METHODS.join(", ")));
    }
    Ok(method)
}

/// `WSGIPythonHome`: `prefix[:exec_prefix]`; only the prefix selects the home.
pub fn parse_python_home(value: &str) -> Result<String, String> {
    let prefix = value.split(':').next().unwrap_or("");
    if !prefix.starts_with('/') {
        return Err(format!("WSGIPythonHome must be an absolute path, not '{value}'"));
    }
    let trimmed = prefix.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/".to_string() } else { trimmed.to_string() })
}

/// `WSGIPythonPath`: directories separated by ':'.
pub fn parse_python_path(value: &str) -> Vec<String> {
    value.split(':').filter(|p| !p.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_refused;

    #[test]
    fn map_head_values() {
        assert_eq!(parse_map_head_to_get("AUTO"), Ok(MapHeadToGet::Auto));
        assert_eq!(parse_map_head_to_get("on"), Ok(MapHeadToGet::On));
        let err = parse_map_head_to_get("sometimes").unwrap_err();
        assert!(err.starts_with("WSGIMapHEADToGET") && err.contains("sometimes"), "{err}");
    }

    #[test]
    fn optimize_and_hash_seed() {
        assert_eq!(parse_optimize("2"), Ok(2));
        assert!(parse_optimize("3").unwrap_err().contains("WSGIPythonOptimize"));
        assert_eq!(parse_hash_seed("Random"), Ok(HashSeed::Random));
        assert_eq!(parse_hash_seed("4294967295"), Ok(HashSeed::Fixed(u32::MAX)));
        assert!(parse_hash_seed("4294967296").is_err());
        assert!(parse_hash_seed("-1").is_err());
        assert!(parse_hash_seed("abc").unwrap_err().contains("WSGIPythonHashSeed"));
    }

    #[test]
    fn warning_options() {
        assert!(parse_warning_option("ignore::DeprecationWarning").is_ok());
        assert!(parse_warning_option("error").is_ok());
        assert!(parse_warning_option("bogus::Warning").is_err());
        assert!(parse_warning_option("").is_err());
        assert!(parse_warning_option("a:b:c:d:e:f").is_err());
    }

    #[test]
    fn group_specs_expand() {
        let no_env = |_: &str| None;
        let env = |name: &str| (name == "APP").then(|| b"from-env".to_vec());
        let ctx = GroupContext { server_hostname: b"example.com", port: 8080, hostname: Some(b"alias.example.com"), script_name: b"/app", env: &no_env };
        let expand = |spec: &str, ctx: &GroupContext<'_>| String::from_utf8(parse_group_spec("X", spec).unwrap().expand(ctx)).unwrap();
        assert_eq!(expand("%{GLOBAL}", &ctx), "");
        assert_eq!(expand("%{SERVER}", &ctx), "example.com:8080");
        assert_eq!(expand("%{HOST}", &ctx), "alias.example.com:8080");
        assert_eq!(expand("%{RESOURCE}", &ctx), "example.com:8080|/app");
        assert_eq!(expand("mine", &ctx), "mine");
        let ctx80 = GroupContext { port: 80, hostname: None, env: &env, ..ctx };
        assert_eq!(expand("%{HOST}", &ctx80), "example.com");
        assert_eq!(expand("%{SERVER}", &ctx80), "example.com");
        assert_eq!(expand("%{ENV:APP}", &ctx80), "from-env");
        assert_eq!(expand("%{ENV:NOPE}", &ctx80), "");
        // An IPv6 host keeps its port suffix, as in mod_wsgi.
        let ctx_v6 = GroupContext { hostname: Some(b"::1"), ..ctx };
        assert_eq!(expand("%{HOST}", &ctx_v6), "::1:8080");
        // A script name that is not UTF-8 stays as the bytes it was.
        let ctx_latin1 = GroupContext { script_name: b"/caf\xe9", ..ctx };
        assert_eq!(parse_group_spec("X", "%{RESOURCE}").unwrap().expand(&ctx_latin1), b"example.com:8080|/caf\xe9");
        assert!(parse_group_spec("WSGIApplicationGroup", "%{BOGUS}").unwrap_err().contains("WSGIApplicationGroup"));
        assert!(parse_group_spec("X", "%{ENV:}").is_err());
    }

    #[test]
    fn dispatch_results() {
        // docs/configuration-directives/WSGIDispatchScript.rst: the strings
        // are expanded as the directives' values are.
        assert_eq!(dispatch_group_spec("admin"), GroupSpec::Literal("admin".into()));
        assert_eq!(dispatch_group_spec("%{GLOBAL}"), GroupSpec::Global);
        assert_eq!(dispatch_group_spec("%{ENV:GROUP}"), GroupSpec::Env("GROUP".into()));
        assert_eq!(dispatch_group_spec("%{BOGUS}"), GroupSpec::Literal("%{BOGUS}".into()));
        let env = |name: &str| (name == "CALLABLE").then(|| b"app".to_vec());
        assert_eq!(expand_callable("handler", &env), "handler");
        assert_eq!(expand_callable("%{ENV:CALLABLE}", &env), "app");
        assert_eq!(expand_callable("%{ENV:UNSET}", &env), "application");
        assert_eq!(expand_callable("%{GLOBAL}", &env), "application");
    }

    #[test]
    fn switch_interval() {
        assert_eq!(parse_switch_interval("0.005"), Ok(0.005));
        for bad in ["0", "-1", "abc", "inf", ""] {
            assert!(parse_switch_interval(bad).unwrap_err().contains("WSGISwitchInterval"), "{bad}");
        }
    }

    fn lit(name: &str) -> Option<GroupSpec> {
        Some(GroupSpec::Literal(name.to_string()))
    }

    /// What a line of a script directive should parse to.
    type Alias = (&'static str, &'static str, AliasOptions);

    fn alias(location: &'static str, script: &'static str, options: AliasOptions) -> Alias {
        (location, script, options)
    }

    fn check_aliases(directive: &str, cases: &[(&str, Alias)]) {
        for (line, (location, script, options)) in cases {
            let parsed = parse_script_alias(directive, line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(parsed, (location.to_string(), script.to_string(), options.clone()), "{line}");
        }
    }

    #[test]
    fn script_alias_forms_from_the_docs() {
        // Cases from mod_wsgi 6's docs/configuration-directives/WSGIScriptAlias.rst
        // (examples and the process-group=/application-group= option text).
        let none = AliasOptions::default;
        check_aliases("WSGIScriptAlias", &[
            ("/wsgi-scripts/ /web/wsgi-scripts/", alias("/wsgi-scripts/", "/web/wsgi-scripts/", none())),
            ("/name /web/wsgi-scripts/name", alias("/name", "/web/wsgi-scripts/name", none())),
            ("/ /web/wsgi-scripts/myapp.wsgi", alias("/", "/web/wsgi-scripts/myapp.wsgi", none())),
            ("/ /srv/app.wsgi process-group=%{GLOBAL}", alias("/", "/srv/app.wsgi", AliasOptions { process_group: Some(GroupSpec::Global), ..none() })),
            ("/ /srv/app.wsgi process-group=%{ENV:variable}", alias("/", "/srv/app.wsgi", AliasOptions { process_group: Some(GroupSpec::Env("variable".into())), ..none() })),
            ("/ /srv/app.wsgi application-group=%{GLOBAL}", alias("/", "/srv/app.wsgi", AliasOptions { application_group: Some(GroupSpec::Global), ..none() })),
            ("/ /srv/app.wsgi process-group=name application-group=name", alias("/", "/srv/app.wsgi", AliasOptions { process_group: lit("name"), application_group: lit("name"), ..none() })),
        ]);
        // docs/configuration-directives/WSGIScriptAliasMatch.rst, including its quoted regex.
        check_aliases("WSGIScriptAliasMatch", &[
            ("^/wsgi-scripts/([^/]+) /web/wsgi-scripts/$1.wsgi", alias("^/wsgi-scripts/([^/]+)", "/web/wsgi-scripts/$1.wsgi", none())),
            (r#""^/(admin|files|photologue)" /projects/Media/wsgi_handler.py/$1"#, alias("^/(admin|files|photologue)", "/projects/Media/wsgi_handler.py/$1", none())),
        ]);
    }

    #[test]
    fn script_alias_quoting() {
        // Every option may have its value quoted, as in the configs
        // mod_wsgi-express writes (src/express/apache.py), and arguments too.
        let all = AliasOptions { process_group: lit("localhost:8000"), application_group: Some(GroupSpec::Global), callable_object: Some("app".into()), pass_authorization: Some(true) };
        check_aliases("WSGIScriptAlias", &[
            ("/ /srv/app.wsgi process-group=localhost:8000 application-group=%{GLOBAL} callable-object=app pass-authorization=On", alias("/", "/srv/app.wsgi", all.clone())),
            ("'/' '/srv/app.wsgi' process-group='localhost:8000' application-group='%{GLOBAL}' callable-object=\"app\" pass-authorization='on'", alias("/", "/srv/app.wsgi", all.clone())),
            ("\"/my app\" '/srv/my app/app.wsgi' process-group='my group'", alias("/my app", "/srv/my app/app.wsgi", AliasOptions { process_group: lit("my group"), ..Default::default() })),
        ]);
    }

    #[test]
    fn script_alias_errors() {
        // (line, what the message must contain besides the directive name)
        let cases = [
            ("", "needs a URL-path and a script"),
            ("/only-one", "needs a URL-path and a script"),
            ("/ ''", "needs a URL-path and a script"),
            ("/ /a.wsgi bogus-option=1", "unknown option 'bogus-option'; it takes process-group=, application-group=, callable-object= and pass-authorization="),
            ("/ /a.wsgi application-group", "'application-group' is not of the form option=value"),
            ("/ /a.wsgi process-group=''", "process-group= needs a value"),
            ("/ /a.wsgi application-group=", "application-group= needs a value"),
            ("/ /a.wsgi callable-object=\"\"", "callable-object= needs a value"),
            ("/ /a.wsgi pass-authorization=maybe", "pass-authorization= must be On or Off, not 'maybe'"),
            ("/ /a.wsgi process-group=%{BOGUS}", "takes a name or one of %{GLOBAL}"),
            ("/ '/a.wsgi process-group=x", "never closed"),
            ("/ /a.wsgi 'process-group=x'", "quote only the value"),
        ];
        assert_refused("WSGIScriptAlias", |line| parse_script_alias("WSGIScriptAlias", line), &cases);
    }

    #[test]
    fn maximum_interpreters() {
        assert_eq!(parse_maximum_interpreters("1"), Ok(1));
        assert_eq!(parse_maximum_interpreters("100"), Ok(100));
        for bad in ["0", "-1", "", "ten", "1.5", "10001"] {
            assert!(parse_maximum_interpreters(bad).unwrap_err().starts_with("WSGIMaximumInterpreters must be"), "{bad:?}");
        }
    }

    #[test]
    fn import_scripts() {
        // docs/configuration-directives/WSGIImportScript.rst (the example's
        // continuation line arrives joined), then the %{GLOBAL} forms it describes.
        let cases = [
            ("/web/wsgi-scripts/myapp.wsgi     process-group=mygroup application-group=%{GLOBAL}", ("/web/wsgi-scripts/myapp.wsgi", "mygroup", "")),
            ("/a.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}", ("/a.wsgi", "", "")),
            ("/a.wsgi application-group=x process-group=site", ("/a.wsgi", "site", "x")),
            // As mod_wsgi-express writes it (src/express/apache.py).
            ("'/srv/root/handler.wsgi' process-group='%{GLOBAL}' application-group=%{GLOBAL}", ("/srv/root/handler.wsgi", "", "")),
            ("'/srv/x.py' process-group='service:x' application-group=%{GLOBAL}", ("/srv/x.py", "service:x", "")),
        ];
        for (line, (script, process_group, application_group)) in cases {
            let expected = ImportScript { script: script.into(), process_group: process_group.into(), application_group: application_group.into() };
            assert_eq!(parse_import_script(line), Ok(expected), "{line}");
        }
        for bad in ["", "/a.wsgi", "/a.wsgi process-group=x", "/a.wsgi process-group=%{SERVER} application-group=x", "/a.wsgi process-group=x application-group=%{RESOURCE}", "/a.wsgi process-group=x application-group=y callable-object=z", "/a.wsgi process-group= application-group=x"] {
            assert!(parse_import_script(bad).unwrap_err().starts_with("WSGIImportScript"), "{bad:?}");
        }
    }

    #[test]
    fn group_scripts() {
        // docs/release-notes/version-2.0.rst shows the application-group= form;
        // the directive pages give `path [options]`.
        assert_eq!(parse_group_script("WSGIAccessScript", "/usr/local/wsgi/script/access.wsgi application-group=admin"), Ok(("/usr/local/wsgi/script/access.wsgi".into(), lit("admin"))));
        assert_eq!(parse_group_script("WSGIAuthUserScript", "/a.wsgi"), Ok(("/a.wsgi".into(), None)));
        assert_eq!(parse_group_script("WSGIAuthUserScript", "'/srv/auth script.wsgi' application-group='%{GLOBAL}'"), Ok(("/srv/auth script.wsgi".into(), Some(GroupSpec::Global))));
        assert_eq!(parse_group_script("WSGIDispatchScript", "/etc/apache2/wsgi/dispatch.py"), Ok(("/etc/apache2/wsgi/dispatch.py".into(), None)));
        let err = parse_group_script("WSGIAuthGroupScript", "/a.wsgi process-group=x").unwrap_err();
        assert_eq!(err, "WSGIAuthGroupScript: unknown option 'process-group'; it takes application-group=");
        assert_eq!(parse_group_script("WSGIAuthUserScript", "").unwrap_err(), "WSGIAuthUserScript needs the path of a script");
    }

    #[test]
    fn handler_scripts() {
        // docs/configuration-directives/WSGIHandlerScript.rst, and as mod_wsgi-express writes it.
        let parsed = parse_handler_script("wsgi-resource /etc/apache2/wsgi/resource.wsgi     process-group=mygroup application-group=%{GLOBAL}").unwrap();
        assert_eq!((parsed.handler.as_str(), parsed.script.as_str()), ("wsgi-resource", "/etc/apache2/wsgi/resource.wsgi"));
        assert_eq!((parsed.options.process_group, parsed.options.application_group), (lit("mygroup"), Some(GroupSpec::Global)));
        let parsed = parse_handler_script("wsgi-handler '/srv/root/handler.wsgi' process-group='localhost:8000' application-group=%{GLOBAL} pass-authorization=Off").unwrap();
        assert_eq!((parsed.options.process_group, parsed.options.pass_authorization), (lit("localhost:8000"), Some(false)));
        assert!(parse_handler_script("wsgi-handler").unwrap_err().contains("needs a handler name and a script path"));
        assert!(parse_handler_script("h /a.wsgi callable-object=x").unwrap_err().contains("unknown option 'callable-object'"));
    }

    #[test]
    fn accept_mutex() {
        // docs/configuration-directives/WSGIAcceptMutex.rst: Default or one of Apache's Mutex methods.
        for (value, method) in [("Default", "default"), ("posixsem", "posixsem"), ("sysvsem", "sysvsem"), ("fcntl", "fcntl"), ("FLOCK", "flock"), ("pthread", "pthread")] {
            assert_eq!(parse_accept_mutex(value), Ok(method.to_string()));
        }
        assert_eq!(parse_accept_mutex("sem").unwrap_err(), "WSGIAcceptMutex must be one of default, flock, fcntl, sysvsem, posixsem, pthread, not 'sem'");
    }

    #[test]
    fn python_home_and_path() {
        assert_eq!(parse_python_home("/srv/venv/").unwrap(), "/srv/venv");
        assert_eq!(parse_python_home("/usr:/usr/local").unwrap(), "/usr");
        assert!(parse_python_home("venv").is_err());
        assert_eq!(parse_python_path("/a::/b"), vec!["/a", "/b"]);
    }
}
