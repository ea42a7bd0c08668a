//! The monitor of a detached container: a small process (no async runtime, no polling
//! loop) that owns the container as its child, copies its output into the log, records
//! the exit and tears down what `run` set up.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::logfile::LogWriter;
use super::spawn::{self, InitConfig, SyncPipes};
use super::{exit_code_of, finish};
use crate::state::Store;

/// Body of the forked monitor. Reports the container pid (or an error) on `report`.
pub fn run(store: &Store, id: &str, mut cfg: InitConfig, pipes: SyncPipes, report: OwnedFd, console: Option<OwnedFd>) -> ! {
    let _ = nix::unistd::setsid();
    let log_path = store.container_dir(id).join("container.log");
    let started = (|| -> Result<(Pid, Vec<OwnedFd>, std::fs::File)> {
        let log = OpenOptions::new().create(true).append(true).open(&log_path).context("opening the log")?;
        if let Some(console) = console {
            // -t: one stream, the terminal, logged as stdout (as Docker does).
            let pid = spawn::spawn(cfg, &pipes)?;
            let master = super::tty::receive_master(&console)?;
            return Ok((pid, vec![master], log));
        }
        let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        cfg.stdio = Some((out_w, err_w));
        let pid = spawn::spawn(cfg, &pipes)?;
        Ok((pid, vec![out_r, err_r], log))
    })();
    // Only `run` and init may hold the go and error pipes, or EOF never comes.
    drop(pipes);
    // From here on the monitor is detached from the caller's terminal and pipes.
    crate::explain::close_output();
    detach_stdio();
    let mut report = std::fs::File::from(report);
    let (pid, streams, log) = match started {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(report, "error\t{}", format!("{e:#}").replace('\n', " "));
            std::process::exit(1);
        }
    };
    let _ = writeln!(report, "{}", pid.as_raw());
    drop(report);

    pump(streams, LogWriter::new(log));
    let code = loop {
        match waitpid(pid, None) {
            Ok(status) => break exit_code_of(status),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break None,
        }
    };
    let _ = finish(store, id, code);
    std::process::exit(0);
}

fn detach_stdio() {
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
}

/// Copies both streams into the log until the container and all its processes closed them.
fn pump(fds: Vec<OwnedFd>, mut log: LogWriter) {
    let mut open = vec![true; fds.len()];
    let mut buf = vec![0u8; 16 * 1024];
    while open.iter().any(|o| *o) {
        let mut pollfds: Vec<PollFd> = Vec::new();
        let mut which = Vec::new();
        for (i, fd) in fds.iter().enumerate() {
            if open[i] {
                pollfds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                which.push(i);
            }
        }
        match poll(&mut pollfds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<usize> = pollfds
            .iter()
            .zip(&which)
            .filter(|(p, _)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, &i)| i)
            .collect();
        for i in ready {
            match nix::unistd::read(fds[i].as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    open[i] = false;
                    log.finish(i);
                }
                Ok(n) => log.write(i, &buf[..n]),
            }
        }
    }
}

