//! Kernel paths a container must not read or change (Docker's lists, the spec's
//! `maskedPaths` and `readonlyPaths`; `engine::masked` makes them), and the read-only
//! remount of a whole root (`--read-only`).

use std::path::Path;

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};

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

/// Re-mounts a mount point read-only, keeping its other flags (nosuid, nodev, ...).
pub fn remount_read_only(p: &Path) -> Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | crate::sys::mount_flags::kept(p)?;
    mount(None::<&str>, p, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("making {} read-only", p.display()))
}
