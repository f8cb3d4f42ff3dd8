//! `WSGIAuthUserScript`, `WSGIAuthGroupScript` and `WSGIAccessScript`: Apache
//! asks a Python script whether a user's password is right, which groups a
//! user is in, or whether a client may have access. They always run in the
//! Apache child's own Python (never in a daemon), as in mod_wsgi.
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use wsgi_core::directives::GroupSpec;

use crate::cgi::environ::{self, RequestFacts};
use super::script;
use crate::ffi::log::{self, Level};
use crate::ffi::request::Request;
use crate::python::text::to_string;

/// What a password check concluded.
pub enum PasswordCheck {
    Granted(Option<String>),
    Denied,
    UnknownUser,
    Error,
}

/// Calls `function(environ, *args)` from the script configured for the
/// request, turning any failure into a logged `None`.
fn call<R>(req: Request, script: &(String, Option<GroupSpec>), function: &str, args: &[&str], convert: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<R>) -> Option<R> {
    let path = &script.0;
    let vars = |group: &[u8]| {
        let facts = RequestFacts {
            script_name: req.uri(),
            path_info: b"",
            method: req.method(),
            application_group: group,
            process_group: b"",
            callable_object: function,
            handler_script: "",
            pass_authorization: false,
        };
        environ::collect(&req, &facts)
    };
    script::call(&req, script, &format!("{function}()"), vars, |py, interpreter, env| {
        let mut call_args: Vec<Bound<'_, PyAny>> = vec![env.into_any()];
        call_args.extend(args.iter().map(|a| PyString::new(py, a).into_any()));
        let result = interpreter.call_script(py, path, function, PyTuple::new(py, call_args)?)?;
        convert(&result)
    })
}

pub fn check_password(req: Request, user: &str, password: &str) -> PasswordCheck {
    let Some(script) = req.dir_config().auth_user_script.clone() else {
        log::request(&req, Level::Err, "AuthBasicProvider wsgi needs a WSGIAuthUserScript here");
        return PasswordCheck::Error;
    };
    call(req, &script, "check_password", &[user, password], |result| {
        Ok(if result.is_none() {
            PasswordCheck::UnknownUser
        } else if let Ok(name) = to_string(result, "check_password() result") {
            PasswordCheck::Granted(Some(name).filter(|n| !n.is_empty()))
        } else if result.is_truthy()? {
            PasswordCheck::Granted(None)
        } else {
            PasswordCheck::Denied
        })
    })
    .unwrap_or(PasswordCheck::Error)
}

/// What a Digest lookup concluded: the hex MD5 of `user:realm:password`.
pub enum RealmHash {
    Found(String),
    UnknownUser,
    Error,
}

pub fn get_realm_hash(req: Request, user: &str, realm: &str) -> RealmHash {
    let Some(script) = req.dir_config().auth_user_script.clone() else {
        log::request(&req, Level::Err, "AuthDigestProvider wsgi needs a WSGIAuthUserScript here");
        return RealmHash::Error;
    };
    call(req, &script, "get_realm_hash", &[user, realm], |result| {
        Ok(if result.is_none() { RealmHash::UnknownUser } else { RealmHash::Found(to_string(result, "get_realm_hash() result")?) })
    })
    .unwrap_or(RealmHash::Error)
}

/// The user's groups, or `None` when the script failed.
pub fn groups_for_user(req: Request, user: &str) -> Option<Vec<String>> {
    let Some(script) = req.dir_config().auth_group_script.clone() else {
        log::request(&req, Level::Err, "Require wsgi-group needs a WSGIAuthGroupScript here");
        return None;
    };
    call(req, &script, "groups_for_user", &[user], |result| {
        if result.is_none() {
            return Ok(Vec::new());
        }
        result.try_iter()?.map(|g| to_string(&g?, "a group name")).collect()
    })
}

/// `Some(true)`: allowed; `Some(false)`: 403; `None`: no opinion (or no script).
pub fn allow_access(req: Request, host: &str) -> Option<bool> {
    let script = req.dir_config().access_script.clone()?;
    call(req, &script, "allow_access", &[host], |result| if result.is_none() { Ok(None) } else { result.is_truthy().map(Some) }).unwrap_or(Some(false))
}
