//! Is a process still the one we started? PID-reuse-safe checks and waits.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// This process as (pid, start time): how records name a `run`, `stop` or `rm` at work.
pub fn this_process() -> Option<(i32, u64)> {
    let me = std::process::id() as i32;
    start_time(me).map(|start| (me, start))
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|s| s.start_time)
}

/// True when `pid` exists, is not a zombie, and started at `start`.
pub fn same_process(pid: i32, start: u64) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.start_time == start)
}

/// The fields of /proc/PID/stat dockling reads.
#[derive(Debug, PartialEq, Eq)]
pub struct Stat {
    /// R, S, D, Z, T, ...
    pub state: char,
    pub start_time: u64,
}

fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses a /proc/PID/stat line. The command name (field 2) may hold spaces and parens:
/// fields resume after the last ')'.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = text.get(text.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; the start time is field 22, nineteen further on.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

/// A pidfd for `pid`, only if it is still the process that started at `start`.
pub fn pidfd(pid: i32, start: u64) -> Option<OwnedFd> {
    let fd = child_pidfd(pid)?;
    // Checked after opening: the pidfd now pins the identity we verified.
    same_process(pid, start).then_some(fd)
}

/// A pidfd for our own child, not yet reaped (so `pid` cannot have been reused). Needs
/// no /proc: `exec` calls it after entering the container's mount namespace.
pub fn child_pidfd(pid: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscall; returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this fd.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `signal` through a pidfd (never hits a recycled pid).
pub fn signal(fd: &OwnedFd, signal: i32) -> bool {
    // SAFETY: valid pidfd; null siginfo.
    unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), signal, std::ptr::null::<u8>(), 0) == 0 }
}

/// Waits until the process behind the pidfd exits (true) or the timeout passes (false).
pub fn wait_exit(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc > 0 {
            return true;
        }
        if rc == 0 {
            return false;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_hostile_command_name() {
        let line = "4242 (a) b (c) R 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
        assert_eq!(parse_stat(line), Some(Stat { state: 'R', start_time: 987654 }));
        assert_eq!(parse_stat("4242 (x) Z 1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_itself() {
        let (pid, start) = this_process().unwrap();
        assert!(same_process(pid, start));
        assert!(!same_process(pid, start + 1));
    }
}
