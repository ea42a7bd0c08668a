//! `dockling run`: validate everything, record the container, clone it, wire it up,
//! release it to exec its command, and (attached) wait for it.

use std::fs;
use std::os::fd::OwnedFd;

use anyhow::{Context, Result};
use chrono::Utc;
use nix::sys::signal::{self, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use super::init::InitConfig;
use super::lifecycle::{self, finish};
use super::options::RunOptions;
use super::rootfs::RootfsConfig;
use super::{env, image_defaults, monitor, naming, record, relay, tty};
use crate::engine::foreground::{exit_code_of, forward_signals, wait_child};
use crate::engine::spawn::{self, SyncPipes};
use crate::engine::sync::{self, Message};
use crate::error;
use crate::network;
use crate::state::{Container, Status, Store};
use crate::sys::process;
use crate::types::NetworkMode;

/// How a `run` ended, for the command line to report.
pub enum Outcome {
    /// `-d`: the container runs on under its monitor.
    Detached(String),
    /// Attached: the container's exit code (Docker's: 128+N for signal N).
    Exited(i32),
}

/// `dockling run`: validate everything, record the container, clone it, wire it up, exec.
pub fn run(store: &Store, mut opts: RunOptions, pull_progress: &dyn crate::image::Progress) -> Result<Outcome> {
    // 1. Everything a user can get wrong is checked before anything is created.
    // The image (pulled first if missing; the pull's threads are gone when this returns),
    // and what its config says about command, env, workdir, user and ports.
    crate::timing::mark("run: parsed");
    let image = crate::image::for_run(store, &opts.image, opts.pull, pull_progress)?;
    crate::timing::mark("run: image");
    image_defaults::apply(&image.config(), &mut opts)?;
    if let Some(name) = &opts.name {
        naming::validate(name)?;
    }
    let ports = crate::types::parse_ports(&opts.publish)?;
    if !ports.is_empty() && opts.network != NetworkMode::Bridge {
        return Err(error::user(format!(
            "conflicting options: port publishing and the {} network mode",
            opts.network.as_str()
        )));
    }
    if opts.command.is_empty() {
        return Err(error::user("No command specified"));
    }
    if opts.network == NetworkMode::Container && opts.hostname.is_some() {
        return Err(error::user("conflicting options: hostname and the network mode"));
    }
    // The containers whose namespaces this one joins must run now; their namespaces are
    // named by their pids (/proc/PID/ns/...), checked again when init joins them.
    // Their namespaces are opened now (a pid alone could be reused by then) and named by
    // our descriptors, /proc/self/fd/N, which the clone and the monitor's fork inherit.
    let net_of = opts.network_of.as_deref().map(|x| open_namespace(store, x, "net")).transpose()?;
    let pid_of = opts.pid_of.as_deref().map(|x| open_namespace(store, x, "pid")).transpose()?;
    let mut env = env::build_env(&opts.env)?;
    if opts.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let workdir = opts.workdir.clone().unwrap_or_else(|| "/".into());
    if !workdir.starts_with('/') {
        return Err(error::user(format!(
            "the working directory '{workdir}' is invalid, it needs to be an absolute path"
        )));
    }
    if let Some(h) = &opts.hostname {
        if h.is_empty() || h.len() > 64 || !h.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)) {
            return Err(error::user(format!("invalid hostname format: {h}")));
        }
    }

    // 2. The record, created under the names lock so two runs never share a name. A name
    // or port held by a container whose monitor died is freed by finishing its teardown.
    let mut c = lifecycle::retry_after_reconcile(store, || {
        record::create(store, &opts, &image.id, env.clone(), workdir.clone())
    })?;
    let id = c.id.clone();
    crate::timing::mark("run: record");
    // (The lease and ports live in the network state under the container's id, and the
    // cgroups were in the record from the start; the network's plan (veth, netns name,
    // port rules, port filter) is written before `prepare` starts making any of it.)
    let started = lifecycle::retry_after_reconcile(store, || network::reserve(store, &mut c, &ports))
        .and_then(|_| {
            crate::timing::mark("run: reserved");
            network::plan(&mut c);
            network::prepare(store, &c)
        })
        .and_then(|prepared| {
            crate::timing::mark("run: prepared");
            crate::cgroups::create(&c.cgroups, &c.limits, !c.security.privileged)?;
            crate::timing::mark("run: cgroups");
            let joins = (net_of.as_ref().map(fd_path), pid_of.as_ref().map(fd_path));
            start(store, &c, &image, &opts, joins).map(|started| (started, prepared))
        });
    // (On failure the prepared network is dropped before `abandon` cleans up: an
    // `iptables-restore` still running is waited for first.)
    let ((pid, monitor, mut starter, io), prepared) = match started {
        Ok(v) => v,
        Err(e) => {
            abandon(store, &id, &c.name);
            return Err(e);
        }
    };

    // 4. The process is recorded before the rest of the network is made and before the
    // process can run (a crash leaves a record that says what to clean). From here on it
    // counts as running.
    c.pid = Some(pid.as_raw());
    c.pid_start = process::start_time(pid.as_raw());
    c.monitor_pid = Some(monitor.as_raw());
    c.monitor_start = process::start_time(monitor.as_raw());
    c.started_at = Some(Utc::now());
    c.status = Status::Running;
    crate::timing::mark("run: cloned");
    let setup = (|| -> Result<()> {
        // Under the container's lock: a `stop`, an `rm -f`, or the monitor finishing a
        // container that died during setup waits until everything planned here exists
        // (and is recorded), then undoes all of it; and this write can never overwrite
        // the exit they record.
        let _lock = store.lock_container(&id)?;
        if store.load(&id)?.status == Status::Exited {
            anyhow::bail!("the container exited before it started");
        }
        store.save(&c)?;
        network::attach(&c, pid, prepared)
    })();
    crate::timing::mark("run: attached");
    if let Err(e) = setup {
        // Killed from outside during setup: report that, as the exit it is.
        if !opts.detach {
            if let Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) =
                waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
            {
                let code = exit_code_of(status);
                let _ = finish(store, &id, code);
                // Init may have died of its own failure and said why on the error pipe.
                if let Some(failure) = starter.wait_exec() {
                    return Err(failure.into_error());
                }
                return Ok(Outcome::Exited(code.unwrap_or(error::RUNTIME_ERROR)));
            }
        }
        let _ = signal::kill(pid, Signal::SIGKILL);
        if !opts.detach {
            let _ = waitpid(pid, None);
            let _ = finish(store, &id, Some(error::RUNTIME_ERROR));
        } else {
            lifecycle::wait_for_monitor(store, &id);
        }
        abandon(store, &id, &c.name);
        // If init failed on its own, its message says more than what we tripped over.
        if let Some(failure) = starter.wait_exec() {
            return Err(failure.into_error());
        }
        return Err(e);
    }
    // The container's terminal arrives once its /dev is ready (or not at all if init failed).
    let (master, pipes) = match io {
        Attach::Tty(sock) => (Some(crate::engine::console::receive_master(&sock)), None),
        Attach::Pipes(p) => (None, Some(p)),
        Attach::Nothing => (None, None),
    };
    // The pidfd ends the copy when init is gone (and with it every process of its pid
    // namespace), even if a descriptor passed elsewhere holds a pipe open. Opened while
    // init is our unreaped child, so it cannot name another process.
    let process = pipes.as_ref().and_then(|_| process::child_pidfd(pid.as_raw()));
    // If init failed while preparing the root (and is gone), the go byte meets a closed
    // pipe: its own message, read next, says what went wrong.
    let released = starter.release();
    if !opts.detach {
        forward_signals(pid);
    }
    // Without -t, the copy runs from here until the container is gone, and whether its
    // command was exec'd is read after (init's failure waits in the error pipe, or EOF):
    // `run` then sleeps from the go byte to the container's end and is woken once, not
    // also at the exec (see relay::relay on wake-ups). Init writes nothing to the pipes
    // before its exec. A failed copy still waits for the container and finishes it (no
    // record left running), then reports the failure.
    let relayed = match pipes {
        Some(pipes) => relay::relay(pipes, process.as_ref()),
        None => Ok(()),
    };
    if let Some(failure) = starter.wait_exec() {
        if !opts.detach {
            let status = wait_child(pid);
            let _ = finish(store, &id, status.or(Some(failure.code)));
        }
        return Err(failure.into_error());
    }
    if let Err(e) = released {
        // Gone without a word (killed from outside before it started).
        if !opts.detach {
            let status = wait_child(pid);
            let _ = finish(store, &id, status);
        }
        return Err(e);
    }
    if opts.detach {
        return Ok(Outcome::Detached(id));
    }
    if let Some(master) = master {
        tty::attach(&master?, opts.interactive)?;
    }
    crate::timing::mark("run: released");
    let code = wait_child(pid);
    crate::timing::mark("run: exited");
    finish(store, &id, code)?;
    relayed?;
    crate::timing::mark("run: finished");
    Ok(Outcome::Exited(code.unwrap_or(error::RUNTIME_ERROR)))
}

