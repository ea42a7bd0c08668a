//! Detached mount trees (`open_tree`, `move_mount`): a bind's source is taken while the
//! host's paths resolve, and attached after `pivot_root`, when no path inside the
//! container (a symlink in the image, a bind's target) can lead back to the host.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result};

/// `open_tree(2)` flags (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
/// `move_mount(2)`: the source is the descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

fn c_path(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).with_context(|| format!("bad path {}", p.display()))
}

/// A detached copy of the mount at `source` (with its submounts when `recursive`).
pub fn open_tree(source: &Path, recursive: bool) -> Result<OwnedFd> {
    let path = c_path(source)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: a NUL-terminated path; returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("opening {}", source.display()));
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether the detached tree's root is a directory.
pub fn is_dir(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd.as_raw_fd()).map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR).unwrap_or(false)
}

/// Attaches the detached tree at `target`.
pub fn move_mount(fd: &OwnedFd, target: &Path) -> Result<()> {
    let to = c_path(target)?;
    // SAFETY: a valid descriptor, an empty and a NUL-terminated path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("attaching a bind at {}", target.display()));
    }
    Ok(())
}
