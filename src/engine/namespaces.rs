//! The spec's namespaces (`linux.namespaces`): which ones the container's first process
//! gets new at clone time, and which ones it joins by path (`/proc/PID/ns/net`, a
//! Kubernetes pod's shared network, `--network container:X`). The cgroup namespace is
//! made later, by init, once it sits in its own cgroups (its root is then the
//! container's group).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

/// The namespaces, planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Made at clone time.
    pub new: CloneFlags,
    /// A new cgroup namespace, made by init after it joined its cgroups.
    pub new_cgroup: bool,
    /// Joined by path: (kind, path). A pid namespace is joined by the process that
    /// clones, the others by init first thing.
    pub join: Vec<(CloneFlags, PathBuf)>,
}

/// `unshare`'s and `nsenter`'s name for a kind.
fn flag_and_name(t: LinuxNamespaceType) -> Result<(CloneFlags, &'static str)> {
    Ok(match t {
        LinuxNamespaceType::Mount => (CloneFlags::CLONE_NEWNS, "mount"),
        LinuxNamespaceType::Uts => (CloneFlags::CLONE_NEWUTS, "uts"),
        LinuxNamespaceType::Ipc => (CloneFlags::CLONE_NEWIPC, "ipc"),
        LinuxNamespaceType::Pid => (CloneFlags::CLONE_NEWPID, "pid"),
        LinuxNamespaceType::Network => (CloneFlags::CLONE_NEWNET, "net"),
        LinuxNamespaceType::Cgroup => (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        LinuxNamespaceType::User => bail!("user namespaces are not supported by dockling"),
        LinuxNamespaceType::Time => bail!("time namespaces are not supported by dockling"),
    })
}

/// The kinds [`plan`] honours, by the spec's names (`dockling-runc features`).
pub fn supported() -> Vec<&'static str> {
    vec!["cgroup", "ipc", "mount", "network", "pid", "uts"]
}

/// Reads the spec's list: each kind at most once; a path to join must exist. Kinds not
/// listed are shared with the caller, as the spec says.
pub fn plan(namespaces: &[LinuxNamespace]) -> Result<Plan> {
    let mut plan = Plan { new: CloneFlags::empty(), new_cgroup: false, join: Vec::new() };
    let mut seen = CloneFlags::empty();
    for ns in namespaces {
        let (flag, name) = flag_and_name(ns.typ())?;
        if seen.contains(flag) {
            bail!("the {name} namespace is listed twice");
        }
        seen |= flag;
        match ns.path() {
            Some(path) => {
                if !path.is_absolute() || !Path::new(path).exists() {
                    bail!("the {name} namespace to join, {}, does not exist", path.display());
                }
                plan.join.push((flag, path.clone()));
            }
            None if flag == CloneFlags::CLONE_NEWCGROUP => plan.new_cgroup = true,
            None => plan.new |= flag,
        }
    }
    Ok(plan)
}

impl Plan {
    /// In the cloned child, first: joins the namespaces given by path (the pid one was
    /// joined by whoever cloned it).
    pub fn enter_joined(&self) -> Result<()> {
        for (kind, path) in self.join.iter().filter(|(k, _)| *k != CloneFlags::CLONE_NEWPID) {
            let ns = std::fs::File::open(path)
                .map_err(|e| anyhow::anyhow!("opening the namespace to join {}: {e}", path.display()))?;
            nix::sched::setns(ns, *kind).map_err(|e| anyhow::anyhow!("joining {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// The commands that do the same, for `--explain`: `nsenter` for the joins, then
    /// `unshare` for the new ones.
    pub fn command(&self) -> String {
        let mut words = Vec::new();
        if !self.join.is_empty() {
            words.push("nsenter".to_string());
            for (flag, path) in &self.join {
                words.push(format!("--{}={}", name_of(*flag), path.display()));
            }
        }
        words.push("unshare".into());
        for (flag, name) in ORDER {
            if self.new.contains(flag) {
                words.push(format!("--{name}"));
            }
        }
        words.push("--fork".into());
        words.join(" ")
    }
}

/// The order `unshare` lists them in.
const ORDER: [(CloneFlags, &str); 5] = [
    (CloneFlags::CLONE_NEWPID, "pid"),
    (CloneFlags::CLONE_NEWNS, "mount"),
    (CloneFlags::CLONE_NEWUTS, "uts"),
    (CloneFlags::CLONE_NEWIPC, "ipc"),
    (CloneFlags::CLONE_NEWNET, "net"),
];

fn name_of(flag: CloneFlags) -> &'static str {
    ORDER.iter().find(|(f, _)| *f == flag).map(|(_, n)| *n).unwrap_or("cgroup")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(t: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let mut n = LinuxNamespace::default();
        n.set_typ(t);
        n.set_path(path.map(PathBuf::from));
        n
    }

    #[test]
    fn dockers_list_is_five_new_namespaces() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/oci-runtime/docker-20.10-run-bridge.config.json");
        let spec: oci_spec::runtime::Spec = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let list = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        let p = plan(&list).unwrap();
        assert_eq!(
            p.new,
            CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWIPC
        );
        assert!(p.join.is_empty() && !p.new_cgroup);
        assert_eq!(p.command(), "unshare --pid --mount --uts --ipc --net --fork");
    }

    #[test]
    fn a_pods_network_is_joined_by_path() {
        let list = [
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Network, Some("/proc/self/ns/net")),
            ns(LinuxNamespaceType::Mount, None),
            ns(LinuxNamespaceType::Cgroup, None),
        ];
        let p = plan(&list).unwrap();
        assert_eq!(p.new, CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS);
        assert_eq!(p.join, [(CloneFlags::CLONE_NEWNET, PathBuf::from("/proc/self/ns/net"))]);
        assert!(p.new_cgroup);
        assert_eq!(p.command(), "nsenter --net=/proc/self/ns/net unshare --pid --mount --fork");
    }

    #[test]
    fn what_cannot_be_done_is_refused() {
        let twice = [ns(LinuxNamespaceType::Uts, None), ns(LinuxNamespaceType::Uts, None)];
        assert!(plan(&twice).unwrap_err().to_string().contains("twice"));
        let user = [ns(LinuxNamespaceType::User, None)];
        assert!(plan(&user).unwrap_err().to_string().contains("user namespaces"));
        let missing = [ns(LinuxNamespaceType::Network, Some("/proc/no/such/ns"))];
        assert!(plan(&missing).unwrap_err().to_string().contains("does not exist"));
    }
}
