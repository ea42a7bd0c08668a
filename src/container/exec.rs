//! `dockling exec`: a new process inside all of a running container's namespaces and
//! root, with its environment. Like `nsenter --target PID --all` followed by the command.

use std::os::fd::OwnedFd;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sched::setns;
use nix::sys::wait::waitpid;
use nix::unistd::ForkResult;

use super::relay::{self, ContainerEnds};
use super::tty;
use crate::engine::execve;
use crate::engine::foreground::{forward_signals, wait_child};
use crate::engine::sync::{self, Failure, Message};
use crate::state::Store;
use crate::sys::{process, sealed_exe};
use crate::{error, explain};

pub struct ExecOptions {
    pub interactive: bool,
    pub tty: bool,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub command: Vec<String>,
}

pub fn exec(store: &Store, key: &str, opts: ExecOptions) -> Result<i32> {
    let c = store.resolve(key)?;
    let running = c.is_running();
    let (Some(pid), Some(start), true) = (c.pid, c.pid_start, running) else {
        return Err(error::exit(1, format!("container {} is not running", c.short_id())));
    };
    if opts.command.is_empty() {
        return Err(error::user("exec needs a command to run"));
    }
    // Nothing enters a container whose init is still dockling (before its exec).
    // (Asked once: the answer clears the re-exec marker.)
    let sealed = sealed_exe::running_sealed()?;
    if !sealed {
        wait_until_init_execs(pid, c.short_id())?;
    }
    // Before anything of ours enters the container: run from a sealed copy, non-dumpable.
    protect_host_binary(sealed)?;
    let _pin = process::pidfd(pid, start)
        .ok_or_else(|| error::exit(1, format!("container {} is not running", c.short_id())))?;
    let mut env = super::env::merge(c.env.clone(), super::env::parse_args(&opts.env)?);
    if opts.tty {
        env.retain(|e| !e.starts_with("TERM="));
        env.push(format!("TERM={}", std::env::var("TERM").unwrap_or_else(|_| "xterm".into())));
    }
    let workdir = opts.workdir.clone().unwrap_or_else(|| c.workdir.clone());

    // Same cgroups as the container (joined while host paths are still visible).
    crate::cgroups::join_self(&c.cgroups)?;
    // Open every namespace first: once we enter the mount namespace, host paths are gone.
    // Every namespace must open (only a kernel without cgroup namespaces may lack one):
    // entering some but not all would run the command half on the host.
    let mut namespaces = Vec::new();
    for (name, flag) in crate::engine::exec::NAMESPACES {
        let path = format!("/proc/{pid}/ns/{name}");
        match std::fs::File::open(&path) {
            Ok(f) => namespaces.push((f, flag)),
            Err(_) if name == "cgroup" && !std::path::Path::new("/proc/self/ns/cgroup").exists() => {}
            Err(_) => return Err(error::exit(1, format!("container {} is not running", c.short_id()))),
        }
    }
    // The fds pin the namespaces; make sure they still belong to the container we checked.
    if !process::same_process(pid, start) {
        return Err(error::exit(1, format!("container {} is not running", c.short_id())));
    }
    explain::approx(
        &format!("nsenter --target {pid} --all --wd={workdir} {}", opts.command.join(" ")),
        "enter every namespace of the container",
    );
    for (file, flag) in namespaces {
        setns(file, flag).with_context(|| format!("entering the container's {flag:?} namespace"))?;
    }
    // After setns(mnt) our root and cwd are the container's.
    let master = if opts.tty {
        let m = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .context("opening /dev/ptmx in the container")?;
        nix::pty::grantpt(&m)?;
        nix::pty::unlockpt(&m)?;
        let name = nix::pty::ptsname_r(&m)?;
        // SAFETY: we own the master fd and hand it to an OwnedFd exactly once.
        Some((
            unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(m)) },
            name,
        ))
    } else {
        None
    };
    // Without -t: pipes we copy from and to, never the caller's own descriptors.
    let stdio = if master.is_none() { Some(relay::pipes(opts.interactive)?) } else { None };
    let (pipes, ends) = match stdio {
        Some((ours, theirs)) => (Some(ours), Some(theirs)),
        None => (None, None),
    };
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: single-threaded; the child only sets up stdio and execs.
    match unsafe { nix::unistd::fork() }.context("forking")? {
        ForkResult::Child => {
            drop(err_r);
            drop(pipes);
            let pts = master.as_ref().map(|(_, n)| n.as_str());
            let failure = child(pts, ends.as_ref(), &opts.command, &mut env, &workdir, &c.security);
            let code = failure.code;
            let _ = sync::send(&mut std::fs::File::from(err_w), &Message::Failed(failure));
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            drop(err_w);
            drop(ends);
            // EOF: the command was exec'd; a message: the child's failure, which it exits with.
            let report = sync::receive(&mut std::fs::File::from(err_r));
            if !matches!(report, Ok(None)) {
                let _ = waitpid(child, None);
                return Err(match report {
                    Ok(Some(Message::Failed(failure))) => failure.into_error(),
                    Ok(other) => anyhow::anyhow!("exec's child sent {other:?}"),
                    Err(e) => anyhow::Error::new(e).context("reading exec's report"),
                });
            }
            forward_signals(child);
            if let Some((m, _)) = &master {
                tty::attach(m, opts.interactive)?;
            }
            if let Some(pipes) = pipes {
                // The pidfd ends the copy when the command exits, even if something it
                // started in the background holds the pipes open.
                let process = process::child_pidfd(child.as_raw());
                // A failed copy still waits for the command (no zombie, its code known).
                let relayed = relay::relay(pipes, process.as_ref());
                let code = wait_child(child).unwrap_or(error::RUNTIME_ERROR);
                relayed?;
                return Ok(code);
            }
            Ok(wait_child(child).unwrap_or(error::RUNTIME_ERROR))
        }
    }
}

