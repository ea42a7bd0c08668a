//! `dockling-runc`: the dockling binary under a second name, speaking runc's command line
//! as containerd's shim (and so Docker and Kubernetes) drives it
//! (`../shared/oci-runtime-protocol.md`): global `--root --log --log-format json`, then
//! one command. Errors go to `--log` as JSON lines ending in a `level: error` one, which
//! the shim reads; nothing is printed on stdout or stderr that the shim did not ask for.
//!
//! The container's lifecycle ([`lifecycle`]) goes through the same engine as `dockling
//! run`; the state runc keeps per container lives under `--root` ([`state`]).

mod features;
mod lifecycle;
mod log;
mod state;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "dockling-runc", disable_version_flag = true)]
struct Cli {
    /// Where the containers' state lives (default /run/dockling-runc).
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

/// What `create` and `run` take: the bundle, where the pid goes, the terminal's socket.
#[derive(clap::Args, Debug)]
struct Made {
    #[arg(short, long)]
    bundle: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    id: String,
}

impl Made {
    fn args(&self, preserve_fds: i32) -> Result<lifecycle::CreateArgs<'_>, String> {
        check_id(&self.id)?;
        Ok(lifecycle::CreateArgs {
            id: &self.id,
            bundle: self.bundle.as_deref(),
            pid_file: self.pid_file.as_deref(),
            console_socket: self.console_socket.as_deref(),
            preserve_fds,
        })
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// What this runtime supports, as JSON.
    Features,
    /// Makes the container from the bundle's config.json; its init waits for `start`.
    Create {
        #[command(flatten)]
        made: Made,
        /// Accepted: dockling always uses pivot_root.
        #[arg(long = "no-pivot")]
        no_pivot: bool,
        /// Accepted: no session keyring is made.
        #[arg(long = "no-new-keyring")]
        no_new_keyring: bool,
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: i32,
    },
    /// Runs a new process in a running container: the spec's `process` from --process,
    /// or the command after the id (with -t, --cwd, --env, --user).
    Exec {
        #[arg(long)]
        process: Option<PathBuf>,
        #[arg(short, long)]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(short, long)]
        tty: bool,
        #[arg(long)]
        cwd: Option<String>,
        #[arg(short, long)]
        env: Vec<String>,
        /// uid[:gid]
        #[arg(short, long)]
        user: Option<String>,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// create, start, wait and delete in one (the container's exit code is ours).
    Run {
        #[command(flatten)]
        made: Made,
    },
    /// Lets a created container exec its command.
    Start { id: String },
    /// Changes the container's limits: `--resources FILE` (or `-` for stdin) with the
    /// spec's LinuxResources JSON, or --memory / --pids-limit.
    Update {
        #[arg(short, long)]
        resources: Option<PathBuf>,
        #[arg(short, long)]
        memory: Option<String>,
        #[arg(long = "pids-limit")]
        pids_limit: Option<i64>,
        id: String,
    },
    /// Freezes every process of the container.
    Pause { id: String },
    /// Thaws them.
    Resume { id: String },
    /// The container's processes (host pids; JSON with --format json).
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
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
    // Our own paths are the caller's: `create` enters the bundle before it writes them.
    let mut cli = cli;
    if let Ok(cwd) = std::env::current_dir() {
        cli.log = cli.log.map(|p| cwd.join(p));
        cli.root = cli.root.map(|p| cwd.join(p));
    }
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
    let root = state::Root::new(cli.root.as_deref());
    match command {
        Command::Features => {
            println!("{}", features::json());
            Ok(0)
        }
        Command::Create { made, no_pivot: _, no_new_keyring: _, preserve_fds } => {
            lifecycle::create(&root, &made.args(*preserve_fds)?).map(|_| 0)
        }
        Command::Run { made } => lifecycle::run(&root, &made.args(0)?),
        Command::Exec { process, detach, pid_file, console_socket, tty, cwd, env, user, id, command } => {
            check_id(id)?;
            let args = lifecycle::ExecArgs {
                id,
                process: process.as_deref(),
                detach: *detach,
                pid_file: pid_file.as_deref(),
                console_socket: console_socket.as_deref(),
                tty: *tty,
                cwd: cwd.as_deref(),
                env,
                user: user.as_deref(),
                command,
            };
            lifecycle::exec(&root, &args)
        }
        Command::Start { id } => with_id(id, |id| lifecycle::start(&root, id)),
        Command::State { id } => with_id(id, |id| lifecycle::state(&root, id)),
        Command::Kill { all, id, signal } => with_id(id, |id| lifecycle::kill(&root, id, signal, *all)),
        Command::Delete { force, id } => with_id(id, |id| lifecycle::delete(&root, id, *force)),
        Command::Update { resources, memory, pids_limit, id } => {
            with_id(id, |id| lifecycle::update(&root, id, resources.as_deref(), memory.as_deref(), *pids_limit))
        }
        Command::Pause { id } => with_id(id, |id| lifecycle::pause(&root, id, true)),
        Command::Resume { id } => with_id(id, |id| lifecycle::pause(&root, id, false)),
        Command::Ps { format, id, ps_args: _ } => with_id(id, |id| lifecycle::ps(&root, id, format)),
        Command::List { format, quiet } => lifecycle::list(&root, format, *quiet).map(|_| 0),
        Command::Other(args) => Err(format!(
            "dockling-runc: {} is not supported yet",
            args.first().map(String::as_str).unwrap_or("this command")
        )),
    }
}

/// Runs a command on a checked id; exit 0 when it succeeded.
fn with_id(id: &str, f: impl FnOnce(&str) -> Result<(), String>) -> Result<i32, String> {
    check_id(id)?;
    f(id).map(|_| 0)
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
