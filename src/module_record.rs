//! The module record Apache loads (`LoadModule wsgi_module …`), its config
//! constructors, and the hooks it registers. Each `extern "C"` function here
//! is a thin shell around safe code, run through the panic guard.
use std::ffi::c_void;
use std::ptr::addr_of;

use crate::config::{directives::COMMANDS, DirConfig, GlobalSettings, ServerConfig};
use crate::ffi::guard::guard;
use crate::ffi::log::{self, Level};
use crate::ffi::pool::Pool;
use crate::ffi::request::Request;
use crate::ffi::server::{self, Server};
use crate::ffi::sys;
use wsgi_core::directives::ImportScript;
use crate::python::{init, interp};

/// The version reported in the server banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The mod_wsgi release whose behaviour we follow (`mod_wsgi.version`).
pub const COMPAT_VERSION: (u32, u32, u32) = (6, 0, 5);

/// Apache writes into this record (index, list link, DSO handle), so it is
/// a mutable static; only Apache touches it after load.
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static mut wsgi_module: sys::module = sys::module {
    version: sys::MRS_MMN_MAJOR,
    minor_version: sys::MRS_MMN_MINOR,
    module_index: -1,
    name: c"mod_wsgi_rs.c".as_ptr(),
    dynamic_load_handle: std::ptr::null_mut(),
    next: std::ptr::null_mut(),
    magic: sys::MRS_MODULE_MAGIC_COOKIE,
    rewrite_args: None,
    create_dir_config: Some(create_dir_config),
    merge_dir_config: Some(merge_dir_config),
    create_server_config: Some(create_server_config),
    merge_server_config: Some(merge_server_config),
    cmds: COMMANDS.0.as_ptr(),
    register_hooks: Some(register_hooks),
    flags: 0,
};

pub fn module_ptr() -> *const sys::module {
    addr_of!(wsgi_module)
}

pub fn module_index() -> i32 {
    // SAFETY: a plain read of a field Apache sets once at load time.
    unsafe { (*addr_of!(wsgi_module)).module_index }
}

unsafe extern "C" fn create_dir_config(pool: *mut sys::apr_pool_t, _dir: *mut std::ffi::c_char) -> *mut c_void {
    guard("create_dir_config", std::ptr::null_mut(), || Pool(pool).alloc(DirConfig::default()) as *mut c_void)
}

unsafe extern "C" fn merge_dir_config(pool: *mut sys::apr_pool_t, base: *mut c_void, add: *mut c_void) -> *mut c_void {
    guard("merge_dir_config", std::ptr::null_mut(), || {
        // SAFETY: both are DirConfigs made by create_dir_config or this function.
        let merged = unsafe { DirConfig::merge(&*(base as *const DirConfig), &*(add as *const DirConfig)) };
        Pool(pool).alloc(merged) as *mut c_void
    })
}

unsafe extern "C" fn create_server_config(pool: *mut sys::apr_pool_t, _s: *mut sys::server_rec) -> *mut c_void {
    guard("create_server_config", std::ptr::null_mut(), || Pool(pool).alloc(ServerConfig::default()) as *mut c_void)
}

unsafe extern "C" fn merge_server_config(pool: *mut sys::apr_pool_t, base: *mut c_void, add: *mut c_void) -> *mut c_void {
    guard("merge_server_config", std::ptr::null_mut(), || {
        // SAFETY: both are ServerConfigs made by create_server_config.
        let merged = unsafe { ServerConfig::merge(&*(base as *const ServerConfig), &*(add as *const ServerConfig)) };
        Pool(pool).alloc(merged) as *mut c_void
    })
}

/// Hook ordering lists are kept by pointer, so they must be static.
struct HookOrder([*const std::ffi::c_char; 2]);
// SAFETY: pointers to static strings, never written.
unsafe impl Sync for HookOrder {}
/// mod_alias's translate_name runs first, so its Alias and Redirect keep
/// working alongside ours, as with mod_wsgi.
static AFTER_ALIAS: HookOrder = HookOrder([c"mod_alias.c".as_ptr(), std::ptr::null()]);

