//! From the options to a description of the server: every path, name and
//! number the generated files need, with mod_wsgi-express's defaults. Bad
//! combinations of options are refused here, before anything is written.
use std::env;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User};

use crate::access::Account;
use crate::capacity::{Capacity, Spares};
use crate::install;
use crate::locale;
use crate::options::{ApplicationType, AuthType, MapHeadToGet, Mpm, ServerOptions};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A mistake in the options: a usage error naming it.
#[derive(Debug)]
pub struct Invalid(pub String);

#[derive(Debug)]
pub struct Tls {
    pub port: u16,
    pub certificate_file: String,
    pub key_file: String,
    pub ca_certificate_file: Option<String>,
    pub chain_file: Option<String>,
}

pub struct UrlAlias {
    pub url: String,
    /// What the alias points at, as Apache should see it.
    pub path: String,
    /// The directory to grant access to.
    pub directory: String,
    /// For a single file: its name in `directory`.
    pub file: Option<String>,
}

pub struct ProxyMount {
    /// The URL path proxied, always ending in `/`.
    pub url_path: String,
    pub target: String,
    /// The URL path without its final `/` (X-Forwarded-Prefix).
    pub prefix: String,
}

impl ProxyMount {
    /// Matches the prefix without its slash, which is redirected to it.
    pub fn bare_prefix_pattern(&self) -> String {
        format!("^{}$", regex_literal(&self.prefix))
    }
}

/// The script `WSGIScriptAlias` mounts at the mount point.
pub struct Mount {
    pub target: String,
    pub directory: String,
    pub file: String,
    /// Set when it is not the script's `--callable-object`.
    pub callable: Option<String>,
}

/// Everything the generated files say.
pub struct Server {
    pub o: ServerOptions,
    pub version: &'static str,
    pub command_line: String,
    pub user: String,
    pub group: String,
    pub uid: Uid,
    pub gid: Gid,

    pub server_root: String,
    pub httpd_conf: String,
    pub pid_file: String,
    pub envvars: String,
    /// The name requests are expected for (ServerName): --host or localhost.
    pub host: String,
    pub listen: Vec<String>,
    pub url: String,
    pub https_url: Option<String>,
    pub mpm: Mpm,
    pub modules: Vec<&'static str>,
    pub wsgi_module: String,
    pub mime_types: String,
    pub request_read_timeout: String,
    pub capacity: Capacity,
    pub connections_per_child: u32,
    pub max_keep_alive_requests: u32,

    pub log_directory: String,
    pub error_log_target: String,
    pub access_log_target: String,
    pub access_log_format_name: &'static str,
    pub custom_access_log_format: Option<String>,
    pub startup_log: Option<String>,

    pub python_home: String,
    pub socket_prefix: String,
    pub map_head_to_get: &'static str,
    pub server_metrics: bool,
    pub reloading: bool,
    pub monitor_modules: bool,
    pub monitor_entry: bool,
    pub python_path: String,
    pub process_group: String,
    pub display_name: String,
    pub working_directory: String,
    pub python_eggs: String,
    pub locale: String,

    pub parent_domain: Option<String>,
    pub tls: Option<Tls>,
    pub verify_client_urls: Vec<String>,

    pub document_root: String,
    pub allow_override: String,
    pub url_aliases: Vec<UrlAlias>,
    pub error_documents: Vec<(String, String)>,
    pub proxy_mount_points: Vec<ProxyMount>,
    pub proxy_virtual_hosts: Vec<(String, String)>,
    pub proxy_timeout: Option<u32>,

    pub entry_point: String,
    pub mount_point: String,
    pub mount: Option<Mount>,
    pub request_process_group: String,
    pub application_group: String,
    pub import_application_group: String,
    pub import_scripts: Vec<String>,
    pub host_access_script: Option<String>,
    pub auth_user_script: Option<String>,
    pub auth_group_script: Option<String>,
    pub setenv: Vec<(String, String)>,
    pub include_files: Vec<String>,

    pub shell: String,
    pub httpd: String,
    pub process_name: String,
    /// Things that will probably not work, said before Apache starts.
    pub warnings: Vec<String>,
}

const GLOBAL: &str = "%{GLOBAL}";

fn absolute(path: &str) -> String {
    std::path::absolute(path).map_or_else(|_| path.to_string(), |p| p.display().to_string())
}

