//! `mod_wsgi-express` for mod_wsgi-rs: the command of the same name from
//! the `mod_wsgi` Python package, with its commands, option names and
//! defaults, generating an Apache server root that runs on the system's
//! Apache with our module. See docs/express.md.
#![forbid(unsafe_code)]
mod access;
mod capacity;
mod expand;
mod foreground;
mod install;
mod locale;
mod module_commands;
mod options;
mod quote;
mod render;
mod server;
mod summary;
mod unsupported;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};

use options::{Cli, Command};
use server::{Invalid, Server};

/// Why a command failed: the command line (exit 2, with usage) or the work.
pub enum Failure {
    Usage(String),
    Failed(String),
}

impl From<Invalid> for Failure {
    fn from(e: Invalid) -> Failure {
        Failure::Usage(e.0)
    }
}

const SERVER_COMMANDS: [&str; 2] = ["start-server", "setup-server"];

fn command() -> clap::Command {
    SERVER_COMMANDS.iter().fold(Cli::command(), |cli, name| cli.mut_subcommand(name, unsupported::declare))
}

fn setup(options: options::ServerOptions, argv: &[String]) -> Result<Server, Failure> {
    let server = Server::new(options, argv)?;
    render::write_server_root(&server).map_err(Failure::Failed)?;
    summary::print(&server);
    Ok(server)
}

fn run(cli: Cli, argv: &[String]) -> Result<i32, Failure> {
    match cli.command {
        Command::SetupServer(o) => setup(o, argv).map(|_| 0),
        Command::StartServer(o) => {
            let server = setup(o, argv)?;
            if server.o.setup_only {
                return Ok(0);
            }
            foreground::run(&server).map_err(Failure::Failed)
        }
        Command::ModuleConfig(o) => {
            println!("{}", module_commands::module_config(&o)?);
            Ok(0)
        }
        Command::InstallModule(o) => {
            println!("{}", module_commands::install_module(&o)?);
            Ok(0)
        }
        Command::ModuleLocation => {
            println!("{}", module_commands::module_location());
            Ok(0)
        }
    }
}

fn main() {
    let lookup = |name: &str| std::env::var(name).ok();
    let argv: Vec<String> = std::env::args_os()
        .enumerate()
        .map(|(i, arg)| match arg.into_string() {
            Ok(arg) if i > 0 => expand::expand_vars(&arg, lookup),
            Ok(arg) => arg,
            Err(arg) => {
                eprintln!("mod_wsgi-express: error: argument {} is not UTF-8", arg.to_string_lossy());
                std::process::exit(2);
            }
        })
        .collect();
    let command = command();
    let matches = command.clone().get_matches_from(&argv);
    // Reported like clap's own errors, with the subcommand's usage.
    let usage = |message: String| -> ! {
        let name = matches.subcommand_name().unwrap_or_default();
        let mut sub = command.find_subcommand(name).cloned().unwrap_or_default().bin_name(format!("mod_wsgi-express {name}"));
        sub.error(ErrorKind::ValueValidation, message).exit()
    };
    if let Some((_, sub)) = matches.subcommand().filter(|(name, _)| SERVER_COMMANDS.contains(name)) {
        if let Err(message) = unsupported::check(sub) {
            usage(message);
        }
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match run(cli, &argv) {
        Ok(code) => std::process::exit(code),
        Err(Failure::Usage(message)) => usage(message),
        Err(Failure::Failed(message)) => {
            eprintln!("mod_wsgi-express: error: {message}");
            std::process::exit(1);
        }
    }
}
