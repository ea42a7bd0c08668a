//! Resource limits with cgroups: v2 where the host has a pure cgroup2 tree, the v1
//! controllers (memory, cpu, pids) where it has those (hybrid hosts mount cgroup2 with
//! no useful controller at /sys/fs/cgroup/unified; we leave it alone).
//!
//! Every container gets `dockling/<id>` groups (limits or not, so `stats` can read them),
//! created before its command runs and removed when it goes away. Nobody else's groups
//! are ever touched.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::{error, explain};

const ROOT: &str = "/sys/fs/cgroup";
const PARENT: &str = "dockling";

/// `--memory`, `--cpus`, `--pids-limit`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Limits {
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

impl Limits {
    pub fn from_flags(memory: Option<&str>, cpus: Option<&str>, pids: Option<i64>) -> Result<Limits> {
        let memory = memory.map(parse_bytes).transpose()?;
        if memory.is_some_and(|m| m < 6 * 1024 * 1024) {
            return Err(error::user("Minimum memory limit allowed is 6MB"));
        }
        let cpus = cpus
            .map(|c| {
                c.parse::<f64>()
                    .ok()
                    .filter(|v| *v > 0.0 && v.is_finite())
                    .ok_or_else(|| error::user(format!("invalid --cpus value {c:?}")))
            })
            .transpose()?;
        if pids.is_some_and(|p| p == 0 || p < -1) {
            return Err(error::user("invalid --pids-limit: use a positive number or -1 for unlimited"));
        }
        Ok(Limits { memory, cpus, pids: pids.filter(|p| *p > 0) })
    }
}

/// `64m`, `1g`, `512k`, `1048576` (Docker's units, binary).
pub fn parse_bytes(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| error::user(format!("invalid size: {s:?}")))?;
    if n <= 0.0 {
        return Err(error::user(format!("invalid size: {s:?}")));
    }
    Ok((n * mult as f64) as u64)
}

/// Which hierarchy this host gives us.
fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// The group directories a container will have (recorded before they are made).
pub fn plan(id: &str) -> Vec<PathBuf> {
    if is_v2() {
        return vec![Path::new(ROOT).join(PARENT).join(id)];
    }
    ["memory", "cpu", "cpuacct", "pids", "devices"]
        .iter()
        .map(|c| Path::new(ROOT).join(c))
        .filter(|p| p.exists())
        .map(|p| p.join(PARENT).join(id))
        .collect()
}

fn write(path: &Path, value: &str, why: &str) -> Result<()> {
    explain::step(&format!("echo {value} > {}", path.display()), why);
    fs::write(path, value).with_context(|| format!("writing {value} to {}", path.display()))
}

