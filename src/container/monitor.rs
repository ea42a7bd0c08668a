//! The monitor of a detached container: the process that owns the container as its
//! child, copies its output into the log, records the exit and tears down what `run`
//! set up.
//!
//! `run -d` forks it; the fork clones the container, reports its pid to `run`, then execs
//! `dockling-monitor` (src/bin/dockling-monitor.rs), a small static program that pumps
//! the log and waits, so an idle monitor costs a few hundred KiB instead of a copy of
//! this 10 MB process. When the container exits it execs `dockling _monitor-exit`, which
//! lands in [`exit_handler`]. Without `dockling-monitor` next to `dockling`, the fork
//! does all of it itself ([`pump`]).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{Context, Result};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::init::InitConfig;
use super::lifecycle::finish;
use super::logfile::LogWriter;
use super::relay::{self, Sink, Stream, Watch};
use crate::engine::foreground::exit_code_of;
use crate::engine::spawn::SyncPipes;
use crate::engine::sync::{self, Failure, Message};
use crate::state::Store;

/// Body of the forked monitor. Reports the container pid (or an error) on `report`.
pub fn run(
    store: &Store,
    id: &str,
    mut cfg: InitConfig,
    pipes: SyncPipes,
    report: OwnedFd,
    console: Option<OwnedFd>,
) -> ! {
    let _ = nix::unistd::setsid();
    let log_path = store.container_dir(id).join("container.log");
    let started = (|| -> Result<(Pid, Vec<OwnedFd>, std::fs::File)> {
        let log = OpenOptions::new().create(true).append(true).open(&log_path).context("opening the log")?;
        if let Some(console) = console {
            // -t: one stream, the terminal, logged as stdout (as Docker does).
            let pid = super::init::spawn(cfg, &pipes)?;
            let master = crate::engine::console::receive_master(&console)?;
            return Ok((pid, vec![master], log));
        }
        // Log pipes for stdout and stderr; stdin is /dev/null.
        let (ours, theirs) = relay::pipes(false)?;
        cfg.stdio = Some(theirs);
        let pid = super::init::spawn(cfg, &pipes)?;
        // The log is copied until EOF, which our copies of the write ends would hold back.
        drop(ours.writers);
        Ok((pid, vec![ours.stdout, ours.stderr], log))
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
            let _ = sync::send(&mut report, &Message::Failed(Failure::setup(e)));
            std::process::exit(1);
        }
    };
    let _ = sync::send(&mut report, &Message::Started { pid: pid.as_raw() });
    drop(report);

    // Returns only if dockling-monitor is not there or cannot run: then this process
    // stays the monitor.
    let _ = exec_small_monitor(store, id, pid, &streams);
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

/// Becomes `dockling-monitor` (same pid, still the container's parent); returns only if
/// that failed.
fn exec_small_monitor(store: &Store, id: &str, pid: Pid, streams: &[OwnedFd]) -> Option<std::io::Error> {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return Some(e),
    };
    let small = exe.with_file_name("dockling-monitor");
    if !small.is_file() {
        return Some(std::io::ErrorKind::NotFound.into());
    }
    crate::sys::fd::cloexec_from(3);
    let mut fds = streams.iter().map(|fd| fd.as_raw_fd().to_string()).collect::<Vec<_>>();
    fds.resize(2, "-1".to_string()); // -t: one stream
    for fd in streams {
        // The streams must survive the exec; nothing else does.
        let _ = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()));
    }
    let log = store.container_dir(id).join("container.log");
    let err = std::process::Command::new(&small)
        .arg(pid.as_raw().to_string())
        .arg(&log)
        .args(&fds)
        .arg("--")
        .arg(&exe)
        .arg("_monitor-exit")
        .arg(&store.root)
        .arg(&store.runtime_dir)
        .arg(id)
        .exec();
    Some(err)
}

/// `dockling _monitor-exit ROOT RUN ID CODE`: what `dockling-monitor` execs when the
/// container is gone: record the exit and tear down (as [`finish`] does for everyone).
pub fn exit_handler(root: PathBuf, runtime_dir: PathBuf, id: &str, code: Option<i32>) -> i32 {
    let store = Store::at(root, runtime_dir);
    match finish(&store, id, code) {
        Ok(()) => 0,
        Err(e) => {
            // Nobody sees our stderr: leave the reason next to the record. The next
            // `ps`, `inspect`, `run` or `rm -f` finishes the teardown from the record.
            let path = store.container_dir(id).join("monitor-error.log");
            if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
                let _ = writeln!(f, "{} finishing the container: {e:#}", chrono::Utc::now().to_rfc3339());
            }
            1
        }
    }
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
    let mut streams: Vec<Stream> =
        fds.iter().enumerate().map(|(i, fd)| Stream::new(fd.as_fd(), Sink::Log(i), true)).collect();
    let _ = relay::copy(&mut streams, &[], Some(&mut log), |_| Watch::Continue);
}
