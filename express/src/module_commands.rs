//! module-config, install-module and module-location: loading this
//! module into an Apache configured by hand.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::install;
use crate::options::{InstallOptions, ModuleOptions};
use crate::quote;
use crate::server::{check_python_home, Invalid};
use crate::Failure;

fn python_home(options: &ModuleOptions) -> Result<String, Invalid> {
    match &options.python_home {
        Some(home) => {
            check_python_home(home)?;
            Ok(std::path::absolute(home).map_or_else(|_| home.clone(), |p| p.display().to_string()))
        }
        None => Ok(install::PYTHON_PREFIX.to_string()),
    }
}

fn config_lines(module: &Path, home: &str) -> String {
    format!("LoadModule wsgi_module {}\nWSGIPythonHome {}", quote::apache(&module.display().to_string()), quote::apache(home))
}

pub fn module_config(options: &ModuleOptions) -> Result<String, Invalid> {
    Ok(config_lines(&install::module_path(), &python_home(options)?))
}

pub fn install_module(options: &InstallOptions) -> Result<String, Failure> {
    let home = python_home(&options.module)?;
    let source = install::module_path();
    let target = Path::new(&options.modules_directory).join(install::MODULE_FILE);
    let cannot = |e: std::io::Error| Failure::Failed(format!("cannot copy {} to {}: {e}", source.display(), target.display()));
    std::fs::copy(&source, &target).map_err(cannot)?;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).map_err(cannot)?;
    Ok(config_lines(&target, &home))
}

pub fn module_location() -> String {
    install::module_path().display().to_string()
}
