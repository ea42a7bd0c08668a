//! Cloning the container's first process into its new namespaces.
//!
//! The caller (`dockling run`, its monitor, `dockling-runc create`) makes two pipes before
//! anything is cloned (see [`super::sync`] for what crosses them): *go*, on which init
//! waits until the host side (network, hooks) is ready, and *errors*, close-on-exec, on
//! which the caller reads init's reports, and EOF once `execve` succeeded.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::namespaces;
use crate::engine::sync::{self, Failure, Message};

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
            sync::send(&mut std::fs::File::from(fd), &Message::Go).context("releasing the container")?;
        }
        Ok(())
    }

    /// Reads init's next report (None at EOF: it exec'd, or died without a word).
    pub fn next_report(&mut self) -> Result<Option<Message>> {
        sync::receive(&mut &std::fs::File::from(self.errors.try_clone().context("duplicating the report pipe")?))
            .context("reading init's report")
    }

    /// Waits for the exec: None when it succeeded, init's failure otherwise.
    pub fn wait_exec(self) -> Option<Failure> {
        drop(self.go);
        match sync::receive(&mut std::fs::File::from(self.errors)) {
            Ok(Some(Message::Failed(failure))) => Some(failure),
            Ok(None) => None,
            Ok(Some(other)) => Some(Failure::setup(format!("init sent {other:?} instead of its exec"))),
            Err(e) => Some(Failure::setup(format!("reading init's report: {e}"))),
        }
    }
}

/// What init runs in the cloned child: given its ends of the pipes (go, errors), it
/// returns only to exit, with the status it returns.
pub type Body = Box<dyn FnMut(RawFd, RawFd) -> i32>;

/// Clones init into the namespaces of `plan`. Must be called while the process has a
/// single thread.
pub fn spawn(plan: &namespaces::Plan, pipes: &SyncPipes, mut body: Body) -> Result<Pid> {
    ensure_single_threaded()?;
    let flags = plan.new;
    crate::explain::approx(&plan.command(), "clone the container's first process into its namespaces");
    // Non-dumpable before the clone, so init is never dumpable, not even for a moment
    // (the flag is copied with the memory map; the monitor's clone comes through here too).
    crate::sys::sealed_exe::make_non_dumpable().context("prctl(PR_SET_DUMPABLE, 0)")?;
    // A pid namespace to join is entered for our children only, right around the clone:
    // nothing between here and the way back can fail.
    let pid_join = plan.join.iter().find(|(k, _)| *k == CloneFlags::CLONE_NEWPID).map(|(_, p)| p.clone());
    let restore = match &pid_join {
        Some(path) => Some(enter_pid_namespace(path)?),
        None => None,
    };
    let mut stack = vec![0u8; 1024 * 1024];
    let go = pipes.go_read.as_raw_fd();
    let (go_w, err_r, err_w) = (pipes.go_write.as_raw_fd(), pipes.err_read.as_raw_fd(), pipes.err_write.as_raw_fd());
    let callback = Box::new(move || -> isize {
        // The child's copies of the host-side ends must go, or EOF never comes.
        let _ = nix::unistd::close(go_w);
        let _ = nix::unistd::close(err_r);
        body(go, err_w) as isize
    });
    // SAFETY: the process is single-threaded here (checked above), and the child only
    // runs `body`.
    let cloned = unsafe { nix::sched::clone(callback, &mut stack, flags, Some(libc::SIGCHLD)) };
    if let Some(ours) = restore {
        if let Err(e) = nix::sched::setns(ours, CloneFlags::CLONE_NEWPID) {
            // Our next children would land in the joined namespace: give up, and take the
            // child we made with us.
            if let Ok(pid) = cloned {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
            }
            return Err(e).context("returning to our pid namespace");
        }
    }
    cloned.context("cloning the container process (are you root?)")
}

/// Enters the pid namespace at `path` for the processes we clone next; returns ours, to
/// go back to.
fn enter_pid_namespace(path: &std::path::Path) -> Result<std::fs::File> {
    let ours = std::fs::File::open("/proc/self/ns/pid_for_children").context("opening our pid namespace")?;
    let theirs = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    nix::sched::setns(theirs, CloneFlags::CLONE_NEWPID).context("entering the pid namespace to join")?;
    Ok(ours)
}

/// Cloning a multi-threaded process copies only the calling thread, with whatever locks
/// the others held: refuse rather than risk it (a runtime left running would be a bug).
fn ensure_single_threaded() -> Result<()> {
    match crate::sys::threads::count()? {
        1 => Ok(()),
        n => anyhow::bail!("internal error: cloning a container needs a single-threaded process (threads: {n})"),
    }
}
