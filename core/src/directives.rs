//! Parsing of the values `WSGI…` directives take. Each function returns the
//! message Apache prints when `apache2 -t` fails, naming the directive and
//! what it accepts.

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
    /// `%{SERVER}`: ServerName, plus `:port` unless 80 or 443.
    Server,
    /// `%{HOST}`: the Host header, falling back to ServerName, plus `:port`.
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

/// The inputs a [`GroupSpec`] expands from; gathered from the request by the
/// caller so expansion stays pure.
pub struct GroupContext<'a> {
    pub server_name: &'a str,
    pub port: u16,
    pub host_header: Option<&'a str>,
    pub script_name: &'a str,
    /// Looks up `%{ENV:NAME}` in notes, then the request environment, then the process.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl GroupSpec {
    pub fn expand(&self, ctx: &GroupContext<'_>) -> String {
        let with_port = |name: &str| {
            if ctx.port == 80 || ctx.port == 443 || name.contains(':') {
                name.to_string()
            } else {
                format!("{name}:{}", ctx.port)
            }
        };
        match self {
            GroupSpec::Global => String::new(),
            GroupSpec::Server => with_port(ctx.server_name),
            GroupSpec::Host => with_port(ctx.host_header.filter(|h| !h.is_empty()).unwrap_or(ctx.server_name)),
            GroupSpec::Resource => format!("{}|{}", with_port(ctx.server_name), ctx.script_name),
            GroupSpec::Env(name) => (ctx.env)(name).unwrap_or_default(),
            GroupSpec::Literal(name) => name.clone(),
        }
    }
}

/// Options that may follow the target of `WSGIScriptAlias` and `WSGIScriptAliasMatch`.
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

pub fn parse_alias_options(directive: &str, options: &[&str]) -> Result<AliasOptions, String> {
    let mut parsed = AliasOptions::default();
    for option in options {
        let Some((key, value)) = option.split_once('=') else {
            return Err(format!("{directive}: '{option}' is not of the form option=value"));
        };
        match key {
            "process-group" => parsed.process_group = Some(parse_group_spec(directive, value)?),
            "application-group" => parsed.application_group = Some(parse_group_spec(directive, value)?),
            "callable-object" => {
                if value.is_empty() {
                    return Err(format!("{directive}: callable-object= needs a name"));
                }
                parsed.callable_object = Some(value.to_string());
            }
            "pass-authorization" => parsed.pass_authorization = Some(parse_on_off(&format!("{directive} pass-authorization="), value)?),
            _ => {
                return Err(format!(
                    "{directive}: unknown option '{key}'; the options are process-group=, application-group=, callable-object= and pass-authorization="
                ))
            }
        }
    }
    Ok(parsed)
}

/// `WSGISwitchInterval`: seconds, a number above zero.
pub fn parse_switch_interval(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(seconds),
        _ => Err(format!("WSGISwitchInterval must be a number of seconds above 0, such as 0.005, not '{value}'")),
    }
}

/// `WSGIImportScript path process-group=NAME application-group=NAME`: the
/// script and the process group it is loaded in ("" for Apache's own
/// children). Both options are required and must be fixed names or
/// `%{GLOBAL}`, since the script loads before any request.
pub fn parse_import_script(args: &[&str]) -> Result<(String, String), String> {
    const D: &str = "WSGIImportScript";
    let Some((path, options)) = args.split_first() else {
        return Err(format!("{D} needs a script path, process-group= and application-group="));
    };
    let options = parse_alias_options(D, options)?;
    if options.callable_object.is_some() || options.pass_authorization.is_some() {
        return Err(format!("{D} takes only the process-group= and application-group= options"));
    }
    let fixed = |spec: Option<GroupSpec>, option: &str| match spec {
        Some(GroupSpec::Global) => Ok(String::new()),
        Some(GroupSpec::Literal(name)) => Ok(name),
        Some(_) => Err(format!("{D}: {option}= must be a fixed name or %{{GLOBAL}}, since the script is loaded at process start")),
        None => Err(format!("{D} needs both process-group= and application-group=")),
    };
    let process_group = fixed(options.process_group, "process-group")?;
    fixed(options.application_group, "application-group")?;
    Ok((path.to_string(), process_group))
}

