//! Process groups: what `WSGIDaemonProcess` defined, and what each Apache
//! generation made of it (socket, secret, identity). The registry is filled
//! in the parent before Apache forks its children and daemons, so both
//! inherit it.
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock};

use nix::sys::socket::{setsockopt, sockopt};
use wsgi_core::daemon_options::{check_script_owner, path_in_chroot, DaemonSpec, Ownership, ScriptOwner};
use wsgi_core::directives::ImportScript;
use wsgi_core::protocol::RequestHead;

use super::identity::{find_user, lookup_group, lookup_user};
use crate::ffi::process as os;
use crate::ffi::secrets::Secret;
use crate::ffi::server::Server;

/// A `WSGIDaemonProcess` as configured.
pub struct DaemonGroup {
    pub spec: DaemonSpec,
    /// The server (main or virtual host) it was defined in.
    pub server: Server,
    /// `socket-user=`, as a uid.
    pub socket_uid: Option<u32>,
    /// `script-user=` or `script-group=`, as a uid or gid.
    pub script_owner_id: Option<u32>,
}

impl DaemonGroup {
    /// Checks what the options name against the system: the users and
    /// groups exist, and a `chroot=` directory does and can be entered.
    pub fn new(spec: DaemonSpec, server: Server) -> Result<DaemonGroup, String> {
        let name = spec.name.clone();
        let context = |e: String| format!("WSGIDaemonProcess {name}: {e}");
        if let Some(user) = &spec.user {
            lookup_user(user).map_err(context)?;
        }
        for group in spec.group.iter().chain(&spec.supplementary_groups) {
            lookup_group(group).map_err(context)?;
        }
        let socket_uid = spec.socket_user.as_deref().map(|u| find_user(u).map(|u| u.uid.as_raw())).transpose().map_err(context)?;
        let script_owner_id = match &spec.script_owner {
            Some(ScriptOwner::User(user)) => Some(find_user(user).map_err(context)?.uid.as_raw()),
            Some(ScriptOwner::Group(group)) => Some(lookup_group(group).map_err(context)?.gid.as_raw()),
            None => None,
        };
        if let Some(root) = &spec.chroot {
            check_chroot(root).map_err(|e| format!("WSGIDaemonProcess {name} option chroot={root}: {e}"))?;
        }
        Ok(DaemonGroup { spec, server, socket_uid, script_owner_id })
    }

    /// Only requests to the virtual host (ServerName) that defined a group
    /// may use it; a group defined outside any vhost serves them all.
    pub fn usable_from(&self, server: Server) -> bool {
        !self.server.is_virtual() || self.server.hostname() == server.hostname()
    }

    /// The user the group's sockets belong to, the only one (besides root)
    /// who may connect: `socket-user=`, else Apache's children's. Only an
    /// Apache running as root can give a socket away.
    pub fn socket_owner(&self) -> u32 {
        match self.socket_uid {
            Some(uid) if os::parent_is_root() => uid,
            _ => os::apache_identity().0,
        }
    }

    /// `script-user=`/`script-group=`: whether `script` (the file that will
    /// run) and the directory it is in belong to whom they must, and are
    /// writable by no one else. Err says why not.
    pub fn check_script_owner(&self, script: &str) -> Result<(), String> {
        let (Some(owner), Some(id)) = (&self.spec.script_owner, self.script_owner_id) else { return Ok(()) };
        let facts = |path: &Path| {
            std::fs::metadata(path).map(|m| Ownership { uid: m.uid(), gid: m.gid(), mode: m.mode() }).map_err(|e| format!("cannot stat {}: {e}", path.display()))
        };
        let path = Path::new(script);
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("/"));
        check_script_owner(owner, id, facts(path)?, facts(dir)?)
    }

    /// `chroot=`: the request's script and SCRIPT_FILENAME as the daemon,
    /// confined to the directory, sees them (Err when one is outside it),
    /// and DOCUMENT_ROOT too, or none when it is outside.
    pub fn confine(&self, head: &mut RequestHead) -> Result<(), String> {
        let Some(root) = self.spec.chroot.as_deref() else { return Ok(()) };
        let outside = |path: &str| format!("{path} is outside the chroot directory {root} of daemon process group '{}'", self.spec.name);
        head.script = path_in_chroot(root, &head.script).ok_or_else(|| outside(&head.script))?;
        let inside = |value: &[u8]| std::str::from_utf8(value).ok().and_then(|path| path_in_chroot(root, path));
        let mut confined = Vec::with_capacity(head.environ.len());
        for (key, value) in std::mem::take(&mut head.environ) {
            match key.as_str() {
                "SCRIPT_FILENAME" => {
                    let path = inside(&value).ok_or_else(|| outside(&String::from_utf8_lossy(&value)))?;
                    confined.push((key, path.into_bytes()));
                }
                "DOCUMENT_ROOT" => confined.extend(inside(&value).map(|path| (key, path.into_bytes()))),
                _ => confined.push((key, value)),
            }
        }
        head.environ = confined;
        Ok(())
    }

    /// What the group's options ask for that cannot be done here, one
    /// message each, for the start-up warnings.
    pub fn cannot_apply(&self) -> Vec<String> {
        let name = &self.spec.name;
        let mut messages = Vec::new();
        if self.spec.socket_user.is_some() && !os::parent_is_root() {
            messages.push(format!(
                "WSGIDaemonProcess {name} option socket-user= has no effect: Apache is not running as root, so its daemon sockets stay with the user it runs as"
            ));
        }
        for (option, size) in [("send-buffer-size", self.spec.send_buffer_size), ("receive-buffer-size", self.spec.receive_buffer_size)] {
            // Each sizes the sending end of one socket and the receiving end of the other.
            let Some(size) = size else { continue };
            let tightest = ["wmem_max", "rmem_max"].into_iter().filter_map(|sysctl| Some((sysctl, system_limit(sysctl)?))).min_by_key(|&(_, limit)| limit);
            if let Some((sysctl, limit)) = tightest.filter(|&(_, limit)| limit < size) {
                messages.push(format!(
                    "WSGIDaemonProcess {name} option {option}={size} is more than the system allows (net.core.{sysctl} = {limit}), so its sockets get {limit}; raise net.core.{sysctl} to use {size}"
                ));
            }
        }
        messages
    }
}

