//! Advisory file locks (flock), so two dockling commands never change the same state at
//! once. One type for every lock dockling takes: on a lock file, on a directory itself,
//! shared or exclusive, blocking or not.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// Held until dropped (closing the file releases the lock).
pub struct FileLock {
    file: File,
}

#[derive(Clone, Copy)]
pub enum Mode {
    Shared,
    Exclusive,
}

impl FileLock {
    /// Blocks until the exclusive lock on `path` is ours (the file is created if missing).
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        Self::on_file(path, Mode::Exclusive)
    }

    /// Blocks until the lock of `mode` on the lock file `path` is ours (created if missing).
    pub fn on_file(path: &Path, mode: Mode) -> Result<FileLock> {
        let file = open_lock_file(path)?;
        Self::wait(file, mode).with_context(|| format!("locking {}", path.display()))
    }

    /// The exclusive lock on a directory itself (no lock file to create and delete again).
    pub fn exclusive_dir(path: &Path) -> Result<FileLock> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Self::wait(file, Mode::Exclusive).with_context(|| format!("locking {}", path.display()))
    }

    /// Locks an open file, waiting for other holders.
    pub fn wait(file: File, mode: Mode) -> std::io::Result<FileLock> {
        let op = match mode {
            Mode::Shared => libc::LOCK_SH,
            Mode::Exclusive => libc::LOCK_EX,
        };
        loop {
            // SAFETY: flock on a valid fd we own.
            if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
                return Ok(FileLock { file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// Takes the exclusive lock on an open file if nobody holds it; gives the file back otherwise.
    pub fn try_exclusive(file: File) -> std::result::Result<FileLock, File> {
        // SAFETY: flock on a valid fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            Ok(FileLock { file })
        } else {
            Err(file)
        }
    }

    /// Gives up the lock object but keeps the file open, and so the lock held, until the
    /// file is closed.
    pub fn into_file(self) -> File {
        self.file
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_shared_shares() {
        let dir = std::env::temp_dir().join(format!("dockling-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.lock");
        let held = FileLock::exclusive(&path).unwrap();
        let other = OpenOptions::new().read(true).open(&path).unwrap();
        let other = FileLock::try_exclusive(other).err().expect("a second exclusive lock must fail");
        drop(held);
        let again = FileLock::try_exclusive(other).expect("free once the holder dropped it");
        drop(again);
        let a = FileLock::on_file(&path, Mode::Shared).unwrap();
        let b = FileLock::on_file(&path, Mode::Shared).unwrap();
        let c = OpenOptions::new().read(true).open(&path).unwrap();
        assert!(FileLock::try_exclusive(c).is_err(), "shared holders keep an exclusive lock out");
        drop((a, b));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
