//! Advisory file locks (flock) so two dockling commands never change the same state at once.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};

/// Held until dropped.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the exclusive lock on `path` is ours (the file is created if missing).
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening lock file {}", path.display()))?;
        Self::lock(file, path)
    }

    /// The same, on a directory itself (no lock file to create and delete again).
    pub fn exclusive_dir(path: &Path) -> Result<FileLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Self::lock(file, path)
    }

    fn lock(file: File, path: &Path) -> Result<FileLock> {
        loop {
            // SAFETY: flock on a valid fd we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err).with_context(|| format!("locking {}", path.display()));
            }
        }
        Ok(FileLock { _file: file })
    }
}
