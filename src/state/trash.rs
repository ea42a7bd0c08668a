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
use std::path::Path;

use anyhow::Result;

use super::remove_tree;

/// Makes `dir` disappear now and its contents soon. Falls back to removing in place
/// when it cannot be moved (or no process can be started to delete it).
pub fn discard(root: &Path, dir: &Path) -> Result<()> {
    let trash = root.join("trash");
    let Some(name) = dir.file_name() else { return remove_tree(dir) };
    let target = trash.join(name);
    let mut moved = fs::rename(dir, &target);
    if matches!(&moved, Err(e) if e.kind() == ErrorKind::NotFound) {
        if fs::symlink_metadata(dir).is_err() {
            return Ok(()); // already gone
        }
        // Store::open makes trash/; a root from before it existed, opened by a monitor's
        // exit handler (Store::at), may not have it yet.
        let _ = fs::create_dir(&trash);
        moved = fs::rename(dir, &target);
    }
    if moved.is_err() {
        return remove_tree(dir);
    }
    if !spawn_deleter(&trash) {
        return remove_tree(&target);
    }
    Ok(())
}

/// Forks a process that empties the trash and exits; nobody waits for it (it is
/// reparented to init when we exit). Signals stay blocked across the fork, so none of our
/// handlers (`run` forwards SIGINT to its container) ever runs in the child; the child
/// starts a session of its own and ignores terminal signals (a closing terminal must not
/// stop it half-way), holds no descriptor of ours (a lock
/// or a caller's pipe would otherwise stay held while it works) and leaves the caller's
/// working directory.
///
/// The child only makes system calls and allocates; glibc's malloc stays usable after
/// fork even if other threads existed, though every caller is single-threaded here.
fn spawn_deleter(trash: &Path) -> bool {
    let all = nix::sys::signal::SigSet::all();
    let mut old = nix::sys::signal::SigSet::empty();
    if nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut old)).is_err() {
        return false;
    }
    // SAFETY: see above; the child leaves with _exit, running no destructors or atexit
    // handlers of ours.
    let forked = unsafe { nix::unistd::fork() };
    match forked {
        Ok(nix::unistd::ForkResult::Child) => {
            detach();
            sweep(trash);
            // SAFETY: ends this process at once.
            unsafe { libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Parent { .. }) | Err(_) => {
            let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&old), None);
            forked.is_ok()
        }
    }
}

fn detach() {
    // SAFETY: plain system calls on our own process.
    unsafe {
        libc::setsid();
        // A terminal's SIGHUP or Ctrl-C may have reached our old process group while
        // signals were blocked: ignoring them drops what is pending.
        let ignored =
            [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGPIPE, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, if ignored.contains(&sig) { libc::SIG_IGN } else { libc::SIG_DFL });
            }
        }
        let none: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::chdir(c"/".as_ptr());
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            if null >= 0 {
                libc::dup2(null, fd);
            } else {
                libc::close(fd);
            }
        }
    }
    crate::sys::fd::close_from(3);
}

/// Empties the trash. Deleters take turns (a lock on trash/ itself), so two never delete
/// the same tree at once; each one empties all of it, a killed one's leftovers included.
fn sweep(trash: &Path) {
    let Ok(_turn) = crate::sys::lock::FileLock::exclusive_dir(trash) else { return };
    let Ok(entries) = fs::read_dir(trash) else { return };
    for entry in entries.flatten() {
        let _ = fs::remove_dir_all(entry.path());
    }
}