fn text(path: &Path) -> Result<String, Invalid> {
    path.to_str().map(str::to_string).ok_or_else(|| Invalid(format!("{} is not a UTF-8 path", path.display())))
}

/// The values of an option given as `--option A B`, in pairs.
fn pairs(values: &[String]) -> Vec<(String, String)> {
    values.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect()
}

/// A user or group by name, or by number as `#1000`.
fn lookup<T>(what: &str, name: &str, by_name: impl Fn(&str) -> Option<T>, by_id: impl Fn(u32) -> Option<T>) -> Result<T, Invalid> {
    let found = match name.strip_prefix('#') {
        Some(id) => id.parse().ok().and_then(by_id),
        None => by_name(name),
    };
    found.ok_or_else(|| Invalid(format!("--{what} {name}: there is no such {what} on this system")))
}

/// Who Apache's children and daemons run as. As root they must be told,
/// and must not be root: Apache refuses to serve requests as root.
fn run_as(o: &ServerOptions) -> Result<(User, Group), Invalid> {
    let me = User::from_uid(Uid::current()).ok().flatten();
    let user_name = o.user.clone().or_else(|| me.as_ref().map(|u| u.name.clone())).unwrap_or_else(|| format!("#{}", Uid::current()));
    let user = lookup("user", &user_name, |n| User::from_name(n).ok().flatten(), |id| User::from_uid(Uid::from_raw(id)).ok().flatten())?;
    let group_name = match &o.group {
        Some(g) => g.clone(),
        None => Group::from_gid(user.gid).ok().flatten().map_or_else(|| format!("#{}", user.gid), |g| g.name),
    };
    let group = lookup("group", &group_name, |n| Group::from_name(n).ok().flatten(), |id| Group::from_gid(Gid::from_raw(id)).ok().flatten())?;
    if Uid::effective().is_root() && (user.uid.is_root() || group.gid.as_raw() == 0) {
        return Err(Invalid(
            "running as root, mod_wsgi-express needs --user and --group naming the unprivileged account \
             Apache's children and the daemon processes run as (for example --user www-data --group www-data)"
                .to_string(),
        ));
    }
    Ok((user, group))
}

fn account(user: &User, group: &Group) -> Account {
    let mut groups = vec![group.gid, user.gid];
    if let Ok(name) = std::ffi::CString::new(user.name.clone()) {
        groups.extend(nix::unistd::getgrouplist(&name, user.gid).unwrap_or_default());
    }
    Account { uid: user.uid, groups }
}

/// The MPM: the first of event, worker, prefork that is installed and
/// allowed. Embedded mode avoids event unless asked for, as
/// mod_wsgi-express does.
fn choose_mpm(o: &ServerOptions) -> Result<Mpm, Invalid> {
    let allowed: Vec<Mpm> = if !o.server_mpm.is_empty() {
        o.server_mpm.clone()
    } else if o.embedded_mode {
        vec![Mpm::Worker, Mpm::Prefork]
    } else {
        vec![Mpm::Event, Mpm::Worker, Mpm::Prefork]
    };
    [Mpm::Event, Mpm::Worker, Mpm::Prefork]
        .into_iter()
        .filter(|m| allowed.contains(m))
        .find(|m| Path::new(&o.modules_directory).join(format!("mod_{}.so", m.module())).exists())
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|m| m.name()).collect();
            Invalid(format!("no {} MPM module (mod_mpm_NAME.so) in {}; see --modules-directory", names.join(" or "), o.modules_directory))
        })
}

