//! Kernel paths a container must not read or change (Docker's lists): masked ones are
//! covered (a file by /dev/null, a directory by an empty read-only tmpfs), read-only ones
//! are re-mounted read-only. Runs after pivot_root, so paths are the container's.

use std::path::Path;

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};

use crate::explain;

pub const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READ_ONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

pub fn apply() -> Result<()> {
    for path in MASKED {
        let p = Path::new(path);
        let Ok(meta) = p.metadata() else { continue };
        if meta.is_dir() {
            explain::step(&format!("mount -t tmpfs -o ro tmpfs {path}"), "hide a kernel directory");
            mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)
                .with_context(|| format!("masking {path}"))?;
        } else {
            explain::step(&format!("mount --bind /dev/null {path}"), "hide a kernel file");
            mount(Some("/dev/null"), p, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .with_context(|| format!("masking {path}"))?;
        }
    }
    for path in READ_ONLY {
        let p = Path::new(path);
        if !p.exists() {
            continue;
        }
        explain::step(
            &format!("mount --bind {path} {path} && mount -o remount,bind,ro {path}"),
            "kernel settings stay read-only",
        );
        mount(Some(p), p, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .with_context(|| format!("binding {path}"))?;
        remount_read_only(p)?;
    }
    Ok(())
}

/// Re-mounts a mount point read-only, keeping its other flags (nosuid, nodev, ...).
pub fn remount_read_only(p: &Path) -> Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | crate::sys::mount_flags::kept(p)?;
    mount(None::<&str>, p, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("making {} read-only", p.display()))
}
