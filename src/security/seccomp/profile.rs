//! Seccomp profiles as data, in the OCI runtime-spec form (`linux.seccomp`) plus Docker's
//! `includes`/`excludes` extension, and the choice of the rules that apply to one
//! container, in two steps: [`Profile::resolve`] settles what the architecture alone
//! decides (syscall numbers, actions, comparisons; build.rs does this for default.json at
//! build time), [`Resolved::select`] what the container's capabilities and the kernel do.
//!
//! Our own types rather than oci-spec's: its `LinuxSyscall` has no `includes`/`excludes`,
//! which Docker's profiles (and ours) need to make entries depend on capabilities. Fields
//! we do not use (`archMap`, `flags`, `listenerPath`, ...) are ignored, so the profiles
//! containerd and Docker send parse too.

use std::borrow::Cow;
use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use super::syscalls;

/// Our default profile: an allowlist in the spirit of Docker's (see default.json).
const DEFAULT: &str = include_str!("default.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile<'a> {
    pub default_action: String,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default, borrow)]
    pub syscalls: Vec<SyscallRule<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule<'a> {
    /// Borrowed from the profile's text: the default profile is parsed at every start.
    #[serde(borrow)]
    pub names: Vec<Cow<'a, str>>,
    pub action: String,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Option<Vec<Arg>>,
    #[serde(default)]
    pub includes: Option<Filter>,
    #[serde(default)]
    pub excludes: Option<Filter>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// Docker's condition on an entry: capabilities the container holds, architectures
/// (Docker's names: amd64, arm64), the running kernel's version.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub arches: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// What the filter answers, as the kernel's `SECCOMP_RET_*` value.
pub type Action = u32;

/// An argument comparison, as the compiler needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq(u64),
    Ne(u64),
    Lt(u64),
    Le(u64),
    Gt(u64),
    Ge(u64),
    /// `(arg & mask) == value`.
    MaskedEq {
        mask: u64,
        value: u64,
    },
}

/// One rule for one syscall: every condition must hold for `action` to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub conds: Vec<(u32, Cmp)>,
    pub action: Action,
}

/// The rules for one container: per syscall number, its rules in profile order (the
/// first that matches decides; none matching means `default`).
#[derive(Debug)]
pub struct Rules {
    pub default: Action,
    pub syscalls: BTreeMap<u32, Vec<Rule>>,
}

#[cfg(target_arch = "x86_64")]
pub const ARCH: &str = "amd64";
#[cfg(target_arch = "aarch64")]
pub const ARCH: &str = "arm64";

/// Our default profile, parsed.
pub fn default_profile() -> Result<Profile<'static>> {
    serde_json::from_str(DEFAULT).context("parsing the built-in seccomp profile")
}

/// `SCMP_ACT_*` and an errno (for ERRNO) to the kernel's return value.
fn action(name: &str, errno: Option<u32>, default_errno: u32) -> Result<Action> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => libc::SECCOMP_RET_ALLOW,
        "SCMP_ACT_ERRNO" => libc::SECCOMP_RET_ERRNO | (errno.unwrap_or(default_errno) & libc::SECCOMP_RET_DATA),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => libc::SECCOMP_RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => libc::SECCOMP_RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => libc::SECCOMP_RET_TRAP,
        "SCMP_ACT_LOG" => libc::SECCOMP_RET_LOG,
        // No tracer: libseccomp's TRACE then fails the call with ENOSYS.
        "SCMP_ACT_TRACE" => libc::SECCOMP_RET_TRACE | (errno.unwrap_or(0) & libc::SECCOMP_RET_DATA),
        other => bail!("seccomp profile: unsupported action {other:?}"),
    })
}

fn cmp(arg: &Arg) -> Result<(u32, Cmp)> {
    if arg.index > 5 {
        bail!("seccomp profile: argument index {} out of range", arg.index);
    }
    let c = match arg.op.as_str() {
        "SCMP_CMP_EQ" => Cmp::Eq(arg.value),
        "SCMP_CMP_NE" => Cmp::Ne(arg.value),
        "SCMP_CMP_LT" => Cmp::Lt(arg.value),
        "SCMP_CMP_LE" => Cmp::Le(arg.value),
        "SCMP_CMP_GT" => Cmp::Gt(arg.value),
        "SCMP_CMP_GE" => Cmp::Ge(arg.value),
        "SCMP_CMP_MASKED_EQ" => Cmp::MaskedEq { mask: arg.value, value: arg.value_two },
        other => bail!("seccomp profile: unsupported comparison {other:?}"),
    };
    Ok((arg.index, c))
}

