//! The per-mount flags a bind remount must carry over: `MS_REMOUNT|MS_BIND` replaces
//! them all, so one that asks only for `ro` would drop the mount's `nosuid` and `nodev`.

use std::path::Path;

use anyhow::{Context, Result};
use nix::mount::MsFlags;
use nix::sys::statvfs::FsFlags;

/// `nosuid`, `nodev` and `noexec`, as the mount at `p` has them now.
pub fn kept(p: &Path) -> Result<MsFlags> {
    let stat = nix::sys::statvfs::statvfs(p).with_context(|| format!("statvfs {}", p.display()))?;
    let mut flags = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if stat.flags().contains(fs) {
            flags |= ms;
        }
    }
    Ok(flags)
}
