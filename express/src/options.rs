//! The command line: mod_wsgi-express's commands and options, with its
//! names and defaults, so command lines written for it work unchanged.
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "mod_wsgi-express", version, about = "Run a WSGI application in Apache with mod_wsgi-rs, from one command.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a server root for the application, then run Apache in the
    /// foreground until Ctrl-C or SIGTERM.
    #[command(infer_long_args = true, args_override_self = true)]
    StartServer(ServerOptions),
    /// Write a server root for the application, with an `apachectl` to run it.
    #[command(infer_long_args = true, args_override_self = true)]
    SetupServer(ServerOptions),
    /// Print the lines that load this module into an existing Apache.
    #[command(infer_long_args = true)]
    ModuleConfig(ModuleOptions),
    /// Copy this module into Apache's module directory and print the lines
    /// that load it.
    #[command(infer_long_args = true)]
    InstallModule(InstallOptions),
    /// Print where this module is.
    ModuleLocation,
}

#[derive(Args, Debug)]
pub struct ModuleOptions {
    /// The Python installation or virtual environment Apache's Python uses
    /// (default: the Python the module was built for).
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub python_home: Option<String>,
}

#[derive(Args, Debug)]
pub struct InstallOptions {
    /// Where to copy the module.
    #[arg(long, value_name = "DIRECTORY-PATH", default_value = env!("MWE_LIBEXECDIR"))]
    pub modules_directory: String,
    #[command(flatten)]
    pub module: ModuleOptions,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplicationType {
    /// A WSGI script file, as for WSGIScriptAlias.
    Script,
    /// A Python module to import.
    Module,
    /// A Paste Deploy configuration file.
    Paste,
    /// No application: serve the document root only.
    Static,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mpm {
    Event,
    Worker,
    Prefork,
}

impl Mpm {
    pub fn name(self) -> &'static str {
        match self {
            Mpm::Event => "event",
            Mpm::Worker => "worker",
            Mpm::Prefork => "prefork",
        }
    }

    /// Its module's name without the `_module`.
    pub fn module(self) -> &'static str {
        match self {
            Mpm::Event => "mpm_event",
            Mpm::Worker => "mpm_worker",
            Mpm::Prefork => "mpm_prefork",
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    Basic,
    Digest,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "PascalCase")]
pub enum MapHeadToGet {
    Off,
    On,
    Auto,
}

/// A value between 0 and 1 (a share of the maximum number of clients).
fn fraction(value: &str) -> Result<f64, String> {
    let f: f64 = value.parse().map_err(|_| format!("'{value}' is not a number"))?;
    if (0.0..=1.0).contains(&f) {
        Ok(f)
    } else {
        Err(format!("{f} is not between 0 and 1"))
    }
}

fn positive_seconds(value: &str) -> Result<f64, String> {
    let f: f64 = value.parse().map_err(|_| format!("'{value}' is not a number"))?;
    if f > 0.0 {
        Ok(f)
    } else {
        Err("must be a positive number of seconds".to_string())
    }
}

fn non_negative_seconds(value: &str) -> Result<f64, String> {
    let f: f64 = value.parse().map_err(|_| format!("'{value}' is not a number"))?;
    if f >= 0.0 {
        Ok(f)
    } else {
        Err("must not be negative".to_string())
    }
}

/// Options of `start-server` and `setup-server`.
#[derive(Args, Debug)]
pub struct ServerOptions {
    /// The WSGI script file (or module name, or Paste configuration file,
    /// as --application-type says). Without one, a welcome page is served.
    #[arg(value_name = "SCRIPT")]
    pub script: Option<String>,

