//! Process management through APR, as Apache's own modules do it: forking
//! daemons from the parent, having the MPM tell us when one dies, and the
//! facts about the identity Apache's children run as.
use std::ffi::{c_void, CString};

use super::guard::guard;
use super::pool::Pool;
use super::{cstr_string, sys};

/// Why the MPM called a daemon's maintenance callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEvent {
    /// The process exited (or was lost track of); `status` is its wait status.
    Died { status: i32 },
    /// Apache is restarting or stopping; the registration is going away.
    Unregistered,
    /// Anything else (health checks); nothing to do.
    Other,
}

/// Where a forked process is.
pub enum Forked {
    Parent { pid: i32 },
    Child,
}

/// Forks. In the parent, `on_event` is registered with the MPM for the new
/// process (called from the parent's main loop) and the process is killed
/// when `pool` is cleared (restart or stop): SIGTERM, then SIGKILL after 3 s.
pub fn fork_supervised(pool: Pool, on_event: Box<dyn FnMut(ChildEvent)>) -> Result<Forked, String> {
    // SAFETY: the apr_proc_t lives in the pool for as long as the
    // registrations that point at it.
    unsafe {
        let proc_ = {
            let p = sys::apr_palloc(pool.0, std::mem::size_of::<sys::apr_proc_t>()) as *mut sys::apr_proc_t;
            std::ptr::write_bytes(p, 0, 1);
            p
        };
        match sys::apr_proc_fork(proc_, pool.0) as i32 {
            sys::APR_INCHILD => Ok(Forked::Child),
            sys::APR_INPARENT => {
                sys::apr_pool_note_subprocess(pool.0, proc_, sys::apr_kill_conditions_e_APR_KILL_AFTER_TIMEOUT);
                let callback = pool.alloc(on_event);
                sys::apr_proc_other_child_register(proc_, Some(maintenance), callback as *mut c_void, std::ptr::null_mut(), pool.0);
                Ok(Forked::Parent { pid: (*proc_).pid })
            }
            rv => Err(format!("fork failed (APR status {rv})")),
        }
    }
}

unsafe extern "C" fn maintenance(reason: i32, data: *mut c_void, status: i32) {
    guard("daemon maintenance", (), || {
        let event = match reason {
            sys::APR_OC_REASON_DEATH | sys::APR_OC_REASON_LOST => {
                // SAFETY: data is the registration key; a dead process's
                // registration is removed so it is not reported twice.
                unsafe { sys::apr_proc_other_child_unregister(data) };
                ChildEvent::Died { status }
            }
            sys::APR_OC_REASON_UNREGISTER | sys::APR_OC_REASON_RESTART => ChildEvent::Unregistered,
            _ => ChildEvent::Other,
        };
        // SAFETY: data is the Box<dyn FnMut> allocated in the pool by
        // fork_supervised; the MPM calls us from its single main thread.
        let callback = unsafe { &mut *(data as *mut Box<dyn FnMut(ChildEvent)>) };
        callback(event);
    })
}

/// True once the MPM has started stopping or restarting.
pub fn mpm_stopping() -> bool {
    super::server::mpm_query(sys::AP_MPMQ_MPM_STATE).is_some_and(|s| s == sys::AP_MPMQ_STOPPING)
}

/// The generation Apache is on (bumped by each restart).
pub fn generation() -> i32 {
    super::server::mpm_query(sys::AP_MPMQ_GENERATION).unwrap_or(0)
}

/// The user and group Apache's children run as (`User`, `Group`).
pub fn apache_identity() -> (u32, u32, String) {
    // SAFETY: ap_unixd_config is filled in while parsing User/Group.
    unsafe {
        let cfg = &*std::ptr::addr_of!(sys::ap_unixd_config);
        (cfg.user_id, cfg.group_id, cstr_string(cfg.user_name).unwrap_or_default())
    }
}

/// Closes Apache's listening sockets in a process that must not accept
/// HTTP connections (a daemon).
pub fn close_listeners() {
    // SAFETY: closes the listener fds in this process only.
    unsafe { sys::ap_close_listeners() }
}

/// A path relative to `DefaultRuntimeDir` (for `name` relative), as Apache
/// resolves it.
pub fn runtime_path(pool: Pool, name: &str) -> String {
    let c = CString::new(name).unwrap_or_default();
    // SAFETY: returns a pool string or NULL.
    unsafe { cstr_string(sys::ap_runtime_dir_relative(pool.0, c.as_ptr())) }.unwrap_or_else(|| name.to_string())
}

/// A path relative to `ServerRoot`.
pub fn server_root_path(pool: Pool, name: &str) -> String {
    let c = CString::new(name).unwrap_or_default();
    // SAFETY: returns a pool string or NULL.
    unsafe { cstr_string(sys::ap_server_root_relative(pool.0, c.as_ptr())) }.unwrap_or_else(|| name.to_string())
}

/// Rewrites this process's command line as `ps` shows it, within the
/// space the original arguments occupied (their length is what the kernel
/// reports in /proc/self/cmdline; Apache may have rewritten argv itself).
pub fn set_process_title(server: super::server::Server, title: &str) {
    let room = std::fs::read("/proc/self/cmdline").map(|c| c.len()).unwrap_or(0);
    // SAFETY: process->argv[0] is the first of the original argument
    // strings, which occupy `room` contiguous bytes; we write only there.
    unsafe {
        let process = (*server.0).process;
        let argv = (*process).argv;
        if room > 1 && !argv.is_null() && !(*argv).is_null() {
            let start = *argv as *mut u8;
            let n = title.len().min(room - 1);
            std::ptr::write_bytes(start, 0, room);
            std::ptr::copy_nonoverlapping(title.as_ptr(), start, n);
        }
    }
    let short: String = title.chars().take(15).collect();
    let _ = nix::sys::prctl::set_name(&CString::new(short).unwrap_or_default());
}

/// Leaves a forked process at once, without the atexit handlers and pool
/// cleanups it inherited from Apache's parent, which are not its own.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Writes to a closed socket must fail with EPIPE, not kill the process.
pub fn ignore_sigpipe() -> nix::Result<()> {
    // SAFETY: SIG_IGN installs no handler code.
    unsafe { nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn) }.map(|_| ())
}

/// Caps glibc's per-thread malloc arenas. A daemon's worker threads each
/// touch large, short-lived buffers (bodies, bytes objects); with an arena
/// per thread the freed memory stays spread over many heaps and resident.
pub fn limit_malloc_arenas(arenas: i32) {
    // SAFETY: mallopt only adjusts allocator tuning; called before threads start.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
}
