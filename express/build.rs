//! Bakes in where this machine's Apache lives (from `apxs -q`) and which
//! Python the module is built for, so the launcher's defaults match the
//! module that `make install` puts next to it.
use std::env;
use std::process::Command;

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e})"));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("output is not UTF-8")
}

fn main() {
    println!("cargo:rerun-if-env-changed=APXS");
    let apxs = env::var("APXS").unwrap_or_else(|_| "apxs".to_string());
    // apxs prints several queried variables on one line, separated by ";;".
    let answer = run(&apxs, &["-q", "LIBEXECDIR", "SBINDIR", "BINDIR", "PROGNAME"]);
    let values: Vec<&str> = answer.trim().split(";;").collect();
    let [libexecdir, sbindir, bindir, progname] = values[..] else {
        panic!("unexpected `{apxs} -q` answer: {answer:?}");
    };
    println!("cargo:rustc-env=MWE_LIBEXECDIR={libexecdir}");
    println!("cargo:rustc-env=MWE_SBINDIR={sbindir}");
    println!("cargo:rustc-env=MWE_BINDIR={bindir}");
    println!("cargo:rustc-env=MWE_PROGNAME={progname}");

    // The module's Python: PYO3_PYTHON, which `make` sets for both crates.
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let python = env::var("PYO3_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".to_string());
    let script = "import sys, sysconfig\n\
                  print(sys.prefix)\n\
                  print('%d.%d' % sys.version_info[:2])\n\
                  print(bool(sysconfig.get_config_var('Py_GIL_DISABLED')))";
    let facts = run(&python, &["-c", script]);
    let [prefix, version, free_threaded] = facts.lines().collect::<Vec<_>>()[..] else {
        panic!("unexpected answer from {python}: {facts:?}");
    };
    println!("cargo:rustc-env=MWE_PYTHON_PREFIX={prefix}");
    println!("cargo:rustc-env=MWE_PYTHON_VERSION={version}");
    println!("cargo:rustc-env=MWE_PYTHON_FREE_THREADED={}", free_threaded == "True");
}
