//! Device nodes in the container's /dev: the ones every program expects (as Docker and
//! runc make them in a tmpfs /dev) and the spec's `linux.devices`.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::explain;

/// The device nodes and links a program expects in /dev, as Docker makes them.
pub fn make_defaults() -> Result<()> {
    let dev = Path::new("/dev");
    for (name, major, minor) in
        [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
    {
        let path = dev.join(name);
        mknod(&path, SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), makedev(major, minor))
            .with_context(|| format!("mknod /dev/{name}"))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666))?;
    }
    explain::step(
        "for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do IFS=: read n a b <<< $d; mknod -m 666 /dev/$n c $a $b; done",
        "the device nodes a program expects",
    );
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(link)).with_context(|| format!("linking /dev/{link}"))?;
    }
    Ok(())
}

/// The spec's `linux.devices`: each node made (replacing one of the defaults of the same
/// path) with its mode and owner.
pub fn make_spec(devices: &[LinuxDevice]) -> Result<()> {
    for d in devices {
        let path = d.path();
        if !path.starts_with("/dev/") || path.components().any(|c| c == std::path::Component::ParentDir) {
            bail!("device path {} must be under /dev, without ..", path.display());
        }
        // No directory on the way may be a link (the image's, or /dev/fd): the node and
        // its mode and owner land where the path says, inside the container's /dev.
        let mut at = Path::new("/dev").to_path_buf();
        for c in path.strip_prefix("/dev").into_iter().flat_map(|r| r.components()) {
            at.push(c);
            if at.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
                bail!("device path {} goes through the link {}", path.display(), at.display());
            }
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => bail!("device {}: type a is not a node", path.display()),
        };
        let mode = d.file_mode().unwrap_or(0o666);
        explain::step(
            &format!("mknod -m {mode:o} {} {} {} {}", path.display(), kind_letter(kind), d.major(), d.minor()),
            "a device the spec gives the container",
        );
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let _ = fs::remove_file(path);
        mknod(path, kind, Mode::from_bits_truncate(mode), makedev(d.major() as u64, d.minor() as u64))
            .with_context(|| format!("mknod {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {}", path.display()))?;
        let uid = d.uid().map(nix::unistd::Uid::from_raw);
        let gid = d.gid().map(nix::unistd::Gid::from_raw);
        nix::unistd::chown(Path::new(path), uid, gid).with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

fn kind_letter(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFBLK => "b",
        SFlag::S_IFIFO => "p",
        _ => "c",
    }
}
