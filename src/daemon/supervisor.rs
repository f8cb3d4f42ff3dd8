//! The Apache parent's side of daemon mode: for each group, a listening
//! socket only Apache's children can use, and `processes` daemons forked
//! from the parent, replaced when they die and stopped with Apache.
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wsgi_core::directives::GroupSpec;
use wsgi_core::protocol::SECRET_LEN;

use super::group::{self, DaemonGroup, RuntimeGroup};
use super::identity::{lookup_group, lookup_user};
use super::process::{self, EXIT_STARTUP_FAILED};
use crate::config::{AliasPattern, GlobalSettings};
use crate::ffi::log::{Level, LogTarget};
use crate::ffi::pool::Pool;
use crate::ffi::process::{self as os, ChildEvent, Forked};
use crate::ffi::server::Server;

/// The longest a dying-at-start daemon makes its replacement wait.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(20);

/// Creates every group's socket and forks its daemons. Called from
/// post_config on each real start and restart (not the preflight pass).
pub fn start(pconf: Pool, main: Server) -> Result<(), String> {
    let defs: Vec<Arc<DaemonGroup>> = main.with_virtual_hosts().flat_map(|s| s.config().daemon_groups.clone()).collect();
    if defs.is_empty() {
        group::publish(Vec::new());
        return Ok(());
    }
    let global = main.config().global.clone();
    let prefix = global.socket_prefix.clone().unwrap_or_else(|| os::runtime_path(pconf, "wsgi"));
    let rotation = global.socket_rotation != Some(false);
    let (apache_uid, apache_gid, _) = os::apache_identity();
    let generation = os::generation();
    let parent = std::process::id();

    let mut runtime = Vec::new();
    let mut listeners = Vec::new();
    for (index, def) in defs.iter().enumerate() {
        let spec = &def.spec;
        let user = match &spec.user {
            Some(u) => lookup_user(u)?,
            None => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(apache_uid)).ok().flatten().ok_or("Apache's User does not exist")?,
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
        // One socket per process slot: Apache's children spread new
        // connections over the slots, which balances the processes even
        // though each child keeps its connections.
        let mut socket_paths = Vec::new();
        let mut slot_listeners = Vec::new();
        for slot in 0..spec.processes {
            let path = if rotation {
                format!("{prefix}.{parent}.{generation}.{index}.{slot}.sock")
            } else {
                format!("{prefix}.{parent}.u{}.{index}.{slot}.sock", user.uid)
            };
            let listener = bind(&path, spec.listen_backlog, apache_uid, apache_gid).map_err(|e| format!("WSGIDaemonProcess {}: cannot listen on {path}: {e}", spec.name))?;
            socket_paths.push(path);
            slot_listeners.push(Arc::new(listener));
        }
        listeners.push(slot_listeners);
        runtime.push(Arc::new(RuntimeGroup {
            def: def.clone(),
            socket_paths,
            next_slot: AtomicUsize::new(0),
            stable_sockets: !rotation,
            secret: if rotation { random_secret()? } else { lasting_secret(main, &spec.name)? },
            uid: user.uid.as_raw(),
            gid,
            supplementary_gids,
            user_name: user.name.clone(),
            user_home: Some(user.dir.to_string_lossy().into_owned()).filter(|h| !h.is_empty()),
            preload: preload_scripts(main, &spec.name),
        }));
    }
    group::publish(runtime.clone());

    let paths: Vec<String> = runtime.iter().flat_map(|g| g.socket_paths.clone()).collect();
    pconf.on_cleanup(Box::new(move || {
        for path in &paths {
            let _ = std::fs::remove_file(path);
        }
    }));
    for (g, slots) in runtime.into_iter().zip(listeners) {
        for listener in slots {
            spawn(pconf, g.clone(), listener, global.clone(), Duration::ZERO)?;
        }
    }
    Ok(())
}

