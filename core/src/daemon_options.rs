//! Parsing of `WSGIDaemonProcess name [option=value ...]` into a typed
//! [`DaemonSpec`] with mod_wsgi 6's defaults. Options that mod_wsgi accepts
//! but we do not implement are accepted and listed in [`DaemonSpec::ignored`],
//! so a working mod_wsgi configuration still passes `apache2 -t`. Also the
//! pure parts of applying some options: the ownership rules of
//! `script-user=`/`script-group=` and the path mapping of `chroot=`.
use std::time::Duration;

use crate::args::Args;

const D: &str = "WSGIDaemonProcess";

/// Largest number of seconds a timeout may be, so adding it to an `Instant`
/// can never overflow (and it fits the C `int` mod_wsgi uses).
const MAX_SECONDS: u64 = i32::MAX as u64;

/// One daemon process group.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSpec {
    pub name: String,
    /// Processes in the group; `wsgi.multiprocess` is `processes > 1`.
    pub processes: u32,
    /// Request threads per process, 0..=65533. 0 is a service process: it
    /// runs its group's `WSGIImportScript`s and takes no requests.
    pub threads: u32,
    /// The raw `display-name=` value; see [`DaemonSpec::process_title`].
    pub display_name: Option<String>,
    /// `name` or `#uid`, resolved by the module. None: Apache's `User`.
    pub user: Option<String>,
    /// `name` or `#gid`. None: Apache's `Group`.
    pub group: Option<String>,
    /// Explicit supplementary groups (names or `#gid`); empty: `initgroups(user)`.
    pub supplementary_groups: Vec<String>,
    pub umask: Option<u32>,
    /// Working directory, also put first on `sys.path`. Always absolute.
    pub home: Option<String>,
    pub python_home: Option<String>,
    pub python_path: Vec<String>,
    /// Becomes `PYTHON_EGG_CACHE`.
    pub python_eggs: Option<String>,
    /// Becomes `LANG`.
    pub lang: Option<String>,
    /// Becomes `LC_ALL` (and `setlocale`).
    pub locale: Option<String>,
    pub switch_interval: Option<f64>,
    /// Recycle the process after this many requests; 0 = never.
    pub maximum_requests: u64,
    /// For every `Option<Duration>` below, None means off (the option was 0).
    pub restart_interval: Option<Duration>,
    pub inactivity_timeout: Option<Duration>,
    pub request_timeout: Option<Duration>,
    /// Drain window for graceful recycles (default 15 s); None: recycle at once.
    pub graceful_timeout: Option<Duration>,
    /// Drain window on SIGUSR1; None: use `graceful_timeout`.
    pub eviction_timeout: Option<Duration>,
    /// Force exit this long after shutdown starts (default 5 s); None: never.
    pub shutdown_timeout: Option<Duration>,
    pub startup_timeout: Option<Duration>,
    /// Restart when the GIL cannot be taken for this long (default 300 s).
    pub deadlock_timeout: Option<Duration>,
    /// Total budget for connecting to the daemon socket, retries included
    /// (default 15 s); zero means a single attempt.
    pub connect_timeout: Duration,
    /// Per-I/O timeout on the child↔daemon socket; None: Apache's `Timeout`.
    pub socket_timeout: Option<Duration>,
    /// Longest a request may wait for a daemon thread before a 504.
    pub queue_timeout: Option<Duration>,
    pub listen_backlog: u32,
    /// Largest response head the child accepts from the daemon, in bytes.
    pub header_buffer_size: usize,
    /// Force a flush after this many body bytes without one.
    pub response_buffer_size: usize,
    /// `RLIMIT_DATA` in bytes; 0 = no limit.
    pub memory_limit: u64,
    /// Stack size of each request thread in bytes; None: 8 MiB (what
    /// Apache's own threads get on Linux).
    pub stack_size: Option<usize>,
    /// The nice value the processes run at; 0: Apache's own.
    pub cpu_priority: i32,
    /// `RLIMIT_AS` in bytes; 0 = no limit.
    pub virtual_memory_limit: u64,
    /// Socket buffer for data from the daemon to Apache's child (the
    /// daemon's SO_SNDBUF, the child's SO_RCVBUF); None: the system's.
    pub send_buffer_size: Option<usize>,
    /// Socket buffer for data from Apache's child to the daemon (the
    /// child's SO_SNDBUF, the daemon's SO_RCVBUF); None: the system's.
    pub receive_buffer_size: Option<usize>,
    /// Timeout on writes to the HTTP client while a response body is
    /// passed on; None: socket-timeout, else Apache's `Timeout`.
    pub response_socket_timeout: Option<Duration>,
    /// How long Apache's child waits for more of a response before it
    /// flushes what it has to the client (default 5 ms).
    pub response_flush_delay: Duration,
    /// Owner of the daemon sockets (`name` or `#uid`); None: Apache's `User`.
    pub socket_user: Option<String>,
    /// Whom a script run in the group must belong to.
    pub script_owner: Option<ScriptOwner>,
    /// The directory the processes are confined to (no trailing '/').
    pub chroot: Option<String>,
    /// Options accepted for compatibility whose settings we do not honour,
    /// in the order given, for one warning each.
    pub ignored: Vec<String>,
}

impl DaemonSpec {
    /// mod_wsgi 6's defaults for a group called `name`.
    pub fn new(name: &str) -> Self {
        DaemonSpec {
            name: name.to_string(),
            processes: 1,
            threads: 15,
            display_name: None,
            user: None,
            group: None,
            supplementary_groups: Vec::new(),
            umask: None,
            home: None,
            python_home: None,
            python_path: Vec::new(),
            python_eggs: None,
            lang: None,
            locale: None,
            switch_interval: None,
            maximum_requests: 0,
            restart_interval: None,
            inactivity_timeout: None,
            request_timeout: None,
            graceful_timeout: Some(Duration::from_secs(15)),
            eviction_timeout: None,
            shutdown_timeout: Some(Duration::from_secs(5)),
            startup_timeout: None,
            deadlock_timeout: Some(Duration::from_secs(300)),
            connect_timeout: Duration::from_secs(15),
            socket_timeout: None,
            queue_timeout: None,
            listen_backlog: 100,
            header_buffer_size: DEFAULT_HEADER_BUFFER,
            response_buffer_size: DEFAULT_RESPONSE_BUFFER,
            memory_limit: 0,
            stack_size: None,
            cpu_priority: 0,
            virtual_memory_limit: 0,
            send_buffer_size: None,
            receive_buffer_size: None,
            response_socket_timeout: None,
            response_flush_delay: DEFAULT_FLUSH_DELAY,
            socket_user: None,
            script_owner: None,
            chroot: None,
            ignored: Vec::new(),
        }
    }

