//! One mount of the spec (`mounts[]` in config.json) as the system calls that make it,
//! with the exact `mount` commands that do the same (for `--explain`): fstab-style options
//! become mount flags, a propagation change, or the filesystem's own data, as runc reads
//! them. A bind is made first and then remounted for its flags (the kernel ignores
//! `ro`, `nosuid`, ... on the bind itself). What the engine cannot honour is refused
//! with the option's name, never skipped.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use super::detached;
use crate::explain;

/// A mount, planned: what to call `mount(2)` with, and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub destination: PathBuf,
    /// The filesystem type (`proc`, `tmpfs`, ...); None for a bind.
    pub fstype: Option<String>,
    pub source: Option<PathBuf>,
    /// Flags for the mount itself (for a bind: MS_BIND, with MS_REC for `rbind`).
    pub flags: MsFlags,
    /// The filesystem's own options (`mode=755,size=65536k`).
    pub data: Option<String>,
    /// For a bind: the flags of the remount that follows (`ro`, `nosuid`, ...).
    pub remount: Option<MsFlags>,
    /// A propagation change afterwards (`rprivate`, `slave`, ...).
    pub propagation: Option<MsFlags>,
    /// Flags the options turn off (`suid`, `dev`, `exec`): a bind's remount does not keep
    /// them from its source.
    pub cleared: MsFlags,
    /// The options as given, minus the propagation ones, for the `mount` command.
    options: Vec<String>,
}

