//! Where things are on this machine: our module, Apache and its helpers,
//! and the Python the module embeds. Defaults were found by the build
//! (`apxs -q`, pyo3's Python); the environment can point elsewhere.
use std::env;
use std::path::{Path, PathBuf};

/// The file name `make install` gives the module in Apache's module directory.
pub const MODULE_FILE: &str = "mod_wsgi_rs.so";
/// The file name cargo gives it in the build tree.
const BUILT_MODULE_FILE: &str = "libmod_wsgi_rs.so";

pub const PYTHON_PREFIX: &str = env!("MWE_PYTHON_PREFIX");
/// "major.minor" of the Python the module is linked with.
pub const PYTHON_VERSION: &str = env!("MWE_PYTHON_VERSION");
/// Whether that Python runs without a GIL (PEP 703).
pub fn python_free_threaded() -> bool {
    env!("MWE_PYTHON_FREE_THREADED") == "true"
}

/// Our module: `$MOD_WSGI_RS_SO` if set; else the one built next to this
/// executable (running from the build tree); else the installed one.
pub fn module_path() -> PathBuf {
    if let Some(path) = env::var_os("MOD_WSGI_RS_SO") {
        return PathBuf::from(path);
    }
    if let Some(built) = env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join(BUILT_MODULE_FILE))) {
        if built.is_file() {
            return built;
        }
    }
    Path::new(env!("MWE_LIBEXECDIR")).join(MODULE_FILE)
}

/// The first of `candidates` that exists.
fn first_existing(candidates: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    candidates.into_iter().find(|p| p.exists())
}

/// `name` itself if it is a path, else where it is on `$PATH` (or in `extra`).
pub fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = env::var_os("PATH").unwrap_or_default();
    first_existing(env::split_paths(&path).chain(extra.iter().map(PathBuf::from)).map(|dir| dir.join(name)))
}

/// Apache's executable: `$HTTPD` wins over `--httpd-executable`, as in
/// mod_wsgi-express; by default the one apxs names.
pub fn httpd(option: Option<&str>) -> String {
    let chosen = env::var("HTTPD").ok().or_else(|| option.map(str::to_string));
    let program = chosen.unwrap_or_else(|| {
        let name = env!("MWE_PROGNAME");
        first_existing([Path::new(env!("MWE_SBINDIR")).join(name), Path::new(env!("MWE_BINDIR")).join(name)])
            .map_or_else(|| name.to_string(), |p| p.display().to_string())
    });
    find_program(&program, &["/usr/sbin"]).map_or(program, |p| p.display().to_string())
}

pub fn rotatelogs() -> String {
    first_existing([Path::new(env!("MWE_SBINDIR")).join("rotatelogs"), Path::new(env!("MWE_BINDIR")).join("rotatelogs")])
        .map_or_else(|| "rotatelogs".to_string(), |p| p.display().to_string())
}

/// bash when there is one (the generated apachectl names Apache's parent
/// with `exec -a`, which plain sh lacks), else sh.
pub fn shell() -> String {
    ["bash", "sh"]
        .iter()
        .find_map(|name| find_program(name, &["/usr/local/bin", "/bin"]))
        .map_or_else(|| "/bin/sh".to_string(), |p| p.display().to_string())
}

pub fn mime_types() -> String {
    let candidates = ["/etc/mime.types", "/etc/apache2/mime.types", "/etc/httpd/mime.types", "/etc/httpd/conf/mime.types", "/usr/local/etc/mime.types"];
    first_existing(candidates.map(PathBuf::from)).map_or_else(|| "/dev/null".to_string(), |p| p.display().to_string())
}
