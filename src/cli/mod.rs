//! Command-line interface: clap definitions and dispatch to the commands.

pub mod humanize;
mod images;
mod inspect;
mod lifecycle;
mod logs;
mod network;
mod progress;
mod ps;
mod stats;
mod table;
mod template;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::container::{self, RunOptions};
use crate::state::Store;
use crate::types::{FirewallDriver, NetworkMode};

#[derive(Parser, Debug)]
#[command(
    name = "dockling",
    version,
    about = "A small, real container runtime that shows how Docker builds a container"
)]
pub struct Cli {
    /// Where dockling keeps images, containers and runtime state.
    #[arg(long, global = true, env = "DOCKLING_ROOT")]
    pub root: Option<PathBuf>,
    /// Print every host change as the shell command a person would type.
    #[arg(long, global = true)]
    pub explain: bool,
    /// Subnet of the default bridge network (used when the bridge is created).
    /// (Default 10.131.0.0/24; fixed once the first container got an address.)
    #[arg(long, global = true, env = "DOCKLING_SUBNET")]
    pub subnet: Option<String>,
    /// Firewall driver for the bridge network's rules: iptables (Docker's; the default)
    /// or nftables. Fixed once the network has rules (`network prune` resets it).
    #[arg(long, global = true, env = "DOCKLING_FIREWALL_DRIVER", value_parser = clap::value_parser!(FirewallDriverArg))]
    pub firewall_driver: Option<FirewallDriverArg>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and run a container from an image.
    Run(Box<RunArgs>),
    /// List containers.
    Ps {
        /// Show all containers (default shows just running).
        #[arg(short, long)]
        all: bool,
        /// Only display container IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Don't truncate output.
        #[arg(long)]
        no_trunc: bool,
    },
    /// Stop one or more running containers.
    Stop {
        /// Seconds to wait before killing the container.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove one or more containers.
    Rm {
        /// Force the removal of a running container (uses SIGKILL).
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Fetch the logs of a container.
    Logs {
        /// Follow log output.
        #[arg(short, long)]
        follow: bool,
        /// Number of lines to show from the end of the logs ("all" for everything).
        #[arg(short = 'n', long, default_value = "all", allow_hyphen_values = true)]
        tail: String,
        container: String,
    },
    /// Display detailed information on containers.
    Inspect {
        /// List the iptables rules each container owns, with packet and byte counters.
        #[arg(long)]
        rules: bool,
        /// Format the output using a Go-template-like field path, e.g. '{{.NetworkSettings.IPAddress}}'.
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Import a root filesystem (directory or tarball) as an image.
    Import {
        /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV, ...).
        #[arg(short, long)]
        change: Vec<String>,
        source: PathBuf,
        reference: Option<String>,
    },
    /// List images.
    Images {
        #[arg(short, long)]
        quiet: bool,
        /// Don't truncate output.
        #[arg(long)]
        no_trunc: bool,
    },
    /// Download an image from a registry.
    Pull {
        /// Use plain HTTP for this registry (loopback registries always do).
        #[arg(long)]
        insecure: bool,
        /// Print only the image reference.
        #[arg(short, long)]
        quiet: bool,
        reference: String,
    },
    /// Load images from a `docker save` tarball or an OCI archive.
    Load {
        /// Read from this file instead of stdin.
        #[arg(short, long)]
        input: Option<PathBuf>,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Save images to a tarball (docker save and OCI archive in one).
    Save {
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove one or more images.
    Rmi {
        /// Untag even if a container uses the image (its layers stay while it does).
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Manage images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Manage the dockling network.
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// Run a command in a running container.
    Exec {
        /// Keep STDIN open.
        #[arg(short, long)]
        interactive: bool,
        /// Allocate a pseudo-TTY.
        #[arg(short, long)]
        tty: bool,
        /// Set environment variables.
        #[arg(short, long = "env")]
        env: Vec<String>,
        /// Working directory inside the container.
        #[arg(short, long)]
        workdir: Option<String>,
        container: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Display a live stream of container resource usage (cgroups).
    Stats {
        /// Disable streaming stats and only pull the first result.
        #[arg(long)]
        no_stream: bool,
        containers: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Remove unused images (unnamed ones; with -a all that no container uses).
    Prune {
        #[arg(short, long)]
        all: bool,
        /// Do not prompt (dockling never does).
        #[arg(short, long)]
        force: bool,
    },
    /// List images.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        #[arg(long)]
        no_trunc: bool,
    },
    /// Display detailed information on images.
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove one or more images.
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Remove the bridge and dockling's shared iptables chains when no container uses them.
    Prune,
    /// Show the bridge, subnet, leases and published ports.
    Ls,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Container host name.
    #[arg(long, short = 'h')]
    pub hostname: Option<String>,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Publish a container's port to the host: [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO].
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Add Linux capabilities (or ALL).
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities (or ALL).
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges: all capabilities, no seccomp, no masked paths.
    #[arg(long)]
    pub privileged: bool,
    /// Security options: no-new-privileges[=false], seccomp=unconfined.
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Bind mount a volume: HOST_PATH:CONTAINER_PATH[:ro].
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Mount a tmpfs directory: PATH[:OPTIONS] (noexec,nosuid,nodev unless exec, suid, dev; size=, mode=, ro).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Memory limit (e.g. 64m).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Connect the container to a network: bridge, none, host, or container:NAME (share
    /// that container's network namespace).
    #[arg(long, alias = "net", default_value = "bridge")]
    pub network: String,
    /// PID namespace to use: container:NAME shares that container's.
    #[arg(long)]
    pub pid: Option<String>,
    /// Publish all the image's exposed ports to free host ports.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Overwrite the image's default ENTRYPOINT.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Pull the image before running: missing, always or never.
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: crate::image::PullPolicy,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `--firewall-driver`'s value: a [`FirewallDriver`], parsed by its `FromStr`.
#[derive(Debug, Clone, Copy)]
pub struct FirewallDriverArg(pub FirewallDriver);

impl std::str::FromStr for FirewallDriverArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(FirewallDriverArg)
    }
}

/// Runs the parsed command; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    crate::explain::enable(cli.explain);
    let mut store = Store::open(cli.root.clone(), cli.subnet.as_deref())?;
    store.firewall = cli.firewall_driver.map(|d| d.0);
    match cli.command {
        Command::Run(args) => {
            let args = *args;
            let mode = NetworkMode::parse(&args.network)?;
            if mode == NetworkMode::Bridge {
                let (driver, note) = crate::network::firewall_driver(&store)?;
                if let Some(note) = note {
                    eprintln!("dockling: {note}");
                }
                store.firewall = Some(driver);
            }
            let opts = RunOptions {
                detach: args.detach,
                interactive: args.interactive,
                tty: args.tty,
                auto_remove: args.rm,
                name: args.name,
                hostname: args.hostname,
                env: args.env,
                workdir: args.workdir,
                publish: args.publish,
                network: mode,
                network_of: NetworkMode::container_of(&args.network).map(str::to_string),
                pid_of: match args.pid.as_deref() {
                    None => None,
                    Some(p) => Some(
                        NetworkMode::container_of(p)
                            .ok_or_else(|| crate::error::user(format!("invalid --pid {p:?} (use container:NAME)")))?
                            .to_string(),
                    ),
                },
                security: crate::security::Security::from_flags(
                    &args.cap_add,
                    &args.cap_drop,
                    args.privileged,
                    &args.security_opt,
                    args.user,
                    args.read_only,
                )?,
                limits: crate::cgroups::Limits::from_flags(
                    args.memory.as_deref(),
                    args.cpus.as_deref(),
                    args.pids_limit,
                )?,
                mounts: container::mounts::parse(&args.volume, &args.tmpfs)?,
                image: args.image,
                command: args.command,
                publish_all: args.publish_all,
                entrypoint: args.entrypoint,
                pull: args.pull,
            };
            // A pull on the way reports on stderr: stdout is the container's.
            match container::run(&store, opts, &progress::Terminal::new(false, true))? {
                container::RunOutcome::Detached(id) => {
                    println!("{id}");
                    Ok(0)
                }
                container::RunOutcome::Exited(code) => Ok(code),
            }
        }
        Command::Ps { all, quiet, no_trunc } => ps::ps(&store, all, quiet, no_trunc).map(|_| 0),
        Command::Stop { time, containers } => Ok(lifecycle::stop(&store, &containers, time)),
        Command::Rm { force, containers } => Ok(lifecycle::rm(&store, &containers, force)),
        Command::Logs { follow, tail, container } => logs::logs(&store, &container, follow, &tail).map(|_| 0),
        Command::Inspect { rules, format, containers } => {
            container::reconcile_all(&store);
            if rules {
                inspect::rules(&store, &containers)
            } else {
                inspect::inspect(&store, &containers, format.as_deref())
            }
        }
        Command::Import { source, reference, change } => {
            images::import(&store, &source, reference.as_deref(), &change).map(|_| 0)
        }
        Command::Images { quiet, no_trunc } => images::list(&store, quiet, no_trunc).map(|_| 0),
        Command::Pull { insecure, quiet, reference } => images::pull(&store, &reference, insecure, quiet).map(|_| 0),
        Command::Load { input, quiet } => images::load(&store, input.as_deref(), quiet).map(|_| 0),
        Command::Save { output, images: keys } => images::save(&store, &keys, output.as_deref()).map(|_| 0),
        Command::Rmi { force, images: keys } => images::rmi(&store, &keys, force),
        Command::Image { command } => match command {
            ImageCommand::Prune { all, .. } => images::prune(&store, all).map(|_| 0),
            ImageCommand::Ls { quiet, no_trunc } => images::list(&store, quiet, no_trunc).map(|_| 0),
            ImageCommand::Inspect { images: keys } => images::inspect(&store, &keys),
            ImageCommand::Rm { force, images: keys } => images::rmi(&store, &keys, force),
        },
        Command::Network { command: NetworkCommand::Prune } => {
            container::reconcile_all(&store);
            network::prune(&store).map(|_| 0)
        }
        Command::Network { command: NetworkCommand::Ls } => {
            container::reconcile_all(&store);
            network::ls(&store).map(|_| 0)
        }
        Command::Exec { interactive, tty, env, workdir, container: name, command } => {
            container::exec(&store, &name, container::ExecOptions { interactive, tty, env, workdir, command })
        }
        Command::Stats { no_stream, containers } => stats::stats(&store, &containers, no_stream).map(|_| 0),
    }
}
