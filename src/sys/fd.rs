//! Descriptors a process must not pass on: before an exec into a container, and in
//! detached helpers, everything above stderr is closed or marked close-on-exec.

use std::os::fd::RawFd;

/// Marks every descriptor from `first` up close-on-exec (what is passed on is then
/// chosen, one by one).
pub fn cloexec_from(first: RawFd) {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on our own fds.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if rc != 0 {
        // SAFETY: setting FD_CLOEXEC on a descriptor number (invalid ones just fail).
        for_each_open_fd_from(first, |fd| unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        });
    }
}

/// Closes every descriptor from `first` up. Allocates nothing when close_range works.
pub fn close_from(first: RawFd) {
    // SAFETY: closes only descriptor numbers of this process.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0u32) };
    if rc != 0 {
        // SAFETY: closing a descriptor number (invalid ones just fail).
        for_each_open_fd_from(first, |fd| unsafe {
            libc::close(fd);
        });
    }
}

/// The fallback for kernels before 5.9 (or a seccomp filter that refuses close_range):
/// the open descriptors as /proc lists them, or every number up to the limit.
fn for_each_open_fd_from(first: RawFd, f: impl FnMut(RawFd)) {
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        let fds: Vec<RawFd> = dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
        fds.into_iter().filter(|fd| *fd >= first).for_each(f);
        return;
    }
    // SAFETY: sysconf has no side effects.
    let max = match unsafe { libc::sysconf(libc::_SC_OPEN_MAX) } {
        n if n > 0 => n.min(1 << 20) as RawFd,
        _ => 1024,
    };
    (first..max).for_each(f);
}
