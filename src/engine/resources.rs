//! The spec's `linux.resources` as cgroup limits: memory, CPU quota, pids and the device
//! rules, at create and for `update`. What is not read here is left to the kernel's
//! defaults.

use oci_spec::runtime::LinuxResources;

use crate::cgroups::Limits;

/// Memory, CPU (quota / period) and pids.
pub fn limits(r: &LinuxResources) -> Limits {
    let mut limits = Limits::default();
    if let Some(m) = r.memory() {
        limits.memory = m.limit().filter(|l| *l > 0).map(|l| l as u64);
    }
    if let Some(c) = r.cpu() {
        if let (Some(q), Some(p)) = (c.quota(), c.period()) {
            limits.cpus = (q > 0 && p > 0).then(|| q as f64 / p as f64);
        }
    }
    if let Some(p) = r.pids() {
        limits.pids = Some(p.limit()).filter(|l| *l > 0);
    }
    limits
}

/// The memory+swap limit, when the spec gives one.
pub fn swap(r: &LinuxResources) -> Option<u64> {
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
        assert_eq!(swap(&r), Some(128 << 20));
        let want = [(false, "a"), (true, "c 1:3 rwm"), (true, "c 136:* rwm")];
        let got = device_rules(&r);
        assert_eq!(got.iter().map(|(a, s)| (*a, s.as_str())).collect::<Vec<_>>(), want);
    }
}
