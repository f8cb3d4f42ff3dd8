//! The Apache parent's side of daemon mode: for each group, one listening
//! socket per process slot that only Apache's children can use, a daemon
//! process forked into each slot and replaced when it ends, and the
//! daemons stopped with Apache's generation.
//!
//! What the parent keeps for a generation is one [`Supervisor`]: per slot
//! the socket, the process running there and the MPM registration that
//! reports its death, made once and reused for every process of the slot,
//! so the parent does not grow however often daemons are replaced. Groups
//! are referred to by their index in the registry, never held: a forked
//! daemon drops all of this but its own socket, and keeps only its own
//! group (with its secret).
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag, AT_FDCWD};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::{fchmodat, FchmodatFlags, Mode};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{Gid, Pid, Uid};
use wsgi_core::directives::{GroupSpec, ImportScript};
use wsgi_core::protocol::SECRET_LEN;

use super::group::{self, DaemonGroup, RuntimeGroup};
use super::identity::{lookup_group, lookup_user};
use super::process::{self, EXIT_CRASHED, EXIT_STARTUP_FAILED};
use crate::config::{AliasPattern, GlobalSettings};
use crate::ffi::log::{Level, LogTarget};
use crate::ffi::pool::Pool;
use crate::ffi::process::{self as os, ChildWatch, Forked};
use crate::ffi::secrets::SecretPage;
use crate::ffi::server::Server;

/// A process that ends before it is ready is replaced at once the first
/// time; each further failure in a row waits twice as long as the one
/// before, from this ...
const FIRST_BACK_OFF: Duration = Duration::from_secs(5);
/// ... up to this.
const MAX_BACK_OFF: Duration = Duration::from_secs(60);
/// How long daemons get to exit after SIGTERM when Apache restarts or
/// stops, before SIGKILL (as long as Apache gives its own children).
const STOP_WAIT: Duration = Duration::from_secs(3);

/// This generation's daemons, as the parent knows them.
struct Supervisor {
    slots: Vec<ProcessSlot>,
    settings: GlobalSettings,
    socket_paths: Vec<String>,
}

/// One process of a group: its socket and what runs there.
struct ProcessSlot {
    /// The group's index in the registry.
    group: usize,
    listener: UnixListener,
    watch: ChildWatch,
    running: Option<Running>,
    /// Processes in a row that ended before they were ready.
    failures: u32,
    /// When the parent's periodic maintenance starts this slot's next
    /// process (after a failed fork, or while backing off).
    start_due: Option<Instant>,
}

struct Running {
    pid: Pid,
    /// The daemon writes a byte here once it serves (see `process::run`).
    ready: OwnedFd,
}

impl Running {
    fn was_ready(&self) -> bool {
        nix::unistd::read(&self.ready, &mut [0u8; 1]) == Ok(1)
    }
}

static SUPERVISOR: Mutex<Option<Supervisor>> = Mutex::new(None);

fn supervisor() -> MutexGuard<'static, Option<Supervisor>> {
    SUPERVISOR.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates every group's sockets and forks its daemons. Called from
/// post_config on each real start and restart (not the preflight pass).
pub fn start(pconf: Pool, main: Server) -> Result<(), String> {
    let defs: Vec<Arc<DaemonGroup>> = main.with_distinct_configs().flat_map(|s| s.config().daemon_groups.clone()).collect();
    if defs.is_empty() {
        group::publish(Vec::new());
        return Ok(());
    }
    let settings = main.config().global.clone();
    let (apache_uid, apache_gid) = os::apache_identity();
    let as_root = nix::unistd::geteuid().is_root();
    if !as_root {
        LogTarget::Server(main).write(
            Level::Notice,
            &format!("Apache runs as uid {apache_uid}, not root: daemon sockets belong to it, and daemon processes run as it (a group with another user= cannot start)"),
        );
    }
    let mut secrets = SecretPage::new(defs.len()).map_err(|e| format!("cannot set aside memory for the daemon groups' secrets: {e}"))?;
    let mut slots = Vec::new();
    let mut socket_paths = Vec::new();
    let mut identities = Vec::new();
    let made = (|| {
        for (index, def) in defs.iter().enumerate() {
            let spec = &def.spec;
            let identity = Identity::resolve(def, apache_uid, apache_gid)?;
            for slot in 0..spec.processes {
                let path = socket_path(&settings, pconf, index, slot, identity.uid);
                let listener = bind(&path, spec.listen_backlog, as_root.then_some((def.socket_owner(), apache_gid)))
                    .map_err(|e| format!("WSGIDaemonProcess {}: cannot listen on {path}: {e}", spec.name))?;
                socket_paths.push(path);
                slots.push(ProcessSlot { group: index, listener, watch: ChildWatch::new(pconf, slots.len(), on_death)?, running: None, failures: 0, start_due: None });
            }
            let secret = secrets.entry_mut(index);
            if settings.socket_rotation == Some(false) {
                lasting_secret(main, &spec.name, secret)?;
            } else {
                random_secret(secret)?;
            }
            identities.push(identity);
        }
        Ok::<(), String>(())
    })();
    if let Err(e) = made {
        remove_sockets(&socket_paths);
        return Err(e);
    }
    let mut paths = socket_paths.iter();
    let runtime = defs.iter().zip(identities).zip(secrets.share()).map(|((def, identity), secret)| {
        Arc::new(RuntimeGroup {
            def: def.clone(),
            socket_paths: paths.by_ref().take(def.spec.processes as usize).cloned().collect(),
            next_slot: AtomicUsize::new(0),
            stable_sockets: settings.socket_rotation == Some(false),
            secret,
            uid: identity.uid,
            gid: identity.gid,
            supplementary_gids: identity.supplementary_gids,
            user_name: identity.user_name,
            user_home: identity.user_home,
            preload: preload_scripts(main, &def.spec.name),
        })
    });
    group::publish(runtime.collect());

    let count = slots.len();
    *supervisor() = Some(Supervisor { slots, settings, socket_paths });
    pconf.on_cleanup(Box::new(stop_generation));
    let mut state = supervisor();
    for i in 0..count {
        launch(&mut state, i);
    }
    Ok(())
}

