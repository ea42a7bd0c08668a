//! Seccomp profiles as data, in the OCI runtime-spec form (`linux.seccomp`) plus Docker's
//! `includes`/`excludes` extension, and the choice of the rules that apply to one
//! container (its capabilities, this architecture).
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

/// What the rules are chosen for.
pub struct Target<'a> {
    /// Capability names the container keeps (`CAP_SYS_ADMIN`, ...).
    pub caps: &'a [String],
    /// Docker's name for this architecture.
    pub arch: &'a str,
    /// The running kernel's (major, minor).
    pub kernel: (u32, u32),
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
    /// Does the target satisfy this as an `includes` (every listed condition holds)?
    fn holds(&self, t: &Target) -> Result<bool> {
        let caps = self.caps.iter().all(|c| t.caps.iter().any(|have| have.eq_ignore_ascii_case(c)));
        let arch = self.arches.is_empty() || self.arches.iter().any(|a| a == t.arch);
        let kernel = match &self.min_kernel {
            None => true,
            Some(v) => t.kernel >= parse_kernel(v).ok_or_else(|| anyhow!("seccomp profile: bad minKernel {v:?}"))?,
        };
        Ok(caps && arch && kernel)
    }

    /// Does the target hit this as an `excludes` (any listed condition holds)?
    fn hits(&self, t: &Target) -> bool {
        self.caps.iter().any(|c| t.caps.iter().any(|have| have.eq_ignore_ascii_case(c)))
            || self.arches.iter().any(|a| a == t.arch)
    }
}

impl Profile<'_> {
    /// The rules that apply to `target`, by syscall number. Names this architecture does
    /// not have are skipped (as libseccomp does); entries whose `includes` the target does
    /// not meet, or whose `excludes` it hits, are left out.
    pub fn select(&self, target: &Target) -> Result<Rules> {
        if !self.architectures.is_empty() && !self.architectures.iter().any(|a| scmp_arch_matches(a, target.arch)) {
            bail!("seccomp profile: no rules for this architecture ({})", target.arch);
        }
        let default_errno = self.default_errno_ret.unwrap_or(libc::EPERM as u32);
        let default = action(&self.default_action, self.default_errno_ret, default_errno)?;
        // (number, rule) in profile order, then grouped by number: cheaper than inserting
        // each name into a map.
        let mut chosen: Vec<Rule> = Vec::new();
        let mut by_nr: Vec<(u32, usize)> = Vec::with_capacity(512);
        for entry in &self.syscalls {
            if let Some(inc) = &entry.includes {
                if !inc.holds(target)? {
                    continue;
                }
            }
            if entry.excludes.as_ref().is_some_and(|e| e.hits(target)) {
                continue;
            }
            chosen.push(Rule {
                conds: entry.args.iter().flatten().map(cmp).collect::<Result<_>>()?,
                action: action(&entry.action, entry.errno_ret, default_errno)?,
            });
            let at = chosen.len() - 1;
            by_nr.extend(entry.names.iter().filter_map(|name| Some((syscalls::number(name)?, at))));
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
        Ok(Rules { default, syscalls })
    }
}

/// Does an OCI `SCMP_ARCH_*` name cover Docker's name for this architecture?
fn scmp_arch_matches(scmp: &str, arch: &str) -> bool {
    matches!((scmp, arch), ("SCMP_ARCH_X86_64", "amd64") | ("SCMP_ARCH_AARCH64", "arm64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(caps: &[String]) -> Target<'_> {
        Target { caps, arch: ARCH, kernel: (6, 1) }
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
        let r = p.select(&target(&[])).unwrap();
        assert_eq!(r.default, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    }

    #[test]
    fn includes_and_excludes_follow_capabilities() {
        let p = default_profile().unwrap();
        let none = p.select(&target(&[])).unwrap();
        let admin = p.select(&target(&["CAP_SYS_ADMIN".to_string()])).unwrap();
        let sethostname = libc::SYS_sethostname as u32;
        assert!(!none.syscalls.contains_key(&sethostname));
        assert_eq!(admin.syscalls[&sethostname], [Rule { conds: vec![], action: libc::SECCOMP_RET_ALLOW }]);
        // clone: masked by CLONE_NEW* without the cap, free with it.
        assert_eq!(none.syscalls[&(libc::SYS_clone as u32)][0].conds.len(), 1);
        assert!(admin.syscalls[&(libc::SYS_clone as u32)][0].conds.is_empty());
    }

    #[test]
    fn filters_and_kernel_versions() {
        let f = Filter { caps: vec![], arches: vec!["s390x".into()], min_kernel: None };
        assert!(!f.holds(&target(&[])).unwrap());
        let f = Filter { caps: vec![], arches: vec![], min_kernel: Some("4.8".into()) };
        assert!(f.holds(&target(&[])).unwrap());
        let f = Filter { caps: vec![], arches: vec![], min_kernel: Some("6.20".into()) };
        assert!(!f.holds(&target(&[])).unwrap());
        assert_eq!(parse_kernel("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_kernel("x"), None);
    }
}