/// (name, flags set, flags cleared): the options that are mount flags.
const FLAGS: [(&str, MsFlags, MsFlags); 25] = [
    ("defaults", MsFlags::empty(), MsFlags::empty()),
    ("ro", MsFlags::MS_RDONLY, MsFlags::empty()),
    ("rw", MsFlags::empty(), MsFlags::MS_RDONLY),
    ("nosuid", MsFlags::MS_NOSUID, MsFlags::empty()),
    ("suid", MsFlags::empty(), MsFlags::MS_NOSUID),
    ("nodev", MsFlags::MS_NODEV, MsFlags::empty()),
    ("dev", MsFlags::empty(), MsFlags::MS_NODEV),
    ("noexec", MsFlags::MS_NOEXEC, MsFlags::empty()),
    ("exec", MsFlags::empty(), MsFlags::MS_NOEXEC),
    ("sync", MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
    ("async", MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
    ("dirsync", MsFlags::MS_DIRSYNC, MsFlags::empty()),
    ("remount", MsFlags::MS_REMOUNT, MsFlags::empty()),
    ("mand", MsFlags::MS_MANDLOCK, MsFlags::empty()),
    ("nomand", MsFlags::empty(), MsFlags::MS_MANDLOCK),
    ("noatime", MsFlags::MS_NOATIME, MsFlags::empty()),
    ("atime", MsFlags::empty(), MsFlags::MS_NOATIME),
    ("nodiratime", MsFlags::MS_NODIRATIME, MsFlags::empty()),
    ("diratime", MsFlags::empty(), MsFlags::MS_NODIRATIME),
    ("relatime", MsFlags::MS_RELATIME, MsFlags::empty()),
    ("norelatime", MsFlags::empty(), MsFlags::MS_RELATIME),
    ("strictatime", MsFlags::MS_STRICTATIME, MsFlags::empty()),
    ("nostrictatime", MsFlags::empty(), MsFlags::MS_STRICTATIME),
    ("silent", MsFlags::MS_SILENT, MsFlags::empty()),
    ("loud", MsFlags::empty(), MsFlags::MS_SILENT),
];

/// The propagation options.
const PROPAGATION: [(&str, MsFlags); 8] = [
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// Options some runtimes honour that this engine does not (yet): refused by name.
const UNSUPPORTED: [&str; 5] = ["tmpcopyup", "idmap", "ridmap", "symfollow", "nosymfollow"];

/// `rro`, `rnosuid`, `rrw`, ...: a flag for a whole tree (mount_setattr), not done here.
fn is_recursive_flag(opt: &str) -> bool {
    opt.strip_prefix('r').is_some_and(|f| FLAGS.iter().any(|(name, ..)| *name == f) || f == "nosymfollow")
}

/// The options [`plan`] honours, sorted (`dockling-runc features`).
pub fn option_names() -> Vec<&'static str> {
    let mut names: Vec<&str> =
        FLAGS.iter().map(|(n, ..)| *n).chain(PROPAGATION.iter().map(|(n, _)| *n)).chain(["bind", "rbind"]).collect();
    names.sort_unstable();
    names
}

/// Reads one spec mount.
pub fn plan(m: &Mount) -> Result<Planned> {
    let destination = m.destination().clone();
    if !destination.is_absolute() {
        bail!("mount destination {} is not absolute", destination.display());
    }
    let options = m.options().clone().unwrap_or_default();
    let mut flags = MsFlags::empty();
    let mut cleared = MsFlags::empty();
    let mut propagation = None;
    let mut data = Vec::new();
    let mut bind = m.typ().as_deref() == Some("bind");
    let mut recursive = false;
    let mut kept = Vec::new();
    for opt in &options {
        if let Some((_, set, clear)) = FLAGS.iter().find(|(name, ..)| name == opt) {
            flags = (flags | *set) & !*clear;
            cleared = (cleared | *clear) & !*set;
            kept.push(opt.clone());
        } else if let Some((_, p)) = PROPAGATION.iter().find(|(name, _)| name == opt) {
            propagation = Some(*p);
        } else if opt == "bind" || opt == "rbind" {
            bind = true;
            recursive |= opt == "rbind";
            kept.push(opt.clone());
        } else if UNSUPPORTED.contains(&opt.as_str()) || is_recursive_flag(opt) {
            bail!("mount option {opt:?} on {} is not supported by dockling", destination.display());
        } else {
            data.push(opt.clone());
            kept.push(opt.clone());
        }
    }
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        bail!("id-mapped mounts ({}) are not supported by dockling", destination.display());
    }
    let source = m.source().clone();
    if bind {
        if source.is_none() {
            bail!("bind mount on {} has no source", destination.display());
        }
        // A bind has no filesystem options: one it would ignore is refused instead.
        if let Some(opt) = data.first() {
            bail!("mount option {opt:?} on the bind {} is not supported by dockling", destination.display());
        }
        let mut bind_flags = MsFlags::MS_BIND;
        if recursive {
            bind_flags |= MsFlags::MS_REC;
        }
        // Whatever else was asked goes into a remount of the bind.
        let rest = flags & !MsFlags::MS_REMOUNT;
        return Ok(Planned {
            destination,
            fstype: None,
            source,
            flags: bind_flags,
            data: None,
            remount: (!rest.is_empty()).then_some(rest),
            propagation,
            cleared,
            options: kept,
        });
    }
    let Some(fstype) = m.typ().clone() else {
        bail!("mount on {} has no type", destination.display());
    };
    Ok(Planned {
        destination,
        fstype: Some(fstype),
        source,
        flags,
        data: (!data.is_empty()).then(|| data.join(",")),
        remount: None,
        propagation,
        cleared,
        options: kept,
    })
}

impl Planned {
    /// The `mount` commands that do the same, in order.
    pub fn commands(&self) -> Vec<String> {
        let dest = self.destination.display();
        let source = self.source.as_deref().map(|s| s.display().to_string()).unwrap_or_else(|| "none".into());
        let mut out = Vec::new();
        match &self.fstype {
            None => {
                let how = if self.flags.contains(MsFlags::MS_REC) { "--rbind" } else { "--bind" };
                out.push(format!("mount {how} {source} {dest}"));
                if self.remount.is_some() {
                    let opts: Vec<&str> =
                        self.options.iter().map(String::as_str).filter(|o| *o != "bind" && *o != "rbind").collect();
                    out.push(format!("mount -o remount,bind,{} {dest}", opts.join(",")));
                }
            }
            Some(fstype) => {
                let opts =
                    if self.options.is_empty() { String::new() } else { format!(" -o {}", self.options.join(",")) };
                out.push(format!("mount -t {fstype}{opts} {source} {dest}"));
            }
        }
        if let Some(p) = self.propagation {
            out.push(format!("mount --make-{} {dest}", propagation_name(p)));
        }
        out
    }

    /// For a bind: its source, taken now (before `pivot_root`, while the host's paths
    /// still resolve) as a detached copy of its mount tree, to be attached by [`apply`]
    /// once nothing of the host is left to resolve a path into. None for the others.
    ///
    /// [`apply`]: Planned::apply
    pub fn open_source(&self) -> Result<Option<OwnedFd>> {
        match (&self.fstype, &self.source) {
            (None, Some(source)) => detached::open_tree(source, self.flags.contains(MsFlags::MS_REC)).map(Some),
            _ => Ok(None),
        }
    }

    /// Makes the mount inside the container's root (already `/`): the destination is
    /// made first (a file for a bind of a file), then the mount (a bind from `source`,
    /// what [`Planned::open_source`] took), the bind's remount and the propagation.
    pub fn apply(&self, source: Option<OwnedFd>, why: &str) -> Result<()> {
        for c in self.commands() {
            explain::step(&c, why);
        }
        let dest = &self.destination;
        match source {
            Some(fd) => {
                self.make_destination(detached::is_dir(&fd))?;
                detached::move_mount(&fd, dest)?;
            }
            None => {
                let is_dir = self.fstype.is_some() || self.source.as_deref().is_none_or(|s| Path::new(s).is_dir());
                self.make_destination(is_dir)?;
                nix::mount::mount(
                    self.source.as_deref(),
                    dest,
                    self.fstype.as_deref(),
                    self.flags,
                    self.data.as_deref(),
                )
                .with_context(|| format!("mounting {}", dest.display()))?;
            }
        }
        if let Some(flags) = self.remount {
            // The flags the bind has already (from its source) are kept: a bind remount
            // replaces them all.
            let kept = crate::sys::mount_flags::kept(dest)? & !self.cleared;
            let all = flags | kept | MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
            nix::mount::mount(None::<&str>, dest, None::<&str>, all, None::<&str>)
                .with_context(|| format!("remounting {}", dest.display()))?;
        }
        if let Some(p) = self.propagation {
            nix::mount::mount(None::<&str>, dest, None::<&str>, p, None::<&str>)
                .with_context(|| format!("changing the propagation of {}", dest.display()))?;
        }
        Ok(())
    }

    fn make_destination(&self, is_dir: bool) -> Result<()> {
        let dest = &self.destination;
        if !is_dir {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {} in the container", parent.display()))?;
            }
            if !dest.exists() {
                std::fs::write(dest, b"").with_context(|| format!("creating {} in the container", dest.display()))?;
            }
            return Ok(());
        }
        std::fs::create_dir_all(dest).with_context(|| format!("creating {} in the container", dest.display()))
    }
}