/// `WSGIAuthUserScript`, `WSGIAuthGroupScript`, `WSGIAccessScript`:
/// `path [application-group=NAME]`.
pub fn parse_auth_script(directive: &str, args: &[&str]) -> Result<(String, Option<GroupSpec>), String> {
    let Some((path, options)) = args.split_first() else {
        return Err(format!("{directive} needs the path of a script"));
    };
    let options = parse_alias_options(directive, options)?;
    if options.process_group.is_some() || options.callable_object.is_some() || options.pass_authorization.is_some() {
        return Err(format!("{directive} takes only the application-group= option"));
    }
    Ok((path.to_string(), options.application_group))
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
        let env = |name: &str| (name == "APP").then(|| "from-env".to_string());
        let ctx = GroupContext { server_name: "example.com", port: 8080, host_header: Some("alias.example.com"), script_name: "/app", env: &no_env };
        assert_eq!(parse_group_spec("X", "%{GLOBAL}").unwrap().expand(&ctx), "");
        assert_eq!(parse_group_spec("X", "%{SERVER}").unwrap().expand(&ctx), "example.com:8080");
        assert_eq!(parse_group_spec("X", "%{HOST}").unwrap().expand(&ctx), "alias.example.com:8080");
        assert_eq!(parse_group_spec("X", "%{RESOURCE}").unwrap().expand(&ctx), "example.com:8080|/app");
        assert_eq!(parse_group_spec("X", "mine").unwrap().expand(&ctx), "mine");
        let ctx80 = GroupContext { port: 80, host_header: None, env: &env, ..ctx };
        assert_eq!(parse_group_spec("X", "%{HOST}").unwrap().expand(&ctx80), "example.com");
        assert_eq!(parse_group_spec("X", "%{ENV:APP}").unwrap().expand(&ctx80), "from-env");
        assert_eq!(parse_group_spec("X", "%{ENV:NOPE}").unwrap().expand(&ctx80), "");
        assert!(parse_group_spec("WSGIApplicationGroup", "%{BOGUS}").unwrap_err().contains("WSGIApplicationGroup"));
        assert!(parse_group_spec("X", "%{ENV:}").is_err());
    }

    #[test]
    fn alias_options() {
        let opts = parse_alias_options("WSGIScriptAlias", &["process-group=%{GLOBAL}", "application-group=app", "callable-object=main", "pass-authorization=On"]).unwrap();
        assert_eq!(opts.process_group, Some(GroupSpec::Global));
        assert_eq!(opts.application_group, Some(GroupSpec::Literal("app".into())));
        assert_eq!(opts.callable_object.as_deref(), Some("main"));
        assert_eq!(opts.pass_authorization, Some(true));
        let err = parse_alias_options("WSGIScriptAlias", &["bogus-option=1"]).unwrap_err();
        assert!(err.contains("WSGIScriptAlias") && err.contains("bogus-option"), "{err}");
        assert!(parse_alias_options("WSGIScriptAlias", &["noequals"]).is_err());
        assert!(parse_alias_options("WSGIScriptAlias", &["pass-authorization=maybe"]).is_err());
    }

    #[test]
    fn switch_interval() {
        assert_eq!(parse_switch_interval("0.005"), Ok(0.005));
        for bad in ["0", "-1", "abc", "inf", ""] {
            assert!(parse_switch_interval(bad).unwrap_err().contains("WSGISwitchInterval"), "{bad}");
        }
    }

    #[test]
    fn import_scripts() {
        assert_eq!(parse_import_script(&["/a.wsgi", "process-group=%{GLOBAL}", "application-group=%{GLOBAL}"]), Ok(("/a.wsgi".into(), "".into())));
        assert_eq!(parse_import_script(&["/a.wsgi", "application-group=x", "process-group=site"]), Ok(("/a.wsgi".into(), "site".into())));
        for bad in [&["/a.wsgi"][..], &["/a.wsgi", "process-group=x"], &["/a.wsgi", "process-group=%{SERVER}", "application-group=x"], &["/a.wsgi", "process-group=x", "application-group=y", "callable-object=z"], &[]] {
            assert!(parse_import_script(bad).unwrap_err().contains("WSGIImportScript"), "{bad:?}");
        }
    }

    #[test]
    fn auth_scripts() {
        assert_eq!(parse_auth_script("WSGIAuthUserScript", &["/a.wsgi"]), Ok(("/a.wsgi".into(), None)));
        assert_eq!(parse_auth_script("WSGIAccessScript", &["/a.wsgi", "application-group=%{GLOBAL}"]), Ok(("/a.wsgi".into(), Some(GroupSpec::Global))));
        assert!(parse_auth_script("WSGIAuthGroupScript", &["/a.wsgi", "process-group=x"]).unwrap_err().contains("WSGIAuthGroupScript"));
        assert!(parse_auth_script("WSGIAuthUserScript", &[]).unwrap_err().contains("WSGIAuthUserScript"));
    }

    #[test]
    fn python_home_and_path() {
        assert_eq!(parse_python_home("/srv/venv/").unwrap(), "/srv/venv");
        assert_eq!(parse_python_home("/usr:/usr/local").unwrap(), "/usr");
        assert!(parse_python_home("venv").is_err());
        assert_eq!(parse_python_path("/a::/b"), vec!["/a", "/b"]);
    }
}
