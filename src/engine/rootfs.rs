//! The spec's root filesystem: `root.path` (a directory the caller prepared: containerd's
//! mounted snapshot, Docker's overlay, or an image unpacked by hand), the spec's mounts,
//! device nodes, masked and read-only paths, and `root.readonly`, as runc makes them.
//! Runs in the container's new mount namespace, so all of it goes with the container.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::LinuxDevice;

use super::mount::Planned;
use super::{devices, masked};
use crate::explain;

/// The root and what goes into it, read from the spec.
pub struct Plan {
    /// Absolute (the spec's relative path is resolved against the bundle).
    pub root: PathBuf,
    pub readonly: bool,
    /// `linux.rootfsPropagation`; runc's default is rslave (host mounts appear inside,
    /// none of the container's leak out).
    pub propagation: MsFlags,
    pub mounts: Vec<Planned>,
    pub devices: Vec<LinuxDevice>,
    pub masked: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// `linux.sysctl`, written before /proc/sys turns read-only.
    pub sysctl: Vec<(String, String)>,
    /// The container's own groups: a `cgroup` mount shows these (and nothing above them).
    pub cgroups: Vec<PathBuf>,
}

/// In the container's mount namespace: everything up to the process. `before_pivot`
/// runs once the root is bound, while the host's paths still resolve (createContainer).
pub fn prepare(plan: &Plan, before_pivot: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    explain::step("mount --make-rslave /", "host mounts may reach the container, none of ours the host");
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | plan.propagation, None::<&str>)
        .context("changing the propagation of /")?;
    let root = &plan.root;
    explain::step(
        &format!("mount --rbind {0} {0}", root.display()),
        "the root must be a mount point of its own for pivot_root",
    );
    mount(Some(root.as_path()), root, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .with_context(|| format!("binding the root {}", root.display()))?;
    // Bind sources are taken now, while the host's paths resolve; everything is mounted
    // after pivot_root, where no path (a symlink in the image) can lead to the host.
    let sources = plan.mounts.iter().map(Planned::open_source).collect::<Result<Vec<_>>>()?;
    let groups = match plan.mounts.iter().any(|m| m.fstype.as_deref() == Some("cgroup")) {
        true => cgroup_sources(&plan.cgroups)?,
        false => Vec::new(),
    };
    before_pivot()?;
    pivot(root)?;
    let mut dev_is_ours = false;
    for (m, source) in plan.mounts.iter().zip(sources) {
        if m.fstype.as_deref() == Some("cgroup") {
            mount_cgroups(m, &groups)?;
            continue;
        }
        m.apply(source, "a mount of the container's spec")?;
        if m.destination == Path::new("/dev") {
            dev_is_ours = m.fstype.is_some();
        }
    }
    if dev_is_ours {
        devices::make_defaults()?;
    }
    devices::make_spec(&plan.devices)?;
    for (key, value) in &plan.sysctl {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        explain::step(&format!("sysctl -w {key}={value}"), "a kernel setting of the container's namespaces");
        std::fs::write(&path, value).with_context(|| format!("sysctl {key}"))?;
    }
    let masked: Vec<&str> = plan.masked.iter().map(String::as_str).collect();
    let read_only: Vec<&str> = plan.readonly_paths.iter().map(String::as_str).collect();
    masked::apply(&masked, &read_only)?;
    if plan.readonly {
        explain::step("mount -o remount,bind,ro /", "root.readonly: the root filesystem refuses writes");
        crate::security::masked_paths::remount_read_only(Path::new("/"))?;
    }
    Ok(())
}

/// Makes `root` the new `/` and drops the host's tree at once, as runc does: pivot_root
/// with the same directory for both stacks the old root on top of the new one, and a lazy
/// unmount of `.` takes it away.
/// The container's own group of each v1 controller (`memory` → .../memory/dockling/x),
/// taken before pivot_root as detached trees; on a cgroup2 host, none (a fresh cgroup2
/// mount in the container's cgroup namespace shows its own).
fn cgroup_sources(dirs: &[PathBuf]) -> Result<Vec<(String, std::os::fd::OwnedFd)>> {
    let mut out = Vec::new();
    for dir in dirs {
        let Some(controller) = dir.strip_prefix("/sys/fs/cgroup").ok().and_then(|r| r.iter().next()) else {
            continue;
        };
        let name = controller.to_string_lossy().into_owned();
        // cgroup2: the group itself is the whole tree (no controller directory).
        let name = if name == "dockling" { String::new() } else { name };
        out.push((name, super::detached::open_tree(dir, false)?));
    }
    Ok(out)
}

/// A spec mount of type `cgroup` (Docker's /sys/fs/cgroup): on a v1 host, a tmpfs with
/// the container's own group of each controller bound at the controller's name, as runc
/// makes it; on cgroup2, the container's own group bound there. Never the host's tree;
/// read-only when the mount says `ro`.
fn mount_cgroups(m: &Planned, groups: &[(String, std::os::fd::OwnedFd)]) -> Result<()> {
    let dest = &m.destination;
    let ro = m.flags.contains(MsFlags::MS_RDONLY);
    let base = m.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    // (A file we make in the container's tree: no link of the image's on the way, we
    // are past pivot_root.)
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    if let [(name, fd)] = groups {
        if name.is_empty() {
            explain::step(&format!("mount --bind <its own group> {}", dest.display()), "the container's cgroup");
            super::detached::move_mount(fd, dest)?;
            if ro {
                crate::security::masked_paths::remount_read_only(dest)?;
            }
            return Ok(());
        }
    }
    if groups.is_empty() {
        anyhow::bail!("a cgroup mount at {} without groups of the container's own", dest.display());
    }
    explain::step(&format!("mount -t tmpfs -o mode=755 cgroup {}", dest.display()), "the container's cgroups");
    mount(Some("cgroup"), dest, Some("tmpfs"), base, Some("mode=755")).context("mounting the cgroup tmpfs")?;
    for (name, fd) in groups {
        let at = dest.join(name);
        std::fs::create_dir_all(&at).with_context(|| format!("creating {}", at.display()))?;
        explain::step(&format!("mount --bind <its own {name} group> {}", at.display()), "only its own group");
        super::detached::move_mount(fd, &at)?;
        if ro {
            crate::security::masked_paths::remount_read_only(&at)?;
        }
    }
    if ro {
        crate::security::masked_paths::remount_read_only(dest)?;
    }
    Ok(())
}

pub fn pivot(root: &Path) -> Result<()> {
    explain::approx(
        &format!("cd {} && pivot_root . . && umount -l .", root.display()),
        "switch the root to the overlay and drop the host's tree",
    );
    nix::unistd::chdir(root).context("chdir to the new root")?;
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    mount(None::<&str>, ".", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
        .context("making the old root a slave")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}