/// Who a group's processes run as.
struct Identity {
    uid: u32,
    gid: u32,
    supplementary_gids: Option<Vec<u32>>,
    user_name: String,
    user_home: Option<String>,
}

impl Identity {
    fn resolve(def: &DaemonGroup, apache_uid: u32, apache_gid: u32) -> Result<Identity, String> {
        let spec = &def.spec;
        let user = match &spec.user {
            Some(u) => lookup_user(u)?,
            None => nix::unistd::User::from_uid(Uid::from_raw(apache_uid)).ok().flatten().ok_or_else(|| format!("the user Apache's children run as (uid {apache_uid}) does not exist"))?,
        };
        let gid = match &spec.group {
            Some(g) => lookup_group(g)?.gid.as_raw(),
            None if spec.user.is_some() => user.gid.as_raw(),
            None => apache_gid,
        };
        let supplementary_gids = if spec.supplementary_groups.is_empty() {
            None
        } else {
            Some(spec.supplementary_groups.iter().map(|g| lookup_group(g).map(|g| g.gid.as_raw())).collect::<Result<Vec<_>, _>>()?)
        };
        Ok(Identity {
            uid: user.uid.as_raw(),
            gid,
            supplementary_gids,
            user_name: user.name.clone(),
            user_home: Some(user.dir.to_string_lossy().into_owned()).filter(|h| !h.is_empty()),
        })
    }
}

/// Creates a socket at `path` that only `owner` (Apache's children, or
/// `socket-user=`, when Apache runs as root) may use, without ever
/// following a link someone else could plant. The socket is made in a
/// fresh directory only we can enter, given mode 0700 and its owner there,
/// listens, and only then is renamed into place: a client never finds it
/// half set up, and a WSGISocketPrefix in a directory others can write to
/// gives them nothing to swap under us.
fn bind(path: &str, backlog: u32, owner: Option<(u32, u32)>) -> std::io::Result<UnixListener> {
    let target = Path::new(path);
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let staging = nix::unistd::mkdtemp(&dir.join(".wsgi-bind-XXXXXX"))?;
    let bound = bind_staged(&staging, target, backlog, owner);
    let _ = std::fs::remove_dir(&staging);
    bound
}

fn bind_staged(staging: &Path, target: &Path, backlog: u32, owner: Option<(u32, u32)>) -> std::io::Result<UnixListener> {
    // Held open, the directory cannot be swapped for another under us.
    let dir = nix::fcntl::open(staging, OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())?;
    let made = nix::sys::stat::fstat(&dir)?;
    if made.st_uid != nix::unistd::geteuid().as_raw() || made.st_mode & 0o077 != 0 {
        return Err(std::io::Error::other(format!("{} is not the private directory just made", staging.display())));
    }
    // Under the final name, which is what `ss -xl` shows for it.
    let name = target.file_name().ok_or_else(|| std::io::Error::other("no file name"))?;
    let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name));
    nix::sys::stat::umask(old);
    let listener = bound?;
    let placed = (|| -> nix::Result<()> {
        // Nothing but our socket can be in the directory.
        fchmodat(&dir, name, Mode::from_bits_truncate(0o700), FchmodatFlags::FollowSymlink)?;
        if let Some((uid, gid)) = owner {
            nix::unistd::fchownat(&dir, name, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
        }
        let backlog = nix::sys::socket::Backlog::new(backlog.min(i32::MAX as u32) as i32)?;
        nix::sys::socket::listen(&listener, backlog)?;
        nix::fcntl::renameat(&dir, name, AT_FDCWD, target)
    })();
    if let Err(e) = placed {
        let _ = nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        return Err(e.into());
    }
    Ok(listener)
}