/// "5.10" or "5.10.3" to (5, 10).
pub fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl Filter {
    /// The part of an `includes` decided by the architecture alone: false when the entry
    /// names other architectures only.
    fn includes_arch(&self, arch: &str) -> bool {
        self.arches.is_empty() || self.arches.iter().any(|a| a == arch)
    }

    /// The part of an `excludes` decided by the architecture alone.
    fn excludes_arch(&self, arch: &str) -> bool {
        self.arches.iter().any(|a| a == arch)
    }
}

/// One entry of a profile for one architecture, with everything but the container's
/// capabilities and the kernel's version decided: syscall numbers, the kernel's action,
/// the argument comparisons. The runtime parse of a profile ([`Profile::resolve`]) and
/// the tables build.rs makes from default.json (`builtin.rs`) are both this, and one
/// [`Resolved::select`] picks from either.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The names this architecture has, as numbers (in the profile's order).
    pub nrs: Cow<'a, [u32]>,
    pub action: Action,
    pub conds: Cow<'a, [(u32, Cmp)]>,
    /// `includes.caps`: the entry applies only if the container holds all of these.
    pub needs: Cow<'a, [Cow<'a, str>]>,
    /// `includes.minKernel`: and only on this kernel or newer.
    pub min_kernel: Option<(u32, u32)>,
    /// `excludes.caps`: the entry is left out if the container holds any of these.
    pub unless: Cow<'a, [Cow<'a, str>]>,
}

/// A profile for one architecture: the default action and the entries in profile order.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    pub default: Action,
    pub entries: Cow<'a, [Entry<'a>]>,
}

impl Profile<'_> {
    /// This profile for `arch` (Docker's name): names this architecture does not have are
    /// skipped (as libseccomp does), entries for other architectures left out, actions and
    /// comparisons checked and converted (an unsupported one is an error even in an entry
    /// that only some capability sets would choose).
    pub fn resolve(&self, arch: &str) -> Result<Resolved<'_>> {
        if !self.architectures.is_empty() && !self.architectures.iter().any(|a| scmp_arch_matches(a, arch)) {
            bail!("seccomp profile: no rules for this architecture ({arch})");
        }
        let default_errno = self.default_errno_ret.unwrap_or(libc::EPERM as u32);
        let default = action(&self.default_action, self.default_errno_ret, default_errno)?;
        let mut entries = Vec::with_capacity(self.syscalls.len());
        for entry in &self.syscalls {
            let (inc, exc) = (entry.includes.as_ref(), entry.excludes.as_ref());
            if !inc.is_none_or(|f| f.includes_arch(arch)) || exc.is_some_and(|f| f.excludes_arch(arch)) {
                continue;
            }
            let min_kernel = match inc.and_then(|f| f.min_kernel.as_deref()) {
                None => None,
                Some(v) => Some(parse_kernel(v).ok_or_else(|| anyhow!("seccomp profile: bad minKernel {v:?}"))?),
            };
            entries.push(Entry {
                nrs: entry.names.iter().filter_map(|name| syscalls::number(name)).collect(),
                action: action(&entry.action, entry.errno_ret, default_errno)?,
                conds: entry.args.iter().flatten().map(cmp).collect::<Result<Vec<_>>>()?.into(),
                needs: caps(inc).into(),
                min_kernel,
                unless: caps(exc).into(),
            });
        }
        Ok(Resolved { default, entries: entries.into() })
    }
}

/// A filter's capability names, borrowed.
fn caps(filter: Option<&Filter>) -> Vec<Cow<'_, str>> {
    filter.map(|f| f.caps.iter().map(|c| Cow::Borrowed(c.as_str())).collect()).unwrap_or_default()
}

