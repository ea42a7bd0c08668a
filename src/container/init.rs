//! The container's first process, from clone to exec, inside the new namespaces.
//!
//! Runs in the cloned child: it must not return into the rest of dockling. A failure is
//! sent to `run` as a [`Message::Failed`] on the error pipe and becomes the exit status.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use super::relay::ContainerEnds;
use super::rootfs::{self, RootfsConfig};
use crate::engine::execve::{self, Never};
use crate::engine::spawn;
use crate::engine::sync::{self, Failure, Message};
use crate::error::RUNTIME_ERROR;
use crate::security::Security;
use crate::types::NetworkMode;

/// Everything init needs; built by `run`, moved into the clone.
pub struct InitConfig {
    pub rootfs: RootfsConfig,
    pub hostname: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    /// The namespaces: made at clone time, joined by init first, and the cgroup one.
    pub namespaces: crate::engine::namespaces::Plan,
    /// Bridge mode: what init sets up on eth0 once `run` has made it.
    pub eth0: Option<crate::network::inside::Eth0>,
    pub network_mode: NetworkMode,
    /// The cgroups init moves itself into before anything else.
    pub cgroups: Vec<PathBuf>,
    pub security: Security,
    /// `-t`: the console socket init sends its pty master on.
    pub console: Option<OwnedFd>,
    /// Without `-t`: the pipes that become stdin (or /dev/null), stdout and stderr: the
    /// log pipes of a detached run, the relay's of an attached one. Never the caller's.
    pub stdio: Option<ContainerEnds>,
}

/// Clones init with `cfg` (see [`spawn::spawn`]). Must be called while the process has a
/// single thread.
pub fn spawn(cfg: InitConfig, pipes: &spawn::SyncPipes) -> anyhow::Result<nix::unistd::Pid> {
    let plan = cfg.namespaces.clone();
    let mut cfg = cfg;
    spawn::spawn(&plan, pipes, Box::new(move |go, errors| main(&mut cfg, go, errors)))
}

/// Init's body in the cloned child; `go` and `errors` are its ends of the sync pipes.
/// Returns (as the exit status) only when it failed, after saying why on `errors`.
///
/// Init is the host's dockling binary until its `execve`, so it is non-dumpable from the
/// start (`spawn` sets it before the clone; the flag belongs to the memory map, which the
/// clone copies): nothing without CAP_SYS_PTRACE may open its
/// `/proc/PID/exe` (the CVE-2019-5736 class). Unlike `exec`, init does not run from a
/// read-only view of the binary: it is PID 1 of a pid namespace that did not exist before
/// `run` (or the detached monitor) cloned it, and `exec` waits until init has exec'd
/// before it enters, so no process of the container exists that could look at it.
/// Re-executing `run` from a read-only view would cost every `run` an extra exec of the
/// binary: about 1.1 ms measured on `exec` (6-8 ms with a memfd copy).
pub fn main(cfg: &mut InitConfig, go: RawFd, errors: RawFd) -> i32 {
    // SAFETY: both are this child's own copies of the pipe ends, used only here.
    let (mut go, mut errors) = unsafe { (File::from_raw_fd(go), File::from_raw_fd(errors)) };
    let failure = match setup_and_exec(cfg, &mut go) {
        Ok(never) => match never {},
        Err(failure) => failure,
    };
    sync::report_failure(&mut errors, failure)
}

fn setup_and_exec(cfg: &mut InitConfig, go: &mut File) -> Result<Never, Failure> {
    crate::timing::mark("init: start");
    // A session of its own, so no controlling terminal: the caller's terminal can never
    // be reached through /dev/tty (TIOCSTI would type into the caller's shell).
    nix::unistd::setsid().map_err(Failure::context("setsid"))?;
    // Namespaces to join by path, first (the pid one was joined by whoever cloned us).
    cfg.namespaces.enter_joined().map_err(Failure::setup)?;
    crate::cgroups::join_self(&cfg.cgroups).map_err(Failure::setup)?;
    crate::timing::mark("init: joined");
    rootfs::prepare(&cfg.rootfs, &cfg.security).map_err(Failure::setup)?;
    crate::timing::mark("init: rootfs");
    if let Some(console) = cfg.console.take() {
        crate::engine::console::become_tty(console.as_raw_fd())
            .map(drop)
            .map_err(Failure::context("allocating the terminal"))?;
    }
    if cfg.network_mode == NetworkMode::None {
        crate::network::inside::configure(None).map_err(Failure::context("bringing lo up"))?;
    }
    crate::explain::step(&format!("hostname {}", cfg.hostname), "the container's own host name (UTS namespace)");
    nix::unistd::sethostname(&cfg.hostname).map_err(Failure::context("sethostname"))?;

    // Wait until the host side (network) is ready; EOF means `run` died: give up.
    if !matches!(sync::receive(go), Ok(Some(Message::Go))) {
        return Err(Failure::new(RUNTIME_ERROR, "dockling run went away before the container started"));
    }
    crate::timing::mark("init: go");
    // The veth's peer exists now (`run` made it before sending go): its address and route.
    if let Some(eth0) = &cfg.eth0 {
        crate::network::inside::configure(Some(eth0)).map_err(Failure::context("configuring eth0"))?;
    }
    // `run` has put us in our cgroups: now a cgroup namespace rooted there.
    if cfg.namespaces.new_cgroup {
        crate::explain::approx("unshare --cgroup", "the container sees its own cgroup as /");
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(Failure::context("unsharing the cgroup namespace"))?;
    }
    let home = crate::engine::process::apply_security(&cfg.security, &cfg.argv, &cfg.env, &cfg.workdir)
        .map_err(Failure::setup)?;
    super::env::apply_home(&mut cfg.env, home);
    crate::timing::mark("init: secured");
    crate::explain::close_output();
    // Last, so that our own --explain lines above went to the caller's stderr.
    // Without -i, stdin is not attached (as Docker): the container's /dev/null.
    if let Some(ends) = cfg.stdio.take() {
        super::relay::take_as_stdio(&ends).map_err(Failure::context("taking the stdio pipes"))?;
    }

    Err(execve::exec_command(&cfg.argv, &cfg.env, &cfg.workdir))
}