/// Binds with a private umask, then hands the socket to Apache's user:
/// mode 0700, so no other local user can connect.
/// The socket is made ready under a temporary name and then renamed into
/// place, so a client never finds it half set up (root's, or not listening).
fn bind(path: &str, backlog: u32, uid: u32, gid: u32) -> std::io::Result<UnixListener> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let staging = format!("{path}.new");
    let _ = std::fs::remove_file(&staging);
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(&staging);
    nix::sys::stat::umask(old);
    let listener = bound?;
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o700))?;
    std::os::unix::fs::chown(&staging, Some(uid), Some(gid))?;
    let backlog = nix::sys::socket::Backlog::new(backlog.min(i32::MAX as u32) as i32).map_err(std::io::Error::from)?;
    nix::sys::socket::listen(&listener, backlog).map_err(std::io::Error::from)?;
    std::fs::rename(&staging, path)?;
    Ok(listener)
}

fn random_secret() -> Result<[u8; SECRET_LEN], String> {
    use std::io::Read;
    let mut secret = [0u8; SECRET_LEN];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut secret)).map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(secret)
}

/// With `WSGISocketRotation Off` the socket outlives a graceful restart,
/// and so must the secret: Apache's old children still hold it. It is kept
/// on the process pool, which lives as long as Apache's parent.
fn lasting_secret(main: Server, group: &str) -> Result<[u8; SECRET_LEN], String> {
    let pool = main.process_pool();
    let key = format!("mod_wsgi_rs.secret.{group}");
    if let Some(secret) = pool.userdata_bytes(&key) {
        if let Ok(secret) = <[u8; SECRET_LEN]>::try_from(secret) {
            return Ok(secret);
        }
    }
    let secret = random_secret()?;
    pool.set_userdata_bytes(&key, &secret);
    Ok(secret)
}

/// Scripts loaded when each daemon of `group_name` starts: its
/// `WSGIImportScript`s, and those named by `WSGIScriptAlias …
/// process-group=NAME application-group=…` with fixed values.
fn preload_scripts(main: Server, group_name: &str) -> Vec<String> {
    let mut scripts = crate::module_record::import_scripts(main, group_name);
    for server in main.with_virtual_hosts() {
        for alias in &server.config().aliases {
            let named = matches!(&alias.options.process_group, Some(GroupSpec::Literal(n)) if n == group_name);
            let fixed_app = matches!(&alias.options.application_group, Some(GroupSpec::Literal(_) | GroupSpec::Global));
            if named && fixed_app && matches!(alias.pattern, AliasPattern::Prefix(_)) && !scripts.contains(&alias.target) {
                scripts.push(alias.target.clone());
            }
        }
    }
    scripts
}

fn spawn(pconf: Pool, g: Arc<RuntimeGroup>, listener: Arc<UnixListener>, global: GlobalSettings, delay: Duration) -> Result<(), String> {
    let own = listener.try_clone().map_err(|e| format!("cannot share the daemon socket: {e}"))?;
    // When it is done waiting out `delay` and starts for real.
    let started = Instant::now() + delay;
    let (gc, lc, sc) = (g.clone(), listener.clone(), global.clone());
    let on_event = Box::new(move |event: ChildEvent| {
        let ChildEvent::Died { status } = event else { return };
        if os::mpm_stopping() {
            return;
        }
        // A daemon that dies at start would otherwise be restarted in a
        // tight loop: wait longer each time, up to MAX_RESTART_DELAY.
        let failed_at_start = status == EXIT_STARTUP_FAILED || Instant::now().saturating_duration_since(started) < Duration::from_secs(2);
        let next = if failed_at_start { (delay * 2).max(Duration::from_secs(1)).min(MAX_RESTART_DELAY) } else { Duration::ZERO };
        // APR reports the exit status, or the signal that killed it.
        let why = if status == EXIT_STARTUP_FAILED { format!("status {status}: it could not start") } else { format!("status {status}") };
        let when = if next.is_zero() { "now".to_string() } else { format!("in {}s", next.as_secs()) };
        LogTarget::Server(gc.def.server).write(Level::Info, &format!("daemon process of group '{}' exited ({why}); starting a new one {when}", gc.name()));
        if let Err(e) = spawn(pconf, gc.clone(), lc.clone(), sc.clone(), next) {
            LogTarget::Server(gc.def.server).write(Level::Err, &e);
        }
    });
    match os::fork_supervised(pconf, on_event)? {
        Forked::Child => process::run(g, own, &global, delay),
        Forked::Parent { .. } => Ok(()),
    }
}