fn propagation_name(p: MsFlags) -> &'static str {
    PROPAGATION.iter().find(|(_, f)| *f == p).map(|(name, _)| *name).unwrap_or("private")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_mounts(fixture: &str) -> Vec<Mount> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oci-runtime").join(fixture);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let spec: oci_spec::runtime::Spec = serde_json::from_str(&text).unwrap();
        spec.mounts().clone().unwrap()
    }

    fn find<'a>(planned: &'a [Planned], dest: &str) -> &'a Planned {
        planned.iter().find(|p| p.destination == Path::new(dest)).unwrap()
    }

    #[test]
    fn dockers_mounts_become_flags_data_and_commands() {
        let planned: Vec<Planned> =
            spec_mounts("docker-20.10-run-bridge.config.json").iter().map(|m| plan(m).unwrap()).collect();
        let proc = find(&planned, "/proc");
        assert_eq!(proc.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV);
        assert_eq!(proc.data, None);
        assert_eq!(proc.commands(), ["mount -t proc -o nosuid,noexec,nodev proc /proc"]);
        let dev = find(&planned, "/dev");
        assert_eq!(dev.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(dev.data.as_deref(), Some("mode=755,size=65536k"));
        let pts = find(&planned, "/dev/pts");
        assert_eq!(pts.data.as_deref(), Some("newinstance,ptmxmode=0666,mode=0620,gid=5"));
        let sys = find(&planned, "/sys");
        assert!(sys.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(sys.commands(), ["mount -t sysfs -o nosuid,noexec,nodev,ro sysfs /sys"]);
        let hosts = find(&planned, "/etc/hosts");
        assert_eq!(hosts.fstype, None);
        assert_eq!(hosts.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(hosts.remount, None);
        assert_eq!(hosts.propagation, Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC));
        let c = hosts.commands();
        assert!(c[0].starts_with("mount --rbind /var/lib/docker/containers/"), "{c:?}");
        assert_eq!(c[1], "mount --make-rprivate /etc/hosts");
    }

    #[test]
    fn a_read_only_bind_is_remounted_and_said_so() {
        let mut m = Mount::default();
        m.set_destination(PathBuf::from("/data"));
        m.set_typ(Some("bind".into()));
        m.set_source(Some(PathBuf::from("/srv/data")));
        m.set_options(Some(vec!["rbind".into(), "ro".into(), "nosuid".into()]));
        let p = plan(&m).unwrap();
        assert_eq!(p.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(p.remount, Some(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID));
        assert_eq!(p.commands(), ["mount --rbind /srv/data /data", "mount -o remount,bind,ro,nosuid /data"]);
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        let mut m = Mount::default();
        m.set_destination(PathBuf::from("/x"));
        m.set_typ(Some("tmpfs".into()));
        m.set_options(Some(vec!["tmpcopyup".into()]));
        let e = plan(&m).unwrap_err().to_string();
        assert!(e.contains("tmpcopyup"), "{e}");
        m.set_destination(PathBuf::from("relative"));
        assert!(plan(&m).is_err());
        m.set_destination(PathBuf::from("/x"));
        for opt in ["rro", "rnodev", "rrw", "nosymfollow"] {
            m.set_options(Some(vec![opt.into()]));
            assert!(plan(&m).unwrap_err().to_string().contains(opt), "{opt}");
        }
        // A bind ignores filesystem options: refused, not dropped.
        m.set_typ(Some("bind".into()));
        m.set_source(Some(PathBuf::from("/srv")));
        m.set_options(Some(vec!["rbind".into(), "size=1m".into()]));
        assert!(plan(&m).unwrap_err().to_string().contains("size=1m"));
    }

    #[test]
    fn containerds_mounts_all_plan() {
        for m in spec_mounts("ctr-1.6-run.config.json") {
            plan(&m).unwrap();
        }
    }

    #[test]
    fn the_defaults_are_dockers() {
        let ours = crate::engine::defaults::mounts(false);
        let docker = spec_mounts("docker-20.10-run-bridge.config.json");
        for m in &ours {
            let theirs = docker.iter().find(|d| d.destination() == m.destination());
            let theirs = theirs.unwrap_or_else(|| panic!("docker has no {}", m.destination().display()));
            assert_eq!(m.typ(), theirs.typ(), "{}", m.destination().display());
            // Docker's /dev/shm size is its --shm-size default in bytes; the same 64 MiB.
            if m.destination() != Path::new("/dev/shm") {
                assert_eq!(m.options(), theirs.options(), "{}", m.destination().display());
            }
        }
    }
}
