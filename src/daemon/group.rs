//! Process groups: what `WSGIDaemonProcess` defined, and what each Apache
//! generation made of it (socket, secret, identity). The registry is filled
//! in the parent before Apache forks its children and daemons, so both
//! inherit it.
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock};

use wsgi_core::daemon_options::DaemonSpec;
use wsgi_core::protocol::SECRET_LEN;

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
    pub secret: [u8; SECRET_LEN],
    pub uid: u32,
    pub gid: u32,
    /// None: initgroups for the user.
    pub supplementary_gids: Option<Vec<u32>>,
    pub user_name: String,
    pub user_home: Option<String>,
    /// Scripts to load at process start (`WSGIScriptAlias … process-group=
    /// application-group=`).
    pub preload: Vec<String>,
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

pub fn find(name: &str) -> Option<Arc<RuntimeGroup>> {
    REGISTRY.read().unwrap_or_else(|e| e.into_inner()).iter().find(|g| g.name() == name).cloned()
}

/// Keeps only `keep` (a daemon forgets other groups' secrets, so code in
/// one group cannot forge requests to another).
pub fn retain_only(keep: &str) {
    REGISTRY.write().unwrap_or_else(|e| e.into_inner()).retain(|g| g.name() == keep);
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
