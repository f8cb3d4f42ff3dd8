//! Who a daemon process is: the group's user and groups, taken on
//! fail-closed, and the process settings that come with them (umask, limits,
//! working directory, environment).
use std::ffi::CString;

use nix::unistd::{Gid, Group, Uid, User};

use super::group::RuntimeGroup;

/// `name` or `#uid`.
pub fn lookup_user(spec: &str) -> Result<User, String> {
    let found = match spec.strip_prefix('#') {
        Some(id) => User::from_uid(Uid::from_raw(id.parse().map_err(|_| format!("'{spec}' is not a valid #uid"))?)),
        None => User::from_name(spec),
    };
    let user = found.ok().flatten().ok_or_else(|| format!("user '{spec}' does not exist"))?;
    if user.uid.is_root() {
        return Err(format!("user '{spec}' is root; daemon processes are blocked from running as root"));
    }
    Ok(user)
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
/// before it can serve anything.
pub(super) fn drop_privileges(g: &RuntimeGroup) -> Result<(), String> {
    if !Uid::effective().is_root() {
        return Ok(());
    }
    let gid = Gid::from_raw(g.gid);
    nix::unistd::setgid(gid).map_err(|e| format!("setgid({}) failed: {e}", g.gid))?;
    match &g.supplementary_gids {
        Some(gids) => {
            let gids: Vec<Gid> = std::iter::once(gid).chain(gids.iter().map(|&x| Gid::from_raw(x))).collect();
            nix::unistd::setgroups(&gids).map_err(|e| format!("setgroups failed: {e}"))?;
        }
        None => {
            let user = CString::new(g.user_name.as_str()).map_err(|_| "user name has a NUL".to_string())?;
            nix::unistd::initgroups(&user, gid).map_err(|e| format!("initgroups({}) failed: {e}", g.user_name))?;
        }
    }
    nix::unistd::setuid(Uid::from_raw(g.uid)).map_err(|e| format!("setuid({}) failed: {e}", g.uid))?;
    if Uid::current().as_raw() != g.uid || Uid::effective().as_raw() != g.uid || Gid::current().as_raw() != g.gid {
        return Err("identity did not change as requested".to_string());
    }
    Ok(())
}

/// Limits, working directory and environment from the group's options.
pub(super) fn apply_process_settings(g: &RuntimeGroup) {
    let spec = &g.def.spec;
    if let Some(mask) = spec.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    if spec.memory_limit > 0 {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_DATA, spec.memory_limit, spec.memory_limit);
    }
    // As in mod_wsgi: `home=`, else the user's home directory when the
    // daemon runs as another user than Apache's children.
    let (apache_uid, _, _) = crate::ffi::process::apache_identity();
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
