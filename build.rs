//! Finds httpd and APR through `apxs -q`, generates allowlisted bindings,
//! compiles the C shim, and points the module at the chosen libpython.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn apxs_query(apxs: &str, var: &str) -> String {
    let out = Command::new(apxs)
        .args(["-q", var])
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{apxs} -q {var}` ({e}); install apache2-dev or set APXS"));
    assert!(out.status.success(), "`{apxs} -q {var}` failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("apxs output is not UTF-8").trim().to_string()
}

fn main() {
    println!("cargo:rerun-if-env-changed=APXS");
    println!("cargo:rerun-if-changed=apxs/wrapper.h");
    println!("cargo:rerun-if-changed=apxs/shim.h");
    println!("cargo:rerun-if-changed=apxs/shim.c");
    let apxs = env::var("APXS").unwrap_or_else(|_| "apxs".to_string());

    let mut include_dirs = vec![PathBuf::from("apxs")];
    for var in ["INCLUDEDIR", "APR_INCLUDEDIR", "APU_INCLUDEDIR"] {
        let dir = apxs_query(&apxs, var);
        if !dir.is_empty() {
            include_dirs.push(PathBuf::from(dir));
        }
    }
    // The -D flags httpd was built with change APR's type sizes; use the same.
    let defines: Vec<String> = apxs_query(&apxs, "EXTRA_CPPFLAGS")
        .split_whitespace()
        .filter(|f| f.starts_with("-D"))
        .map(str::to_string)
        .collect();

    let mut shim = cc::Build::new();
    shim.file("apxs/shim.c").warnings(true);
    for dir in &include_dirs {
        shim.include(dir);
    }
    for d in &defines {
        let (name, value) = d[2..].split_once('=').map_or((&d[2..], None), |(n, v)| (n, Some(v)));
        shim.define(name, value);
    }
    shim.compile("mrs_shim");

    let mut builder = bindgen::Builder::default()
        .header("apxs/wrapper.h")
        .clang_args(include_dirs.iter().map(|d| format!("-I{}", d.display())))
        .clang_args(&defines)
        .allowlist_function("ap_.*|apr_.*|mrs_.*")
        .allowlist_type("request_rec|conn_rec|server_rec|module|command_rec|cmd_parms|unixd_config_rec|authn_provider|authz_provider|authn_status|authz_status|ap_.*|apr_.*")
        .allowlist_var("MRS_.*|ap_unixd_config|OPT_.*|GLOBAL_ONLY|NOT_IN_.*|APR_.*|AP_.*|APLOG_.*|OK|DECLINED|DONE|HTTP_.*|RSRC_CONF|ACCESS_CONF|OR_.*|REQUEST_CHUNKED_.*|M_GET|M_POST|SERVER_.*")
        .blocklist_function("apr_.*_debug|ap_log_.*error_?|ap_log_perror_?")
        .default_macro_constant_type(bindgen::MacroTypeVariation::Signed)
        .derive_default(false)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    builder = builder.opaque_type("apr_thread_mutex_t");
    let bindings = builder.generate().expect("bindgen failed on the httpd headers");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    bindings.write_to_file(out.join("httpd_bindings.rs")).expect("cannot write bindings");

    link_python();
}

/// pyo3 links libpython; add an rpath when that library is not in a system
/// directory, so that Apache loads the same copy we built against.
fn link_python() {
    // Py_3_12 and friends, for what differs by Python version.
    pyo3_build_config::use_pyo3_cfgs();
    let config = pyo3_build_config::get();
    if let Some(lib_dir) = config.lib_dir() {
        let system = ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"];
        if !system.contains(&lib_dir.trim_end_matches('/')) {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,{lib_dir}");
        }
    }
    let version = config.version();
    println!("cargo:rustc-env=MRS_PYTHON_BUILD_VERSION={}.{}", version.major, version.minor);
}
