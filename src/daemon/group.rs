//! Process groups: what `WSGIDaemonProcess` defined, and what each Apache
//! generation made of it (socket, secret, identity). The registry is filled
//! in the parent before Apache forks its children and daemons, so both
//! inherit it.
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock};

use wsgi_core::daemon_options::DaemonSpec;
use wsgi_core::directives::ImportScript;

use crate::ffi::secrets::Secret;
use crate::ffi::server::Server;

/// A `WSGIDaemonProcess` as configured.
pub struct DaemonGroup {
    pub spec: DaemonSpec,
    /// The server (main or virtual host) it was defined in.
    pub server: Server,
}

impl DaemonGroup {
    /// Only requests to the virtual host (ServerName) that defined a group
    /// may use it; a group defined outside any vhost serves them all.
    pub fn usable_from(&self, server: Server) -> bool {
        !self.server.is_virtual() || self.server.hostname() == server.hostname()
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
