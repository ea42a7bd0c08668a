//! Hands the last close of a descriptor to a short-lived grandchild, for closes the kernel
//! makes slow. Closing an nf_tables netlink socket waits until the objects of the last
//! deleting transaction are freed, one RCU grace period (10-20 ms here): the kernel's
//! NETLINK_URELEASE handler flushes nf_tables' destroy work. That wait is why `iptables -D`
//! and `nft delete` take 10-20 ms although the deletion itself takes microseconds. A
//! grandchild holding the last reference pays it instead, and nobody waits for it.

use std::os::fd::{AsRawFd, OwnedFd};

/// Gives `fd`'s last close to a grandchild (reparented at once, so it never lingers as
/// our zombie), which closes it when our own references are gone, then exits. `drop_ours`
/// runs in between, with the grandchild still holding the socket, and should drop every
/// descriptor of ours for it (the caller's `fd` is dropped here too). If the fork fails,
/// the descriptors are closed here, slowly but correctly.
pub fn close_elsewhere(fd: OwnedFd, drop_ours: impl FnOnce()) {
    let mut pipe = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        drop_ours();
        return;
    }
    let (read_end, write_end) = (pipe[0], pipe[1]);
    let keep = fd.as_raw_fd();
    // SAFETY: between fork and _exit the children call only async-signal-safe functions
    // (fork, close, close_range, read, _exit), as a fork of a threaded process must.
    let child = unsafe { libc::fork() };
    if child == 0 {
        unsafe {
            if libc::fork() != 0 {
                libc::_exit(0);
            }
            // The grandchild: nothing of ours but the socket and the pipe's read end.
            libc::close(write_end);
            close_all_but([keep, read_end]);
            let mut byte = 0u8;
            // Returns at EOF: the parent has dropped its references.
            while libc::read(read_end, (&mut byte as *mut u8).cast(), 1) < 0 {}
            libc::close(keep);
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the pipe's read end.
    unsafe { libc::close(read_end) };
    if child > 0 {
        let mut status = 0;
        // SAFETY: reaping the child we just forked (it exits at once).
        unsafe { libc::waitpid(child, &mut status, 0) };
    }
    drop(fd);
    drop_ours();
    // SAFETY: closing the write end lets the grandchild go.
    unsafe { libc::close(write_end) };
}

/// Closes every descriptor but the two kept (async-signal-safe: close_range only).
unsafe fn close_all_but(keep: [i32; 2]) {
    let mut from: u32 = 0;
    for k in [keep[0].min(keep[1]), keep[0].max(keep[1])] {
        let k = k as u32;
        if k > from {
            libc::syscall(libc::SYS_close_range, from, k - 1, 0u32);
        }
        from = k + 1;
    }
    libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32);
}
