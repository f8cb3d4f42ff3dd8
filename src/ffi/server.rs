//! Server-wide facts: our per-server config, the MPM, the banner, and the
//! state of Apache's startup.
use std::ffi::CString;

use super::{cstr_string, sys};
use crate::config::ServerConfig;

/// # Safety
/// `s` must be a live server_rec whose module config holds our ServerConfig.
pub(crate) unsafe fn server_config_ptr(s: *const sys::server_rec) -> *mut ServerConfig {
    sys::mrs_get_module_config((*s).module_config, crate::module_record::module_ptr()) as *mut ServerConfig
}

/// A non-owning handle to a server_rec (the main server or a virtual host).
#[derive(Clone, Copy)]
pub struct Server(pub(crate) *mut sys::server_rec);

// SAFETY: server_recs are created at configuration time and read-only
// afterwards; reading them from any thread is what Apache's modules do.
unsafe impl Send for Server {}
unsafe impl Sync for Server {}

impl Server {
    pub fn config(&self) -> &ServerConfig {
        // SAFETY: see server_config_ptr; config is immutable after startup.
        unsafe { &*server_config_ptr(self.0) }
    }

    pub fn raw(&self) -> *const sys::server_rec {
        self.0
    }

    /// The process pool (lives until the process exits).
    pub fn process_pool(&self) -> super::pool::Pool {
        // SAFETY: s->process is set for every server_rec.
        super::pool::Pool(unsafe { (*(*self.0).process).pool })
    }

    /// This server and every virtual host after it.
    pub fn with_virtual_hosts(self) -> impl Iterator<Item = Server> {
        std::iter::successors(Some(self), |s| {
            // SAFETY: the server list is built at configuration time.
            let next = unsafe { (*s.0).next };
            (!next.is_null()).then_some(Server(next))
        })
    }

    /// This server and every virtual host after it with a configuration
    /// of its own: a virtual host without any of our directives shares the
    /// main server's, whose daemon groups and scripts count once.
    pub fn with_distinct_configs(self) -> impl Iterator<Item = Server> {
        let mut seen: Vec<*const ServerConfig> = Vec::new();
        self.with_virtual_hosts().filter(move |s| {
            let config: *const ServerConfig = s.config();
            let first = !seen.contains(&config);
            seen.push(config);
            first
        })
    }

    pub fn is_virtual(&self) -> bool {
        // SAFETY: a field set at configuration time.
        unsafe { (*self.0).is_virtual != 0 }
    }

    pub fn hostname(&self) -> String {
        // SAFETY: a NUL-terminated string in the config pool, or NULL.
        unsafe { cstr_string((*self.0).server_hostname) }.unwrap_or_default()
    }
}

/// `ap_mpm_query`, or `None` when the MPM does not answer.
pub fn mpm_query(code: i32) -> Option<i32> {
    let mut value = 0;
    // SAFETY: the out-pointer is valid.
    let status = unsafe { sys::ap_mpm_query(code, &mut value) };
    (status == 0).then_some(value)
}

pub fn mpm_name() -> String {
    // SAFETY: returns a static string.
    unsafe { cstr_string(sys::ap_show_mpm()) }.unwrap_or_default()
}

pub fn add_version_component(pool: super::pool::Pool, component: &str) {
    let c = CString::new(component).expect("no NUL in version");
    // SAFETY: Apache copies the component into pconf.
    unsafe { sys::ap_add_version_component(pool.0, c.as_ptr()) }
}

pub fn server_banner() -> String {
    // SAFETY: returns a string owned by Apache for the generation.
    unsafe { cstr_string(sys::ap_get_server_banner()) }.unwrap_or_default()
}

pub fn server_description() -> String {
    // SAFETY: as server_banner.
    unsafe { cstr_string(sys::ap_get_server_description()) }.unwrap_or_default()
}

/// True during the first of Apache's two start-up passes, which only
/// checks the configuration; the server runs with the second.
pub fn is_preflight_pass() -> bool {
    // SAFETY: a plain query of Apache's state.
    unsafe { sys::ap_state_query(sys::AP_SQ_MAIN_STATE) == sys::AP_SQ_MS_CREATE_PRE_CONFIG }
}

/// The version of the httpd we were loaded into, from its own banner
/// ("Apache/2.4.71 (Debian)" → (2, 4, 71)).
pub fn apache_version() -> (u32, u32, u32) {
    let mut v = sys::ap_version_t { major: 0, minor: 0, patch: 0, add_string: std::ptr::null() };
    // SAFETY: fills the struct.
    unsafe { sys::ap_get_server_revision(&mut v) };
    (v.major as u32, v.minor as u32, v.patch as u32)
}

/// The server's `Timeout`.
pub fn request_timeout(server: Server) -> std::time::Duration {
    // SAFETY: a field set at configuration time.
    let us = unsafe { (*server.0).timeout };
    std::time::Duration::from_micros(us.max(0) as u64)
}
