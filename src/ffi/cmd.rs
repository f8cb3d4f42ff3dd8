//! Directive handling: the `command_rec` table entries and the trampolines
//! Apache calls, which hand safe Rust handlers a [`Cmd`].
use std::ffi::{c_char, c_void, CStr};

use super::guard::guard;
use super::pool::Pool;
use super::regex::Regex;
use super::{cstr_string, sys};
use crate::config::{DirConfig, ServerConfig};

pub type Result = std::result::Result<(), String>;

/// A directive's handler, by the arguments it takes.
#[derive(Clone, Copy)]
pub enum Handler {
    Take1(fn(&mut Cmd, &str) -> Result),
    Flag(fn(&mut Cmd, bool) -> Result),
    /// The whole argument line, quotes and all (also how a section's
    /// opening tag arrives, with its closing '>').
    RawArgs(fn(&mut Cmd, &str) -> Result),
}

/// Where a directive may appear.
#[derive(Clone, Copy)]
pub enum Context {
    /// Main server config only (checked at parse time).
    Global,
    /// Server config and virtual hosts.
    Server,
    /// Also <Directory>, <Location> and <Files>.
    ServerDir,
    /// Also .htaccess under `AllowOverride FileInfo`.
    ServerDirFileInfo,
    /// Directory sections and .htaccess under `AllowOverride AuthConfig`.
    DirAuthConfig,
}

pub struct Directive {
    pub name: &'static CStr,
    pub context: Context,
    pub handler: Handler,
    pub help: &'static CStr,
}

/// Apache's command table: one entry per directive, carrying its index in
/// `cmd_data` (which is how the trampoline finds the handler again), then
/// the all-zero terminator. Built at compile time because Apache reads it
/// as soon as the module is loaded, before any hook runs.
pub const fn command_table<const N: usize>(directives: &[Directive]) -> [sys::command_rec; N] {
    assert!(N == directives.len() + 1, "one entry per directive plus the terminator");
    // SAFETY: an all-zero command_rec is the table's terminator.
    let mut table: [sys::command_rec; N] = unsafe { std::mem::zeroed() };
    let mut index = 0;
    while index < directives.len() {
        let d = &directives[index];
        let (func, args_how) = match d.handler {
            Handler::Take1(_) => (sys::cmd_func { take1: Some(take1_trampoline) }, sys::cmd_how_TAKE1),
            Handler::Flag(_) => (sys::cmd_func { flag: Some(flag_trampoline) }, sys::cmd_how_FLAG),
            Handler::RawArgs(_) => (sys::cmd_func { raw_args: Some(raw_args_trampoline) }, sys::cmd_how_RAW_ARGS),
        };
        let req_override = match d.context {
            Context::Global | Context::Server => sys::RSRC_CONF,
            Context::ServerDir => sys::RSRC_CONF | sys::ACCESS_CONF,
            Context::ServerDirFileInfo => sys::RSRC_CONF | sys::ACCESS_CONF | sys::OR_FILEINFO,
            Context::DirAuthConfig => sys::OR_AUTHCFG,
        };
        table[index] = sys::command_rec {
            name: d.name.as_ptr(),
            func,
            cmd_data: std::ptr::without_provenance_mut(index),
            req_override,
            args_how,
            errmsg: d.help.as_ptr(),
        };
        index += 1;
    }
    table
}

/// The command table as a static Apache can hold a pointer to.
#[repr(transparent)]
pub struct CommandTable<const N: usize>(pub [sys::command_rec; N]);
// SAFETY: immutable; holds only pointers to static strings and functions.
unsafe impl<const N: usize> Sync for CommandTable<N> {}

/// What a handler may do with the directive being parsed.
pub struct Cmd {
    raw: *mut sys::cmd_parms,
    mconfig: *mut c_void,
    directive: &'static Directive,
}