/// `text` with every character a regex could take specially escaped.
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !(c.is_alphanumeric() || c == '/' || c == '_' || c == '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// mod_reqtimeout's setting from the header and body options.
fn request_read_timeout(o: &ServerOptions) -> String {
    let part = |name: &str, timeout: u32, max: u32, rate: u32| {
        if timeout == 0 {
            return None;
        }
        let mut s = format!("{name}={timeout}");
        if max > 0 {
            s.push_str(&format!("-{max}"));
        }
        if rate > 0 {
            s.push_str(&format!(",MinRate={rate}"));
        }
        Some(s)
    };
    [part("header", o.header_timeout, o.header_max_timeout, o.header_min_rate), part("body", o.body_timeout, o.body_max_timeout, o.body_min_rate)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Terminal logging writes to the terminal's device when it can be opened,
/// else through `tee`.
fn terminal(device: &str) -> String {
    if std::fs::OpenOptions::new().write(true).open(device).is_ok() {
        device.to_string()
    } else {
        format!("|{}", install::find_program("tee", &[]).map_or_else(|| "tee".to_string(), |p| p.display().to_string()))
    }
}

/// The version "major.minor" a virtual environment was made with.
fn venv_python_version(home: &Path) -> Option<String> {
    let cfg = std::fs::read_to_string(home.join("pyvenv.cfg")).ok()?;
    let line = cfg.lines().find_map(|l| {
        let (key, value) = l.split_once('=')?;
        matches!(key.trim(), "version" | "version_info").then(|| value.trim().to_string())
    })?;
    let mut parts = line.split('.');
    Some(format!("{}.{}", parts.next()?, parts.next()?))
}

/// The HTTPS settings: a port needs a certificate and its key, and the
/// certificate options need a port.
fn tls(o: &ServerOptions) -> Result<Option<Tls>, Invalid> {
    let (certificate, key) = match &o.ssl_certificate {
        Some(common) => (Some(format!("{common}.crt")), Some(format!("{common}.key"))),
        None => (o.ssl_certificate_file.clone(), o.ssl_certificate_key_file.clone()),
    };
    match (o.https_port, certificate, key) {
        (Some(port), Some(certificate), Some(key)) => Ok(Some(Tls {
            port,
            certificate_file: absolute(&certificate),
            key_file: absolute(&key),
            ca_certificate_file: o.ssl_ca_certificate_file.as_deref().map(absolute),
            chain_file: o.ssl_certificate_chain_file.as_deref().map(absolute),
        })),
        (Some(_), _, _) => Err(Invalid("--https-port needs --ssl-certificate-file and --ssl-certificate-key-file (or --ssl-certificate)".to_string())),
        (None, certificate, key) if certificate.is_some() || key.is_some() || o.ssl_ca_certificate_file.is_some() || o.ssl_certificate_chain_file.is_some() => {
            Err(Invalid("--https-port must be given with the SSL certificate options".to_string()))
        }
        (None, _, _) => Ok(None),
    }
}

/// Telemetry and threading options that only make sense together or with
/// the right Python.
fn check_python_options(o: &ServerOptions) -> Result<(), Invalid> {
    if let Some(target) = o.telemetry_service.as_deref().filter(|t| !t.starts_with("unix:")) {
        return Err(Invalid(format!("--telemetry-service {target}: only unix:PATH targets are supported")));
    }
    if o.slow_requests.is_some() && o.telemetry_service.is_none() {
        return Err(Invalid("--slow-requests needs --telemetry-service".to_string()));
    }
    if o.free_threading && !install::python_free_threaded() {
        return Err(Invalid(format!("--free-threading needs a free-threaded Python; this mod_wsgi-rs embeds Python {} with a GIL", install::PYTHON_VERSION)));
    }
    Ok(())
}

/// The Apache modules the configuration uses, besides the MPM and ours.
fn apache_modules(o: &ServerOptions, tls: bool) -> Vec<&'static str> {
    let mut modules = vec!["access_compat", "unixd", "authn_core", "authz_core", "authz_host", "mime", "rewrite", "alias", "dir", "env", "headers", "filter", "reqtimeout"];
    let cgi: &[&str] = if Path::new(&o.modules_directory).join("mod_cgid.so").exists() { &["cgid"] } else { &["cgi"] };
    let optional: [(bool, &[&'static str]); 9] = [
        (o.http2, &["http2"]),
        (o.directory_listing, &["autoindex"]),
        (o.compress_responses, &["deflate"]),
        (o.auth_user_script.is_some(), &["auth_basic", "auth_digest", "authz_user"]),
        (!o.proxy_mount_points.is_empty() || !o.proxy_virtual_hosts.is_empty(), &["proxy", "proxy_http"]),
        (o.server_metrics || o.server_status, &["status"]),
        (o.access_log, &["log_config"]),
        (tls, &["ssl"]),
        (o.with_cgi, cgi),
    ];
    for (wanted, names) in optional {
        if wanted {
            modules.extend_from_slice(names);
        }
    }
    modules
}

/// `--url-alias URL TARGET`: a file, or a directory (also one that does not exist yet).
fn url_alias(url: String, target: &str) -> UrlAlias {
    let path = absolute(target);
    let p = Path::new(&path);
    if p.exists() && !p.is_dir() {
        UrlAlias {
            url,
            directory: p.parent().map_or_else(|| "/".to_string(), |d| d.display().to_string()),
            file: p.file_name().map(|f| f.to_string_lossy().into_owned()),
            path,
        }
    } else {
        let path = if target.ends_with('/') && path != "/" { format!("{path}/") } else { path };
        UrlAlias { url, directory: path.clone(), file: None, path }
    }
}

/// `--proxy-mount-point URL-PATH URL`, always proxied with a final slash.
fn proxy_mount(url_path: &str, target: String) -> ProxyMount {
    let prefix = url_path.trim_end_matches('/').to_string();
    let target = if url_path.ends_with('/') { target } else { format!("{}/", target.trim_end_matches('/')) };
    ProxyMount { url_path: format!("{prefix}/"), target, prefix }
}

fn python_home(o: &ServerOptions) -> Result<String, Invalid> {
    let Some(home) = &o.python_home else {
        return Ok(install::PYTHON_PREFIX.to_string());
    };
    check_python_home(home)?;
    Ok(absolute(home))
}

/// A `--python-home` the module can use: a directory, and for a virtual
/// environment, one made from the Python the module embeds.
pub fn check_python_home(home: &str) -> Result<(), Invalid> {
    let path = Path::new(home);
    if !path.is_dir() {
        return Err(Invalid(format!("--python-home {home}: no such directory")));
    }
    match venv_python_version(path) {
        Some(v) if v != install::PYTHON_VERSION => Err(Invalid(format!(
            "--python-home {home} is a Python {v} virtual environment, but this mod_wsgi-rs embeds Python {}: \
             make the environment with that Python (python{} -m venv)",
            install::PYTHON_VERSION,
            install::PYTHON_VERSION
        ))),
        _ => Ok(()),
    }
}

impl Server {
    pub fn new(mut o: ServerOptions, argv: &[String]) -> Result<Server, Invalid> {
        let (user, group) = run_as(&o)?;
        let account = account(&user, &group);
        let mut warnings = Vec::new();
        let mut readable = |what: &str, path: &str| {
            if let Some(at) = account.blocked_at(Path::new(path)) {
                warnings.push(format!(
                    "{what} {path} is not readable by {} (the account Apache's processes run as): {} denies it",
                    user.name,
                    at.display()
                ));
            }
        };

        let cwd = env::current_dir().map_err(|e| Invalid(format!("cannot tell the current directory: {e}")))?;
        let working_directory = absolute(&text(&PathBuf::from(o.working_directory.as_deref().unwrap_or(&text(&cwd)?)))?);
        if !Path::new(&working_directory).is_dir() {
            return Err(Invalid(format!("--working-directory {working_directory}: no such directory")));
        }
        let listener_host = o.host.clone();
        let host = listener_host.clone().unwrap_or_else(|| "localhost".to_string());

        let server_root = absolute(&o.server_root.clone().unwrap_or_else(|| {
            let tmp = env::var("TMPDIR").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| "/tmp".to_string());
            format!("{}/mod_wsgi-{host}:{}:{}", tmp.trim_end_matches('/'), o.port, Uid::current())
        }));

        let tls = tls(&o)?;
        check_python_options(&o)?;
        o.envvars_script = o.envvars_script.as_deref().map(absolute);
        let python_home = python_home(&o)?;
        readable("the Python home", &python_home);

        // The application: what it is and how it is mounted.
        let entry = o.entry_point.clone().or_else(|| o.script.clone());
        let mut document_root = o.document_root.as_deref().map(absolute);
        let entry_point = match (&entry, o.application_type) {
            (None, ApplicationType::Static) => {
                document_root.get_or_insert_with(|| text(&cwd).unwrap_or_default());
                String::new()
            }
            (None, _) => {
                o.application_type = ApplicationType::Script;
                format!("{server_root}/default.wsgi")
            }
            (Some(path), ApplicationType::Static) => {
                document_root.get_or_insert_with(|| absolute(path));
                String::new()
            }
            (Some(path), ApplicationType::Script | ApplicationType::Paste) => {
                let path = absolute(path);
                if !Path::new(&path).is_file() {
                    return Err(Invalid(format!("{path}: no such file")));
                }
                readable("the application's entry point", &path);
                path
            }
            (Some(module), ApplicationType::Module) => module.clone(),
        };
        let document_root = document_root.unwrap_or_else(|| format!("{server_root}/htdocs"));
        if o.document_root.is_some() {
            readable("the document root", &document_root);
        }

        let process_group = o.process_group.clone().unwrap_or_else(|| format!("{host}:{}", o.port));
        let display_name = match &o.process_group {
            Some(name) => format!("(wsgi:{name})"),
            None => format!("(wsgi:{host}:{}:{})", o.port, Uid::current()),
        };
        let application_group = o.application_group.clone().unwrap_or_else(|| GLOBAL.to_string());
        let fixed_group = application_group == GLOBAL || !application_group.contains("%{");
        let import_application_group = if fixed_group { application_group.clone() } else { GLOBAL.to_string() };
        let request_process_group = if o.embedded_mode { GLOBAL.to_string() } else { process_group.clone() };
        let handler = format!("{server_root}/handler.wsgi");
        let mount = match o.application_type {
            ApplicationType::Static => None,
            ApplicationType::Script => {
                let path = Path::new(&entry_point);
                Some(Mount {
                    target: entry_point.clone(),
                    directory: path.parent().map_or_else(|| "/".to_string(), |p| p.display().to_string()),
                    file: path.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
                    callable: entry.is_none().then(|| "application".to_string()),
                })
            }
            ApplicationType::Module | ApplicationType::Paste => {
                Some(Mount { target: handler.clone(), directory: server_root.clone(), file: "handler.wsgi".to_string(), callable: Some("application".to_string()) })
            }
        };
        let mut import_scripts = Vec::new();
        if let Some(m) = &mount {
            import_scripts.push(handler.clone());
            if m.target != handler && fixed_group {
                import_scripts.push(m.target.clone());
            }
        }
        let mount_point = {
            let p = format!("/{}", o.mount_point.trim_matches('/'));
            if p.len() > 1 { p } else { "/".to_string() }
        };

        let reloading = !o.embedded_mode && !o.disable_reloading;
        let monitor_modules = reloading && o.reload_on_changes;
        let monitor_entry = reloading && matches!(o.application_type, ApplicationType::Module | ApplicationType::Paste);

        let mut python_paths = o.python_paths.clone();
        if o.embedded_mode && !python_paths.contains(&working_directory) {
            python_paths.insert(0, working_directory.clone());
        }
        for path in &python_paths {
            readable("the Python path entry", path);
        }
        if mount.is_some() {
            readable("the working directory", &working_directory);
        }

        let mpm = choose_mpm(&o)?;
        let processes = o.processes.unwrap_or(1);
        let capacity = if o.embedded_mode {
            Capacity::embedded(processes, o.threads)
        } else {
            let spares = Spares { initial: o.initial_workers, minimum: o.minimum_spare_workers, maximum: o.maximum_spare_workers };
            Capacity::daemon(processes, o.threads, o.max_clients, spares)
        };
        let max_keep_alive_requests = match (mpm, o.embedded_mode) {
            (Mpm::Event, _) => 0,
            (_, true) => 100,
            (_, false) => 500,
        };

        // Logs
        let log_directory = absolute(o.log_directory.as_deref().unwrap_or(&server_root));
        // --log-directory wins over --log-to-terminal, which wins over --rotate-logs.
        let to_terminal = o.log_to_terminal && o.log_directory.is_none();
        let rotatelogs = o.rotatelogs_executable.clone().unwrap_or_else(install::rotatelogs);
        let log_target = |name: &str, device: &str| {
            if to_terminal {
                terminal(device)
            } else if o.rotate_logs {
                format!("|{rotatelogs} {log_directory}/{name}.%Y-%m-%d-%H_%M_%S {}M", o.max_log_size)
            } else {
                format!("{log_directory}/{name}")
            }
        };
        let error_log_target = log_target(&o.error_log_name, "/dev/stderr");
        let access_log_target = log_target(&o.access_log_name, "/dev/stdout");
        let (access_log_format_name, custom_access_log_format) = match o.access_log_format.as_deref() {
            None | Some("common") => ("common", None),
            Some("combined") => ("combined", None),
            Some(custom) => ("custom", Some(custom.to_string())),
        };
        let startup_log = o.startup_log.then(|| if to_terminal { "/dev/stderr".to_string() } else { format!("{log_directory}/{}", o.startup_log_name) });

        let mut given_aliases = pairs(&o.url_aliases);
        // Longer URLs first, so they win over their prefixes.
        given_aliases.sort_by(|a, b| b.cmp(a));
        let url_aliases: Vec<UrlAlias> = given_aliases.into_iter().map(|(url, target)| url_alias(url, &target)).collect();
        for alias in &url_aliases {
            readable("the --url-alias target", &alias.path);
        }
        let proxying = !o.proxy_mount_points.is_empty() || !o.proxy_virtual_hosts.is_empty();

        let listen_host = |port: u16| listener_host.as_ref().map_or_else(|| port.to_string(), |h| format!("{h}:{port}"));
        let mut listen = vec![listen_host(o.port)];
        if let Some(t) = &tls {
            listen.push(listen_host(t.port));
        }
        let site = o.server_name.clone().unwrap_or_else(|| host.clone());
        let url = if o.port == 80 { format!("http://{site}/") } else { format!("http://{site}:{}/", o.port) };
        let https_url = tls.as_ref().map(|t| if t.port == 443 { format!("https://{site}/") } else { format!("https://{site}:{}/", t.port) });
        let parent_domain = o.server_name.as_deref().and_then(|n| n.to_lowercase().starts_with("www.").then(|| n[4..].to_string()));

        let httpd = install::httpd(o.httpd_executable.as_deref());
        let process_name = {
            let name = o.process_name.clone().unwrap_or_else(|| {
                let base = Path::new(&httpd).file_name().map_or_else(|| httpd.clone(), |f| f.to_string_lossy().into_owned());
                format!("{base} (mod_wsgi-express)")
            });
            // As long as the daemons' names, as mod_wsgi-express pads it.
            format!("{name:<width$}", width = display_name.len())
        };

        Ok(Server {
            version: VERSION,
            command_line: crate::quote::command_line(argv),
            user: user.name.clone(),
            group: group.name.clone(),
            uid: user.uid,
            gid: group.gid,
            httpd_conf: format!("{server_root}/httpd.conf"),
            pid_file: o.pid_file.as_deref().map_or_else(|| format!("{server_root}/httpd.pid"), absolute),
            envvars: format!("{server_root}/envvars"),
            host,
            listen,
            url,
            https_url,
            mpm,
            modules: apache_modules(&o, tls.is_some()),
            wsgi_module: text(&install::module_path())?,
            mime_types: o.mime_types.clone().unwrap_or_else(install::mime_types),
            request_read_timeout: request_read_timeout(&o),
            capacity,
            connections_per_child: if o.embedded_mode { o.maximum_requests } else { 0 },
            max_keep_alive_requests,
            log_directory,
            error_log_target,
            access_log_target,
            access_log_format_name,
            custom_access_log_format,
            startup_log,
            python_home,
            socket_prefix: format!("{}/wsgi", o.socket_prefix.as_deref().map_or_else(|| server_root.clone(), absolute)),
            map_head_to_get: match o.map_head_to_get {
                MapHeadToGet::Off => "Off",
                MapHeadToGet::On => "On",
                MapHeadToGet::Auto => "Auto",
            },
            server_metrics: o.server_metrics || o.server_status,
            reloading,
            monitor_modules,
            monitor_entry,
            python_path: python_paths.join(":"),
            process_group,
            display_name,
            working_directory,
            python_eggs: o.python_eggs.as_deref().map_or_else(|| format!("{server_root}/python-eggs"), absolute),
            locale: locale::choose(o.locale.as_deref().or(o.lang.as_deref()), |name| env::var(name).ok()),
            parent_domain,
            tls,
            verify_client_urls: if o.ssl_verify_client_urls.is_empty() {
                vec!["/".to_string()]
            } else {
                let mut urls = o.ssl_verify_client_urls.clone();
                urls.sort_by(|a, b| b.cmp(a));
                urls
            },
            document_root,
            allow_override: if o.allow_override.is_empty() { "None".to_string() } else { o.allow_override.join(" ") },
            url_aliases,
            error_documents: pairs(&o.error_documents),
            proxy_mount_points: pairs(&o.proxy_mount_points).into_iter().map(|(url, target)| proxy_mount(&url, target)).collect(),
            proxy_virtual_hosts: pairs(&o.proxy_virtual_hosts),
            proxy_timeout: o.proxy_timeout.filter(|_| proxying),
            entry_point,
            mount_point,
            mount,
            request_process_group,
            application_group,
            import_application_group,
            import_scripts,
            host_access_script: o.host_access_script.as_deref().map(absolute),
            auth_user_script: o.auth_user_script.as_deref().map(absolute),
            auth_group_script: o.auth_group_script.as_deref().map(absolute),
            setenv: pairs(&o.setenv),
            include_files: o.include_files.iter().map(|f| absolute(f)).collect(),
            shell: o.shell_executable.clone().unwrap_or_else(install::shell),
            httpd,
            process_name,
            warnings,
            server_root,
            o,
        })
    }

    /// A regex matching exactly the mount point.
    pub fn bare_mount_point_pattern(&self) -> String {
        format!("^{}$", regex_literal(&self.mount_point))
    }

    pub fn mount_point_slashed(&self) -> String {
        format!("{}/", self.mount_point)
    }

    pub fn module_file(&self, name: &str) -> String {
        format!("{}/mod_{name}.so", self.o.modules_directory)
    }

    /// The host name the application is told it is served as.
    pub fn host_name(&self) -> &str {
        self.o.server_name.as_deref().unwrap_or(&self.host)
    }

    pub fn handler_mounts_app(&self) -> bool {
        matches!(self.o.application_type, ApplicationType::Module | ApplicationType::Paste)
    }

    pub fn redirect_to_https(&self) -> bool {
        self.o.https_only && self.tls.is_some() && self.o.server_name.is_some()
    }

    pub fn https_port(&self) -> u16 {
        self.tls.as_ref().map_or(443, |t| t.port)
    }

    pub fn https_port_text(&self) -> String {
        self.tls.as_ref().map_or_else(String::new, |t| t.port.to_string())
    }

    pub fn auth_type_name(&self) -> &'static str {
        match self.o.auth_type {
            AuthType::Basic => "Basic",
            AuthType::Digest => "Digest",
        }
    }

    pub fn auth_realm(&self) -> String {
        format!("{}:{}", self.host, self.o.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Cli;
    use clap::Parser;

    fn options(args: &[&str]) -> ServerOptions {
        let argv: Vec<&str> = ["mod_wsgi-express", "setup-server"].iter().chain(args).copied().collect();
        match Cli::parse_from(argv).command {
            crate::options::Command::SetupServer(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn regex_literals() {
        assert_eq!(regex_literal("/app"), "/app");
        assert_eq!(regex_literal("/my.app+v2_x-y"), "/my\\.app\\+v2_x-y");
    }

    #[test]
    fn tls_settings() {
        let t = tls(&options(&["--https-port", "8443", "--ssl-certificate", "/etc/site/cert"])).unwrap().unwrap();
        assert_eq!((t.port, t.certificate_file.as_str(), t.key_file.as_str()), (8443, "/etc/site/cert.crt", "/etc/site/cert.key"));
        assert!(tls(&options(&[])).unwrap().is_none());
        assert!(tls(&options(&["--https-port", "8443", "--ssl-certificate-file", "c.pem"])).unwrap_err().0.contains("needs"));
        assert!(tls(&options(&["--ssl-certificate-chain-file", "c.pem"])).unwrap_err().0.contains("must be given"));
    }

    #[test]
    fn request_read_timeouts() {
        assert_eq!(request_read_timeout(&options(&[])), "header=15-30,MinRate=500 body=15,MinRate=500");
        assert_eq!(request_read_timeout(&options(&["--header-timeout", "0", "--body-max-timeout", "60", "--body-min-rate", "0"])), "body=15-60");
        assert_eq!(request_read_timeout(&options(&["--header-timeout", "0", "--body-timeout", "0"])), "");
    }

    #[test]
    fn venv_versions() {
        let dir = std::env::temp_dir().join(format!("mwe-venv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pyvenv.cfg"), "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.9.2\n").unwrap();
        assert_eq!(venv_python_version(&dir), Some("3.9".to_string()));
        let err = check_python_home(dir.to_str().unwrap()).unwrap_err();
        assert!(err.0.contains("Python 3.9 virtual environment"), "{}", err.0);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(check_python_home("/nonexistent/venv").unwrap_err().0.contains("no such directory"));
    }
}