/// Docker's default device allowlist: creating any node is fine (`m`), opening only the
/// harmless ones (null, zero, full, random, urandom, tty, console, ptmx, pts, tun).
const DEVICES_ALLOWED: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// Creates the groups and writes the limits (and, unless privileged, the device allowlist).
pub fn create(dirs: &[PathBuf], limits: &Limits, restrict_devices: bool) -> Result<()> {
    let v2 = is_v2();
    if v2 {
        // Controllers must be enabled for our parent's children.
        let parent = Path::new(ROOT).join(PARENT);
        fs::create_dir_all(&parent).context("creating the dockling cgroup")?;
        let wanted = "+memory +cpu +pids";
        let _ = fs::write(Path::new(ROOT).join("cgroup.subtree_control"), wanted);
        let _ = fs::write(parent.join("cgroup.subtree_control"), wanted);
    }
    for dir in dirs {
        explain::step(&format!("mkdir -p {}", dir.display()), "the container's own cgroup");
        fs::create_dir_all(dir).with_context(|| format!("creating cgroup {}", dir.display()))?;
        let controller =
            dir.parent().and_then(|p| p.parent()).and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or("");
        if v2 {
            if let Some(m) = limits.memory {
                write(&dir.join("memory.max"), &m.to_string(), "memory limit")?;
                let _ = fs::write(dir.join("memory.swap.max"), "0");
            }
            if let Some(c) = limits.cpus {
                write(
                    &dir.join("cpu.max"),
                    &format!("{} 100000", (c * 100000.0) as u64),
                    "CPU limit: quota per 100 ms period",
                )?;
            }
            if let Some(p) = limits.pids {
                write(&dir.join("pids.max"), &p.to_string(), "process limit")?;
            }
            continue;
        }
        match controller {
            "memory" => {
                if let Some(m) = limits.memory {
                    write(&dir.join("memory.limit_in_bytes"), &m.to_string(), "memory limit")?;
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write(&memsw, &m.to_string(), "no swap beyond the memory limit")?;
                    }
                }
            }
            "cpu" => {
                if let Some(c) = limits.cpus {
                    write(&dir.join("cpu.cfs_period_us"), "100000", "CPU accounting period (100 ms)")?;
                    write(
                        &dir.join("cpu.cfs_quota_us"),
                        &((c * 100000.0) as u64).to_string(),
                        "CPU limit: quota per period",
                    )?;
                }
            }
            "pids" => {
                if let Some(p) = limits.pids {
                    write(&dir.join("pids.max"), &p.to_string(), "process limit")?;
                }
            }
            "devices" if restrict_devices => {
                write(&dir.join("devices.deny"), "a", "no device may be opened...")?;
                // One open, one write per rule (the file takes one rule per write).
                let path = dir.join("devices.allow");
                let mut allow = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                for rule in DEVICES_ALLOWED {
                    explain::step(&format!("echo '{rule}' > {}", path.display()), "...but these harmless ones");
                    std::io::Write::write_all(&mut allow, rule.as_bytes())
                        .with_context(|| format!("writing {rule} to {}", path.display()))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Moves the calling (single-threaded) process into the groups.
///
/// On cgroup v1 it writes `0` (itself) to `tasks`: moving just the calling thread skips
/// the kernel's global threadgroup lock, whose first writer waits a whole RCU grace
/// period (~10 ms per `run` here) when another process writes a pid to `cgroup.procs`.
pub fn join_self(dirs: &[PathBuf]) -> Result<()> {
    let file = if is_v2() { "cgroup.procs" } else { "tasks" };
    for dir in dirs {
        write(&dir.join(file), "0", "this process (and what it execs) is accounted and limited here")?;
    }
    Ok(())
}

/// Removes the groups (their processes are gone; retry briefly while the kernel catches up).
pub fn remove(dirs: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        if !dir.exists() {
            continue;
        }
        explain::step(&format!("rmdir {}", dir.display()), "the container's cgroup goes with it");
        let mut last = None;
        for _ in 0..50 {
            match fs::remove_dir(dir) {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(e) = last {
            return Err(e).with_context(|| format!("removing cgroup {}", dir.display()));
        }
    }
    Ok(())
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn key_value(path: &Path, key: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.lines().find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

/// Whether the kernel's OOM killer killed a process of the group.
pub fn oom_killed(dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|d| {
        key_value(&d.join("memory.events"), "oom_kill ").unwrap_or(0) > 0
            || key_value(&d.join("memory.oom_control"), "oom_kill ").unwrap_or(0) > 0
    })
}

/// Memory use and limit (bytes), CPU time (ns), processes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub memory: u64,
    pub memory_limit: Option<u64>,
    pub cpu_ns: u64,
    pub pids: u64,
}

pub fn usage(dirs: &[PathBuf]) -> Usage {
    let mut u = Usage::default();
    for d in dirs {
        if let Some(m) = read_u64(&d.join("memory.current")).or_else(|| read_u64(&d.join("memory.usage_in_bytes"))) {
            u.memory = m;
        }
        if let Some(l) = read_u64(&d.join("memory.max")).or_else(|| read_u64(&d.join("memory.limit_in_bytes"))) {
            u.memory_limit = Some(l).filter(|l| *l < (1 << 60));
        }
        if let Some(c) = read_u64(&d.join("cpuacct.usage")) {
            u.cpu_ns = c;
        } else if let Some(us) = key_value(&d.join("cpu.stat"), "usage_usec ") {
            u.cpu_ns = us * 1000;
        }
        if let Some(p) = read_u64(&d.join("pids.current")) {
            u.pids = p;
        }
    }
    u
}