/// A `chroot=` directory must exist, and only root can enter one.
fn check_chroot(root: &str) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err(format!("needs Apache to be started as root (it runs as uid {}); remove the option or start Apache as root", nix::unistd::geteuid()));
    }
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err("not a directory".to_string()),
        Err(e) => Err(format!("cannot use it: {e}")),
    }
}

/// The largest socket buffer an unprivileged process may ask for.
fn system_limit(sysctl: &str) -> Option<usize> {
    std::fs::read_to_string(format!("/proc/sys/net/core/{sysctl}")).ok()?.trim().parse().ok()
}

/// Sizes one end of a connection between an Apache child and a daemon:
/// `outgoing` for the data it sends, `incoming` for the data it receives
/// (None: the system's). On Linux only the sending end's buffer bounds
/// what is in flight, so each direction is sized at both ends.
pub fn size_socket_buffers(socket: &impl AsFd, outgoing: Option<usize>, incoming: Option<usize>) {
    // The kernel caps a size rather than fail (start-up warns when it will).
    if let Some(size) = outgoing {
        let _ = setsockopt(socket, sockopt::SndBuf, &size);
    }
    if let Some(size) = incoming {
        let _ = setsockopt(socket, sockopt::RcvBuf, &size);
    }
}

/// A group as this generation runs it.
pub struct RuntimeGroup {
    pub def: Arc<DaemonGroup>,
    /// One socket per process slot (a respawned process takes over its slot).
    pub socket_paths: Vec<String>,
    /// Which slot an Apache child connects to next (round robin, offset by
    /// the child's pid so that children do not all start at slot 0).
    pub next_slot: AtomicUsize,
    /// `WSGISocketRotation Off`: the socket names survive restarts, so a
    /// missing socket is one about to be re-created.
    pub stable_sockets: bool,
    /// Apache's children hold every group's; a daemon only its own.
    pub secret: Secret,
    pub uid: u32,
    pub gid: u32,
    /// None: initgroups for the user.
    pub supplementary_gids: Option<Vec<u32>>,
    pub user_name: String,
    pub user_home: Option<String>,
    /// Scripts to load at process start (`WSGIImportScript`,
    /// `WSGIScriptAlias … process-group= application-group=`).
    pub preload: Vec<ImportScript>,
}

impl RuntimeGroup {
    pub fn name(&self) -> &str {
        &self.def.spec.name
    }
}

static REGISTRY: RwLock<Vec<Arc<RuntimeGroup>>> = RwLock::new(Vec::new());

pub fn publish(groups: Vec<Arc<RuntimeGroup>>) {
    *REGISTRY.write().unwrap_or_else(|e| e.into_inner()) = groups;
}

pub fn all() -> Vec<Arc<RuntimeGroup>> {
    REGISTRY.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The group at `index` in this generation's registry.
pub fn at(index: usize) -> Option<Arc<RuntimeGroup>> {
    REGISTRY.read().unwrap_or_else(|e| e.into_inner()).get(index).cloned()
}

pub fn find(name: &str) -> Option<Arc<RuntimeGroup>> {
    REGISTRY.read().unwrap_or_else(|e| e.into_inner()).iter().find(|g| g.name() == name).cloned()
}

/// In a daemon process: keeps only the group at `index`. The others are
/// dropped, which wipes their secrets, so code in one group cannot read
/// another's and forge requests to it. Fails if one of them is still
/// referenced elsewhere (its secret would survive).
pub fn keep_only(index: usize) -> Result<Arc<RuntimeGroup>, String> {
    let mut registry = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    if index >= registry.len() {
        return Err(format!("no daemon process group number {index}"));
    }
    let own = registry.swap_remove(index);
    for other in std::mem::replace(&mut *registry, vec![own.clone()]) {
        let name = other.name().to_string();
        if Arc::into_inner(other).is_none() {
            return Err(format!("internal error: group '{name}' is still referenced, so its secret cannot be wiped"));
        }
    }
    Ok(own)
}

/// Group names seen while parsing the current configuration, to reject a
/// second definition with the same name; cleared before each parse.
static DEFINED: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn begin_config() {
    DEFINED.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

pub fn is_defined(name: &str) -> bool {
    DEFINED.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|n| n == name)
}

pub fn claim_name(name: &str) -> Result<(), String> {
    let mut defined = DEFINED.lock().unwrap_or_else(|e| e.into_inner());
    if defined.iter().any(|n| n == name) {
        return Err(format!("WSGIDaemonProcess: a process group named '{name}' is already defined; names must be unique across the server"));
    }
    defined.push(name.to_string());
    Ok(())
}
