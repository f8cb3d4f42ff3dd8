//! Process management through APR, as Apache's own modules do it: forking
//! daemons from the parent, having the MPM tell us when one dies, and the
//! facts about the identity Apache's children run as.
use std::ffi::{c_void, CString};

use nix::sys::signal::{pthread_sigmask, sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

use super::guard::guard;
use super::pool::Pool;
use super::{cstr_string, sys};

/// Where a forked process is.
pub enum Forked {
    Parent { pid: i32 },
    Child,
}

/// Called in the parent when the process a [`ChildWatch`] forked is gone,
/// with the watch's slot number and how it ended: the exit code, or the
/// number of the signal that ended it (APR reports both as one number), or
/// `None` when Apache reaped it while restarting or stopping, or lost it.
pub type OnDeath = fn(slot: usize, status: Option<i32>);

/// A process slot's tie to the MPM, made once per slot and generation: the
/// `apr_proc_t` every process of the slot is forked into, and the
/// other-child registration through which the MPM's main loop reports that
/// process's death. The registration lives in a pool of its own, cleared
/// once the process it watched is gone, so replacing a slot's process any
/// number of times allocates nothing that stays in Apache's parent.
#[derive(Clone, Copy)]
pub struct ChildWatch(*mut Watched);

struct Watched {
    proc_: sys::apr_proc_t,
    /// Holds the registration; cleared after each death.
    pool: *mut sys::apr_pool_t,
    slot: usize,
    on_death: OnDeath,
}

// SAFETY: a ChildWatch is used only on the parent's single main thread (in
// post_config and the MPM's callbacks); processes that inherit one drop it
// without using it.
unsafe impl Send for ChildWatch {}

impl ChildWatch {
    /// Lives until `pconf` is cleared, which also drops its registration.
    pub fn new(pconf: Pool, slot: usize, on_death: OnDeath) -> Result<ChildWatch, String> {
        // SAFETY: a subpool of the live pconf, destroyed with it.
        let pool = unsafe { sys::mrs_pool_create(pconf.0) };
        if pool.is_null() {
            return Err("cannot create a pool for a daemon process slot".to_string());
        }
        // SAFETY: apr_proc_t is plain data, valid when zeroed.
        let proc_ = unsafe { std::mem::zeroed() };
        Ok(ChildWatch(pconf.alloc(Watched { proc_, pool, slot, on_death })))
    }

    /// Forks, with every signal blocked across the fork. The child starts
    /// with the default disposition for every signal and nothing blocked,
    /// so none of the Apache parent's handlers ever runs in it. In the
    /// parent the MPM reports the new process's death to the watch's
    /// `on_death`.
    pub fn fork(self) -> Result<Forked, String> {
        let mut previous = SigSet::empty();
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut previous));
        // SAFETY: the Watched lives in pconf for as long as its registration
        // (which the subpool's cleanup removes before pconf's cleanups run).
        let forked = unsafe {
            let w = self.0;
            match sys::apr_proc_fork(&mut (*w).proc_, (*w).pool) as i32 {
                sys::APR_INCHILD => Ok(Forked::Child),
                sys::APR_INPARENT => {
                    sys::apr_proc_other_child_register(&mut (*w).proc_, Some(maintenance), w as *mut c_void, std::ptr::null_mut(), (*w).pool);
                    Ok(Forked::Parent { pid: (*w).proc_.pid })
                }
                rv => Err(format!("fork failed: {}", std::io::Error::from_raw_os_error(rv))),
            }
        };
        if let Ok(Forked::Child) = forked {
            reset_signal_dispositions();
            previous = SigSet::empty();
        }
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
        forked
    }
}

fn reset_signal_dispositions() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: the default disposition runs no code of ours or Apache's.
        let _ = unsafe { sigaction(signal, &default) };
    }
}

unsafe extern "C" fn maintenance(reason: i32, data: *mut c_void, status: i32) {
    guard("daemon maintenance", (), || {
        if reason != sys::APR_OC_REASON_DEATH && reason != sys::APR_OC_REASON_LOST {
            return;
        }
        let w = data as *mut Watched;
        // SAFETY: data is the Watched registered in fork (valid until pconf
        // is cleared). APR has stopped watching the process: remove the
        // registration (it would otherwise point at nothing) and free it.
        let (slot, on_death) = unsafe {
            sys::apr_proc_other_child_unregister(data);
            sys::apr_pool_clear((*w).pool);
            ((*w).slot, (*w).on_death)
        };
        // While restarting or stopping, Apache reaps with its own waitpid
        // and passes on the raw wait status; only the main loop's report is
        // an exit code or signal number.
        let reported = reason == sys::APR_OC_REASON_DEATH && !mpm_stopping();
        on_death(slot, reported.then_some(status));
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

/// Whether Apache's parent runs as root, noted in the parent (see
/// `note_parent_identity`) so that processes forked from it, which may have
/// switched users since, still know.
static PARENT_IS_ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Notes who Apache's parent runs as; called in the parent before it forks.
pub fn note_parent_identity() {
    PARENT_IS_ROOT.get_or_init(|| nix::unistd::geteuid().is_root());
}

/// Whether Apache's parent runs as root (see `note_parent_identity`).
pub fn parent_is_root() -> bool {
    *PARENT_IS_ROOT.get_or_init(|| nix::unistd::geteuid().is_root())
}

/// The user and group Apache's children run as: `User` and `Group` when
/// Apache was started as root, else the identity it was started with (a
/// non-root Apache cannot switch, and ignores `User` and `Group`).
pub fn apache_identity() -> (u32, u32) {
    if !parent_is_root() {
        return (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    }
    // SAFETY: ap_unixd_config is filled in while parsing User/Group.
    unsafe {
        let cfg = &*std::ptr::addr_of!(sys::ap_unixd_config);
        (cfg.user_id, cfg.group_id)
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

/// The space the original arguments occupy, which a process title may
/// use: their length as the kernel reports it in /proc/self/cmdline (Apache
/// may have rewritten argv itself). Read before a chroot hides /proc.
pub fn process_title_room() -> usize {
    std::fs::read("/proc/self/cmdline").map(|c| c.len()).unwrap_or(0)
}

/// Rewrites this process's command line as `ps` shows it, within `room`
/// (see `process_title_room`).
pub fn set_process_title(server: super::server::Server, title: &str, room: usize) {
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

/// Sets `signal` to be ignored.
pub fn ignore_signal(signal: Signal) -> nix::Result<()> {
    // SAFETY: SIG_IGN installs no handler code.
    unsafe { nix::sys::signal::signal(signal, SigHandler::SigIgn) }.map(|_| ())
}

/// Caps glibc's per-thread malloc arenas. A daemon's worker threads each
/// touch large, short-lived buffers (bodies, bytes objects); with an arena
/// per thread the freed memory stays spread over many heaps and resident.
pub fn limit_malloc_arenas(arenas: i32) {
    // SAFETY: mallopt only adjusts allocator tuning; called before threads start.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
}

/// Sets this thread's nice value, which the threads it starts inherit (on
/// Linux the value is per thread, so call this before starting any).
pub fn set_nice(nice: i32) -> std::io::Result<()> {
    // SAFETY: setpriority only changes the scheduling of the calling thread.
    let rv = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if rv == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