fn socket_path(settings: &GlobalSettings, pconf: Pool, index: usize, slot: u32, uid: u32) -> String {
    let prefix = settings.socket_prefix.clone().unwrap_or_else(|| os::runtime_path(pconf, "wsgi"));
    let parent = std::process::id();
    if settings.socket_rotation == Some(false) {
        format!("{prefix}.{parent}.u{uid}.{index}.{slot}.sock")
    } else {
        format!("{prefix}.{parent}.{}.{index}.{slot}.sock", os::generation())
    }
}

fn remove_sockets(paths: &[String]) {
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
}

fn random_secret(out: &mut [u8; SECRET_LEN]) -> Result<(), String> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(out)).map_err(|e| format!("cannot read /dev/urandom: {e}"))
}

/// With `WSGISocketRotation Off` the socket outlives a graceful restart,
/// and so must the secret: Apache's old children still hold it. It is kept
/// on the process pool, which lives as long as Apache's parent.
fn lasting_secret(main: Server, group: &str, out: &mut [u8; SECRET_LEN]) -> Result<(), String> {
    let pool = main.process_pool();
    let key = lasting_secret_key(group);
    if !pool.copy_userdata_bytes(&key, out) {
        random_secret(out)?;
        pool.set_userdata_bytes(&key, out);
    }
    Ok(())
}

fn lasting_secret_key(group: &str) -> String {
    format!("mod_wsgi_rs.secret.{group}")
}

/// In a daemon process: wipes the copies of every group's secret kept for
/// `WSGISocketRotation Off` (the daemon's own is in its registry entry).
pub(super) fn wipe_lasting_secrets(main: Server) {
    let pool = main.process_pool();
    for g in group::all() {
        pool.wipe_userdata_bytes(&lasting_secret_key(g.name()));
    }
}

/// Scripts loaded when each daemon of `group_name` starts: its
/// `WSGIImportScript`s, and those named by `WSGIScriptAlias …
/// process-group=NAME application-group=…` with fixed values.
fn preload_scripts(main: Server, group_name: &str) -> Vec<ImportScript> {
    let mut scripts = crate::module_record::import_scripts(main, group_name);
    for server in main.with_distinct_configs() {
        for alias in &server.config().aliases {
            let named = matches!(&alias.options.process_group, Some(GroupSpec::Literal(n)) if n == group_name);
            let application_group = match &alias.options.application_group {
                Some(GroupSpec::Literal(name)) => name.clone(),
                Some(GroupSpec::Global) => String::new(),
                _ => continue,
            };
            let script = ImportScript { script: alias.target.clone(), process_group: group_name.to_string(), application_group };
            if named && matches!(alias.pattern, AliasPattern::Prefix(_)) && !scripts.contains(&script) {
                scripts.push(script);
            }
        }
    }
    scripts
}

impl Supervisor {
    /// Forks slot `i`'s next process. Returns, in the new process only, the
    /// end of the pipe on which it tells the parent it is ready.
    fn fork(&mut self, i: usize) -> Result<Option<OwnedFd>, String> {
        let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("cannot create a pipe: {e}"))?;
        let slot = &mut self.slots[i];
        match slot.watch.fork()? {
            Forked::Child => Ok(Some(ready_w)),
            Forked::Parent { pid } => {
                // Read only after the process is gone, never waited on.
                let _ = fcntl(&ready_r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
                slot.running = Some(Running { pid: Pid::from_raw(pid), ready: ready_r });
                slot.start_due = None;
                Ok(None)
            }
        }
    }
}

/// Starts slot `i`'s process. In the new process this never returns: it
/// becomes the daemon, and exits however it ends, even on a panic, so that
/// nothing unwinds back into the Apache code that called us.
fn launch(state: &mut Option<Supervisor>, i: usize) {
    let Some(sup) = state.as_mut() else { return };
    match sup.fork(i) {
        Ok(Some(ready)) => {
            let _ = catch_unwind(AssertUnwindSafe(|| become_daemon(state.take(), i, ready)));
            // The panic message is already in the error log (stderr).
            os::exit_now(EXIT_CRASHED)
        }
        Ok(None) => {}
        Err(e) => {
            let slot = &mut sup.slots[i];
            slot.start_due = Some(Instant::now());
            if let Some(g) = group::at(slot.group) {
                log(&g, Level::Err, &format!("cannot start a daemon process of group '{}': {e}; trying again at the next maintenance pass", g.name()));
            }
        }
    }
}

