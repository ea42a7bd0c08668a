//! Cloning the container's first process into its new namespaces.
//!
//! `run` makes two pipes before anything is cloned:
//! - *go*: init blocks on it until the host side (network) is ready;
//! - *errors*: close-on-exec, so `run` reads EOF when `execve` succeeded, or a
//!   `code\tmessage` line when init failed (125 setup, 126 cannot execute, 127 not found).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::init;

/// Everything init needs; built by `run`, moved into the clone.
pub struct InitConfig {
    /// Overlay lower dirs, top first.
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    pub hostname: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    /// Files bind-mounted over the image's: (path inside, contents).
    pub etc_files: Vec<(&'static str, String)>,
    pub new_net: bool,
    pub network_mode: crate::types::NetworkMode,
    /// The cgroups init moves itself into before anything else.
    pub cgroups: Vec<PathBuf>,
    pub security: crate::security::Security,
    pub mounts: Vec<crate::types::Mount>,
    /// `-i`: keep stdin attached (otherwise it is /dev/null).
    pub interactive: bool,
    /// `-t`: the console socket init sends its pty master on.
    pub console: Option<OwnedFd>,
    /// For detached runs: the log pipes that become stdout and stderr (stdin is /dev/null).
    pub stdio: Option<(OwnedFd, OwnedFd)>,
}

/// Both ends of the go and error pipes.
pub struct SyncPipes {
    pub go_read: OwnedFd,
    pub go_write: OwnedFd,
    pub err_read: OwnedFd,
    pub err_write: OwnedFd,
}

impl SyncPipes {
    pub fn new() -> Result<SyncPipes> {
        let (go_read, go_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating pipe")?;
        let (err_read, err_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating pipe")?;
        Ok(SyncPipes { go_read, go_write, err_read, err_write })
    }

    /// The ends the host side keeps after the clone.
    pub fn into_starter(self) -> Starter {
        Starter { go: Some(self.go_write), errors: self.err_read }
    }
}

/// The host side's handle on a container that waits to exec.
pub struct Starter {
    go: Option<OwnedFd>,
    errors: OwnedFd,
}

impl Starter {
    /// Lets init go on to exec the command.
    pub fn release(&mut self) -> Result<()> {
        if let Some(fd) = self.go.take() {
            let mut f = std::fs::File::from(fd);
            f.write_all(b"g").context("releasing the container")?;
        }
        Ok(())
    }

    /// Waits for the exec: None when it succeeded, Some((code, message)) when init failed.
    pub fn wait_exec(self) -> Option<(i32, String)> {
        drop(self.go);
        let mut text = String::new();
        let _ = std::fs::File::from(self.errors).read_to_string(&mut text);
        let (code, message) = text.split_once('\t')?;
        Some((code.parse().unwrap_or(crate::error::RUNTIME_ERROR), message.trim().to_string()))
    }
}

/// The namespaces a container gets at clone time (the cgroup namespace comes later, once
/// `run` has moved init into its cgroups, so that its root is the container's group).
pub fn clone_flags(new_net: bool) -> CloneFlags {
    let mut flags =
        CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if new_net {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags
}

/// Clones init. Must be called while the process has a single thread.
pub fn spawn(mut cfg: InitConfig, pipes: &SyncPipes) -> Result<Pid> {
    ensure_single_threaded()?;
    let flags = clone_flags(cfg.new_net);
    crate::explain::approx(
        &format!("unshare --pid --mount --uts --ipc{} --fork", if cfg.new_net { " --net" } else { "" }),
        "clone the container's first process into new namespaces",
    );
    let mut stack = vec![0u8; 1024 * 1024];
    let go = pipes.go_read.as_raw_fd();
    let (go_w, err_r, err_w) = (pipes.go_write.as_raw_fd(), pipes.err_read.as_raw_fd(), pipes.err_write.as_raw_fd());
    let callback = Box::new(move || -> isize {
        // The child's copies of the host-side ends must go, or EOF never comes.
        let _ = nix::unistd::close(go_w);
        let _ = nix::unistd::close(err_r);
        init::main(&mut cfg, go, err_w) as isize
    });
    // SAFETY: the process is single-threaded here (checked by the callers' design: no
    // threads or runtimes exist before spawn), and the child only runs `init::main`.
    let pid = unsafe { nix::sched::clone(callback, &mut stack, flags, Some(libc::SIGCHLD)) }
        .context("cloning the container process (are you root?)")?;
    Ok(pid)
}

/// Cloning a multi-threaded process copies only the calling thread, with whatever locks
/// the others held: refuse rather than risk it (a runtime left running would be a bug).
fn ensure_single_threaded() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let threads = status.lines().find_map(|l| l.strip_prefix("Threads:")).map(|v| v.trim().to_string());
    match threads.as_deref() {
        Some("1") => Ok(()),
        other => {
            anyhow::bail!("internal error: cloning a container needs a single-threaded process (threads: {other:?})")
        }
    }
}