/// The `wsgi` authentication provider (`AuthBasicProvider wsgi`) and the
/// `wsgi-group` authorization provider (`Require wsgi-group …`).
struct AuthProviders(sys::authn_provider, sys::authz_provider);
// SAFETY: tables of function pointers, never written.
unsafe impl Sync for AuthProviders {}
static AUTH_PROVIDERS: AuthProviders = AuthProviders(
    sys::authn_provider { check_password: Some(check_password), get_realm_hash: Some(get_realm_hash) },
    sys::authz_provider { check_authorization: Some(check_group), parse_require_line: None },
);

unsafe extern "C" fn register_hooks(pool: *mut sys::apr_pool_t) {
    guard("register_hooks", (), || {
        // SAFETY: registering static functions, providers and ordering lists.
        unsafe {
            let authn = std::ptr::addr_of!(AUTH_PROVIDERS.0) as *const c_void;
            let authz = std::ptr::addr_of!(AUTH_PROVIDERS.1) as *const c_void;
            sys::ap_register_auth_provider(pool, c"authn".as_ptr(), c"wsgi".as_ptr(), c"0".as_ptr(), authn, sys::AP_AUTH_INTERNAL_PER_CONF);
            sys::ap_register_auth_provider(pool, c"authz".as_ptr(), c"wsgi-group".as_ptr(), c"0".as_ptr(), authz, sys::AP_AUTH_INTERNAL_PER_CONF);
            sys::ap_hook_access_checker(Some(access_checker), std::ptr::null(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
            sys::ap_hook_translate_name(Some(translate_name), AFTER_ALIAS.0.as_ptr(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
            sys::ap_hook_pre_config(Some(pre_config), std::ptr::null(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
            sys::ap_hook_post_config(Some(post_config), std::ptr::null(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
            sys::ap_hook_child_init(Some(child_init), std::ptr::null(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
            sys::ap_hook_monitor(Some(monitor), std::ptr::null(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
            sys::ap_hook_handler(Some(handler), std::ptr::null(), std::ptr::null(), sys::APR_HOOK_MIDDLE);
        }
    })
}

unsafe extern "C" fn pre_config(_pconf: *mut sys::apr_pool_t, _plog: *mut sys::apr_pool_t, _ptemp: *mut sys::apr_pool_t) -> i32 {
    guard("pre_config", sys::OK, || {
        crate::ffi::process::note_parent_identity();
        crate::daemon::group::begin_config();
        sys::OK
    })
}

unsafe extern "C" fn post_config(pconf: *mut sys::apr_pool_t, _plog: *mut sys::apr_pool_t, _ptemp: *mut sys::apr_pool_t, s: *mut sys::server_rec) -> i32 {
    guard("post_config", sys::OK, || {
        server::add_version_component(Pool(pconf), &format!("mod_wsgi-rs/{VERSION}"));
        server::add_version_component(Pool(pconf), &format!("Python/{}", init::BUILD_VERSION));
        if server::is_preflight_pass() {
            return sys::OK;
        }
        warn_ignored_directives(Server(s));
        match crate::daemon::supervisor::start(Pool(pconf), Server(s)) {
            Ok(()) => sys::OK,
            Err(msg) => {
                log::server(Some(Server(s)), Level::Crit, &msg);
                sys::HTTP_INTERNAL_SERVER_ERROR
            }
        }
    })
}

fn warn_ignored_directives(main: Server) {
    let mut warned: Vec<String> = Vec::new();
    for server in main.with_distinct_configs() {
        for message in server.config().unapplied_warnings() {
            if !warned.contains(&message) {
                log::server(Some(main), Level::Warning, &message);
                warned.push(message);
            }
        }
    }
}

/// The MPM's periodic maintenance in Apache's parent: daemon processes
/// that were waiting to be started.
unsafe extern "C" fn monitor(_p: *mut sys::apr_pool_t, _s: *mut sys::server_rec) -> i32 {
    guard("monitor", sys::DECLINED, || {
        crate::daemon::supervisor::start_due_processes();
        sys::DECLINED
    })
}

/// Drops what the parent holds for the daemons (an Apache child must not
/// be able to accept a daemon group's connections), then starts Python in
/// each new child (never in the root parent) and arranges for it to be
/// finalised when the child exits.
unsafe extern "C" fn child_init(pchild: *mut sys::apr_pool_t, s: *mut sys::server_rec) {
    guard("child_init", (), || {
        crate::daemon::supervisor::forget_in_child();
        start_python(Pool(pchild), Server(s))
    })
}

fn start_python(pchild: Pool, main: Server) {
    let settings = &main.config().global;
    if settings.restrict_embedded == Some(true) {
        return;
    }
    if let Err(msg) = init::start(settings) {
        log::server(Some(main), Level::Crit, &format!("cannot initialise Python: {msg}"));
        return;
    }
    let info = process_info(
        main,
        settings,
        "",
        server::mpm_query(sys::AP_MPMQ_MAX_DAEMONS).unwrap_or(1),
        server::mpm_query(sys::AP_MPMQ_MAX_THREADS).unwrap_or(1),
    );
    let ready = interp::create_main(info).map(|()| {
        for script in import_scripts(main, "") {
            interp::preload(&script.application_group, &script.script);
        }
    });
    match ready {
        Ok(()) => {
            if log::enabled(Some(main), Level::Debug) {
                log::server(Some(main), Level::Debug, &format!("Python {} initialised in process {}", init::BUILD_VERSION, std::process::id()));
            }
        }
        Err(msg) => log::server(Some(main), Level::Crit, &msg),
    }
    // Shutdown subscribers hear of the exit even under
    // WSGIDestroyInterpreter Off, which only skips the finalisation.
    let finalize = settings.destroy_interpreter != Some(false);
    pchild.on_cleanup(Box::new(move || interp::shut_down("shutdown_signal", finalize, Some(CHILD_SHUTDOWN_LIMIT))));
}

/// How long an Apache child may spend shutting Python down (subscribers,
/// atexit handlers, threads the app left running) before it just exits;
/// without a bound a gracefully stopping child could stay around forever.
const CHILD_SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The `WSGIImportScript`s of `process_group` ("" for Apache's children),
/// from every server in configuration order.
pub fn import_scripts(main: Server, process_group: &str) -> Vec<ImportScript> {
    main.with_distinct_configs().flat_map(|s| s.config().import_scripts.clone()).filter(|s| s.process_group == process_group).collect()
}

/// How many sub-interpreters a process may create unless
/// `WSGIMaximumInterpreters` says otherwise.
const DEFAULT_MAXIMUM_INTERPRETERS: usize = 100;

/// What the adapter's setup tells Python about this process.
pub fn process_info(server: Server, settings: &GlobalSettings, process_group: &str, processes: i32, threads: i32) -> interp::ProcessInfo {
    interp::ProcessInfo {
        log_server: server,
        compat_version: COMPAT_VERSION,
        apache_version: server::apache_version(),
        description: server::server_description(),
        mpm_name: server::mpm_name(),
        process_group: process_group.to_string(),
        maximum_processes: processes.max(1),
        threads_per_process: threads.max(1),
        restrict_stdin: settings.restrict_stdin == Some(true),
        restrict_stdout: settings.restrict_stdout == Some(true),
        restrict_signal: settings.restrict_signal != Some(false),
        python_path: settings.path.clone(),
        switch_interval: settings.switch_interval,
        python_eggs: settings.python_eggs.clone(),
        run_once: false,
        per_interpreter_gil: settings.per_interpreter_gil == Some(true),
        maximum_interpreters: settings.maximum_interpreters.unwrap_or(DEFAULT_MAXIMUM_INTERPRETERS),
    }
}

unsafe extern "C" fn translate_name(r: *mut sys::request_rec) -> i32 {
    // SAFETY: r is the live request of this hook.
    guard("translate_name", sys::DECLINED, || crate::dispatch::translate_name(unsafe { Request::from_raw(r) }))
}

unsafe extern "C" fn check_password(r: *mut sys::request_rec, user: *const std::ffi::c_char, password: *const std::ffi::c_char) -> sys::authn_status {
    use crate::embedded::auth::PasswordCheck;
    guard("check_password", sys::authn_status_AUTH_GENERAL_ERROR, || {
        // SAFETY: the live request of this hook and NUL-terminated strings.
        let (req, user, password) = unsafe { (Request::from_raw(r), crate::ffi::cstr_string(user).unwrap_or_default(), crate::ffi::cstr_string(password).unwrap_or_default()) };
        match crate::embedded::auth::check_password(req, &user, &password) {
            PasswordCheck::Granted(canonical) => {
                if let Some(name) = canonical {
                    req.set_user(name.as_bytes());
                }
                sys::authn_status_AUTH_GRANTED
            }
            PasswordCheck::Denied => sys::authn_status_AUTH_DENIED,
            PasswordCheck::UnknownUser => sys::authn_status_AUTH_USER_NOT_FOUND,
            PasswordCheck::Error => sys::authn_status_AUTH_GENERAL_ERROR,
        }
    })
}

unsafe extern "C" fn get_realm_hash(r: *mut sys::request_rec, user: *const std::ffi::c_char, realm: *const std::ffi::c_char, rethash: *mut *mut std::ffi::c_char) -> sys::authn_status {
    use crate::embedded::auth::RealmHash;
    guard("get_realm_hash", sys::authn_status_AUTH_GENERAL_ERROR, || {
        // SAFETY: the live request of this hook and NUL-terminated strings.
        let (req, user, realm) = unsafe { (Request::from_raw(r), crate::ffi::cstr_string(user).unwrap_or_default(), crate::ffi::cstr_string(realm).unwrap_or_default()) };
        match crate::embedded::auth::get_realm_hash(req, &user, &realm) {
            RealmHash::Found(hash) => {
                // SAFETY: mod_auth_digest reads the hash from r->pool memory.
                unsafe { *rethash = req.pool().strdup(hash.as_bytes()) as *mut std::ffi::c_char };
                sys::authn_status_AUTH_USER_FOUND
            }
            RealmHash::UnknownUser => sys::authn_status_AUTH_USER_NOT_FOUND,
            RealmHash::Error => sys::authn_status_AUTH_GENERAL_ERROR,
        }
    })
}

unsafe extern "C" fn check_group(r: *mut sys::request_rec, require_line: *const std::ffi::c_char, _parsed: *const c_void) -> sys::authz_status {
    guard("check_group", sys::authz_status_AUTHZ_GENERAL_ERROR, || {
        // SAFETY: the live request of this hook and a NUL-terminated line.
        let (req, line) = unsafe { (Request::from_raw(r), crate::ffi::cstr_string(require_line).unwrap_or_default()) };
        let Some(user) = req.user().map(|u| String::from_utf8_lossy(u).into_owned()) else {
            return sys::authz_status_AUTHZ_DENIED_NO_USER;
        };
        match crate::embedded::auth::groups_for_user(req, &user) {
            None => sys::authz_status_AUTHZ_GENERAL_ERROR,
            Some(groups) if line.split_whitespace().any(|g| groups.iter().any(|have| have == g)) => sys::authz_status_AUTHZ_GRANTED,
            Some(_) => sys::authz_status_AUTHZ_DENIED,
        }
    })
}

unsafe extern "C" fn access_checker(r: *mut sys::request_rec) -> i32 {
    guard("access_checker", sys::HTTP_INTERNAL_SERVER_ERROR, || {
        // SAFETY: the live request of this hook.
        let req = unsafe { Request::from_raw(r) };
        let host = String::from_utf8_lossy(req.client_ip()).into_owned();
        match crate::embedded::auth::allow_access(req, &host) {
            Some(true) => sys::OK,
            Some(false) => sys::HTTP_FORBIDDEN,
            None => sys::DECLINED,
        }
    })
}

unsafe extern "C" fn handler(r: *mut sys::request_rec) -> i32 {
    // SAFETY: r is the live request of this hook.
    guard("handler", sys::HTTP_INTERNAL_SERVER_ERROR, || crate::dispatch::handle(unsafe { Request::from_raw(r) }))
}
