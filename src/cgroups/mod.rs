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
    /// The CFS period `cpus` is a share of, in µs (a runtime spec's; else 100 ms).
    #[serde(default)]
    pub cpu_period: Option<u64>,
    /// Memory plus swap (a runtime spec's `memory.swap`); else no swap beyond `memory`.
    #[serde(default)]
    pub swap: Option<u64>,
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
        Ok(Limits { memory, cpus, pids: pids.filter(|p| *p > 0), ..Limits::default() })
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
    if !(n > 0.0 && n.is_finite()) {
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
    ["memory", "cpu", "cpuacct", "pids", "devices", "freezer"]
        .iter()
        .map(|c| Path::new(ROOT).join(c))
        .filter(|p| p.exists())
        .map(|p| p.join(PARENT).join(id))
        .collect()
}

/// A pids limit as the file takes it (`max` for none: -1 or 0 from `update`).
fn pids_value(p: i64) -> String {
    if p > 0 {
        p.to_string()
    } else {
        "max".into()
    }
}

/// The v1 controller a group belongs to (`/sys/fs/cgroup/memory/dockling/x` → memory).
fn controller_of(dir: &Path) -> &str {
    dir.strip_prefix(ROOT).ok().and_then(|r| r.iter().next()).and_then(|c| c.to_str()).unwrap_or("")
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
        if v2 {
            // A nested path (dockling/docker/ID): each level between passes the
            // controllers down.
            let parent = Path::new(ROOT).join(PARENT);
            let mut level = parent.clone();
            for c in dir.strip_prefix(&parent).map(|r| r.components().collect::<Vec<_>>()).unwrap_or_default() {
                if level != parent {
                    let _ = fs::write(level.join("cgroup.subtree_control"), "+memory +cpu +pids");
                }
                level.push(c);
                let _ = fs::create_dir(&level);
            }
        }
        // (Retried: a `delete` may remove an empty level between our mkdirs.)
        let mut made = fs::create_dir_all(dir);
        for _ in 0..3 {
            if made.is_ok() {
                break;
            }
            made = fs::create_dir_all(dir);
        }
        made.with_context(|| format!("creating cgroup {}", dir.display()))?;
        let controller = controller_of(dir);
        if v2 {
            if let Some(m) = limits.memory {
                write(&dir.join("memory.max"), &m.to_string(), "memory limit")?;
                let swap = limits.swap.map_or(0, |s| s.saturating_sub(m));
                let _ = fs::write(dir.join("memory.swap.max"), swap.to_string());
            }
            if let Some(c) = limits.cpus {
                let period = limits.cpu_period.unwrap_or(100_000);
                write(
                    &dir.join("cpu.max"),
                    &format!("{} {period}", (c * period as f64) as u64),
                    &format!("CPU limit: quota per {} ms period", period / 1000),
                )?;
            }
            if let Some(p) = limits.pids {
                write(&dir.join("pids.max"), &pids_value(p), "process limit")?;
            }
            continue;
        }
        match controller {
            "memory" => {
                if let Some(m) = limits.memory {
                    write(&dir.join("memory.limit_in_bytes"), &m.to_string(), "memory limit")?;
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        match limits.swap {
                            Some(both) => write(&memsw, &both.max(m).to_string(), "memory+swap limit")?,
                            None => write(&memsw, &m.to_string(), "no swap beyond the memory limit")?,
                        }
                    }
                }
            }
            "cpu" => {
                if let Some(c) = limits.cpus {
                    let period = limits.cpu_period.unwrap_or(100_000);
                    let why = format!("CPU accounting period ({} ms)", period / 1000);
                    write(&dir.join("cpu.cfs_period_us"), &period.to_string(), &why)?;
                    write(
                        &dir.join("cpu.cfs_quota_us"),
                        &((c * period as f64) as u64).to_string(),
                        "CPU limit: quota per period",
                    )?;
                }
            }
            "pids" => {
                if let Some(p) = limits.pids {
                    write(&dir.join("pids.max"), &pids_value(p), "process limit")?;
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

/// Whether the groups can take device rules: only v1's devices controller can here.
pub fn can_restrict_devices(dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|d| controller_of(d) == "devices")
}

/// A runtime spec's device rules (`linux.resources.devices`), in order: `(allow, "c 1:3 rwm")`.
/// Only the v1 devices controller takes them (v2 needs a BPF program: not done here).
pub fn device_rules(dirs: &[PathBuf], rules: &[(bool, String)]) -> Result<()> {
    for dir in dirs.iter().filter(|d| controller_of(d) == "devices") {
        for (allow, rule) in rules {
            let file = dir.join(if *allow { "devices.allow" } else { "devices.deny" });
            write(&file, rule, if *allow { "a device the container may use" } else { "a device it may not" })?;
        }
    }
    Ok(())
}

/// Changes the limits of existing groups (`dockling-runc update`): memory with its
/// swap limit (memory+swap, v1; none beyond memory unless `limits.swap` says), CPU, pids. A
/// limit not given stays as it is.
pub fn update(dirs: &[PathBuf], limits: &Limits) -> Result<()> {
    let swap = limits.swap;
    for dir in dirs {
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        if let (Some(m), true) = (limits.memory, dir.join("memory.max").exists()) {
            write(&dir.join("memory.max"), &m.to_string(), "memory limit")?;
        } else if let (Some(m), true) = (limits.memory, controller_of(dir) == "memory") {
            let both = swap.unwrap_or(m).max(m).to_string();
            let limit = dir.join("memory.limit_in_bytes");
            // memory ≤ memory+swap at every step: the order depends on the direction.
            let first = write(&limit, &m.to_string(), "memory limit");
            if memsw.exists() {
                write(&memsw, &both, "memory+swap limit")?;
            }
            if first.is_err() {
                write(&limit, &m.to_string(), "memory limit")?;
            }
        }
    }
    let only = Limits { memory: None, swap: None, ..limits.clone() };
    create(dirs, &only, false)
}

/// The processes in the group (its first directory: every controller has them all).
pub fn pids(dirs: &[PathBuf]) -> Vec<i32> {
    dirs.first()
        .and_then(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// The processes in the groups and the groups below them (a container may make its own).
pub fn pids_recursive(dirs: &[PathBuf]) -> Vec<i32> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.first().cloned().into_iter().collect();
    while let Some(dir) = stack.pop() {
        out.extend(pids(std::slice::from_ref(&dir)));
        if let Ok(entries) = fs::read_dir(&dir) {
            stack.extend(entries.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()));
        }
    }
    out
}

/// Whether the group is frozen (`pause`): v1's freezer, v2's cgroup.freeze.
pub fn frozen(dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|d| {
        fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
            || fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
    })
}

/// Freezes or thaws every process of the group, and waits until the kernel says so.
pub fn set_frozen(dirs: &[PathBuf], freeze: bool) -> Result<()> {
    let mut done = false;
    for d in dirs {
        let (file, value, settled) = if d.join("freezer.state").exists() {
            ("freezer.state", if freeze { "FROZEN" } else { "THAWED" }, if freeze { "FROZEN" } else { "THAWED" })
        } else if d.join("cgroup.freeze").exists() {
            ("cgroup.freeze", if freeze { "1" } else { "0" }, if freeze { "1" } else { "0" })
        } else {
            continue;
        };
        let why = if freeze { "stop every process of the container where it is" } else { "let them run again" };
        write(&d.join(file), value, why)?;
        for _ in 0..500 {
            if fs::read_to_string(d.join(file)).is_ok_and(|s| s.trim() == settled) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        done = true;
    }
    if !done {
        anyhow::bail!("the container has no freezer group");
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
        remove_empty_parents(dir);
    }
    Ok(())
}

/// A runtime spec's `cgroupsPath` nests (`dockling/default/t1`): the levels between our
/// parent and the container's group go when the last group in them does (one still in
/// use is not empty, and stays).
fn remove_empty_parents(dir: &Path) {
    let mut level = dir.parent();
    while let Some(p) = level {
        let ours = p.file_name().is_some_and(|n| n == PARENT)
            && (p.parent() == Some(Path::new(ROOT)) || p.parent().and_then(Path::parent) == Some(Path::new(ROOT)));
        if ours || !p.starts_with(ROOT) || p.as_os_str().len() <= ROOT.len() {
            break;
        }
        if fs::remove_dir(p).is_err() {
            break;
        }
        level = p.parent();
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_binary_suffixes() {
        for (text, want) in [
            ("1048576", 1_048_576u64),
            ("100b", 100),
            ("100B", 100),
            ("512k", 512 << 10),
            ("512K", 512 << 10),
            ("512kb", 512 << 10),
            ("64m", 64 << 20),
            ("64M", 64 << 20),
            ("64mb", 64 << 20),
            ("64MB", 64 << 20),
            ("1g", 1 << 30),
            ("2Gb", 2 << 30),
            ("1.5g", 3 << 29),
            ("0.5k", 512),
            (" 8m ", 8 << 20),
            ("1.9", 1), // whole bytes
        ] {
            assert_eq!(parse_bytes(text).unwrap(), want, "{text:?}");
        }
    }

    #[test]
    fn bad_sizes() {
        for bad in ["", "b", "m", "kb", "abc", "-1", "-1m", "0", "0m", "0.0g", "1t", "1 m", "m1", "1mm", "1kbb", "0x10"]
        {
            let err = parse_bytes(bad).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid size: {bad:?}"));
            assert_eq!(error::code_of(&err), error::RUNTIME_ERROR);
        }
        // Not numbers of bytes either (f64 parsing takes them; the limit would be 0 or
        // u64::MAX, i.e. a misleading "minimum" error or a silent "unlimited").
        for bad in ["inf", "NaN", "infinity", "infm", "1e400"] {
            let err = parse_bytes(bad).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid size: {bad:?}"));
            assert_eq!(error::code_of(&err), error::RUNTIME_ERROR);
        }
    }

    #[test]
    fn memory_limit() {
        let l = Limits::from_flags(Some("64m"), None, None).unwrap();
        assert_eq!((l.memory, l.cpus, l.pids), (Some(64 << 20), None, None));
        assert_eq!(Limits::from_flags(Some("6m"), None, None).unwrap().memory, Some(6 << 20));
        for small in ["6291455", "5m", "1k"] {
            let err = Limits::from_flags(Some(small), None, None).unwrap_err();
            assert_eq!(err.to_string(), "Minimum memory limit allowed is 6MB");
        }
        assert_eq!(Limits::from_flags(Some("x"), None, None).unwrap_err().to_string(), "invalid size: \"x\"");
        let none = Limits::from_flags(None, None, None).unwrap();
        assert_eq!((none.memory, none.cpus, none.pids), (None, None, None));
    }

    #[test]
    fn cpus() {
        assert_eq!(Limits::from_flags(None, Some("1.5"), None).unwrap().cpus, Some(1.5));
        assert_eq!(Limits::from_flags(None, Some("0.01"), None).unwrap().cpus, Some(0.01));
        assert_eq!(Limits::from_flags(None, Some("4"), None).unwrap().cpus, Some(4.0));
        for bad in ["0", "0.0", "-1", "abc", "", "inf", "NaN", "1 "] {
            let err = Limits::from_flags(None, Some(bad), None).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid --cpus value {bad:?}"));
        }
    }

    #[test]
    fn pids() {
        assert_eq!(Limits::from_flags(None, None, Some(100)).unwrap().pids, Some(100));
        assert_eq!(Limits::from_flags(None, None, Some(1)).unwrap().pids, Some(1));
        assert_eq!(Limits::from_flags(None, None, Some(-1)).unwrap().pids, None); // unlimited
        for bad in [0, -2, i64::MIN] {
            let err = Limits::from_flags(None, None, Some(bad)).unwrap_err();
            assert!(err.to_string().starts_with("invalid --pids-limit"), "{bad}: {err}");
        }
    }

    #[test]
    fn all_three_together() {
        let l = Limits::from_flags(Some("1g"), Some("2"), Some(50)).unwrap();
        assert_eq!((l.memory, l.cpus, l.pids), (Some(1 << 30), Some(2.0), Some(50)));
        // The first bad flag is reported.
        assert!(Limits::from_flags(Some("1g"), Some("0"), Some(50)).unwrap_err().to_string().contains("--cpus"));
        assert!(Limits::from_flags(Some("1g"), Some("1"), Some(0)).unwrap_err().to_string().contains("--pids-limit"));
    }

    #[test]
    fn usage_from_v2_and_v1_files() {
        let dir = std::env::temp_dir().join(format!("dockling-test-cgroups-{}", std::process::id()));
        let (v2, v1) = (dir.join("v2"), dir.join("v1"));
        fs::create_dir_all(&v2).unwrap();
        fs::create_dir_all(&v1).unwrap();
        fs::write(v2.join("memory.current"), "1234\n").unwrap();
        fs::write(v2.join("memory.max"), "max\n").unwrap();
        fs::write(v2.join("cpu.stat"), "usage_usec 5000\nuser_usec 3000\n").unwrap();
        fs::write(v2.join("pids.current"), "3\n").unwrap();
        fs::write(v2.join("memory.events"), "low 0\nhigh 0\nmax 2\noom 1\noom_kill 0\n").unwrap();
        let u = usage(std::slice::from_ref(&v2));
        assert_eq!((u.memory, u.memory_limit, u.cpu_ns, u.pids), (1234, None, 5_000_000, 3));
        assert!(!oom_killed(std::slice::from_ref(&v2)));
        fs::write(v2.join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
        assert!(oom_killed(std::slice::from_ref(&v2)));

        fs::write(v1.join("memory.usage_in_bytes"), "4096").unwrap();
        fs::write(v1.join("memory.limit_in_bytes"), "67108864").unwrap();
        fs::write(v1.join("cpuacct.usage"), "777").unwrap();
        let u = usage(std::slice::from_ref(&v1));
        assert_eq!((u.memory, u.memory_limit, u.cpu_ns, u.pids), (4096, Some(64 << 20), 777, 0));
        // v1's "no limit" is a huge number, not a limit.
        fs::write(v1.join("memory.limit_in_bytes"), "9223372036854771712").unwrap();
        assert_eq!(usage(std::slice::from_ref(&v1)).memory_limit, None);
        assert!(!oom_killed(&[v1.clone(), dir.join("missing")]));
        fs::remove_dir_all(&dir).unwrap();
    }
}
