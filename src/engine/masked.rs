//! The spec's `maskedPaths` and `readonlyPaths`, through the same mount executor as the
//! spec's mounts (so `--explain` prints exactly what is made): a masked directory is
//! covered by an empty read-only tmpfs, a masked file by /dev/null; a read-only path is
//! bound over itself (recursively) and remounted read-only. Runs after `pivot_root`, so
//! the paths are the container's; a path the kernel does not have is skipped.

use std::path::Path;

use super::{defaults, mount};
use anyhow::Result;

/// Masks `masked` and freezes `read_only`.
pub fn apply(masked: &[&str], read_only: &[&str]) -> Result<()> {
    for path in masked {
        let Ok(meta) = Path::new(path).metadata() else { continue };
        let (m, why) = if meta.is_dir() {
            (defaults::mount(path, "tmpfs", "tmpfs", &["ro"]), "hide a kernel directory")
        } else {
            (defaults::mount(path, "bind", "/dev/null", &["bind"]), "hide a kernel file")
        };
        mount::plan(&m)?.apply(None, why)?;
    }
    for path in read_only {
        if !Path::new(path).exists() {
            continue;
        }
        let m = defaults::mount(path, "bind", path, &["rbind", "ro"]);
        mount::plan(&m)?.apply(None, "kernel settings stay read-only")?;
    }
    Ok(())
}