    /// The process title to set, if any. As in mod_wsgi, only a value that is
    /// exactly `%{GROUP}` expands, to `(wsgi:<group>)`, which is what
    /// operators match with `pkill -f 'wsgi:NAME'`.
    pub fn process_title(&self, group: &str) -> Option<String> {
        self.display_name
            .as_deref()
            .map(|name| if name == "%{GROUP}" { format!("(wsgi:{group})") } else { name.to_string() })
    }
}

/// `script-user=` or `script-group=`: `name` or `#id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOwner {
    User(String),
    Group(String),
}

pub const DEFAULT_HEADER_BUFFER: usize = 32768;
pub const DEFAULT_FLUSH_DELAY: Duration = Duration::from_millis(5);
pub const DEFAULT_RESPONSE_BUFFER: usize = 8 << 20;
/// The smallest `stack-size=` accepted.
pub const MIN_STACK_SIZE: u64 = 64 * 1024;

/// Options mod_wsgi 6 accepts that we only check and record, with the
/// values that ask for nothing beyond our behaviour (no warning for those,
/// since mod_wsgi-express writes most of them out with their defaults).
const IGNORED: [(&str, Ignored); 3] = [
    ("interrupt-timeout", Ignored::Count(&[0])),
    ("cpu-time-limit", Ignored::Count(&[0])),
    ("server-metrics", Ignored::Flag),
];