/// How an attached `run` reaches the container's stdio.
enum Attach {
    /// `-t`: the socket the pty master arrives on.
    Tty(OwnedFd),
    /// Our ends of the stdio pipes.
    Pipes(relay::Pipes),
    /// `-d`: the monitor has them.
    Nothing,
}

/// Step 3: init's configuration and the clone (still single-threaded here). Returns the
/// container's pid, the pid of the process that waits for it, and the host side's handles.
fn start(
    store: &Store,
    c: &Container,
    image: &crate::image::Image,
    opts: &RunOptions,
    (net_of, pid_of): (Option<String>, Option<String>),
) -> Result<(Pid, Pid, spawn::Starter, Attach)> {
    let id = &c.id;
    let dir = store.container_dir(id);
    for sub in ["upper", "work"] {
        fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {sub} dir"))?;
    }
    crate::timing::mark("start: dirs");
    let mut cfg = InitConfig {
        rootfs: RootfsConfig {
            lowers: image.layers(),
            upper: dir.join("upper"),
            work: dir.join("work"),
            // The overlay goes over the container's own directory, inside the container's
            // mount namespace only (the host still sees upper/ and work/ there): one
            // directory fewer to make and delete per container.
            merged: dir.clone(),
            etc_files: network::etc_files(c),
            spec_mounts: crate::engine::defaults::mounts(c.security.privileged),
            mounts: super::mounts::to_spec(&c.mounts),
        },
        hostname: c.hostname.clone(),
        argv: c.command.clone(),
        env: c.env.clone(),
        workdir: c.workdir.clone(),
        namespaces: crate::engine::namespaces::plan(&crate::engine::defaults::namespaces(
            c.network_mode != NetworkMode::Host,
            net_of,
            pid_of,
        ))?,
        eth0: network::eth0(c),
        network_mode: c.network_mode,
        cgroups: c.cgroups.clone(),
        security: c.security.clone(),
        console: None,
        stdio: None,
    };
    let console = if opts.tty {
        let (ours, theirs) = crate::engine::console::console_socket()?;
        cfg.console = Some(theirs);
        Some(ours)
    } else {
        None
    };
    let pipes = SyncPipes::new()?;
    crate::timing::mark("start: config");
    if opts.detach {
        let (pid, monitor, starter) = fork_monitor(store, id, cfg, pipes, console)?;
        return Ok((pid, monitor, starter, Attach::Nothing));
    }
    let attach = match console {
        Some(sock) => Attach::Tty(sock),
        None => {
            // Never the caller's own descriptors: pipes we copy from and to.
            let (ours, theirs) = relay::pipes(opts.interactive)?;
            cfg.stdio = Some(theirs);
            Attach::Pipes(ours)
        }
    };
    // The container's ends go with cfg: closed here once the clone has its copies.
    let pid = super::init::spawn(cfg, &pipes)?;
    Ok((pid, Pid::this(), pipes.into_starter(), attach))
}

