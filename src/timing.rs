//! `DOCKLING_TIMINGS=1`: prints how long each phase of a command took (to stderr), so a
//! speed regression can be found without a profiler. Costs one env lookup when off.
//!
//! The lines go to a copy of the stderr dockling started with, so that the marks made by
//! a container's init after it took over the container's stdio (a log pipe, a terminal)
//! still reach the person who asked, never the container's output.

use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Option<(Instant, OwnedFd)>> = OnceLock::new();

/// Called first thing in `main`.
pub fn init() {
    let on = std::env::var_os("DOCKLING_TIMINGS").and_then(|_| {
        // Close-on-exec: the commands dockling runs never inherit it.
        let fd = nix::fcntl::fcntl(2, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3)).ok()?;
        // SAFETY: a fresh descriptor we own.
        Some((Instant::now(), unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }))
    });
    let _ = START.set(on);
}

/// `t+  3.21 ms [pid] label` on the original stderr when timings are on.
pub fn mark(label: &str) {
    if let Some(Some((start, fd))) = START.get() {
        let line = format!("t+{:7.2} ms [{}] {label}\n", start.elapsed().as_secs_f64() * 1000.0, std::process::id());
        let _ = nix::unistd::write(fd, line.as_bytes());
    }
}
