//! The spec's `linux.resources` as cgroup limits: memory, CPU quota, pids and the device
//! rules, at create and for `update`. What is not read here is left to the kernel's
//! defaults.

use oci_spec::runtime::LinuxResources;

use crate::cgroups::Limits;

/// What the engine does not set is refused when the spec asks for more than the
/// kernel's default (engines send zeros for "unset": Docker's `"shares": 0`).
pub fn check(r: &LinuxResources) -> anyhow::Result<()> {
    let mut unsupported = Vec::new();
    if let Some(m) = r.memory() {
        if m.reservation().is_some_and(|v| v > 0) {
            unsupported.push("memory.reservation");
        }
        if m.kernel().is_some_and(|v| v > 0) || m.kernel_tcp().is_some_and(|v| v > 0) {
            unsupported.push("memory.kernel");
        }
        if m.disable_oom_killer() == Some(true) {
            unsupported.push("memory.disableOOMKiller");
        }
    }
    if let Some(c) = r.cpu() {
        if c.cpus().as_deref().is_some_and(|v| !v.is_empty()) || c.mems().as_deref().is_some_and(|v| !v.is_empty()) {
            unsupported.push("cpu.cpus/mems");
        }
        if c.realtime_runtime().is_some_and(|v| v > 0) || c.realtime_period().is_some_and(|v| v > 0) {
            unsupported.push("cpu.realtime");
        }
        if c.shares().is_some_and(|v| v != 0 && v != 1024) {
            unsupported.push("cpu.shares");
        }
        if c.idle().is_some_and(|v| v != 0) || c.burst().is_some_and(|v| v > 0) {
            unsupported.push("cpu.idle/burst");
        }
    }
    if let Some(b) = r.block_io() {
        let lists = b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            || b.throttle_read_bps_device().as_ref().is_some_and(|v| !v.is_empty())
            || b.throttle_write_bps_device().as_ref().is_some_and(|v| !v.is_empty())
            || b.throttle_read_iops_device().as_ref().is_some_and(|v| !v.is_empty())
            || b.throttle_write_iops_device().as_ref().is_some_and(|v| !v.is_empty());
        if b.weight().is_some_and(|v| v > 0) || b.leaf_weight().is_some_and(|v| v > 0) || lists {
            unsupported.push("blockIO");
        }
    }
    if r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()) {
        unsupported.push("hugepageLimits");
    }
    if r.network().is_some() || r.rdma().as_ref().is_some_and(|v| !v.is_empty()) {
        unsupported.push("network/rdma");
    }
    if r.unified().as_ref().is_some_and(|v| !v.is_empty()) {
        unsupported.push("unified");
    }
    if !unsupported.is_empty() {
        anyhow::bail!("linux.resources {} are not supported by dockling", unsupported.join(", "));
    }
    Ok(())
}

/// Memory, CPU (quota / period) and pids.
pub fn limits(r: &LinuxResources) -> Limits {
    let mut limits = Limits::default();
    if let Some(m) = r.memory() {
        limits.memory = m.limit().filter(|l| *l > 0).map(|l| l as u64);
    }
    if let Some(c) = r.cpu() {
        if let (Some(q), Some(p)) = (c.quota(), c.period()) {
            if q > 0 && p > 0 {
                limits.cpus = Some(q as f64 / p as f64);
                limits.cpu_period = Some(p);
            }
        }
    }
    if let Some(p) = r.pids() {
        limits.pids = Some(p.limit()).filter(|l| *l > 0);
    }
    limits.swap = swap(r);
    limits
}

/// The memory+swap limit, when the spec gives one (-1, unlimited, is not honoured: no
/// swap beyond the memory limit, as for `dockling run`).
fn swap(r: &LinuxResources) -> Option<u64> {
    r.memory().as_ref().and_then(|m| m.swap()).filter(|s| *s > 0).map(|s| s as u64)
}

/// The device rules in order, as the v1 controller reads them: `(allow, "c 1:3 rwm")`.
pub fn device_rules(r: &LinuxResources) -> Vec<(bool, String)> {
    let mut rules = Vec::new();
    for d in r.devices().iter().flatten() {
        let kind = d.typ().map(|t| format!("{t:?}").to_lowercase()).unwrap_or_else(|| "a".into());
        let num = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_else(|| "*".into());
        let rule = if kind == "a" {
            "a".to_string()
        } else {
            let access = d.access().clone().unwrap_or_else(|| "rwm".into());
            format!("{kind} {}:{} {access}", num(d.major()), num(d.minor()))
        };
        rules.push((d.allow(), rule));
    }
    rules
}

/// What runc allows after the spec's own rules (its `AllowedDevices`): making any node,
/// and using the harmless ones a program expects (null, zero, full, random, urandom, tty,
/// ptmx and the ptys, tun).
const STANDARD: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

/// The spec's rules, then the standard allowlist (when the spec restricts devices at all).
pub fn device_rules_with_defaults(r: &LinuxResources) -> Vec<(bool, String)> {
    let mut rules = device_rules(r);
    if !rules.is_empty() {
        rules.extend(STANDARD.iter().map(|s| (true, s.to_string())));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_update_and_device_rules() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":67108864,"swap":134217728},"cpu":{"quota":50000,"period":100000},
                "pids":{"limit":64},
                "devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                           {"allow":true,"type":"c","major":136,"access":"rwm"}]}"#,
        )
        .unwrap();
        let l = limits(&r);
        assert_eq!((l.memory, l.cpus, l.pids), (Some(64 << 20), Some(0.5), Some(64)));
        assert_eq!((l.cpu_period, l.swap), (Some(100_000), Some(128 << 20)), "the spec's own period and swap");
        assert_eq!(swap(&r), Some(128 << 20));
        assert!(check(&r).is_ok());
        let docker: LinuxResources =
            serde_json::from_str(r#"{"memory":{"disableOOMKiller":false},"cpu":{"shares":0},"blockIO":{"weight":0}}"#)
                .unwrap();
        assert!(check(&docker).is_ok(), "Docker's zeros mean unset");
        let pinned: LinuxResources = serde_json::from_str(r#"{"cpu":{"cpus":"0-1"}}"#).unwrap();
        assert!(check(&pinned).unwrap_err().to_string().contains("cpu.cpus"));
        let want = [(false, "a"), (true, "c 1:3 rwm"), (true, "c 136:* rwm")];
        let got = device_rules(&r);
        assert_eq!(got.iter().map(|(a, s)| (*a, s.as_str())).collect::<Vec<_>>(), want);
    }
}
