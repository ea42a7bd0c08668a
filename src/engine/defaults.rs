//! The mounts Docker's engine writes into every container's spec (see
//! `tests/fixtures/oci-runtime/docker-20.10-run-bridge.config.json`), which `dockling run`
//! gives its containers too, and its namespaces. Not yet `/sys/fs/cgroup`: on this machine's hybrid cgroups a
//! `cgroup` mount means one mount per v1 controller, which comes with the rest of the
//! spec's cgroup support.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Mount};

/// A spec mount from its four fields.
pub fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// /proc, /sys (read-only unless `privileged`), /dev and what goes in it, in Docker's
/// order and with Docker's options.
pub fn mounts(privileged: bool) -> Vec<Mount> {
    let sys: &[&str] = if privileged { &["nosuid", "noexec", "nodev"] } else { &["nosuid", "noexec", "nodev", "ro"] };
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        mount("/sys", "sysfs", "sysfs", sys),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
    ]
}

/// New pid, mount, uts, ipc and (unless `--network host`) network namespaces, as Docker
/// lists them, and a cgroup namespace where the kernel has them (Docker's default on
/// cgroup v2; dockling's everywhere). `net_of` and `pid_of` are paths of network and
/// pid namespaces to join instead (`container:X`).
pub fn namespaces(new_net: bool, net_of: Option<String>, pid_of: Option<String>) -> Vec<LinuxNamespace> {
    let ns = |t: LinuxNamespaceType, path: Option<String>| {
        let mut n = LinuxNamespace::default();
        n.set_typ(t);
        n.set_path(path.map(PathBuf::from));
        n
    };
    let mut list = vec![
        ns(LinuxNamespaceType::Pid, pid_of),
        ns(LinuxNamespaceType::Mount, None),
        ns(LinuxNamespaceType::Uts, None),
        ns(LinuxNamespaceType::Ipc, None),
    ];
    if let Some(path) = net_of {
        list.push(ns(LinuxNamespaceType::Network, Some(path)));
    } else if new_net {
        list.push(ns(LinuxNamespaceType::Network, None));
    }
    if std::path::Path::new("/proc/self/ns/cgroup").exists() {
        list.push(ns(LinuxNamespaceType::Cgroup, None));
    }
    list
}