/// Until its `execve`, a container's init is dockling itself, with every capability and
/// no seccomp filter: a process that `exec` put in the container then (the image's
/// program) could reach it, with `--cap-add SYS_PTRACE` even through non-dumpable. So
/// `exec` waits (bounded) until init's executable is no longer this binary.
fn wait_until_init_execs(pid: i32, short_id: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata("/proc/self/exe").context("reading /proc/self/exe")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let theirs = std::fs::metadata(format!("/proc/{pid}/exe"))
            .map_err(|_| error::exit(1, format!("container {short_id} is not running")))?;
        if (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()) {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(error::exit(1, format!("container {short_id} is still starting")));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Keeps the container from reaching the host's dockling binary through the child we fork
/// into it (its `/proc/PID/exe`, the CVE-2019-5736 class): the first pass re-executes this
/// command from a read-only view of the binary (see [`sealed_exe`]); the second makes itself
/// non-dumpable, which the child inherits until its `execve`. `run`'s init is only made
/// non-dumpable: see [`super::init::main`] for why that is enough there.
fn protect_host_binary(sealed: bool) -> Result<()> {
    if !sealed {
        explain::approx(
            "mount --bind -o ro /proc/self/exe /run/dockling.ro && exec /run/dockling.ro exec ...",
            "re-run from a read-only, detached view of dockling (open_tree, mount_setattr; or a sealed memfd copy), \
             so the container cannot rewrite the host's binary",
        );
        match sealed_exe::reexec_sealed()? {}
    }
    explain::approx(
        "prctl --dumpable=0",
        "no process of the container may open this one's /proc files (exe, mem, fd) before it execs",
    );
    sealed_exe::make_non_dumpable().context("prctl(PR_SET_DUMPABLE, 0)")
}

/// The forked child: a session of its own (no controlling terminal but its pty), stdio
/// (the pty or the relay's pipes), then exec.
fn child(
    pts: Option<&str>,
    ends: Option<&ContainerEnds>,
    command: &[String],
    env: &mut [String],
    workdir: &str,
    security: &crate::security::Security,
) -> Failure {
    let setup = || -> Result<(), (&str, nix::Error)> {
        nix::unistd::setsid().map_err(|e| ("setsid", e))?;
        if let Some(path) = pts {
            let slave = nix::fcntl::open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                .map_err(|e| ("opening the terminal", e))?;
            crate::sys::terminal::take_as_stdio(slave).map_err(|e| ("taking the terminal", e))?;
        }
        if let Some(ends) = ends {
            relay::take_as_stdio(ends).map_err(|e| ("taking the stdio pipes", e))?;
        }
        Ok(())
    };
    if let Err((step, e)) = setup() {
        return Failure::new(error::RUNTIME_ERROR, format!("setting up the exec'd process: {step}: {e}"));
    }
    match crate::engine::process::apply_security(security, command, env, workdir) {
        Ok(home) => super::env::apply_home(env, home),
        Err(e) => return Failure::setup(e),
    }
    execve::exec_command(command, env, workdir)
}