#[derive(Clone, Copy)]
enum Ignored {
    /// A whole number, 0 or more; the listed values are no-ops.
    Count(&'static [u64]),
    /// On or Off; Off is a no-op.
    Flag,
}

/// A sample of valid options for the unknown-option message.
const SAMPLE: &str = "processes=, threads=, user=, group=, home=, display-name=, python-home=, python-path=, \
    maximum-requests=, request-timeout=, socket-timeout=, queue-timeout=, graceful-timeout=";

/// Parses the argument line of `WSGIDaemonProcess`: the group name, then
/// `option=value` words whose values may be quoted.
pub fn parse_daemon_process(line: &str) -> Result<DaemonSpec, String> {
    let mut args = Args::new(D, line);
    let name = args.required("a process group name")?;
    check_group_name(&name)?;
    let mut spec = DaemonSpec::new(&name);
    let options = args.options()?;
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &options {
        let (key, value) = (key.as_str(), value.as_str());
        // mod_wsgi lets the last one win; a repeat is almost always a mistake.
        if seen.contains(&key) {
            return Err(format!("{D}: option {key}= is given more than once"));
        }
        seen.push(key);
        match key {
            "processes" => spec.processes = number(key, value, 1, u32::MAX as u64)? as u32,
            // 0: a service process (see `DaemonSpec::threads`).
            "threads" => spec.threads = number(key, value, 0, 0xfffd)? as u32,
            "display-name" => spec.display_name = non_empty(value),
            "user" => spec.user = Some(user_or_group(key, value)?),
            "group" => spec.group = Some(user_or_group(key, value)?),
            "supplementary-groups" => {
                // Empty entries (a trailing comma, which mod_wsgi tolerates) are skipped.
                spec.supplementary_groups =
                    value.split(',').filter(|g| !g.is_empty()).map(|g| user_or_group(key, g)).collect::<Result<_, _>>()?;
            }
            "umask" => spec.umask = Some(umask(value)?),
            "home" => spec.home = Some(absolute(key, value)?),
            "python-home" => spec.python_home = non_empty(value),
            // mod_wsgi-express writes `python-path=''` when it has none.
            "python-path" => spec.python_path = crate::directives::parse_python_path(value),
            "python-eggs" => spec.python_eggs = non_empty(value),
            "lang" => spec.lang = non_empty(value),
            "locale" => spec.locale = non_empty(value),
            "switch-interval" => match value.parse::<f64>() {
                Ok(seconds) if seconds > 0.0 && seconds.is_finite() => spec.switch_interval = Some(seconds),
                _ => {
                    return Err(format!(
                        "{D} option switch-interval= must be a number of seconds above 0, such as 0.005, not '{value}'"
                    ))
                }
            },
            "maximum-requests" => spec.maximum_requests = number(key, value, 0, u64::MAX)?,
            "restart-interval" => spec.restart_interval = off_if_zero(seconds(key, value, "off")?),
            "inactivity-timeout" => spec.inactivity_timeout = off_if_zero(seconds(key, value, "off")?),
            "request-timeout" => spec.request_timeout = off_if_zero(seconds(key, value, "off")?),
            "graceful-timeout" => spec.graceful_timeout = off_if_zero(seconds(key, value, "off")?),
            "eviction-timeout" => spec.eviction_timeout = off_if_zero(seconds(key, value, "off")?),
            "shutdown-timeout" => spec.shutdown_timeout = off_if_zero(seconds(key, value, "off")?),
            "startup-timeout" => spec.startup_timeout = off_if_zero(seconds(key, value, "off")?),
            "deadlock-timeout" => spec.deadlock_timeout = off_if_zero(seconds(key, value, "off")?),
            "connect-timeout" => spec.connect_timeout = seconds(key, value, "a single attempt")?,
            "socket-timeout" => spec.socket_timeout = off_if_zero(seconds(key, value, "Apache's Timeout")?),
            "queue-timeout" => spec.queue_timeout = off_if_zero(seconds(key, value, "off")?),
            "listen-backlog" => spec.listen_backlog = number(key, value, 1, i32::MAX as u64)? as u32,
            "header-buffer-size" => {
                // A head must fit in one protocol frame, hence the upper bound.
                spec.header_buffer_size = buffer_size(key, value, 8192, crate::protocol::MAX_FRAME, DEFAULT_HEADER_BUFFER)?
            }
            "response-buffer-size" => {
                spec.response_buffer_size = buffer_size(key, value, 65536, usize::MAX, DEFAULT_RESPONSE_BUFFER)?
            }
            "memory-limit" => spec.memory_limit = number(key, value, 0, i64::MAX as u64)?,
            // mod_wsgi refuses 0; below 64 KiB a Python thread cannot run.
            "stack-size" => spec.stack_size = Some(number(key, value, MIN_STACK_SIZE, i32::MAX as u64)? as usize),
            "cpu-priority" => spec.cpu_priority = nice_value(value)?,
            "virtual-memory-limit" => spec.virtual_memory_limit = number(key, value, 0, i64::MAX as u64)?,
            // mod_wsgi refuses socket buffers under 512 bytes.
            "send-buffer-size" => spec.send_buffer_size = socket_buffer(key, value)?,
            "receive-buffer-size" => spec.receive_buffer_size = socket_buffer(key, value)?,
            "response-socket-timeout" => spec.response_socket_timeout = off_if_zero(seconds(key, value, "socket-timeout")?),
            "response-flush-delay" => spec.response_flush_delay = milliseconds(key, value)?,
            "socket-user" => spec.socket_user = Some(user_or_group(key, value)?),
            "script-user" => spec.script_owner = Some(ScriptOwner::User(user_or_group(key, value)?)),
            "script-group" => spec.script_owner = Some(ScriptOwner::Group(user_or_group(key, value)?)),
            "chroot" => spec.chroot = Some(chroot_dir(value)?),
            _ => match IGNORED.iter().find(|(name, _)| *name == key) {
                Some(&(name, kind)) => {
                    if !check_ignored(name, kind, value)? {
                        spec.ignored.push(name.to_string());
                    }
                }
                None => return Err(format!("{D}: unknown option '{key}'; valid options include {SAMPLE}")),
            },
        }
    }
    if seen.contains(&"script-user") && seen.contains(&"script-group") {
        return Err(format!("{D}: give only one of script-user= and script-group="));
    }
    Ok(spec)
}

/// Group names end up in socket paths, process titles and `WSGIProcessGroup`
/// lookups, where '/', spaces and a leading '%' (the `%{…}` selectors) would
/// each be ambiguous.
fn check_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name.chars().any(char::is_whitespace) || name.starts_with('%') {
        return Err(format!(
            "{D} needs a process group name that is not empty and has no '/', no whitespace and no leading '%', not '{name}'"
        ));
    }
    Ok(())
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

/// Digits only: Rust's `parse` would also take a leading '+'.
fn digits(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn number(key: &str, value: &str, min: u64, max: u64) -> Result<u64, String> {
    let n = digits(value);
    if let Some(n) = n.filter(|n| (min..=max).contains(n)) {
        return Ok(n);
    }
    // A huge upper bound is only worth naming to someone who went past it.
    let too_big = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) && n.is_none_or(|n| n > max);
    if max >= i32::MAX as u64 && !too_big {
        let floor = if min == 0 { String::new() } else { format!(" of at least {min}") };
        return Err(format!("{D} option {key}= must be a whole number{floor}, not '{value}'"));
    }
    Err(format!("{D} option {key}= must be a whole number from {min} to {max}, not '{value}'"))
}

/// Whole seconds, as mod_wsgi reads them; `zero` says what 0 means.
fn seconds(key: &str, value: &str, zero: &str) -> Result<Duration, String> {
    match digits(value) {
        Some(n) if n <= MAX_SECONDS => Ok(Duration::from_secs(n)),
        _ => Err(format!("{D} option {key}= must be a whole number of seconds (0 for {zero}), not '{value}'")),
    }
}

fn off_if_zero(duration: Duration) -> Option<Duration> {
    (!duration.is_zero()).then_some(duration)
}

/// 0 selects the default; anything else must be within `min..=max`.
fn buffer_size(key: &str, value: &str, min: usize, max: usize, default: usize) -> Result<usize, String> {
    match digits(value).and_then(|n| usize::try_from(n).ok()) {
        Some(0) => Ok(default),
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => {
            let upper = if max == usize::MAX { String::new() } else { format!(" and at most {max}") };
            let zero = if default == 0 { "the system's default".to_string() } else { default.to_string() };
            Err(format!("{D} option {key}= must be 0 (for {zero}) or a whole number of bytes of at least {min}{upper}, not '{value}'"))
        }
    }
}

/// `name` or `#id`. uid 0 is refused here when it is spelled out; a name
/// that resolves to uid 0 must still be refused when the module resolves it.
fn user_or_group(key: &str, value: &str) -> Result<String, String> {
    let id = value.strip_prefix('#');
    if value.is_empty() || id.is_some_and(|id| digits(id).is_none_or(|n| n > u32::MAX as u64)) {
        return Err(format!("{D} option {key}= takes a name or #id, not '{value}'"));
    }
    if key == "user" && (value == "root" || id.and_then(digits) == Some(0)) {
        return Err(format!("{D} option user= must not be root: WSGI daemon processes never run as root"));
    }
    Ok(value.to_string())
}

fn umask(value: &str) -> Result<u32, String> {
    match u32::from_str_radix(value, 8) {
        Ok(mask) if mask <= 0o777 && !value.starts_with('+') => Ok(mask),
        _ => Err(format!("{D} option umask= must be an octal mask from 0 to 0777, such as 0022, not '{value}'")),
    }
}

fn absolute(key: &str, value: &str) -> Result<String, String> {
    if !value.starts_with('/') {
        return Err(format!("{D} option {key}= must be an absolute path, not '{value}'"));
    }
    Ok(value.to_string())
}

/// Checks an ignored option's value as mod_wsgi would; true when the value
/// is a no-op, so no warning is due.
fn check_ignored(key: &str, kind: Ignored, value: &str) -> Result<bool, String> {
    Ok(match kind {
        Ignored::Count(noops) => noops.contains(&number(key, value, 0, i64::MAX as u64)?),
        Ignored::Flag => !crate::directives::parse_on_off(&format!("{D} option {key}="), value)?,
    })
}

/// `cpu-priority=`: a nice value in the range mod_wsgi documents (Linux
/// runs 20 as 19).
fn nice_value(value: &str) -> Result<i32, String> {
    let (sign, magnitude) = match value.strip_prefix('-') {
        Some(magnitude) => (-1, magnitude),
        None => (1, value),
    };
    match digits(magnitude).filter(|&n| n <= 20) {
        Some(n) => Ok(sign * n as i32),
        None => Err(format!("{D} option cpu-priority= must be a whole number from -20 (scheduled most favourably) to 20, not '{value}'")),
    }
}

/// 0 (None: the system's size) or at least 512 bytes, as mod_wsgi requires.
fn socket_buffer(key: &str, value: &str) -> Result<Option<usize>, String> {
    Ok(Some(buffer_size(key, value, 512, i32::MAX as usize, 0)?).filter(|&n| n > 0))
}

fn milliseconds(key: &str, value: &str) -> Result<Duration, String> {
    match digits(value) {
        Some(n) if n <= MAX_SECONDS => Ok(Duration::from_millis(n)),
        _ => Err(format!("{D} option {key}= must be a whole number of milliseconds (0 to flush whenever the daemon pauses), not '{value}'")),
    }
}

/// `chroot=`: absolute and plain, so that a path can be told to be inside
/// it by its prefix (Apache's file names are plain too).
fn chroot_dir(value: &str) -> Result<String, String> {
    let trimmed = value.trim_end_matches('/');
    let plain = trimmed.split('/').skip(1).all(|part| !part.is_empty() && part != "." && part != "..");
    if !value.starts_with('/') || !plain {
        return Err(format!("{D} option chroot= must be an absolute path with no '.', '..' or empty parts, such as /srv/jail, not '{value}'"));
    }
    Ok(if trimmed.is_empty() { "/".to_string() } else { trimmed.to_string() })
}

/// `path` as a process confined to `root` (a `chroot=` value) sees it, or
/// None when it is outside `root`.
pub fn path_in_chroot(root: &str, path: &str) -> Option<String> {
    if root == "/" {
        return Some(path.to_string());
    }
    match path.strip_prefix(root)? {
        "" => Some("/".to_string()),
        rest if rest.starts_with('/') => Some(rest.to_string()),
        _ => None,
    }
}

/// The owner, group and permission bits of a file or directory.
#[derive(Debug, Clone, Copy)]
pub struct Ownership {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

const GROUP_WRITABLE: u32 = 0o020;
const WORLD_WRITABLE: u32 = 0o002;

/// mod_wsgi's rules for a script run in a group with `script-user=` (or
/// `script-group=`), resolved to `id`: the script and the directory it is
/// in belong to that user (group), and neither is writable by anyone else
/// (nor, for `script-user=`, by their group). Err says which rule failed.
pub fn check_script_owner(owner: &ScriptOwner, id: u32, script: Ownership, dir: Ownership) -> Result<(), String> {
    let (option, name, forbidden) = match owner {
        ScriptOwner::User(name) => ("script-user", name, GROUP_WRITABLE | WORLD_WRITABLE),
        ScriptOwner::Group(name) => ("script-group", name, WORLD_WRITABLE),
    };
    for (what, facts) in [("the script", script), ("its directory", dir)] {
        let (kind, actual) = match owner {
            ScriptOwner::User(_) => ("owner", facts.uid),
            ScriptOwner::Group(_) => ("group", facts.gid),
        };
        if actual != id {
            return Err(format!("{what} has {kind} id {actual}, not {option}={name} (id {id})"));
        }
        match facts.mode & forbidden {
            0 => {}
            bits if bits & WORLD_WRITABLE != 0 => return Err(format!("{what} is writable by anyone")),
            _ => return Err(format!("{what} is writable by its group, which {option}= does not allow")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[&str]) -> Result<DaemonSpec, String> {
        parse_daemon_process(&format!("app {}", options.join(" ")))
    }

    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn defaults() {
        let spec = parse(&[]).unwrap();
        assert_eq!(spec, DaemonSpec::new("app"));
        assert_eq!((spec.processes, spec.threads), (1, 15));
        assert_eq!(spec.graceful_timeout, secs(15));
        assert_eq!(spec.shutdown_timeout, secs(5));
        assert_eq!(spec.deadlock_timeout, secs(300));
        assert_eq!(spec.connect_timeout, Duration::from_secs(15));
        assert_eq!((spec.socket_timeout, spec.queue_timeout, spec.request_timeout), (None, None, None));
        assert_eq!((spec.listen_backlog, spec.header_buffer_size, spec.response_buffer_size), (100, 32768, 8 << 20));
        assert_eq!((spec.maximum_requests, spec.memory_limit), (0, 0));
        assert!(spec.ignored.is_empty() && spec.display_name.is_none() && spec.process_title("app").is_none());
    }

    #[test]
    fn group_names() {
        assert_eq!(parse_daemon_process("localhost:8000").unwrap().name, "localhost:8000");
        assert_eq!(parse_daemon_process("'service:x'").unwrap().name, "service:x");
        for missing in ["", "''", "   "] {
            assert_eq!(parse_daemon_process(missing).unwrap_err(), "WSGIDaemonProcess needs a process group name", "{missing:?}");
        }
        for bad in ["a/b", "a b", "a\tb", "%{GLOBAL}"] {
            let err = parse_daemon_process(&format!("'{bad}'")).unwrap_err();
            assert!(err.starts_with(D) && err.contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn processes_and_threads() {
        let spec = parse(&["processes=1", "threads=1"]).unwrap();
        assert_eq!((spec.processes, spec.threads), (1, 1));
        assert_eq!(parse(&["processes=4"]).unwrap().processes, 4);
        assert_eq!(parse(&["threads=65533"]).unwrap().threads, 65533);
        assert_eq!(parse(&["processes=abc"]).unwrap_err(), "WSGIDaemonProcess option processes= must be a whole number of at least 1, not 'abc'");
        assert!(parse(&["processes=0"]).unwrap_err().contains("at least 1, not '0'"));
        assert!(parse(&["processes=4294967296"]).unwrap_err().contains("from 1 to 4294967295"));
        assert!(parse(&["threads=x"]).unwrap_err().contains("from 0 to 65533"));
        for bad in ["0", "-1", "+2", "2x", "", "4294967296", "99999999999999999999999"] {
            assert!(parse(&[&format!("processes={bad}")]).unwrap_err().contains("processes="), "{bad}");
        }
        for bad in ["65534", "-1", "x", ""] {
            assert!(parse(&[&format!("threads={bad}")]).unwrap_err().contains("threads="), "{bad}");
        }
        // A service process.
        assert_eq!(parse(&["threads=0"]).unwrap().threads, 0);
    }

    #[test]
    fn display_name() {
        let spec = parse(&["display-name=%{GROUP}"]).unwrap();
        assert_eq!(spec.display_name.as_deref(), Some("%{GROUP}"));
        assert_eq!(spec.process_title("site").as_deref(), Some("(wsgi:site)"));
        let spec = parse(&["display-name='my %{GROUP}'"]).unwrap();
        assert_eq!(spec.process_title("site").as_deref(), Some("my %{GROUP}"));
        assert_eq!(parse(&["display-name="]).unwrap().display_name, None);
    }

    #[test]
    fn users_and_groups() {
        let spec = parse(&["user=www-data", "group=#33", "supplementary-groups=adm,#4"]).unwrap();
        assert_eq!(spec.user.as_deref(), Some("www-data"));
        assert_eq!(spec.group.as_deref(), Some("#33"));
        assert_eq!(spec.supplementary_groups, vec!["adm", "#4"]);
        assert_eq!(parse(&["user=#1000"]).unwrap().user.as_deref(), Some("#1000"));
        assert_eq!(parse(&["supplementary-groups=a,b,"]).unwrap().supplementary_groups, vec!["a", "b"]);
        for bad in ["user=", "user=#", "user=#x", "user=#-1", "user=#4294967296", "group=", "supplementary-groups=a,#x"] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
        for root in ["user=root", "user=#0", "user=#000"] {
            assert!(parse(&[root]).unwrap_err().contains("root"), "{root}");
        }
        assert!(parse(&["group=root"]).is_ok());
    }

    #[test]
    fn umask_values() {
        assert_eq!(parse(&["umask=0022"]).unwrap().umask, Some(0o22));
        assert_eq!(parse(&["umask=022"]).unwrap().umask, Some(0o22));
        assert_eq!(parse(&["umask=7"]).unwrap().umask, Some(0o7));
        assert_eq!(parse(&["umask=0777"]).unwrap().umask, Some(0o777));
        for bad in ["", "8", "0x22", "1000", "-1", "+7", "abc"] {
            assert!(parse(&[&format!("umask={bad}")]).unwrap_err().contains("umask="), "{bad}");
        }
    }

    #[test]
    fn paths_and_environment() {
        let spec = parse(&[
            "home=/srv/app",
            "python-home=/srv/venv",
            "python-path=/a:/b::/c",
            "python-eggs=/tmp/eggs",
            "lang=en_US.UTF-8",
            "locale=C.UTF-8",
        ])
        .unwrap();
        assert_eq!(spec.home.as_deref(), Some("/srv/app"));
        assert_eq!(spec.python_home.as_deref(), Some("/srv/venv"));
        assert_eq!(spec.python_path, vec!["/a", "/b", "/c"]);
        assert_eq!(spec.python_eggs.as_deref(), Some("/tmp/eggs"));
        assert_eq!((spec.lang.as_deref(), spec.locale.as_deref()), (Some("en_US.UTF-8"), Some("C.UTF-8")));
        // mod_wsgi-express writes these as '' when unset.
        let spec = parse(&["python-path=''", "python-eggs=''", "lang=''", "locale=''", "python-home=''"]).unwrap();
        assert!(spec.python_path.is_empty() && spec.python_eggs.is_none() && spec.lang.is_none());
        assert!(spec.locale.is_none() && spec.python_home.is_none());
        // A bare `name=` followed by another option takes that option as its
        // value, as in mod_wsgi; at the end of the line it is empty.
        assert_eq!(parse(&["python-path=", "lang=C"]).unwrap().python_path, vec!["lang=C"]);
        assert!(parse(&["lang=C", "python-path="]).unwrap().python_path.is_empty());
        for bad in ["home=", "home=relative/dir"] {
            assert!(parse(&[bad]).unwrap_err().contains("home="), "{bad}");
        }
    }

    #[test]
    fn switch_interval_and_counts() {
        assert_eq!(parse(&["switch-interval=0.005"]).unwrap().switch_interval, Some(0.005));
        for bad in ["0", "-1", "abc", "inf", "NaN", ""] {
            assert!(parse(&[&format!("switch-interval={bad}")]).unwrap_err().contains("switch-interval="), "{bad}");
        }
        assert_eq!(parse(&["maximum-requests=1000"]).unwrap().maximum_requests, 1000);
        assert_eq!(parse(&["maximum-requests=0"]).unwrap().maximum_requests, 0);
        assert_eq!(parse(&["memory-limit=1073741824"]).unwrap().memory_limit, 1 << 30);
        assert_eq!(parse(&["listen-backlog=1"]).unwrap().listen_backlog, 1);
        for bad in ["maximum-requests=-1", "maximum-requests=x", "memory-limit=-5", "memory-limit=9223372036854775808"] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
        for bad in ["0", "-1", "2147483648", "x"] {
            assert!(parse(&[&format!("listen-backlog={bad}")]).unwrap_err().contains("listen-backlog="), "{bad}");
        }
    }

    #[test]
    fn timeouts() {
        let keys = [
            "restart-interval",
            "inactivity-timeout",
            "request-timeout",
            "graceful-timeout",
            "eviction-timeout",
            "shutdown-timeout",
            "startup-timeout",
            "deadlock-timeout",
            "socket-timeout",
            "queue-timeout",
        ];
        let pick = |spec: &DaemonSpec, key: &str| match key {
            "restart-interval" => spec.restart_interval,
            "inactivity-timeout" => spec.inactivity_timeout,
            "request-timeout" => spec.request_timeout,
            "graceful-timeout" => spec.graceful_timeout,
            "eviction-timeout" => spec.eviction_timeout,
            "shutdown-timeout" => spec.shutdown_timeout,
            "startup-timeout" => spec.startup_timeout,
            "deadlock-timeout" => spec.deadlock_timeout,
            "socket-timeout" => spec.socket_timeout,
            "queue-timeout" => spec.queue_timeout,
            _ => unreachable!(),
        };
        for key in keys {
            assert_eq!(pick(&parse(&[&format!("{key}=60")]).unwrap(), key), secs(60), "{key}");
            assert_eq!(pick(&parse(&[&format!("{key}=0")]).unwrap(), key), None, "{key}");
            for bad in ["-1", "1.5", "abc", "", "2147483648"] {
                let err = parse(&[&format!("{key}={bad}")]).unwrap_err();
                assert!(err.contains(&format!("{key}=")) && err.contains("whole number of seconds"), "{err}");
            }
        }
        assert_eq!(parse(&["connect-timeout=0"]).unwrap().connect_timeout, Duration::ZERO);
        assert_eq!(parse(&["connect-timeout=30"]).unwrap().connect_timeout, Duration::from_secs(30));
        assert!(parse(&["connect-timeout=-1"]).unwrap_err().contains("single attempt"));
    }

    #[test]
    fn buffer_sizes() {
        assert_eq!(parse(&["header-buffer-size=0"]).unwrap().header_buffer_size, 32768);
        assert_eq!(parse(&["header-buffer-size=8192"]).unwrap().header_buffer_size, 8192);
        assert_eq!(parse(&["response-buffer-size=0"]).unwrap().response_buffer_size, 8 << 20);
        assert_eq!(parse(&["response-buffer-size=65536"]).unwrap().response_buffer_size, 65536);
        for bad in ["header-buffer-size=8191", "header-buffer-size=16777217", "header-buffer-size=x"] {
            assert!(parse(&[bad]).unwrap_err().contains("header-buffer-size="), "{bad}");
        }
        for bad in ["response-buffer-size=65535", "response-buffer-size=-1"] {
            assert!(parse(&[bad]).unwrap_err().contains("response-buffer-size="), "{bad}");
        }
    }

    #[test]
    fn stack_size() {
        assert_eq!(parse(&[]).unwrap().stack_size, None);
        assert_eq!(parse(&["stack-size=524288"]).unwrap().stack_size, Some(524288));
        assert!(parse(&["stack-size=524288"]).unwrap().ignored.is_empty());
        for bad in ["stack-size=0", "stack-size=-1", "stack-size=65535", "stack-size=1M"] {
            let err = parse(&[bad]).unwrap_err();
            assert!(err.contains("stack-size="), "{err}");
        }
    }

    #[test]
    fn ignored_options() {
        // The values mod_wsgi-express writes by default ask for nothing we lack.
        assert!(parse(&["interrupt-timeout=0", "cpu-time-limit=0", "server-metrics=Off"]).unwrap().ignored.is_empty());
        let loud = ["interrupt-timeout=5", "cpu-time-limit=60", "server-metrics=On"];
        assert_eq!(parse(&loud).unwrap().ignored, vec!["interrupt-timeout", "cpu-time-limit", "server-metrics"]);
        for bad in ["interrupt-timeout=-1", "cpu-time-limit=x", "server-metrics=maybe"] {
            let err = parse(&[bad]).unwrap_err();
            assert!(err.starts_with(D) && err.contains(bad.split('=').next().unwrap()), "{err}");
        }
    }

    #[test]
    fn process_limits() {
        assert_eq!(parse(&[]).unwrap().cpu_priority, 0);
        for (value, nice) in [("5", 5), ("-20", -20), ("20", 20), ("0", 0), ("-0", 0)] {
            assert_eq!(parse(&[&format!("cpu-priority={value}")]).unwrap().cpu_priority, nice, "{value}");
        }
        crate::test_util::assert_refused(D, |v| parse(&[&format!("cpu-priority={v}")]), &[
            ("21", "from -20 (scheduled most favourably) to 20, not '21'"),
            ("-21", "not '-21'"),
            ("", "cpu-priority="),
            ("-", "cpu-priority="),
            ("+5", "cpu-priority="),
            ("1.5", "cpu-priority="),
        ]);
        assert_eq!(parse(&["virtual-memory-limit=1073741824"]).unwrap().virtual_memory_limit, 1 << 30);
        assert_eq!(parse(&["virtual-memory-limit=0"]).unwrap().virtual_memory_limit, 0);
        crate::test_util::assert_refused(D, |v| parse(&[&format!("virtual-memory-limit={v}")]), &[
            ("-1", "virtual-memory-limit= must be a whole number, not '-1'"),
            ("1G", "virtual-memory-limit="),
            ("9223372036854775808", "virtual-memory-limit="),
        ]);
    }

    #[test]
    fn socket_buffers() {
        let spec = parse(&["send-buffer-size=65536", "receive-buffer-size=512"]).unwrap();
        assert_eq!((spec.send_buffer_size, spec.receive_buffer_size), (Some(65536), Some(512)));
        let spec = parse(&["send-buffer-size=0", "receive-buffer-size=0"]).unwrap();
        assert_eq!((spec.send_buffer_size, spec.receive_buffer_size), (None, None));
        crate::test_util::assert_refused(D, |o| parse(&[o]), &[
            ("send-buffer-size=511", "send-buffer-size= must be 0 (for the system's default) or a whole number of bytes of at least 512"),
            ("receive-buffer-size=1", "receive-buffer-size="),
            ("receive-buffer-size=2147483648", "at most 2147483647"),
            ("send-buffer-size=64k", "send-buffer-size="),
        ]);
    }

    #[test]
    fn response_options() {
        let spec = parse(&[]).unwrap();
        assert_eq!((spec.response_socket_timeout, spec.response_flush_delay), (None, Duration::from_millis(5)));
        let spec = parse(&["response-socket-timeout=10", "response-flush-delay=250"]).unwrap();
        assert_eq!((spec.response_socket_timeout, spec.response_flush_delay), (secs(10), Duration::from_millis(250)));
        let spec = parse(&["response-socket-timeout=0", "response-flush-delay=0"]).unwrap();
        assert_eq!((spec.response_socket_timeout, spec.response_flush_delay), (None, Duration::ZERO));
        crate::test_util::assert_refused(D, |o| parse(&[o]), &[
            ("response-socket-timeout=-1", "response-socket-timeout= must be a whole number of seconds (0 for socket-timeout)"),
            ("response-flush-delay=0.5", "response-flush-delay= must be a whole number of milliseconds"),
            ("response-flush-delay=", "response-flush-delay="),
        ]);
    }

    #[test]
    fn owners() {
        let spec = parse(&["socket-user=#33", "script-user=deploy"]).unwrap();
        assert_eq!(spec.socket_user.as_deref(), Some("#33"));
        assert_eq!(spec.script_owner, Some(ScriptOwner::User("deploy".into())));
        assert_eq!(parse(&["script-group=www"]).unwrap().script_owner, Some(ScriptOwner::Group("www".into())));
        crate::test_util::assert_refused(D, |o| parse(&[o]), &[
            ("socket-user=", "socket-user= takes a name or #id"),
            ("script-user=#x", "script-user= takes a name or #id"),
            ("script-group=#-1", "script-group="),
        ]);
        let err = parse(&["script-user=a", "script-group=b"]).unwrap_err();
        assert_eq!(err, "WSGIDaemonProcess: give only one of script-user= and script-group=");
    }

    #[test]
    fn chroot_values() {
        for (value, stored) in [("/srv/jail", "/srv/jail"), ("/srv/jail/", "/srv/jail"), ("/", "/"), ("//", "/")] {
            assert_eq!(parse(&[&format!("chroot={value}")]).unwrap().chroot.as_deref(), Some(stored), "{value}");
        }
        for bad in ["jail", "", "/srv/../etc", "/srv/./jail", "/srv//jail"] {
            let err = parse(&[&format!("chroot={bad}")]).unwrap_err();
            assert!(err.starts_with(D) && err.contains("chroot= must be an absolute path"), "{bad}: {err}");
        }
    }

    #[test]
    fn paths_in_chroot() {
        assert_eq!(path_in_chroot("/srv/jail", "/srv/jail/app/x.wsgi").as_deref(), Some("/app/x.wsgi"));
        assert_eq!(path_in_chroot("/srv/jail", "/srv/jail").as_deref(), Some("/"));
        assert_eq!(path_in_chroot("/srv/jail", "/srv/jail2/x.wsgi"), None);
        assert_eq!(path_in_chroot("/srv/jail", "/srv/x.wsgi"), None);
        assert_eq!(path_in_chroot("/srv/jail", "relative/x.wsgi"), None);
        assert_eq!(path_in_chroot("/", "/srv/x.wsgi").as_deref(), Some("/srv/x.wsgi"));
    }

    #[test]
    fn script_ownership_rules() {
        let own = |uid, gid, mode| Ownership { uid, gid, mode };
        let user = ScriptOwner::User("deploy".into());
        let group = ScriptOwner::Group("web".into());
        assert_eq!(check_script_owner(&user, 1000, own(1000, 5, 0o644), own(1000, 5, 0o755)), Ok(()));
        assert_eq!(check_script_owner(&group, 5, own(0, 5, 0o664), own(0, 5, 0o775)), Ok(()));
        let refusals = [
            (&user, own(1001, 5, 0o644), own(1000, 5, 0o755), "the script has owner id 1001, not script-user=deploy (id 1000)"),
            (&user, own(1000, 5, 0o664), own(1000, 5, 0o755), "the script is writable by its group, which script-user= does not allow"),
            (&user, own(1000, 5, 0o646), own(1000, 5, 0o755), "the script is writable by anyone"),
            (&user, own(1000, 5, 0o644), own(0, 5, 0o755), "its directory has owner id 0, not script-user=deploy (id 1000)"),
            (&user, own(1000, 5, 0o644), own(1000, 5, 0o775), "its directory is writable by its group, which script-user= does not allow"),
            (&user, own(1000, 5, 0o644), own(1000, 5, 0o1777), "its directory is writable by anyone"),
            (&group, own(0, 6, 0o644), own(0, 5, 0o755), "the script has group id 6, not script-group=web (id 5)"),
            (&group, own(0, 5, 0o666), own(0, 5, 0o755), "the script is writable by anyone"),
            (&group, own(0, 5, 0o644), own(0, 4, 0o755), "its directory has group id 4, not script-group=web (id 5)"),
            (&group, own(0, 5, 0o644), own(0, 5, 0o757), "its directory is writable by anyone"),
        ];
        for (owner, script, dir, why) in refusals {
            let id = if matches!(owner, ScriptOwner::User(_)) { 1000 } else { 5 };
            assert_eq!(check_script_owner(owner, id, script, dir).unwrap_err(), why);
        }
    }

    #[test]
    fn bad_option_words() {
        let err = parse(&["bogus=1"]).unwrap_err();
        assert!(err.starts_with("WSGIDaemonProcess: unknown option 'bogus'") && err.contains("processes="), "{err}");
        // Option names are case-sensitive, as in mod_wsgi.
        assert!(parse(&["Threads=5"]).unwrap_err().contains("unknown option 'Threads'"));
        assert!(parse(&["threads"]).unwrap_err().contains("'threads' is not of the form option=value"));
        assert!(parse(&["=5"]).unwrap_err().contains("not of the form"));
        let err = parse(&["threads=5", "threads=6"]).unwrap_err();
        assert!(err.contains("threads=") && err.contains("more than once"), "{err}");
        assert!(parse(&["server-metrics=On", "server-metrics=Off"]).is_err());
    }

    #[test]
    fn doc_examples() {
        // The WSGIDaemonProcess lines in mod_wsgi 6's docs: configuration-directives/
        // WSGIDaemonProcess.rst, WSGIProcessGroup.rst, WSGIImportScript.rst and
        // WSGIRestrictProcess.rst.
        let cases = [
            ("www.site1.com user=joe group=joe processes=2 threads=25", ("www.site1.com", 2, 25)),
            ("www.site2.com user=bob group=bob processes=2 threads=25", ("www.site2.com", 2, 25)),
            ("mygroup processes=2 threads=15", ("mygroup", 2, 15)),
            ("default processes=2 threads=25", ("default", 2, 25)),
            ("bob:1 user=bob group=bob threads=25", ("bob:1", 1, 25)),
        ];
        for (line, (name, processes, threads)) in cases {
            let spec = parse_daemon_process(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!((spec.name.as_str(), spec.processes, spec.threads), (name, processes, threads), "{line}");
        }
        // Each option in the form its entry in WSGIDaemonProcess.rst shows.
        let spec = parse(&["user=#1000", "group=#1000", "supplementary-groups=group1,group2", "umask=0007", "home=/srv/app"]).unwrap();
        assert_eq!((spec.user.as_deref(), spec.group.as_deref(), spec.umask), (Some("#1000"), Some("#1000"), Some(0o7)));
        assert_eq!(spec.supplementary_groups, vec!["group1", "group2"]);
        assert_eq!(parse(&["python-path=/a:/b"]).unwrap().python_path, vec!["/a", "/b"]);
        assert_eq!(parse(&["switch-interval=0.002"]).unwrap().switch_interval, Some(0.002));
        assert_eq!(parse(&["response-flush-delay=5", "server-metrics=off"]).unwrap().ignored, Vec::<String>::new());
        let spec = parse(&["cpu-priority=-5", "virtual-memory-limit=2000000000", "socket-user=www-data", "chroot=/srv/jail"]).unwrap();
        assert_eq!((spec.cpu_priority, spec.virtual_memory_limit), (-5, 2_000_000_000));
        assert_eq!((spec.socket_user.as_deref(), spec.chroot.as_deref()), (Some("www-data"), Some("/srv/jail")));
    }

    #[test]
    fn express_baseline() {
        // The starting point WSGIDaemonProcess.rst recommends, quoted as it is there.
        let spec = parse_daemon_process(
            "app display-name='%{GROUP}' lang='en_US.UTF-8' locale='en_US.UTF-8' threads=5 queue-timeout=45 \
             socket-timeout=60 connect-timeout=15 request-timeout=60 interrupt-timeout=0 inactivity-timeout=0 \
             startup-timeout=15 deadlock-timeout=60 graceful-timeout=15 eviction-timeout=0 restart-interval=0 \
             shutdown-timeout=5 maximum-requests=0",
        )
        .unwrap();
        assert_eq!(spec.process_title("app").as_deref(), Some("(wsgi:app)"));
        assert_eq!((spec.lang.as_deref(), spec.locale.as_deref()), (Some("en_US.UTF-8"), Some("en_US.UTF-8")));
        assert_eq!((spec.threads, spec.queue_timeout, spec.socket_timeout), (5, secs(45), secs(60)));
        assert_eq!((spec.request_timeout, spec.startup_timeout, spec.deadlock_timeout), (secs(60), secs(15), secs(60)));
        assert!(spec.ignored.is_empty());
    }

    #[test]
    fn express_generated() {
        // What `mod_wsgi-express setup-server` 6.1.1 writes (its src/express/apache.py
        // template), with Apache's continuation lines joined as Apache joins them.
        let line = "'localhost:8000' \
            \n   display-name='(wsgi:localhost:8000:0)' \
            \n   home='/srv/my project' \
            \n   threads=5 \
            \n   maximum-requests=0 \
            \n   python-path='' \
            \n   python-eggs='/tmp/root/python-eggs' \
            \n   lang='en_US.UTF-8' \
            \n   locale='en_US.UTF-8' \
            \n   listen-backlog=100 \
            \n   queue-timeout=45 \
            \n   socket-timeout=60 \
            \n   connect-timeout=15 \
            \n   request-timeout=60 \
            \n   interrupt-timeout=0 \
            \n   inactivity-timeout=0 \
            \n   startup-timeout=15 \
            \n   deadlock-timeout=60 \
            \n   graceful-timeout=15 \
            \n   eviction-timeout=0 \
            \n   restart-interval=0 \
            \n   cpu-time-limit=0 \
            \n   shutdown-timeout=5 \
            \n   send-buffer-size=0 \
            \n   receive-buffer-size=0 \
            \n   response-buffer-size=0 \
            \n   response-socket-timeout=0 \
            \n   response-flush-delay=5 \
            \n   server-metrics=Off"
            .replace(" \n", " ");
        let spec = parse_daemon_process(&line).unwrap();
        assert_eq!(spec.name, "localhost:8000");
        assert_eq!(spec.display_name.as_deref(), Some("(wsgi:localhost:8000:0)"));
        assert_eq!(spec.home.as_deref(), Some("/srv/my project"));
        assert!(spec.python_path.is_empty());
        assert_eq!(spec.python_eggs.as_deref(), Some("/tmp/root/python-eggs"));
        assert_eq!((spec.threads, spec.request_timeout, spec.response_buffer_size), (5, secs(60), DEFAULT_RESPONSE_BUFFER));
        assert!(spec.ignored.is_empty(), "{:?}", spec.ignored);
        // The multi-process form adds processes= and header-buffer-size=.
        let spec = parse_daemon_process("'localhost:8000' display-name='(wsgi:x)' home='/tmp' processes=3 threads=5 header-buffer-size=0").unwrap();
        assert_eq!((spec.processes, spec.header_buffer_size), (3, DEFAULT_HEADER_BUFFER));
        // --service-script NAME SCRIPT adds a group with no request threads.
        let spec = parse_daemon_process(
            "'service:tasks' display-name=%{GROUP} user='www-data' group='www-data' home='/srv/app' threads=0 \
             python-path='' python-eggs='/tmp/eggs' lang='en_US.UTF-8' locale='en_US.UTF-8' server-metrics=Off",
        )
        .unwrap();
        assert_eq!((spec.name.as_str(), spec.threads, spec.process_title("service:tasks").as_deref()), ("service:tasks", 0, Some("(wsgi:service:tasks)")));
    }

    #[test]
    fn quoted_and_empty_values() {
        let spec = parse_daemon_process("\"my app\" home=\"/srv/my app\" python-path='/a b:/c' display-name=\"it's %{GROUP}\"");
        assert_eq!(spec.unwrap_err(), "WSGIDaemonProcess needs a process group name that is not empty and has no '/', no whitespace and no leading '%', not 'my app'");
        let spec = parse_daemon_process("app home=\"/srv/my app\" python-path='/a b:/c' display-name=\"it's %{GROUP}\" user='www-data'").unwrap();
        assert_eq!((spec.home.as_deref(), spec.user.as_deref()), (Some("/srv/my app"), Some("www-data")));
        assert_eq!(spec.python_path, vec!["/a b", "/c"]);
        assert_eq!(spec.display_name.as_deref(), Some("it's %{GROUP}"));
        // An empty value is what the option's empty form means, or an error naming the option.
        assert!(parse_daemon_process("app python-home='' lang=\"\" display-name=''").unwrap().python_home.is_none());
        for (line, option) in [("app home=''", "home="), ("app threads=''", "threads="), ("app user=\"\"", "user="), ("app server-metrics=''", "server-metrics=")] {
            let err = parse_daemon_process(line).unwrap_err();
            assert!(err.starts_with(D) && err.contains(option), "{line}: {err}");
        }
        assert!(parse_daemon_process("app home='/srv").unwrap_err().contains("never closed"));
    }

}