    // -- the application ------------------------------------------------------
    /// What the entry point is.
    #[arg(long, value_enum, value_name = "TYPE", default_value = "script", help_heading = "Application")]
    pub application_type: ApplicationType,
    /// The entry point, instead of giving it as SCRIPT.
    #[arg(long, value_name = "FILE-PATH|MODULE", help_heading = "Application")]
    pub entry_point: Option<String>,
    /// The name of the WSGI callable in the entry point.
    #[arg(long, value_name = "NAME", default_value = "application", help_heading = "Application")]
    pub callable_object: String,
    /// The URL path the application is mounted at.
    #[arg(long, value_name = "URL-PATH", default_value = "/", help_heading = "Application")]
    pub mount_point: String,
    /// The application group (default %{GLOBAL}, the main interpreter).
    #[arg(long, value_name = "NAME", help_heading = "Application")]
    pub application_group: Option<String>,
    /// The daemon process group's name (default HOST:PORT).
    #[arg(long, value_name = "NAME", help_heading = "Application")]
    pub process_group: Option<String>,
    /// The Python installation or virtual environment to run the
    /// application with (default: the Python the module was built for).
    #[arg(long, value_name = "DIRECTORY-PATH", help_heading = "Application")]
    pub python_home: Option<String>,
    /// The application's current directory, also put on sys.path (default:
    /// the directory this command runs in).
    #[arg(long, value_name = "DIRECTORY-PATH", help_heading = "Application")]
    pub working_directory: Option<String>,
    /// A directory to add to sys.path (repeatable).
    #[arg(long = "python-path", value_name = "DIRECTORY-PATH", help_heading = "Application")]
    pub python_paths: Vec<String>,
    /// Where Python eggs are unpacked (default: SERVER-ROOT/python-eggs).
    #[arg(long, value_name = "DIRECTORY-PATH", help_heading = "Application")]
    pub python_eggs: Option<String>,
    /// A Python warnings filter, in -W syntax (repeatable).
    #[arg(long, value_name = "SPEC", help_heading = "Application")]
    pub python_warnings: Vec<String>,
    /// Leave the Python interpreter alone when a process exits.
    #[arg(long, help_heading = "Application")]
    pub orphan_interpreter: bool,
    /// Python's GIL switch interval, in seconds.
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds, help_heading = "Application")]
    pub switch_interval: Option<f64>,
    /// Run Python without the GIL (needs a free-threaded Python).
    #[arg(long, help_heading = "Application")]
    pub free_threading: bool,
    /// The natural-language locale of the application's processes.
    #[arg(long, value_name = "NAME", help_heading = "Application")]
    pub locale: Option<String>,
    #[arg(long, value_name = "NAME", hide = true)]
    pub lang: Option<String>,

    // -- where and who --------------------------------------------------------
    /// The IP address to listen on (default: every interface).
    #[arg(long, value_name = "IP-ADDRESS", help_heading = "Server")]
    pub host: Option<String>,
    /// The HTTP port.
    #[arg(long, value_name = "NUMBER", default_value_t = 8000, help_heading = "Server")]
    pub port: u16,
    /// The host name of the site; requests for other names are refused.
    #[arg(long, value_name = "HOSTNAME", help_heading = "Server")]
    pub server_name: Option<String>,
    /// Another host name of the site (repeatable; wildcards allowed).
    #[arg(long = "server-alias", value_name = "HOSTNAME", help_heading = "Server")]
    pub server_aliases: Vec<String>,
    /// With --server-name, still answer requests for localhost.
    #[arg(long, help_heading = "Server")]
    pub allow_localhost: bool,
    /// The user Apache's children and the daemons run as (needed as root).
    #[arg(long, value_name = "USERNAME", help_heading = "Server")]
    pub user: Option<String>,
    /// Their group (needed as root).
    #[arg(long, value_name = "GROUP", help_heading = "Server")]
    pub group: Option<String>,
    /// Where the generated files and logs go (default:
    /// $TMPDIR/mod_wsgi-HOST:PORT:UID).
    #[arg(long, value_name = "DIRECTORY-PATH", help_heading = "Server")]
    pub server_root: Option<String>,
    /// Allow only this multi-processing module (repeatable); the first
    /// installed of event, worker and prefork that is allowed is used.
    #[arg(long = "server-mpm", visible_alias = "mpm", value_enum, value_name = "NAME", help_heading = "Server")]
    pub server_mpm: Vec<Mpm>,
    /// The Apache executable (the HTTPD environment variable wins).
    #[arg(long, value_name = "FILE-PATH", help_heading = "Server")]
    pub httpd_executable: Option<String>,
    /// Apache's module directory.
    #[arg(long, value_name = "DIRECTORY-PATH", default_value = env!("MWE_LIBEXECDIR"), help_heading = "Server")]
    pub modules_directory: String,
    /// The name Apache's parent process shows.
    #[arg(long, value_name = "NAME", help_heading = "Server")]
    pub process_name: Option<String>,
    /// The shell that runs `apachectl`.
    #[arg(long, value_name = "FILE-PATH", help_heading = "Server")]
    pub shell_executable: Option<String>,
    /// Apache's pid file (default: SERVER-ROOT/httpd.pid).
    #[arg(long, value_name = "FILE-PATH", help_heading = "Server")]
    pub pid_file: Option<String>,
    /// A shell script `apachectl` sources to set Apache's environment.
    #[arg(long, value_name = "FILE-PATH", help_heading = "Server")]
    pub envvars_script: Option<String>,
    /// Where the sockets to the daemons go (default: the server root).
    #[arg(long, value_name = "DIRECTORY-PATH", help_heading = "Server")]
    pub socket_prefix: Option<String>,
    /// An Apache configuration file to include last (repeatable).
    #[arg(long = "include-file", value_name = "FILE-PATH", help_heading = "Server")]
    pub include_files: Vec<String>,
    /// Set a variable in every request's environ (repeatable).
    #[arg(long = "setenv", num_args = 2, value_names = ["KEY", "VALUE"], action = ArgAction::Append, help_heading = "Server")]
    pub setenv: Vec<String>,
    /// Pass a variable of Apache's environment into every request's environ
    /// (repeatable).
    #[arg(long = "passenv", value_name = "KEY", help_heading = "Server")]
    pub passenv: Vec<String>,
    /// Only write the server root; do not start Apache.
    #[arg(long, help_heading = "Server")]
    pub setup_only: bool,

    // -- capacity -------------------------------------------------------------
    /// Daemon processes (default 1).
    #[arg(long, value_name = "NUMBER", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Capacity")]
    pub processes: Option<u32>,
    /// Request threads in each process.
    #[arg(long, value_name = "NUMBER", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Capacity")]
    pub threads: u32,
    /// Run the application in Apache's children instead of daemon processes.
    #[arg(long, help_heading = "Capacity")]
    pub embedded_mode: bool,
    /// Most client connections Apache takes at once (default: 1.5 times the
    /// threads, plus 10, at least 20).
    #[arg(long, value_name = "NUMBER", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Capacity")]
    pub max_clients: Option<u32>,
    /// Apache workers started at first, as a share (0 to 1) of --max-clients.
    #[arg(long, value_name = "NUMBER", value_parser = fraction, help_heading = "Capacity")]
    pub initial_workers: Option<f64>,
    /// Fewest idle Apache workers, as a share of --max-clients.
    #[arg(long, value_name = "NUMBER", value_parser = fraction, help_heading = "Capacity")]
    pub minimum_spare_workers: Option<f64>,
    /// Most idle Apache workers, as a share of --max-clients.
    #[arg(long, value_name = "NUMBER", value_parser = fraction, help_heading = "Capacity")]
    pub maximum_spare_workers: Option<f64>,
    /// Largest request body accepted, in bytes.
    #[arg(long, value_name = "NUMBER", default_value_t = 10485760, help_heading = "Capacity")]
    pub limit_request_body: u64,
    /// Apache's listen backlog.
    #[arg(long, value_name = "NUMBER", default_value_t = 500, help_heading = "Capacity")]
    pub server_backlog: u32,
    /// Each daemon group's listen backlog.
    #[arg(long, value_name = "NUMBER", default_value_t = 100, help_heading = "Capacity")]
    pub daemon_backlog: u32,

    // -- timeouts and recycling -----------------------------------------------
    /// Replace a daemon process after this many requests (0: never).
    #[arg(long, value_name = "NUMBER", default_value_t = 0, help_heading = "Timeouts and recycling")]
    pub maximum_requests: u32,
    /// Replace a daemon process whose application fails to load for this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 15, help_heading = "Timeouts and recycling")]
    pub startup_timeout: u32,
    /// How long a stopping daemon process may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 5, help_heading = "Timeouts and recycling")]
    pub shutdown_timeout: u32,
    /// Replace each daemon process this long after it started (0: never).
    #[arg(long, value_name = "SECONDS", default_value_t = 0, help_heading = "Timeouts and recycling")]
    pub restart_interval: u32,
    /// CPU seconds a daemon process may use (0: no limit).
    #[arg(long, value_name = "SECONDS", default_value_t = 0, help_heading = "Timeouts and recycling")]
    pub cpu_time_limit: u32,
    /// How long a recycling daemon process lets requests finish.
    #[arg(long, value_name = "SECONDS", default_value_t = 15, help_heading = "Timeouts and recycling")]
    pub graceful_timeout: u32,
    /// How long requests may finish after SIGUSR1 (0: --graceful-timeout).
    #[arg(long, value_name = "SECONDS", default_value_t = 0, help_heading = "Timeouts and recycling")]
    pub eviction_timeout: u32,
    /// Replace a daemon process whose GIL has been held this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, help_heading = "Timeouts and recycling")]
    pub deadlock_timeout: u32,
    /// Replace a daemon process idle for this long (0: never).
    #[arg(long, value_name = "SECONDS", default_value_t = 0, help_heading = "Timeouts and recycling")]
    pub inactivity_timeout: u32,
    /// A URL path whose requests do not count as activity (repeatable).
    #[arg(long, value_name = "URL-PATH", help_heading = "Timeouts and recycling")]
    pub ignore_activity: Vec<String>,
    /// Longest a request may run before its daemon process is replaced.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, help_heading = "Timeouts and recycling")]
    pub request_timeout: u32,
    /// mod_wsgi's interrupt of a request past --request-timeout (0: off).
    #[arg(long, value_name = "SECONDS", default_value_t = 0, help_heading = "Timeouts and recycling")]
    pub interrupt_timeout: u32,
    /// How long an Apache child tries to reach a daemon process.
    #[arg(long, value_name = "SECONDS", default_value_t = 15, help_heading = "Timeouts and recycling")]
    pub connect_timeout: u32,
    /// Longest wait for a client or daemon socket (Apache's Timeout).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, help_heading = "Timeouts and recycling")]
    pub socket_timeout: u32,
    /// Timeout for proxied back ends (default: --socket-timeout).
    #[arg(long, value_name = "SECONDS", help_heading = "Timeouts and recycling")]
    pub proxy_timeout: Option<u32>,
    /// Requests waiting longer than this for a daemon thread get 504.
    #[arg(long, value_name = "SECONDS", default_value_t = 45, help_heading = "Timeouts and recycling")]
    pub queue_timeout: u32,
    /// Time allowed for a request's headers.
    #[arg(long, value_name = "SECONDS", default_value_t = 15, help_heading = "Timeouts and recycling")]
    pub header_timeout: u32,
    /// Most time allowed for the headers, however fast they arrive.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, help_heading = "Timeouts and recycling")]
    pub header_max_timeout: u32,
    /// Each this many bytes of headers extends --header-timeout by a second.
    #[arg(long, value_name = "BYTES", default_value_t = 500, help_heading = "Timeouts and recycling")]
    pub header_min_rate: u32,
    /// Time allowed for a request's body.
    #[arg(long, value_name = "SECONDS", default_value_t = 15, help_heading = "Timeouts and recycling")]
    pub body_timeout: u32,
    /// Most time allowed for the body (0: no limit).
    #[arg(long, value_name = "SECONDS", default_value_t = 0, help_heading = "Timeouts and recycling")]
    pub body_max_timeout: u32,
    /// Each this many bytes of body extends --body-timeout by a second.
    #[arg(long, value_name = "BYTES", default_value_t = 500, help_heading = "Timeouts and recycling")]
    pub body_min_rate: u32,
    /// How long an idle keep-alive connection stays open (0: no keep-alive).
    #[arg(long, value_name = "SECONDS", default_value_t = 2, help_heading = "Timeouts and recycling")]
    pub keep_alive_timeout: u32,
    /// Restart a daemon process when any Python file it loaded changes.
    #[arg(long, help_heading = "Timeouts and recycling")]
    pub reload_on_changes: bool,
    /// Never restart for a changed entry point.
    #[arg(long, help_heading = "Timeouts and recycling")]
    pub disable_reloading: bool,

    // -- daemon sockets ---------------------------------------------------------
    /// Send buffer of the daemon sockets, in bytes (0: the system's).
    #[arg(long, value_name = "NUMBER", default_value_t = 0, help_heading = "Daemon sockets")]
    pub send_buffer_size: u32,
    /// Receive buffer of the daemon sockets, in bytes (0: the system's).
    #[arg(long, value_name = "NUMBER", default_value_t = 0, help_heading = "Daemon sockets")]
    pub receive_buffer_size: u32,
    /// Buffer for a daemon's response headers, in bytes (0: the default).
    #[arg(long, value_name = "NUMBER", default_value_t = 0, help_heading = "Daemon sockets")]
    pub header_buffer_size: u32,
    /// Response bytes passed on without a flush (0: the default).
    #[arg(long, value_name = "NUMBER", default_value_t = 0, help_heading = "Daemon sockets")]
    pub response_buffer_size: u32,
    /// Timeout writing a response to the client (0: --socket-timeout).
    #[arg(long, value_name = "SECONDS", default_value_t = 0, help_heading = "Daemon sockets")]
    pub response_socket_timeout: u32,
    /// Wait for more response data before flushing, in milliseconds.
    #[arg(long, value_name = "MILLISECONDS", default_value_t = 5, help_heading = "Daemon sockets")]
    pub response_flush_delay: u32,

    // -- requests ---------------------------------------------------------------
    /// Map HEAD requests to GET.
    #[arg(long, value_enum, value_name = "OFF|ON|AUTO", ignore_case = true, default_value = "Auto", help_heading = "Requests")]
    pub map_head_to_get: MapHeadToGet,
    /// Accept chunked request bodies.
    #[arg(long, help_heading = "Requests")]
    pub chunked_request: bool,
    /// Let Apache's error documents replace the application's error pages.
    #[arg(long, help_heading = "Requests")]
    pub error_override: bool,
    /// A proxy header to trust (repeatable).
    #[arg(long = "trust-proxy-header", value_name = "HEADER-NAME", help_heading = "Requests")]
    pub trusted_proxy_headers: Vec<String>,
    /// A proxy address or subnet to trust (repeatable).
    #[arg(long = "trust-proxy", value_name = "IP-ADDRESS/SUBNET", help_heading = "Requests")]
    pub trusted_proxies: Vec<String>,
    /// Compress text, JSON and JavaScript responses.
    #[arg(long, help_heading = "Requests")]
    pub compress_responses: bool,
    /// Let Apache use sendfile(2).
    #[arg(long, help_heading = "Requests")]
    pub enable_sendfile: bool,

    // -- static files -------------------------------------------------------------
    /// Serve a file or directory at a URL path (repeatable).
    #[arg(long = "url-alias", num_args = 2, value_names = ["URL-PATH", "FILE-PATH|DIRECTORY-PATH"], action = ArgAction::Append, help_heading = "Static files")]
    pub url_aliases: Vec<String>,
    /// A directory whose files are served as they are; other URLs go to the
    /// application (default: SERVER-ROOT/htdocs).
    #[arg(long, value_name = "DIRECTORY-PATH", help_heading = "Static files")]
    pub document_root: Option<String>,
    /// The file served for a directory of the document root.
    #[arg(long, value_name = "FILE-NAME", help_heading = "Static files")]
    pub directory_index: Option<String>,
    /// List directories of the document root that have no index file.
    #[arg(long, help_heading = "Static files")]
    pub directory_listing: bool,
    /// Directive types .htaccess files may override (repeatable; default None).
    #[arg(long, value_name = "DIRECTIVE-TYPE", help_heading = "Static files")]
    pub allow_override: Vec<String>,
    /// The URL Apache shows for an error status (repeatable).
    #[arg(long = "error-document", num_args = 2, value_names = ["STATUS", "URL-PATH"], action = ArgAction::Append, help_heading = "Static files")]
    pub error_documents: Vec<String>,
    /// Run .cgi files of the document root as CGI scripts.
    #[arg(long, help_heading = "Static files")]
    pub with_cgi: bool,
    /// The MIME types file.
    #[arg(long, value_name = "FILE-PATH", help_heading = "Static files")]
    pub mime_types: Option<String>,

    // -- proxying ---------------------------------------------------------------
    /// Proxy a URL path to another server (repeatable).
    #[arg(long = "proxy-mount-point", visible_alias = "proxy-url-alias", num_args = 2, value_names = ["URL-PATH", "URL"], action = ArgAction::Append, help_heading = "Proxying")]
    pub proxy_mount_points: Vec<String>,
    /// Proxy every request for a host name to another server (repeatable).
    #[arg(long = "proxy-virtual-host", num_args = 2, value_names = ["HOSTNAME", "URL"], action = ArgAction::Append, help_heading = "Proxying")]
    pub proxy_virtual_hosts: Vec<String>,

    // -- TLS ----------------------------------------------------------------------
    /// The HTTPS port.
    #[arg(long, visible_alias = "ssl-port", value_name = "NUMBER", help_heading = "TLS")]
    pub https_port: Option<u16>,
    /// The certificate file.
    #[arg(long, value_name = "FILE-PATH", help_heading = "TLS")]
    pub ssl_certificate_file: Option<String>,
    /// The certificate's private key file.
    #[arg(long, value_name = "FILE-PATH", help_heading = "TLS")]
    pub ssl_certificate_key_file: Option<String>,
    /// PATH.crt and PATH.key, in one option.
    #[arg(long, value_name = "FILE-PATH", help_heading = "TLS")]
    pub ssl_certificate: Option<String>,
    /// The certificate chain file.
    #[arg(long, value_name = "FILE-PATH", help_heading = "TLS")]
    pub ssl_certificate_chain_file: Option<String>,
    /// CA certificates for client certificates; the whole site then needs one.
    #[arg(long, value_name = "FILE-PATH", help_heading = "TLS")]
    pub ssl_ca_certificate_file: Option<String>,
    /// Only this URL path needs a client certificate (repeatable).
    #[arg(long = "ssl-verify-client", value_name = "URL-PATH", help_heading = "TLS")]
    pub ssl_verify_client_urls: Vec<String>,
    /// Put mod_ssl's variables in every request's environ.
    #[arg(long, help_heading = "TLS")]
    pub ssl_environment: bool,
    /// With --server-name, redirect HTTP requests to HTTPS.
    #[arg(long, help_heading = "TLS")]
    pub https_only: bool,
    /// With --https-only, the Strict-Transport-Security header's value.
    #[arg(long, value_name = "PARAMS", help_heading = "TLS")]
    pub hsts_policy: Option<String>,
    /// Offer HTTP/2.
    #[arg(long, help_heading = "TLS")]
    pub http2: bool,

    // -- access control ---------------------------------------------------------
    /// A script whose allow_access(environ, host) decides who may connect.
    #[arg(long, value_name = "SCRIPT-PATH", help_heading = "Access control")]
    pub host_access_script: Option<String>,
    /// A script whose check_password (Basic) or get_realm_hash (Digest)
    /// authenticates users for the whole site.
    #[arg(long, value_name = "SCRIPT-PATH", help_heading = "Access control")]
    pub auth_user_script: Option<String>,
    /// The authentication scheme.
    #[arg(long, value_enum, value_name = "TYPE", ignore_case = true, default_value = "basic", help_heading = "Access control")]
    pub auth_type: AuthType,
    /// A script whose groups_for_user decides group membership.
    #[arg(long, value_name = "SCRIPT-PATH", help_heading = "Access control")]
    pub auth_group_script: Option<String>,
    /// The group users must be in, with --auth-group-script.
    #[arg(long, value_name = "NAME", default_value = "wsgi", help_heading = "Access control")]
    pub auth_group: String,

    // -- logs -----------------------------------------------------------------------
    /// Where the logs go (default: the server root).
    #[arg(long, value_name = "DIRECTORY-PATH", help_heading = "Logs")]
    pub log_directory: Option<String>,
    /// Apache's log level.
    #[arg(long, value_name = "NAME", default_value = "warn", help_heading = "Logs")]
    pub log_level: String,
    /// Write an access log.
    #[arg(long, help_heading = "Logs")]
    pub access_log: bool,
    /// The access log's format: common, combined or an Apache LogFormat.
    #[arg(long, value_name = "FORMAT", help_heading = "Logs")]
    pub access_log_format: Option<String>,
    /// Apache's ErrorLogFormat.
    #[arg(long, value_name = "FORMAT", help_heading = "Logs")]
    pub error_log_format: Option<String>,
    /// Write Apache's start-up messages to a log of their own.
    #[arg(long, help_heading = "Logs")]
    pub startup_log: bool,
    /// The error log's file name in the log directory.
    #[arg(long, value_name = "FILE-NAME", default_value = "error_log", help_heading = "Logs")]
    pub error_log_name: String,
    /// The access log's file name in the log directory.
    #[arg(long, value_name = "FILE-NAME", default_value = "access_log", help_heading = "Logs")]
    pub access_log_name: String,
    /// The start-up log's file name in the log directory.
    #[arg(long, value_name = "FILE-NAME", default_value = "startup_log", help_heading = "Logs")]
    pub startup_log_name: String,
    /// Send the logs to this terminal (ignored with --log-directory).
    #[arg(long, help_heading = "Logs")]
    pub log_to_terminal: bool,
    /// Rotate the logs with rotatelogs.
    #[arg(long, help_heading = "Logs")]
    pub rotate_logs: bool,
    /// Rotate when a log reaches this many megabytes.
    #[arg(long, value_name = "MB", default_value_t = 5, help_heading = "Logs")]
    pub max_log_size: u32,
    /// The rotatelogs program.
    #[arg(long, value_name = "FILE-PATH", help_heading = "Logs")]
    pub rotatelogs_executable: Option<String>,
    #[arg(long, hide = true)]
    pub verbose_debugging: bool,

    // -- metrics ----------------------------------------------------------------------
    /// Let the application read Apache's metrics (mod_wsgi.server_metrics()).
    #[arg(long, help_heading = "Metrics")]
    pub server_metrics: bool,
    /// Serve Apache's status page at /server-status to localhost.
    #[arg(long, help_heading = "Metrics")]
    pub server_status: bool,
    /// Report telemetry to this target (unix:/path).
    #[arg(long, value_name = "TARGET", help_heading = "Metrics")]
    pub telemetry_service: Option<String>,
    /// Telemetry sampling interval, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = positive_seconds, help_heading = "Metrics")]
    pub telemetry_interval: f64,
    /// Report requests running longer than this, in seconds.
    #[arg(long, value_name = "SECONDS", value_parser = non_negative_seconds, help_heading = "Metrics")]
    pub slow_requests: Option<f64>,
    /// A WSGITelemetryOptions value (repeatable).
    #[arg(long, value_name = "ARGS", help_heading = "Metrics")]
    pub telemetry_options: Vec<String>,
    /// The telemetry UI's port, with --enable-telemetry.
    #[arg(long, value_name = "NUMBER", default_value_t = 8888, help_heading = "Metrics")]
    pub telemetry_ui_port: u16,
}
