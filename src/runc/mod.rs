//! `dockling-runc`: the dockling binary under a second name, speaking runc's command line
//! as containerd's shim (and so Docker and Kubernetes) drives it
//! (`../shared/oci-runtime-protocol.md`): global `--root --log --log-format json`, then
//! one command. Errors go to `--log` as JSON lines ending in a `level: error` one, which
//! the shim reads; nothing is printed on stdout or stderr that the shim did not ask for.
//!
//! So far the commands that need no container of ours: `--version`, `features`, and the
//! answers about ids we do not have (`state`, `kill`, `delete`, `list`). `create`,
//! `start`, `exec` and the rest come with the engine's create/start.

mod features;
mod log;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "dockling-runc", disable_version_flag = true)]
struct Cli {
    /// Where the containers' state lives (nothing is kept there yet).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Where errors go (the shim reads it).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Accepted, as runc's.
    #[arg(long, global = true)]
    debug: bool,
    /// Refused: dockling manages its cgroups itself.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// What this runtime supports, as JSON.
    Features,
    /// A container's state, as JSON.
    State { id: String },
    /// The containers, one per line (or JSON with --format json).
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Sends a signal (a name or a number) to a container's init, or with --all to all
    /// its processes.
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Removes a container; --force also when it runs, and succeeds when it is gone.
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// The rest of runc's commands, not yet here.
    #[command(external_subcommand)]
    Other(Vec<String>),
}

/// `dockling-runc ARGS...`: the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                return 0;
            }
            let text = e.render().to_string();
            eprintln!(
                "dockling-runc: {}",
                text.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ")
            );
            return 1;
        }
    };
    let logger = log::Log::new(cli.log.clone(), cli.log_format == "json");
    match run(&cli) {
        Ok(code) => code,
        Err(msg) => {
            logger.error(&msg);
            1
        }
    }
}

fn run(cli: &Cli) -> Result<i32, String> {
    if cli.version {
        println!("dockling-runc version {}\nspec: {}", env!("CARGO_PKG_VERSION"), features::OCI_VERSION_MAX);
        return Ok(0);
    }
    if cli.systemd_cgroup {
        return Err("--systemd-cgroup is not supported: dockling manages its cgroups itself".into());
    }
    let Some(command) = &cli.command else {
        return Err("no command given (see dockling-runc --help)".into());
    };
    match command {
        Command::Features => {
            println!("{}", features::json());
            Ok(0)
        }
        Command::State { id } | Command::Kill { id, .. } => {
            check_id(id)?;
            Err(format!("container {id} does not exist"))
        }
        Command::Delete { force, id } => {
            check_id(id)?;
            // Nothing of ours by that id: what `delete --force` must accept after a failed
            // create (the shim always sends one).
            if *force {
                return Ok(0);
            }
            Err(format!("container {id} does not exist"))
        }
        Command::List { format, quiet } => {
            if format == "json" {
                println!("[]");
            } else if !quiet {
                println!("ID          PID         STATUS      BUNDLE      CREATED     OWNER");
            }
            Ok(0)
        }
        Command::Other(args) => Err(format!(
            "dockling-runc: {} is not supported yet",
            args.first().map(String::as_str).unwrap_or("this command")
        )),
    }
}

/// An id names a directory under the root: no path tricks.
fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c))
        && id != "."
        && id != "..";
    if ok {
        Ok(())
    } else {
        Err(format!("invalid container id {id:?}"))
    }
}
