//! A new process in a running container (`dockling-runc exec`): it enters the container's
//! cgroups and every namespace of its init, takes the spec's `process` settings, and
//! execs. The caller joins the pid namespace only for its child (setns on
//! pid_for_children), so the caller itself never enters the container's mount namespace
//! and writes the pid file on the host's paths; with `detach` it exits and the process
//! is re-parented to the caller's subreaper (containerd's shim).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::sched::{setns, CloneFlags};
use nix::unistd::{ForkResult, Pid};

use super::sync::{self, Failure, Message};
use super::{console, execve, process};
use crate::explain;

/// A container's namespaces as /proc/PID/ns names them, in the order a process enters
/// them: the mount namespace last (host paths are gone after it), the pid one before it
/// (it applies to the children that follow).
pub const NAMESPACES: [(&str, CloneFlags); 6] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// The container to enter.
pub struct Target<'a> {
    pub pid: i32,
    pub pid_start: u64,
    pub cgroups: &'a [PathBuf],
}

/// Starts `plan` in the container; returns the new process's pid once it exec'd (its
/// failure to exec is the error).
pub fn exec(target: &Target, plan: &process::Plan, console_socket: Option<&Path>) -> Result<Pid> {
    let pid = target.pid;
    // Every namespace opened first, pinned by descriptor, then checked to be the init we
    // recorded (not a reused pid).
    let mut namespaces = Vec::new();
    for (name, flag) in NAMESPACES.into_iter().filter(|(_, f)| *f != CloneFlags::CLONE_NEWPID) {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let file = File::open(&theirs).map_err(|_| anyhow!("container not running"))?;
        namespaces.push((file, flag));
    }
    let pid_ns = File::open(format!("/proc/{pid}/ns/pid")).map_err(|_| anyhow!("container not running"))?;
    if !crate::sys::process::same_process(pid, target.pid_start) {
        bail!("container not running");
    }
    let console = match console_socket {
        Some(path) => Some(OwnedFd::from(
            std::os::unix::net::UnixStream::connect(path)
                .with_context(|| format!("connecting to the console socket {}", path.display()))?,
        )),
        None => None,
    };
    if plan.terminal && console.is_none() {
        bail!("process.terminal needs --console-socket");
    }
    explain::approx(
        &format!("nsenter --target {pid} --all --wd={} {}", plan.cwd, plan.args.join(" ")),
        "enter every namespace of the container",
    );
    crate::sys::sealed_exe::make_non_dumpable().context("prctl(PR_SET_DUMPABLE, 0)")?;
    setns(pid_ns, CloneFlags::CLONE_NEWPID).context("entering the container's pid namespace")?;
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
    // SAFETY: dockling-runc is single-threaded; the child only sets up and execs.
    match unsafe { nix::unistd::fork() }.context("forking")? {
        ForkResult::Child => {
            drop(err_r);
            let failure = match child(target.cgroups, namespaces, console, plan) {
                Ok(never) => match never {},
                Err(f) => f,
            };
            std::process::exit(sync::report_failure(&mut File::from(err_w), failure));
        }
        ForkResult::Parent { child } => {
            drop(err_w);
            match sync::receive(&mut File::from(err_r)) {
                Ok(None) => Ok(child),
                other => {
                    let _ = nix::sys::wait::waitpid(child, None);
                    Err(match other {
                        Ok(Some(Message::Failed(f))) => anyhow!(f.message),
                        Ok(m) => anyhow!("exec's child sent {m:?}"),
                        Err(e) => anyhow::Error::new(e).context("reading exec's report"),
                    })
                }
            }
        }
    }
}

fn child(
    cgroups: &[PathBuf],
    namespaces: Vec<(File, CloneFlags)>,
    console: Option<OwnedFd>,
    plan: &process::Plan,
) -> Result<execve::Never, Failure> {
    nix::unistd::setsid().map_err(Failure::context("setsid"))?;
    crate::cgroups::join_self(cgroups).map_err(Failure::setup)?;
    for (file, flag) in namespaces {
        setns(file, flag).map_err(Failure::context("entering a namespace of the container"))?;
    }
    if let Some(socket) = console {
        console::become_tty(socket.as_raw_fd()).map(drop).map_err(Failure::context("allocating the terminal"))?;
    }
    execve::resolve_command(&plan.args, &plan.env)?;
    plan.apply().map_err(Failure::setup)?;
    Err(execve::exec_command(&plan.args, &plan.env, &plan.cwd))
}
