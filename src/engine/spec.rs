//! A runtime spec (`config.json` of a bundle) read into what the engine does with it.
//! Everything the engine cannot honour is refused here, by name, before anything exists.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::mount::MsFlags;
use oci_spec::runtime::{Hook, LinuxResources, Spec};

use super::{mount, namespaces, process, rootfs};

/// The container as the engine will make it.
pub struct Plan {
    pub namespaces: namespaces::Plan,
    pub rootfs: rootfs::Plan,
    pub process: process::Plan,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// `linux.cgroupsPath`, relative to dockling's parent group (None: the id).
    pub cgroups_path: Option<PathBuf>,
    pub resources: Option<LinuxResources>,
    pub hooks: Hooks,
    pub annotations: serde_json::Value,
}

/// The hooks, by when they run.
#[derive(Default)]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    /// In the container's namespaces, once its mounts are made.
    pub create_container: Vec<Hook>,
    /// In the container, after `start`, right before the command.
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

/// Reads `config.json` from the bundle.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    Spec::load(&path).with_context(|| format!("reading {}", path.display()))
}

/// Reads and checks a spec; `bundle` resolves a relative `root.path`.
pub fn read(spec: &Spec, bundle: &Path) -> Result<Plan> {
    let Some(root) = spec.root() else { bail!("the spec has no root") };
    let root_path = if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) };
    let root_path = root_path.canonicalize().with_context(|| format!("root.path {}", root_path.display()))?;
    if !root_path.is_dir() {
        bail!("root.path {} is not a directory", root_path.display());
    }
    let Some(p) = spec.process() else { bail!("the spec has no process") };
    let Some(linux) = spec.linux() else { bail!("the spec has no linux section") };
    if linux.uid_mappings().is_some() || linux.gid_mappings().is_some() {
        bail!("user namespace id mappings are not supported by dockling");
    }
    if linux.intel_rdt().is_some() || linux.personality().is_some() || linux.time_offsets().is_some() {
        bail!("linux.intelRdt, personality and timeOffsets are not supported by dockling");
    }
    if linux.mount_label().as_deref().is_some_and(|l| !l.is_empty()) {
        bail!("SELinux mount labels are not supported by dockling");
    }
    let namespaces = namespaces::plan(linux.namespaces().as_deref().unwrap_or_default())?;
    if !namespaces.new.contains(nix::sched::CloneFlags::CLONE_NEWNS) {
        bail!("dockling needs a new mount namespace for the container");
    }
    let propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") | Some("rslave") | Some("slave") => MsFlags::MS_SLAVE,
        Some("private") | Some("rprivate") => MsFlags::MS_PRIVATE,
        Some("shared") | Some("rshared") => MsFlags::MS_SHARED,
        Some("unbindable") | Some("runbindable") => MsFlags::MS_UNBINDABLE,
        Some(other) => bail!("rootfsPropagation {other:?} is not known"),
    };
    let mounts = spec.mounts().iter().flatten().map(mount::plan).collect::<Result<Vec<_>>>()?;
    let mut sysctl: Vec<(String, String)> = linux.sysctl().clone().unwrap_or_default().into_iter().collect();
    sysctl.sort();
    let private =
        |flag: nix::sched::CloneFlags| namespaces.new.contains(flag) || namespaces.join.iter().any(|(k, _)| *k == flag);
    for (key, _) in &sysctl {
        check_sysctl(key, &private)?;
    }
    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
    if (hostname.is_some() || domainname.is_some()) && !private(nix::sched::CloneFlags::CLONE_NEWUTS) {
        bail!("setting the hostname or domainname needs a private UTS namespace");
    }
    let seccomp = seccomp(spec)?;
    let process = process::plan(p)?.with_seccomp(seccomp);
    let hooks = match spec.hooks() {
        None => Hooks::default(),
        Some(h) => {
            let list = |v: &Option<Vec<Hook>>| v.clone().unwrap_or_default();
            #[allow(deprecated)]
            let prestart = list(h.prestart());
            Hooks {
                prestart,
                create_runtime: list(h.create_runtime()),
                create_container: list(h.create_container()),
                start_container: list(h.start_container()),
                poststart: list(h.poststart()),
                poststop: list(h.poststop()),
            }
        }
    };
    let cgroups_path = match linux.cgroups_path() {
        None => None,
        Some(p) => Some(cgroups_relative(p)?),
    };
    Ok(Plan {
        namespaces,
        rootfs: rootfs::Plan {
            root: root_path,
            readonly: root.readonly().unwrap_or(false),
            propagation,
            mounts,
            devices: linux.devices().clone().unwrap_or_default(),
            masked: linux.masked_paths().clone().unwrap_or_default(),
            readonly_paths: linux.readonly_paths().clone().unwrap_or_default(),
            sysctl,
            cgroups: Vec::new(),
        },
        process,
        hostname,
        domainname,
        cgroups_path,
        resources: linux.resources().clone(),
        hooks,
        annotations: serde_json::to_value(spec.annotations().clone().unwrap_or_default()).unwrap_or_default(),
    })
}

