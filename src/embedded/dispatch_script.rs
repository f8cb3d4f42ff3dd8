//! `WSGIDispatchScript`: for each request, before it goes to its
//! application, a script in the Apache child's Python may choose the
//! process group, the application group and the callable, as in mod_wsgi.
use wsgi_core::directives::GroupSpec;

use crate::cgi::environ::{set_var, Var};
use super::script;
use crate::ffi::request::Request;
pub use crate::python::interp::DispatchChoices;

/// Runs the dispatch script for a request whose environ is `vars`. `None`
/// (logged, with the traceback) when it failed: the request gets 500.
pub fn run<'r>(req: &'r Request, dispatch: &(String, Option<GroupSpec>), vars: &[Var<'r>], reloading: bool) -> Option<DispatchChoices> {
    let path = &dispatch.0;
    // The script sees where it runs itself: its own application group, in
    // the Apache child, with no callable chosen yet.
    let environ = |group: &[u8]| {
        let mut own: Vec<Var<'r>> = vars.iter().filter(|(key, _)| key != "mod_wsgi.callable_object").cloned().collect();
        set_var(&mut own, "mod_wsgi.process_group", b"");
        set_var(&mut own, "mod_wsgi.application_group", group);
        own
    };
    script::call(req, dispatch, "the dispatch script", environ, |py, interpreter, env| interpreter.dispatch(py, path, reloading, env))
}
