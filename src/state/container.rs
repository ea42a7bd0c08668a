//! The container record, saved as `containers/<id>/config.json`.

use std::net::Ipv4Addr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::sys::process;
use crate::types::{FirewallRecord, Mount, NetworkMode, PortMapping};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
}

/// Host-side network changes, recorded *before* each is made so cleanup can undo a
/// half-finished `run` after a crash.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub ip: Option<Ipv4Addr>,
    pub gateway: Option<Ipv4Addr>,
    pub prefix: Option<u8>,
    pub mac: Option<String>,
    pub bridge: Option<String>,
    pub host_veth: Option<String>,
    pub netns_name: Option<String>,
    /// The published ports' firewall rules and the driver that makes them.
    #[serde(default)]
    pub firewall: Option<FirewallRecord>,
    /// Rules as (table, chain, iptables rule spec), as records before the typed
    /// `firewall` kept them: still read, so their rules are removed after an upgrade.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<(String, String, String)>,
    /// The anti-spoofing filter on the container's bridge port (nftables, bridge family).
    #[serde(default)]
    pub port_filter: Option<PortFilter>,
}

/// A container's bridge port filter: frames from `veth` go through the nft chain `chain`.
/// Kept apart from `host_veth` because the filter may outlive the veth (a failed teardown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortFilter {
    pub veth: String,
    pub chain: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// The image reference the user gave.
    pub image: String,
    pub image_id: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub hostname: String,
    pub created: DateTime<Utc>,
    pub detached: bool,
    pub auto_remove: bool,
    pub network_mode: NetworkMode,
    pub ports: Vec<PortMapping>,
    pub status: Status,
    pub pid: Option<i32>,
    /// Start time of `pid` (field 22 of /proc/PID/stat), to be safe against PID reuse.
    pub pid_start: Option<u64>,
    /// The process that waits for the container: the monitor (`-d`) or the attached `run`.
    pub monitor_pid: Option<i32>,
    pub monitor_start: Option<u64>,
    pub exit_code: Option<i32>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub network: NetworkRecord,
    #[serde(default)]
    pub security: crate::security::Security,
    #[serde(default)]
    pub limits: crate::cgroups::Limits,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// cgroup directories, recorded before they are created.
    #[serde(default)]
    pub cgroups: Vec<std::path::PathBuf>,
    #[serde(default)]
    pub oom_killed: bool,
    /// A `stop`/`rm` in progress (pid, start time): it tears down itself, so that
    /// `--explain` shows the teardown to whoever asked for it.
    #[serde(default)]
    pub stopper: Option<(i32, u64)>,
    /// True once everything run set up on the host has been undone.
    pub cleaned: bool,
    /// The `run` that made the record (pid, start time), until it recorded the process.
    #[serde(default)]
    pub creator: Option<(i32, u64)>,
}

/// What the kernel says about a container, whatever the record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Created,
    Running,
    /// Exited, with the recorded exit code (None when nobody saw the exit).
    Exited(Option<i32>),
}

impl Container {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// Whether the recorded process is still the one we started.
    pub fn process_alive(&self) -> bool {
        match (self.pid, self.pid_start) {
            (Some(pid), Some(start)) => process::same_process(pid, start),
            _ => false,
        }
    }

    /// Still being set up by a live `run` (no process recorded yet).
    pub fn starting(&self) -> bool {
        self.pid.is_none()
            && self.status == Status::Created
            && self.creator.is_some_and(|(pid, start)| process::same_process(pid, start))
    }

    pub fn monitor_alive(&self) -> bool {
        match (self.monitor_pid, self.monitor_start) {
            (Some(pid), Some(start)) => process::same_process(pid, start),
            _ => false,
        }
    }

    /// The truthful state: a "running" record whose process is gone is exited, unless its
    /// monitor still lives: then it is about to record the exit code (and the last lines
    /// of the log), and until it has, the container counts as running, as in Docker,
    /// where the state changes when the exit is reported.
    pub fn liveness(&self) -> Liveness {
        match self.status {
            Status::Exited => Liveness::Exited(self.exit_code),
            Status::Created if self.pid.is_none() || self.process_alive() => Liveness::Created,
            Status::Running if self.process_alive() || self.monitor_alive() => Liveness::Running,
            _ => Liveness::Exited(self.exit_code),
        }
    }

    /// A live `stop`/`rm` other than this process has claimed the teardown.
    pub fn stopper_elsewhere(&self) -> bool {
        self.stopper.is_some_and(|(pid, start)| pid != std::process::id() as i32 && process::same_process(pid, start))
    }

    pub fn is_running(&self) -> bool {
        self.liveness() == Liveness::Running
    }

    /// The command as Docker prints it.
    pub fn command_line(&self) -> String {
        self.command.join(" ")
    }
}
