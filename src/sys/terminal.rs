//! Making a terminal a process's own: its controlling terminal and its stdio.

use std::os::fd::RawFd;

/// In a process that just started its own session (`setsid`): makes the terminal `slave`
/// its controlling terminal and its stdin, stdout and stderr.
pub fn take_as_stdio(slave: RawFd) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY on a terminal descriptor the caller opened.
    if unsafe { libc::ioctl(slave, libc::TIOCSCTTY, 0) } < 0 {
        return Err(nix::errno::Errno::last());
    }
    for fd in 0..3 {
        nix::unistd::dup2(slave, fd)?;
    }
    Ok(())
}
