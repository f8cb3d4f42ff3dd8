//! Writes the server root: the templates in `express/templates`, rendered
//! for one `Server`.
use std::fs;
use std::io;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::Path;

use askama::Template;

use crate::options::{ApplicationType, Mpm};
use crate::server::Server;

/// The quoting filters the templates use: `{{ value|apache }}` and so on.
mod filters {
    use std::fmt::Display;

    #[askama::filter_fn]
    pub fn apache(value: impl Display, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(crate::quote::apache(&value.to_string()))
    }

    #[askama::filter_fn]
    pub fn python(value: impl Display, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(crate::quote::python(&value.to_string()))
    }

    #[askama::filter_fn]
    pub fn shell(value: impl Display, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(crate::quote::shell(&value.to_string()))
    }
}

#[derive(Template)]
#[template(path = "httpd.conf", escape = "none")]
struct HttpdConf<'a> {
    s: &'a Server,
}

#[derive(Template)]
#[template(path = "apachectl", escape = "none")]
struct Apachectl<'a> {
    s: &'a Server,
}

#[derive(Template)]
#[template(path = "handler.wsgi", escape = "none")]
struct Handler<'a> {
    s: &'a Server,
}

#[derive(Template)]
#[template(path = "default.wsgi", escape = "none")]
struct DefaultPage<'a> {
    s: &'a Server,
}

/// Creates a directory Apache's children (another account) can enter; one
/// that exists is left as it is. True if it was created.
fn make_dir(path: &str) -> io::Result<bool> {
    if Path::new(path).is_dir() {
        return Ok(false);
    }
    fs::create_dir_all(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(true)
}

fn write(path: &str, text: &str, mode: u32) -> io::Result<()> {
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

fn failed(path: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("cannot write {path}: {e}")
}

fn rendered(template: &impl Template) -> Result<String, String> {
    let mut text = template.render().map_err(|e| format!("cannot render a template: {e}"))?;
    text.push('\n');
    Ok(text)
}

/// Creates (or refreshes) the server root. The envvars file is the user's
/// to edit and is left as it is, unless --envvars-script names one.
pub fn write_server_root(s: &Server) -> Result<(), String> {
    let root = &s.server_root;
    for dir in [root, &s.document_root, &s.log_directory] {
        make_dir(dir).map_err(failed(dir))?;
    }
    // The server root is ours even when it exists: Apache's children must
    // reach the daemons' sockets and the scripts in it.
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).map_err(failed(root))?;
    if make_dir(&s.python_eggs).map_err(failed(&s.python_eggs))? && nix::unistd::Uid::effective().is_root() {
        // Eggs are unpacked by the application, running as --user.
        chown(&s.python_eggs, Some(s.uid.as_raw()), Some(s.gid.as_raw())).map_err(failed(&s.python_eggs))?;
    }

    let files: [(String, String, u32); 3] = [
        (s.httpd_conf.clone(), rendered(&HttpdConf { s })?, 0o644),
        (format!("{root}/apachectl"), rendered(&Apachectl { s })?, 0o755),
        (format!("{root}/handler.wsgi"), rendered(&Handler { s })?, 0o644),
    ];
    for (path, text, mode) in &files {
        write(path, text, *mode).map_err(failed(path))?;
    }
    if s.o.script.is_none() && s.o.entry_point.is_none() && s.o.application_type == ApplicationType::Script {
        write(&s.entry_point, &rendered(&DefaultPage { s })?, 0o644).map_err(failed(&s.entry_point))?;
    }
    match &s.o.envvars_script {
        Some(script) => write(&s.envvars, &format!(". {}\n", crate::quote::shell(script)), 0o644).map_err(failed(&s.envvars))?,
        None if !Path::new(&s.envvars).exists() => write(&s.envvars, "", 0o644).map_err(failed(&s.envvars))?,
        None => {}
    }
    Ok(())
}
