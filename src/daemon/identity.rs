//! Who a daemon process is: the group's user and groups, taken on
//! fail-closed, and the process settings that come with them (umask, limits,
//! working directory, environment).
use std::collections::BTreeSet;
use std::ffi::CString;

use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{Gid, Group, Uid, User};

use super::group::RuntimeGroup;
use crate::ffi::log::Level;

/// `name` or `#uid`, to run a daemon as: never root.
pub fn lookup_user(spec: &str) -> Result<User, String> {
    let user = find_user(spec)?;
    if user.uid.is_root() {
        return Err(format!("user '{spec}' is root; daemon processes are blocked from running as root"));
    }
    Ok(user)
}

/// `name` or `#uid`.
pub fn find_user(spec: &str) -> Result<User, String> {
    let found = match spec.strip_prefix('#') {
        Some(id) => User::from_uid(Uid::from_raw(id.parse().map_err(|_| format!("'{spec}' is not a valid #uid"))?)),
        None => User::from_name(spec),
    };
    found.ok().flatten().ok_or_else(|| format!("user '{spec}' does not exist"))
}

/// `name` or `#gid`.
pub fn lookup_group(spec: &str) -> Result<Group, String> {
    let found = match spec.strip_prefix('#') {
        Some(id) => Group::from_gid(Gid::from_raw(id.parse().map_err(|_| format!("'{spec}' is not a valid #gid"))?)),
        None => Group::from_name(spec),
    };
    found.ok().flatten().ok_or_else(|| format!("group '{spec}' does not exist"))
}

/// Becomes the group's user, fail-closed: any failed step ends the process
/// before it can serve anything. Apache started as root switches (entering
/// the group's `chroot=` first); one that is not root cannot, and its
/// daemons run as itself. Either way the process must end up exactly as
/// the group asks (real, effective and saved ids, and the supplementary
/// groups), or it does not start.
pub(super) fn take_identity(g: &RuntimeGroup) -> Result<(), String> {
    let as_root = Uid::effective().is_root();
    // Read before a chroot hides the group database. A non-root Apache
    // keeps the groups it was started with, unless the group names them.
    let wanted = match &g.supplementary_gids {
        Some(gids) => Some(expected_groups(g, gids)),
        None if as_root => Some(nix::unistd::getgrouplist(&user_cstr(g)?, Gid::from_raw(g.gid)).map_err(|e| format!("getgrouplist({}) failed: {e}", g.user_name))?),
        None => None,
    };
    if as_root {
        if let Some(root) = &g.def.spec.chroot {
            nix::unistd::chroot(root.as_str()).map_err(|e| format!("chroot({root}) failed: {e}"))?;
            std::env::set_current_dir("/").map_err(|e| format!("cannot change to / in {root}: {e}"))?;
        }
        nix::unistd::setgid(Gid::from_raw(g.gid)).map_err(|e| format!("setgid({}) failed: {e}", g.gid))?;
        if let Some(groups) = &wanted {
            nix::unistd::setgroups(groups).map_err(|e| format!("setgroups failed: {e}"))?;
        }
        nix::unistd::setuid(Uid::from_raw(g.uid)).map_err(|e| format!("setuid({}) failed: {e}", g.uid))?;
    }
    let uids = nix::unistd::getresuid().map_err(|e| format!("getresuid failed: {e}"))?;
    let gids = nix::unistd::getresgid().map_err(|e| format!("getresgid failed: {e}"))?;
    let runs_as = |who: &str, option: &str, ids: [u32; 3], want: u32| -> Result<(), String> {
        if ids.iter().all(|&id| id == want) {
            Ok(())
        } else if !as_root {
            Err(format!("Apache is not running as root (it runs as {who} {}), so its daemons cannot run as {who} {want}; drop {option} or start Apache as root", ids[1]))
        } else {
            Err(format!("identity did not change as requested: the real, effective and saved {who}s are {ids:?}, not {want}"))
        }
    };
    runs_as("uid", "user=", [uids.real, uids.effective, uids.saved].map(Uid::as_raw), g.uid)?;
    runs_as("gid", "group=", [gids.real, gids.effective, gids.saved].map(Gid::as_raw), g.gid)?;
    let Some(wanted) = wanted else { return Ok(()) };
    let have = nix::unistd::getgroups().map_err(|e| format!("getgroups failed: {e}"))?;
    if same_groups(&have, &wanted, Gid::from_raw(g.gid)) {
        Ok(())
    } else {
        Err(format!("supplementary groups are {:?}, not {:?}", raw(&have), raw(&wanted)))
    }
}

fn user_cstr(g: &RuntimeGroup) -> Result<CString, String> {
    CString::new(g.user_name.as_str()).map_err(|_| "user name has a NUL".to_string())
}

/// The primary group first, then `supplementary-groups=`.
fn expected_groups(g: &RuntimeGroup, gids: &[u32]) -> Vec<Gid> {
    std::iter::once(g.gid).chain(gids.iter().copied()).map(Gid::from_raw).collect()
}

/// The same set, counting the primary group as a member of both (the
/// kernel's list need not repeat it).
fn same_groups(have: &[Gid], wanted: &[Gid], primary: Gid) -> bool {
    let set = |list: &[Gid]| list.iter().chain(std::iter::once(&primary)).map(|g| g.as_raw()).collect::<BTreeSet<_>>();
    set(have) == set(wanted)
}

fn raw(list: &[Gid]) -> Vec<u32> {
    list.iter().map(|g| g.as_raw()).collect()
}

/// `cpu-priority=`: set while the process may still lower its nice value
/// (as root) and before it starts any thread, which inherit it. A failure
/// is a warning: the process runs at Apache's priority.
pub(super) fn apply_priority(g: &RuntimeGroup) {
    let nice = g.def.spec.cpu_priority;
    if nice != 0 {
        if let Err(e) = crate::ffi::process::set_nice(nice) {
            warn(g, &format!("cannot set cpu-priority={nice} ({e}); it runs at the priority Apache has"));
        }
    }
}

fn warn(g: &RuntimeGroup, what: &str) {
    super::process::log(g.def.server, Level::Warning, &format!("daemon process {} of group '{}': {what}", std::process::id(), g.name()));
}

/// Limits, working directory and environment from the group's options.
pub(super) fn apply_process_settings(g: &RuntimeGroup) {
    let spec = &g.def.spec;
    if let Some(mask) = spec.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    for (option, resource, limit) in [("memory-limit", Resource::RLIMIT_DATA, spec.memory_limit), ("virtual-memory-limit", Resource::RLIMIT_AS, spec.virtual_memory_limit)] {
        if limit > 0 {
            if let Err(e) = setrlimit(resource, limit, limit) {
                warn(g, &format!("cannot set {option}={limit} ({e}); it runs without that limit"));
            }
        }
    }
    // As in mod_wsgi: `home=`, else the user's home directory when the
    // daemon runs as another user than Apache's children.
    let (apache_uid, _) = crate::ffi::process::apache_identity();
    let home = spec.home.clone().or_else(|| g.user_home.clone().filter(|_| g.uid != apache_uid));
    if let Some(home) = &home {
        let _ = std::env::set_current_dir(home);
    }
    // No other thread exists yet to race on the environment.
    if let Some(user_home) = &g.user_home {
        std::env::set_var("HOME", user_home);
    }
    std::env::set_var("USER", &g.user_name);
    std::env::set_var("LOGNAME", &g.user_name);
    if let Some(lang) = &spec.lang {
        std::env::set_var("LANG", lang);
    }
    if let Some(locale) = &spec.locale {
        std::env::set_var("LC_ALL", locale);
    }
}