/// The `kind` namespace (`net`, `pid`) of container `key`, which must be running,
/// opened (close-on-exec). Docker's words in the errors.
fn open_namespace(store: &Store, key: &str, kind: &str) -> Result<OwnedFd> {
    let what = if kind == "net" { "network" } else { "PID namespace" };
    let x = store.resolve(key).map_err(|_| error::user(format!("No such container: {key}")))?;
    let not_running = || error::user(format!("cannot join {what} of a non running container: {key}"));
    let pid = x.pid.filter(|_| x.process_alive()).ok_or_else(not_running)?;
    // Its init runs this binary until it execs: a privileged container that shares its pid
    // namespace could read it through /proc/PID/exe.
    if kind == "pid" && (x.security.privileged || x.security.capabilities.iter().any(|c| c == "CAP_SYS_PTRACE")) {
        return Err(error::user(format!(
            "joining the PID namespace of {key} is not supported: it holds CAP_SYS_PTRACE"
        )));
    }
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/{kind}")).map_err(|_| not_running())?;
    // Still the same process (not a pid reused meanwhile): the descriptor is its namespace.
    if !x.process_alive() {
        return Err(not_running());
    }
    Ok(ns.into())
}

/// A descriptor of ours as a path any process we fork or clone can open.
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd))
}

/// A `run` that failed before its container ran: undo what it made; the record goes
/// only if everything was undone (otherwise `rm -f` can still finish the job).
fn abandon(store: &Store, id: &str, name: &str) {
    if lifecycle::cleanup(store, id).is_ok() {
        let _names = store.lock_names();
        let _ = store.remove_dir_now(id, name);
    }
}

/// Forks the monitor, which clones the container as its own child; returns both pids.
fn fork_monitor(
    store: &Store,
    id: &str,
    cfg: InitConfig,
    pipes: SyncPipes,
    console: Option<OwnedFd>,
) -> Result<(Pid, Pid, spawn::Starter)> {
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // The monitor writes its container's --explain lines to a saved copy of our stderr.
    let explain_fd = if crate::explain::enabled() { nix::unistd::dup(2).ok() } else { None };
    // SAFETY: single-threaded here; the child only runs monitor::run and exits.
    match unsafe { nix::unistd::fork() }.context("forking the monitor")? {
        ForkResult::Child => {
            drop(report_r);
            if let Some(fd) = explain_fd {
                crate::explain::set_output(fd);
            }
            monitor::run(store, id, cfg, pipes, report_w, console)
        }
        ForkResult::Parent { child } => {
            drop(report_w);
            if let Some(fd) = explain_fd {
                let _ = nix::unistd::close(fd);
            }
            drop(cfg);
            drop(console);
            let starter = pipes.into_starter();
            let report = sync::receive(&mut std::fs::File::from(report_r)).context("reading from the monitor");
            match report? {
                Some(Message::Started { pid }) => Ok((Pid::from_raw(pid), child, starter)),
                other => {
                    let _ = waitpid(child, None);
                    Err(match other {
                        Some(Message::Failed(failure)) => failure.into_error(),
                        _ => anyhow::anyhow!("the monitor failed to start the container"),
                    })
                }
            }
        }
    }
}