impl Resolved<'_> {
    /// The rules for a container holding `caps` on kernel `kernel`, by syscall number:
    /// entries whose `includes` it does not meet, or whose `excludes` it hits, are left
    /// out.
    pub fn select(&self, caps: &[String], kernel: (u32, u32)) -> Rules {
        let held = |c: &Cow<str>| caps.iter().any(|have| have.eq_ignore_ascii_case(c));
        // (number, rule) in profile order, then grouped by number: cheaper than inserting
        // each name into a map.
        let mut chosen: Vec<Rule> = Vec::new();
        let mut by_nr: Vec<(u32, usize)> = Vec::with_capacity(512);
        for entry in self.entries.iter() {
            if !entry.needs.iter().all(held)
                || entry.min_kernel.is_some_and(|v| kernel < v)
                || entry.unless.iter().any(held)
            {
                continue;
            }
            chosen.push(Rule { conds: entry.conds.to_vec(), action: entry.action });
            let at = chosen.len() - 1;
            by_nr.extend(entry.nrs.iter().map(|&nr| (nr, at)));
        }
        by_nr.sort_unstable();
        by_nr.dedup();
        let mut syscalls: BTreeMap<u32, Vec<Rule>> = BTreeMap::new();
        for group in by_nr.chunk_by(|a, b| a.0 == b.0) {
            syscalls.insert(group[0].0, group.iter().map(|&(_, at)| chosen[at].clone()).collect());
        }
        // A rule after an unconditional one never decides anything: drop it.
        for rules in syscalls.values_mut() {
            if let Some(at) = rules.iter().position(|r| r.conds.is_empty()) {
                rules.truncate(at + 1);
            }
        }
        Rules { default: self.default, syscalls }
    }

    /// The capabilities some entry depends on: a container holding none of them gets the
    /// same rules as one holding no capability at all (build.rs precompiles that program).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn mentioned_caps(&self) -> Vec<&str> {
        let mut caps: Vec<&str> =
            self.entries.iter().flat_map(|e| e.needs.iter().chain(e.unless.iter())).map(|c| c.as_ref()).collect();
        caps.sort_unstable();
        caps.dedup();
        caps
    }
}

/// Does an OCI `SCMP_ARCH_*` name cover Docker's name for this architecture?
fn scmp_arch_matches(scmp: &str, arch: &str) -> bool {
    matches!((scmp, arch), ("SCMP_ARCH_X86_64", "amd64") | ("SCMP_ARCH_AARCH64", "arm64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(p: &Profile, caps: &[String]) -> Rules {
        p.resolve(ARCH).unwrap().select(caps, (6, 1))
    }

    #[test]
    fn the_default_profile_names_only_known_syscalls() {
        let p = default_profile().unwrap();
        #[cfg(target_arch = "x86_64")]
        for entry in &p.syscalls {
            for name in &entry.names {
                assert!(syscalls::number(name).is_some(), "{name} is not an x86_64 syscall");
            }
        }
        let r = select(&p, &[]);
        assert_eq!(r.default, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    }

    #[test]
    fn includes_and_excludes_follow_capabilities() {
        let p = default_profile().unwrap();
        let none = select(&p, &[]);
        let admin = select(&p, &["CAP_SYS_ADMIN".to_string()]);
        let sethostname = libc::SYS_sethostname as u32;
        assert!(!none.syscalls.contains_key(&sethostname));
        assert_eq!(admin.syscalls[&sethostname], [Rule { conds: vec![], action: libc::SECCOMP_RET_ALLOW }]);
        // clone: masked by CLONE_NEW* without the cap, free with it.
        assert_eq!(none.syscalls[&(libc::SYS_clone as u32)][0].conds.len(), 1);
        assert!(admin.syscalls[&(libc::SYS_clone as u32)][0].conds.is_empty());
    }

    #[test]
    fn filters_and_kernel_versions() {
        let p: Profile = serde_json::from_str(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
                {"names": ["write"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                {"names": ["close"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.20"}},
                {"names": ["dup"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64", "arm64"]}},
                {"names": ["dup2"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["dup3"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_BPF"]}},
                {"names": ["no_such_call", "getpid"], "action": "SCMP_ACT_ALLOW"}
            ]}"#,
        )
        .unwrap();
        let nrs = |caps: &[&str], kernel| {
            let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
            let rules = p.resolve(ARCH).unwrap().select(&caps, kernel);
            rules.syscalls.keys().copied().collect::<Vec<u32>>()
        };
        let n = |name| syscalls::number(name).unwrap();
        let mut want = vec![n("write"), n("dup2"), n("getpid")];
        want.sort();
        assert_eq!(nrs(&[], (6, 1)), want);
        let mut want = vec![n("write"), n("close"), n("dup3"), n("getpid")];
        want.sort();
        assert_eq!(nrs(&["cap_sys_admin", "CAP_BPF"], (7, 0)), want);
        let resolved = p.resolve(ARCH).unwrap();
        assert_eq!(resolved.entries.len(), 5, "the entries for other architectures are left out");
        assert_eq!(resolved.mentioned_caps(), ["CAP_BPF", "CAP_SYS_ADMIN"]);
        let bad: Profile = serde_json::from_str(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "x"}}]}"#,
        )
        .unwrap();
        assert!(bad.resolve(ARCH).is_err());
        assert_eq!(parse_kernel("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_kernel("x"), None);
    }
}
