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
/// descriptor of ours for it (the caller's `fd` is dropped here too). If the clone fails,
/// the descriptors are closed here, slowly but correctly.
///
/// The child and grandchild share our memory (`CLONE_VM`): no page tables are copied,
/// which a `fork` of dockling costs ~0.3 ms each. The child runs on a stack in this frame
/// while we are suspended (`CLONE_VFORK`) and only clones the grandchild; the grandchild's
/// stack and arguments are leaked (they must outlive us). Both make raw system calls
/// only, none of which fails in practice, so neither ever writes the errno they share
/// with this thread.
pub fn close_elsewhere(fd: OwnedFd, drop_ours: impl FnOnce()) {
    let mut pipe = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        drop_ours();
        return;
    }
    let (read_end, write_end) = (pipe[0], pipe[1]);
    let grandchild_stack: &'static mut [u8] = Box::leak(vec![0u8; GRANDCHILD_STACK].into_boxed_slice());
    let args: &'static Args = Box::leak(Box::new(Args {
        keep: fd.as_raw_fd(),
        read_end,
        write_end,
        // SAFETY: one past the end of the leaked stack; stacks grow down.
        stack_top: unsafe { grandchild_stack.as_mut_ptr().add(grandchild_stack.len()) },
    }));
    let mut child_stack = ChildStack([0u8; CHILD_STACK]);
    // Every signal blocked in both (the mask is inherited): no handler of ours may ever
    // run on their small stacks, in our memory. SIGKILL still ends them.
    // SAFETY: plain signal-set calls on local sets.
    let mut saved: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut saved);
    }
    // SAFETY: the child runs `child` on `child_stack` while this thread is suspended
    // (CLONE_VFORK) and exits; `args` lives forever.
    let child = unsafe {
        libc::clone(
            child,
            child_stack.0.as_mut_ptr().add(CHILD_STACK).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (args as *const Args).cast_mut().cast(),
        )
    };
    // SAFETY: restores this thread's own mask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &saved, std::ptr::null_mut()) };
    // SAFETY: closing our copy of the pipe's read end.
    unsafe { libc::close(read_end) };
    if child > 0 {
        let mut status = 0;
        // SAFETY: reaping the child we just cloned (it has exited already).
        while unsafe { libc::waitpid(child, &mut status, libc::__WALL) } < 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
    drop(fd);
    drop_ours();
    // SAFETY: closing the write end lets the grandchild go.
    unsafe { libc::close(write_end) };
}

const CHILD_STACK: usize = 16 * 1024;

/// The child's stack, 16-byte aligned as the x86-64 ABI wants it at a call.
#[repr(align(16))]
struct ChildStack([u8; CHILD_STACK]);
const GRANDCHILD_STACK: usize = 16 * 1024;

struct Args {
    keep: i32,
    read_end: i32,
    write_end: i32,
    stack_top: *mut u8,
}

/// The child: clones the grandchild and exits, which lets the caller go on.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the leaked Args; the grandchild gets its own leaked stack.
    unsafe {
        let a = &*(arg as *const Args);
        libc::clone(grandchild, a.stack_top.cast(), libc::CLONE_VM | libc::SIGCHLD, arg);
        libc::syscall(libc::SYS_exit, 0);
    }
    0
}

/// The grandchild: nothing of ours but the socket and the pipe's read end; at EOF (the
/// caller dropped its references) it closes the socket, paying the wait, and exits.
extern "C" fn grandchild(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the leaked Args; only raw system calls on our own descriptors.
    unsafe {
        let a = &*(arg as *const Args);
        libc::syscall(libc::SYS_close, a.write_end);
        close_all_but([a.keep, a.read_end]);
        let mut byte = 0u8;
        while libc::syscall(libc::SYS_read, a.read_end, &mut byte as *mut u8, 1) < 0 {}
        libc::syscall(libc::SYS_close, a.keep);
        libc::syscall(libc::SYS_exit, 0);
    }
    0
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