/// In the forked process: keeps its own socket, closes every other socket
/// and pipe the parent holds, and runs the daemon.
fn become_daemon(state: Option<Supervisor>, i: usize, ready: OwnedFd) -> ! {
    let Some(Supervisor { mut slots, settings, .. }) = state else { os::exit_now(EXIT_STARTUP_FAILED) };
    let own = slots.swap_remove(i);
    drop(slots);
    process::run(own.group, own.listener, ready, &settings)
}

/// The MPM found slot `i`'s process gone. A process that ended before it
/// was ready is replaced with back-off; any other (recycled, killed,
/// crashed while serving) is replaced at once.
fn on_death(i: usize, status: Option<i32>) {
    let mut state = supervisor();
    let Some(slot) = state.as_mut().and_then(|s| s.slots.get_mut(i)) else { return };
    let Some(ended) = slot.running.take() else { return };
    if os::mpm_stopping() {
        return;
    }
    let ready = ended.was_ready();
    slot.failures = if ready { 0 } else { slot.failures + 1 };
    let wait = back_off(slot.failures);
    if let Some(g) = group::at(slot.group) {
        let when = if wait.is_zero() { "now".to_string() } else { format!("in {}s", wait.as_secs()) };
        let level = if ready { Level::Info } else { Level::Err };
        log(&g, level, &format!("daemon process of group '{}' exited ({}); starting a new one {when}", g.name(), describe_end(status, ready)));
    }
    if wait.is_zero() {
        launch(&mut state, i);
    } else {
        slot.start_due = Some(Instant::now() + wait);
    }
}

/// The first failure in a row is retried at once (it may have been
/// passing); after that, FIRST_BACK_OFF doubling up to MAX_BACK_OFF.
fn back_off(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n => FIRST_BACK_OFF.saturating_mul(1 << (n - 2).min(16)).min(MAX_BACK_OFF),
    }
}

/// How a process ended, from APR's report (the exit code, or the signal
/// that ended it; the two cannot be told apart) and whether it got ready.
fn describe_end(status: Option<i32>, ready: bool) -> String {
    let Some(status) = status else { return "status unknown".to_string() };
    match status {
        EXIT_STARTUP_FAILED => format!("status {status}: it could not start"),
        EXIT_CRASHED => format!("status {status}: it ended itself after an internal error or deadlock-timeout"),
        _ if !ready => format!("status {status}, before it was ready"),
        _ => format!("status {status}"),
    }
}

/// Apache's periodic maintenance in the parent (about every 10 seconds):
/// starts the processes that were waiting out a back-off or a failed fork.
pub fn start_due_processes() {
    if os::mpm_stopping() {
        return;
    }
    let mut state = supervisor();
    let now = Instant::now();
    let due: Vec<usize> = state
        .as_ref()
        .map(|s| s.slots.iter().enumerate().filter(|(_, slot)| slot.running.is_none() && slot.start_due.is_some_and(|t| t <= now)).map(|(i, _)| i).collect())
        .unwrap_or_default();
    for i in due {
        launch(&mut state, i);
    }
}

/// pconf cleanup on restart and stop: SIGTERM to every daemon, SIGKILL to
/// those still there after STOP_WAIT, then the sockets go.
fn stop_generation() {
    let Some(sup) = supervisor().take() else { return };
    let mut left: Vec<Pid> = sup.slots.iter().filter_map(|s| s.running.as_ref().map(|r| r.pid)).filter(|&pid| still_running(pid)).collect();
    for &pid in &left {
        let _ = kill(pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + STOP_WAIT;
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        left.retain(|&pid| still_running(pid));
    }
    for &pid in &left {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
    remove_sockets(&sup.socket_paths);
}

/// Whether `pid`, a daemon the MPM has not reported dead, is still running;
/// reaps it if it has exited. A pid that is not our child (any more) is not
/// ours to signal.
fn still_running(pid: Pid) -> bool {
    matches!(waitpid(pid, Some(WaitPidFlag::WNOHANG)), Ok(WaitStatus::StillAlive))
}

/// In an Apache child (child_init): closes every daemon socket and pipe
/// inherited from the parent, so that code running in the child cannot
/// accept a group's connections.
pub fn forget_in_child() {
    drop(supervisor().take());
}

fn log(g: &RuntimeGroup, level: Level, msg: &str) {
    LogTarget::Server(g.def.server).write(level, msg);
}
