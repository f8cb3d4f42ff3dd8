//! Scripts the Apache child runs in its own Python for a request, before
//! (or instead of) the application, as in mod_wsgi: the auth and access
//! scripts (`auth`) and the `WSGIDispatchScript` (`dispatch_script`).
use pyo3::prelude::*;
use pyo3::types::PyDict;
use wsgi_core::directives::GroupSpec;

use crate::cgi::environ::Var;
use crate::dispatch::{expand_group, latin1_string};
use crate::ffi::log::{self, Level};
use crate::ffi::request::Request;
use crate::python::interp::{self, Interpreter};
use crate::python::init;
use crate::python::request_rec::RequestRecCapsule;

/// Calls `f` with the environ `vars(group)` gives, in the interpreter of
/// the script's application group (`%{GLOBAL}`, the main interpreter,
/// unless its `application-group=` names another). Any failure is logged,
/// with its traceback, and gives `None`. With `WSGIPassApacheRequest On`
/// the environ holds `apache.request_rec` for the length of the call.
pub fn call<'r, R>(
    req: &'r Request,
    script: &(String, Option<GroupSpec>),
    what: &str,
    vars: impl FnOnce(&[u8]) -> Vec<Var<'r>>,
    f: impl for<'py> FnOnce(Python<'py>, &Interpreter, Bound<'py, PyDict>) -> PyResult<R>,
) -> Option<R> {
    let (path, group) = script;
    if !init::is_running() {
        log::request(req, Level::Err, &format!("{path}: Python is not running in Apache's children (WSGIRestrictEmbedded On?), so {what} cannot be run"));
        return None;
    }
    let group = group.as_ref().map(|spec| expand_group(req, spec, req.uri())).unwrap_or_default();
    let interpreter = match interp::for_group(&latin1_string(&group)) {
        Ok(interpreter) => interpreter,
        Err(msg) => {
            log::request(req, Level::Err, &format!("{path}: {msg}; {what} cannot be run"));
            return None;
        }
    };
    let vars = vars(&group);
    let pass_request = req.dir_config().pass_apache_request == Some(true);
    interpreter.enter(|py| {
        let outcome = interpreter.environ(py, &vars, req.request_time(), 0).and_then(|env| {
            let _capsule = if pass_request { Some(RequestRecCapsule::attach(&env, req.raw())?) } else { None };
            f(py, interpreter, env)
        });
        match outcome {
            Ok(value) => Some(value),
            Err(err) => {
                interpreter.log_exception(py, err, path);
                None
            }
        }
    })
}