/// Only settings of the container's own namespaces may be set (runc's rule): `net.*`
/// with a network namespace of its own, the IPC ones with its own IPC namespace; a
/// host-wide one (`kernel.core_pattern`, `vm.*`) would change the host.
fn check_sysctl(key: &str, private: &dyn Fn(nix::sched::CloneFlags) -> bool) -> Result<()> {
    use nix::sched::CloneFlags;
    if key.is_empty() || key.contains("..") || key.contains('/') || key.starts_with('.') {
        bail!("sysctl {key:?} is not a valid name");
    }
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let needs = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        CloneFlags::CLONE_NEWIPC
    } else if key.starts_with("net.") {
        CloneFlags::CLONE_NEWNET
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        bail!("sysctl {key}: use the spec's hostname and domainname");
    } else {
        bail!("sysctl {key} is not namespaced: it would change the host");
    };
    if !private(needs) {
        bail!("sysctl {key} needs a namespace of the container's own ({needs:?})");
    }
    Ok(())
}

/// The compiled `linux.seccomp` filter (also for the processes `exec` adds).
pub fn seccomp(spec: &Spec) -> Result<Option<Vec<libc::sock_filter>>> {
    let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else { return Ok(None) };
    if s.flags().as_ref().is_some_and(|f| !f.is_empty()) || s.listener_path().is_some() {
        bail!("linux.seccomp flags and listenerPath are not supported by dockling");
    }
    let value = serde_json::to_value(s).context("reading linux.seccomp")?;
    crate::security::seccomp::compile_spec(&value).map(Some)
}

/// `linux.cgroupsPath` (`/default/t1`, `/docker/<id>`, `/kubepods/.../<id>`) as a path
/// under dockling's own parent group: dockling never makes or moves groups elsewhere.
/// systemd's `slice:prefix:name` form needs the systemd driver, which dockling has not.
fn cgroups_relative(p: &Path) -> Result<PathBuf> {
    let text = p.to_string_lossy();
    if !p.is_absolute() && text.contains(':') {
        bail!("cgroupsPath {text:?} is in systemd's form: use cgroupfs paths (no --systemd-cgroup)");
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::RootDir | std::path::Component::CurDir => {}
            _ => bail!("cgroupsPath {text:?} may not contain .."),
        }
    }
    if out.as_os_str().is_empty() {
        bail!("cgroupsPath {text:?} names no group");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_containers_own_sysctls() {
        use nix::sched::CloneFlags;
        let all = |_: CloneFlags| true;
        let no_net = |f: CloneFlags| f != CloneFlags::CLONE_NEWNET;
        assert!(check_sysctl("net.ipv4.ip_unprivileged_port_start", &all).is_ok());
        assert!(check_sysctl("kernel.shmmax", &all).is_ok());
        assert!(check_sysctl("fs.mqueue.msg_max", &all).is_ok());
        assert!(check_sysctl("net.ipv4.ip_forward", &no_net).is_err(), "the host's network");
        for host_wide in ["kernel.core_pattern", "vm.overcommit_memory", "kernel.hostname", "fs.file-max", "a/b", ""] {
            assert!(check_sysctl(host_wide, &all).is_err(), "{host_wide}");
        }
    }

    #[test]
    fn cgroups_paths_stay_under_our_parent() {
        assert_eq!(cgroups_relative(Path::new("/default/t1")).unwrap(), PathBuf::from("default/t1"));
        assert_eq!(cgroups_relative(Path::new("docker/abc")).unwrap(), PathBuf::from("docker/abc"));
        assert!(cgroups_relative(Path::new("/a/../../etc")).is_err());
        assert!(cgroups_relative(Path::new("/")).is_err());
        assert!(cgroups_relative(Path::new("system.slice:docker:abc")).is_err());
    }
}
