//! Removing a container's directory without making the command wait for the disk.
//!
//! Freeing a directory's block costs ~0.1 ms on ext4 here, and a container leaves seven of
//! them (its directory, upper/, work/ and overlay's work/work/incompat/volatile, its
//! record): most of what `run --rm` spends after the command exited. So the directory
//! is renamed into `<root>/trash/` (one rename: from then on no command sees the
//! container) and a detached child process deletes it there, the way containerd's
//! overlay snapshotter removes snapshots asynchronously. A deleter killed half-way leaves
//! a trash entry, which the next deleter sweeps.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::remove_tree;

/// Makes `dir` disappear now and its contents soon. Falls back to removing in place
/// when it cannot be moved (or no process can be started to delete it).
pub fn discard(root: &Path, dir: &Path) -> Result<()> {
    let trash = root.join("trash"); // made by Store::open
    let Some(name) = dir.file_name() else { return remove_tree(dir) };
    let target = trash.join(name);
    match fs::rename(dir, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(_) => return remove_tree(dir),
    }
    if !spawn_deleter(&trash) {
        return remove_tree(&target);
    }
    Ok(())
}

/// Forks a process that empties the trash and exits; nobody waits for it (it is
/// reparented to init). It starts a session of its own (no terminal signals), holds no
/// descriptor of ours (a lock or a caller's pipe would otherwise stay held while it
/// works) and restores default signal handling.
fn spawn_deleter(trash: &Path) -> bool {
    let trash: PathBuf = trash.to_path_buf();
    // SAFETY: the child only makes system calls and allocates (glibc's malloc is usable
    // after fork), then leaves with _exit, running no destructors or atexit handlers.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => true,
        Ok(nix::unistd::ForkResult::Child) => {
            detach();
            sweep(&trash);
            // SAFETY: ends this process at once.
            unsafe { libc::_exit(0) }
        }
        Err(_) => false,
    }
}

fn detach() {
    // SAFETY: plain system calls on our own process.
    unsafe {
        libc::setsid();
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            if null >= 0 {
                libc::dup2(null, fd);
            }
        }
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
    }
}

/// Deletes every entry of the trash. Two deleters may meet on one entry; whichever
/// loses stops there, and what it leaves is swept by the other or by the next one.
pub fn sweep(trash: &Path) {
    let Ok(entries) = fs::read_dir(trash) else { return };
    for entry in entries.flatten() {
        let _ = fs::remove_dir_all(entry.path());
    }
}
