//! The container's root filesystem: an overlay of the image, its own /proc, /dev and /sys,
//! then `pivot_root` into it. Runs inside the new mount namespace, so every mount here
//! vanishes with the container.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};

use crate::engine::mount::{self, Planned};
use crate::explain;
use crate::security::Security;

/// The container's root filesystem, as `run` planned it.
pub struct RootfsConfig {
    /// Overlay lower dirs, top first.
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// Files bind-mounted over the image's: (path inside, contents).
    pub etc_files: Vec<(&'static str, String)>,
    /// The spec's mounts every container gets (/proc, /dev, /sys, ...), in order.
    pub spec_mounts: Vec<oci_spec::runtime::Mount>,
    /// The user's: `-v` and `--tmpfs`, as spec mounts, made after the files above.
    pub mounts: Vec<oci_spec::runtime::Mount>,
}

pub fn prepare(cfg: &RootfsConfig, security: &Security) -> Result<()> {
    explain::step("mount --make-rprivate /", "nothing we mount leaks back to the host");
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("making / private")?;

    // The volumes, taken now as detached copies of the host's trees: the overlay is about
    // to cover the container's directory, and after pivot_root nothing of the host is left.
    let volumes: Vec<Planned> = cfg.mounts.iter().map(mount::plan).collect::<Result<_>>()?;
    let sources = volumes.iter().map(Planned::open_source).collect::<Result<Vec<_>>>()?;
    let lowers: Vec<String> = cfg.lowers.iter().map(|p| p.display().to_string()).collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},volatile",
        lowers.join(":"),
        cfg.upper.display(),
        cfg.work.display()
    );
    let merged = &cfg.merged;
    explain::step(
        &format!("mount -t overlay overlay -o {opts} {}", merged.display()),
        "copy-on-write root: the image stays read-only, writes go to the upper dir",
    );
    mount(Some("overlay"), merged, Some("overlay"), MsFlags::empty(), Some(opts.as_str()))
        .context("mounting the overlay root filesystem")?;

    // Everything below is mounted *after* pivot_root and after the host's tree is gone, so
    // that no path (a symlink in the image such as /etc -> /root/.ssh, a volume target)
    // can resolve to anything on the host.
    crate::timing::mark("init: overlay");
    crate::engine::rootfs::pivot(merged)?;
    crate::timing::mark("init: pivot");

    // The spec's mounts: /proc, /dev and what is in it, a fresh sysfs (also for --network
    // host: it then shows the host's interfaces), without the host's submounts such as
    // /sys/fs/cgroup.
    for m in &cfg.spec_mounts {
        let planned = mount::plan(m)?;
        planned.apply(None, why(&planned.destination))?;
    }
    crate::timing::mark("init: proc sys");
    crate::engine::devices::make_defaults()?;
    crate::timing::mark("init: dev");
    for (inside, text) in &cfg.etc_files {
        bind_file(inside, text)?;
    }
    for (planned, source) in volumes.iter().zip(sources) {
        let why = match planned.fstype {
            None => "a volume: the host's directory inside the container",
            Some(_) => "a scratch directory in memory",
        };
        planned.apply(source, why)?;
    }
    crate::timing::mark("init: etc");
    if !security.privileged {
        use crate::security::masked_paths::{MASKED, READ_ONLY};
        crate::engine::masked::apply(MASKED, READ_ONLY)?;
    }
    if security.read_only {
        explain::step(
            "mount -o remount,bind,ro /",
            "--read-only: the root filesystem refuses writes (volumes and tmpfs stay writable)",
        );
        crate::security::masked_paths::remount_read_only(Path::new("/"))?;
    }
    Ok(())
}

/// What a standard mount is for, for `--explain`.
fn why(destination: &Path) -> &'static str {
    match destination.to_str() {
        Some("/proc") => "a /proc that shows only the container's processes",
        Some("/dev") => "a private /dev",
        Some("/dev/pts") => "private pseudo-terminals",
        Some("/sys") => "/sys, read-only",
        Some("/dev/shm") => "POSIX shared memory",
        Some("/dev/mqueue") => "POSIX message queues of the IPC namespace",
        _ => "a mount of the container's spec",
    }
}

/// Puts one of our generated files (hosts, hostname, resolv.conf) over the image's,
/// resolving the target inside the container (we are past pivot_root). The file is
/// written in the container's own /dev tmpfs, bound, then unlinked there: the bind keeps
/// it, writable as Docker's are, and none of it touches the host's disk.
fn bind_file(inside: &str, text: &str) -> Result<()> {
    let target = Path::new(inside);
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let staged = Path::new("/dev").join(format!(".dockling-{name}"));
    fs::write(&staged, text).with_context(|| format!("writing {}", staged.display()))?;
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {} in the container", parent.display()))?;
    }
    // A dangling symlink (Debian's resolv.conf) would send the bind elsewhere: replace it.
    if target.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
        fs::remove_file(target)?;
    }
    if !target.exists() {
        fs::write(target, b"").with_context(|| format!("creating {inside}"))?;
    }
    explain::approx(
        &format!("cat > {0} (its text) && mount --bind {0} {inside} && rm {0}", staged.display()),
        "the container's own name and address files",
    );
    mount(Some(&staged), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .with_context(|| format!("binding {inside}"))?;
    fs::remove_file(&staged).with_context(|| format!("removing {}", staged.display()))
}
