//! mod_wsgi-express options this launcher knows but cannot honour yet. They
//! are parsed (so the error names the option and says why, instead of
//! "unexpected argument") and listed under their own heading in --help.
use clap::{Arg, ArgAction, ArgMatches, Command};

const HANDLER_SCRIPT: &str = "it needs WSGIHandlerScript, which mod_wsgi-rs does not implement yet";
const REWRITE_RULES: &str = "mod_wsgi-express runs these rules in the document root's per-directory context, \
     which requests for the application do not pass through until it is mounted with WSGIHandlerScript, \
     which mod_wsgi-rs does not implement yet";
const SERVICE: &str = "this launcher does not write service-script groups yet; the module runs them: add a \
     WSGIDaemonProcess with threads=0 and a WSGIImportScript for it with --include-file (see docs/daemon-mode.md)";
const TELEMETRY: &str = "the bundled ingester runs as a service script, which this launcher does not write yet; \
     run your own ingester and use --telemetry-service unix:PATH";
const DEBUG: &str = "debug mode (one Apache process attached to the terminal, with pdb, coverage, \
     cProfile, request recording or gdb) is not provided by this mod_wsgi-express yet";
const DOCS: &str = "the documentation it serves ships with the mod_wsgi Python package, not with mod_wsgi-rs";
const PHP: &str = "PHP is not supported";

/// (option, how many values it takes, why it is refused)
const OPTIONS: &[(&str, usize, &str)] = &[
    ("add-handler", 2, HANDLER_SCRIPT),
    ("rewrite-rules", 1, REWRITE_RULES),
    ("service-script", 2, SERVICE),
    ("service-user", 2, SERVICE),
    ("service-group", 2, SERVICE),
    ("service-log-file", 2, SERVICE),
    ("enable-telemetry", 0, TELEMETRY),
    ("telemetry-ui-port", 1, TELEMETRY),
    ("debug-mode", 0, DEBUG),
    ("enable-debugger", 0, DEBUG),
    ("debugger-startup", 0, DEBUG),
    ("enable-coverage", 0, DEBUG),
    ("coverage-directory", 1, DEBUG),
    ("enable-profiler", 0, DEBUG),
    ("profiler-directory", 1, DEBUG),
    ("enable-recorder", 0, DEBUG),
    ("recorder-directory", 1, DEBUG),
    ("enable-gdb", 0, DEBUG),
    ("gdb-executable", 1, DEBUG),
    ("enable-docs", 0, DOCS),
    ("with-php5", 0, PHP),
];

/// Adds the refused options to a server command.
pub fn declare(command: Command) -> Command {
    OPTIONS.iter().fold(command, |command, &(name, values, _)| {
        let arg = Arg::new(name).long(name).value_name("VALUE").help_heading("Not supported (yet)").help("See docs/express.md");
        let arg = match values {
            0 => arg.action(ArgAction::SetTrue),
            n => arg.num_args(n).action(ArgAction::Append),
        };
        command.arg(arg)
    })
}

/// The first refused option given, as an error message.
pub fn check(matches: &ArgMatches) -> Result<(), String> {
    for &(name, values, why) in OPTIONS {
        let given = if values == 0 { matches.get_flag(name) } else { matches.contains_id(name) };
        if given {
            return Err(format!("--{name} is not supported by mod_wsgi-rs's mod_wsgi-express: {why}"));
        }
    }
    Ok(())
}