impl Cmd {
    pub fn name(&self) -> &'static str {
        self.directive.name.to_str().unwrap_or("WSGI directive")
    }

    /// The config of the server (or virtual host) the directive is in.
    pub fn server_config(&mut self) -> &mut ServerConfig {
        // SAFETY: cmd->server is live during parsing and its module config
        // slot holds the ServerConfig our create_server_config made.
        unsafe { &mut *super::server::server_config_ptr((*self.raw).server) }
    }

    /// The config of the section the directive is in (for server and vhost
    /// level, the server's default directory config).
    pub fn dir_config(&mut self) -> &mut DirConfig {
        // SAFETY: for directives allowed in directory context Apache passes
        // the DirConfig our create_dir_config made for this section.
        unsafe { &mut *(self.mconfig as *mut DirConfig) }
    }

    /// The server (main or virtual host) the directive is in.
    pub fn server(&self) -> super::server::Server {
        // SAFETY: cmd->server is live during parsing.
        super::server::Server(unsafe { (*self.raw).server })
    }

    pub fn pool(&self) -> Pool {
        // SAFETY: cmd->pool is the configuration pool, live while parsing.
        Pool(unsafe { (*self.raw).pool })
    }


    /// The section the directive is written in, as its name (such as
    /// `<WSGIInterpreterOptions`) and the arguments of its opening tag.
    pub fn enclosing_section(&self) -> Option<(String, String)> {
        // SAFETY: cmd->directive and its parent are nodes of the config tree,
        // live during parsing; their strings are NUL-terminated.
        unsafe {
            let directive = (*self.raw).directive;
            let parent = if directive.is_null() { std::ptr::null_mut() } else { (*directive).parent };
            if parent.is_null() {
                return None;
            }
            Some((cstr_string((*parent).directive).unwrap_or_default(), cstr_string((*parent).args).unwrap_or_default()))
        }
    }

    /// The names of the directives inside this section, in order.
    pub fn section_directives(&self) -> Vec<String> {
        let mut names = Vec::new();
        // SAFETY: the children of cmd->directive are config tree nodes, live
        // during parsing, linked through `next`.
        unsafe {
            let mut child = (*(*self.raw).directive).first_child;
            while !child.is_null() {
                names.push(cstr_string((*child).directive).unwrap_or_default());
                child = (*child).next;
            }
        }
        names
    }

    /// Runs the directives inside this section, as Apache runs its own
    /// sections' contents. Their handlers see this section as theirs.
    pub fn walk_section(&mut self) -> Result {
        // SAFETY: cmd and its directive are live during parsing; Apache walks
        // the children with the server's default section config, and returns
        // NULL or an error message from a pool.
        let err = unsafe {
            let raw = self.raw;
            sys::ap_walk_config((*(*raw).directive).first_child, raw, (*(*raw).server).lookup_defaults)
        };
        if err.is_null() {
            return Ok(());
        }
        // SAFETY: a NUL-terminated message.
        Err(unsafe { cstr_string(err) }.unwrap_or_default())
    }

    pub fn compile_regex(&self, pattern: &str) -> std::result::Result<Regex, String> {
        Regex::compile(self.pool(), pattern).ok_or_else(|| format!("{}: cannot compile regular expression '{pattern}'", self.name()))
    }

    /// Checks the directive's context rules that Apache's flags cannot express.
    fn check_context(&self) -> Result {
        if let Context::Global = self.directive.context {
            // SAFETY: ap_check_cmd_context reads cmd and returns NULL or a
            // static/pool message.
            let err = unsafe { sys::ap_check_cmd_context(self.raw, sys::GLOBAL_ONLY as u32) };
            if !err.is_null() {
                // SAFETY: a NUL-terminated message.
                return Err(unsafe { cstr_string(err) }.unwrap_or_default());
            }
        }
        Ok(())
    }
}

unsafe fn dispatch(raw: *mut sys::cmd_parms, mconfig: *mut c_void, call: impl FnOnce(&mut Cmd, Handler) -> Result) -> *const c_char {
    let pool = (*raw).pool;
    let outcome = guard("directive parsing", Err("internal error while parsing a WSGI directive".to_string()), || {
        let directives = crate::config::directives::DIRECTIVES;
        let directive = &directives[(*raw).info as usize];
        let mut cmd = Cmd { raw, mconfig, directive };
        cmd.check_context()?;
        call(&mut cmd, directive.handler)
    });
    match outcome {
        Ok(()) => std::ptr::null(),
        Err(msg) => Pool(pool).strdup(msg.as_bytes()),
    }
}

unsafe extern "C" fn take1_trampoline(raw: *mut sys::cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    let arg = cstr_string(arg).unwrap_or_default();
    dispatch(raw, mconfig, |cmd, handler| match handler {
        Handler::Take1(f) => f(cmd, &arg),
        _ => unreachable!("directive table kinds match"),
    })
}

unsafe extern "C" fn flag_trampoline(raw: *mut sys::cmd_parms, mconfig: *mut c_void, on: i32) -> *const c_char {
    dispatch(raw, mconfig, |cmd, handler| match handler {
        Handler::Flag(f) => f(cmd, on != 0),
        _ => unreachable!("directive table kinds match"),
    })
}

unsafe extern "C" fn raw_args_trampoline(raw: *mut sys::cmd_parms, mconfig: *mut c_void, args: *const c_char) -> *const c_char {
    let args = cstr_string(args).unwrap_or_default();
    dispatch(raw, mconfig, |cmd, handler| match handler {
        Handler::RawArgs(f) => f(cmd, &args),
        _ => unreachable!("directive table kinds match"),
    })
}
