//! The container's root filesystem: an overlay of the image, its own /proc, /dev and /sys,
//! then `pivot_root` into it. Runs inside the new mount namespace, so every mount here
//! vanishes with the container.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use super::spawn::InitConfig;
use crate::explain;

pub fn prepare(cfg: &InitConfig) -> Result<()> {
    explain::step("mount --make-rprivate /", "nothing we mount leaks back to the host");
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("making / private")?;

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

    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs(merged, "proc", "proc", nosuid, None, "a /proc that shows only the container's processes")?;
    let sys_flags = if cfg.security.privileged { nosuid } else { nosuid | MsFlags::MS_RDONLY };
    if cfg.new_net {
        mount_fs(merged, "sys", "sysfs", sys_flags, None, "read-only /sys")?;
    } else {
        // Host network: sysfs of the host's netns must be bound, not mounted anew.
        let target = merged.join("sys");
        fs::create_dir_all(&target)?;
        explain::step(&format!("mount --rbind -o ro /sys {}", target.display()), "read-only /sys of the host network");
        mount(Some("/sys"), &target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .context("binding /sys")?;
        let _ = mount(None::<&str>, &target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None::<&str>);
    }
    make_dev(merged)?;
    for (source, inside) in &cfg.etc_files {
        bind_file(merged, source, inside)?;
    }
    super::mounts::apply(merged, &cfg.mounts)?;
    pivot(merged)?;
    if !cfg.security.privileged {
        crate::security::paths::apply()?;
    }
    if cfg.security.read_only {
        explain::step("mount -o remount,bind,ro /", "--read-only: the root filesystem refuses writes (volumes and tmpfs stay writable)");
        crate::security::paths::remount_read_only(Path::new("/"))?;
    }
    Ok(())
}

fn mount_fs(root: &Path, dir: &str, fstype: &str, flags: MsFlags, data: Option<&str>, why: &str) -> Result<()> {
    let target = root.join(dir);
    fs::create_dir_all(&target).with_context(|| format!("creating /{dir}"))?;
    let opts = data.map(|d| format!(" -o {d}")).unwrap_or_default();
    explain::step(&format!("mount -t {fstype}{opts} {fstype} {}", target.display()), why);
    mount(Some(fstype), &target, Some(fstype), flags, data).with_context(|| format!("mounting {fstype} on /{dir}"))
}

/// A minimal /dev, as Docker makes it: a tmpfs with the safe devices, a private devpts,
/// /dev/shm and /dev/mqueue.
fn make_dev(root: &Path) -> Result<()> {
    let dev = root.join("dev");
    mount_fs(root, "dev", "tmpfs", MsFlags::MS_NOSUID, Some("mode=755,size=65536k"), "a private /dev")?;
    for (name, major, minor) in [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)] {
        let path = dev.join(name);
        mknod(&path, SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), makedev(major, minor))
            .with_context(|| format!("mknod /dev/{name}"))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666))?;
    }
    explain::step(
        &format!("for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do IFS=: read n a b <<< $d; mknod -m 666 {}/$n c $a $b; done", dev.display()),
        "the device nodes a program expects",
    );
    mount_fs(root, "dev/pts", "devpts", MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("newinstance,ptmxmode=0666,mode=0620"), "private pseudo-terminals")?;
    mount_fs(root, "dev/shm", "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, Some("mode=1777,size=65536k"), "POSIX shared memory")?;
    mount_fs(root, "dev/mqueue", "mqueue", MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None, "POSIX message queues of the IPC namespace")?;
    for (link, target) in [("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
        symlink(target, dev.join(link)).with_context(|| format!("linking /dev/{link}"))?;
    }
    Ok(())
}

/// Puts one of our generated files (hosts, hostname, resolv.conf) over the image's.
fn bind_file(root: &Path, source: &Path, inside: &str) -> Result<()> {
    let target = root.join(inside.trim_start_matches('/'));
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    // A dangling symlink (Debian's resolv.conf) would send the bind elsewhere: replace it.
    if target.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
        fs::remove_file(&target)?;
    }
    if !target.exists() {
        fs::write(&target, b"").with_context(|| format!("creating {inside}"))?;
    }
    explain::step(&format!("mount --bind {} {}", source.display(), target.display()), "the container's own name and address files");
    mount(Some(source), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>).with_context(|| format!("binding {inside}"))
}

/// Makes `root` the new `/` and detaches the old root.
fn pivot(root: &Path) -> Result<()> {
    explain::approx(
        &format!("cd {} && pivot_root . . && umount -l .", root.display()),
        "switch the root to the overlay and drop the host's tree",
    );
    nix::unistd::chdir(root).context("chdir to the new root")?;
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    // The old root is now stacked under "."; detach it.
    mount(None::<&str>, ".", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>).context("making the old root a slave")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}
