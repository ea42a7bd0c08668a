//! The spec's `process`, applied in the container right before `execve`, in runc's order:
//! rlimits, oom_score_adj and umask; no_new_privs; the bounding set; the user (groups,
//! gid, uid, keeping capabilities across the switch); the other four capability sets;
//! seccomp last when no_new_privs is set (else first, while CAP_SYS_ADMIN allows it).
//!
//! Everything that can be checked without the container (names of capabilities and
//! rlimits, the seccomp program) is read by [`plan`] in the runtime, so a bad spec fails
//! `create` before anything exists.

use anyhow::{bail, Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::Process;
use serde::Serialize;

use crate::explain;

/// The process, read and checked.
pub struct Plan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub terminal: bool,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    /// `name[:group]` or `uid[:gid]` to look up in the container's /etc/passwd and
    /// /etc/group once inside (`dockling run -u`; the spec's `user.username`), instead
    /// of the numbers above; its primary group is then its only group.
    username: Option<String>,
    umask: Option<u32>,
    /// (resource, soft, hard)
    rlimits: Vec<(i32, u64, u64)>,
    no_new_privs: bool,
    oom_score_adj: Option<i32>,
    /// A set the spec leaves out is empty (engines omit empty lists: `--cap-drop ALL`).
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
    seccomp: Option<Vec<libc::sock_filter>>,
}

/// An enum of the spec as the name it has in config.json (`CAP_CHOWN`, `RLIMIT_NOFILE`).
fn spec_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

fn cap_set(set: Option<&oci_spec::runtime::Capabilities>) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    for cap in set.into_iter().flatten() {
        let name = spec_name(cap);
        out.insert(name.parse::<Capability>().map_err(|_| anyhow::anyhow!("unknown capability {name:?}"))?);
    }
    Ok(out)
}

fn rlimit_resource(name: &str) -> Option<i32> {
    use libc::*;
    let table = [
        ("RLIMIT_CPU", RLIMIT_CPU),
        ("RLIMIT_FSIZE", RLIMIT_FSIZE),
        ("RLIMIT_DATA", RLIMIT_DATA),
        ("RLIMIT_STACK", RLIMIT_STACK),
        ("RLIMIT_CORE", RLIMIT_CORE),
        ("RLIMIT_RSS", RLIMIT_RSS),
        ("RLIMIT_NPROC", RLIMIT_NPROC),
        ("RLIMIT_NOFILE", RLIMIT_NOFILE),
        ("RLIMIT_MEMLOCK", RLIMIT_MEMLOCK),
        ("RLIMIT_AS", RLIMIT_AS),
        ("RLIMIT_LOCKS", RLIMIT_LOCKS),
        ("RLIMIT_SIGPENDING", RLIMIT_SIGPENDING),
        ("RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", RLIMIT_NICE),
        ("RLIMIT_RTPRIO", RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", RLIMIT_RTTIME),
    ];
    table.iter().find(|(n, _)| *n == name).map(|(_, r)| *r as i32)
}

/// Reads the spec's process; what this engine cannot honour is an error.
pub fn plan(p: &Process) -> Result<Plan> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() {
        bail!("process.args is empty: there is no command to run");
    }
    if p.command_line().is_some() {
        bail!("process.commandLine is for Windows");
    }
    if p.apparmor_profile().as_deref().is_some_and(|a| !a.is_empty() && a != "unconfined") {
        bail!("AppArmor profiles are not supported by dockling");
    }
    if p.selinux_label().as_deref().is_some_and(|l| !l.is_empty()) {
        bail!("SELinux labels are not supported by dockling");
    }
    if p.io_priority().is_some() || p.scheduler().is_some() || p.exec_cpu_affinity().is_some() {
        bail!("process.ioPriority, scheduler and execCPUAffinity are not supported by dockling");
    }
    let user = p.user();
    let mut rlimits = Vec::new();
    for r in p.rlimits().iter().flatten() {
        let name = spec_name(&r.typ());
        let resource = rlimit_resource(&name).with_context(|| format!("unknown rlimit {name:?}"))?;
        if r.soft() > r.hard() {
            bail!("rlimit {name}: soft limit {} is above the hard limit {}", r.soft(), r.hard());
        }
        rlimits.push((resource, r.soft(), r.hard()));
    }
    let caps = p.capabilities().as_ref();
    Ok(Plan {
        args,
        env: p.env().clone().unwrap_or_default(),
        cwd: p.cwd().display().to_string(),
        terminal: p.terminal().unwrap_or(false),
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        username: user.username().clone().filter(|u| !u.is_empty()),
        umask: user.umask(),
        rlimits,
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        oom_score_adj: p.oom_score_adj(),
        bounding: cap_set(caps.and_then(|c| c.bounding().as_ref()))?,
        effective: cap_set(caps.and_then(|c| c.effective().as_ref()))?,
        permitted: cap_set(caps.and_then(|c| c.permitted().as_ref()))?,
        inheritable: cap_set(caps.and_then(|c| c.inheritable().as_ref()))?,
        ambient: cap_set(caps.and_then(|c| c.ambient().as_ref()))?,
        seccomp: None,
    })
}

/// `dockling run`'s and `dockling exec`'s process settings (`--cap-*`, `--user`,
/// `--security-opt`), described as the spec's process and applied like any other.
pub fn apply_security(
    security: &crate::security::Security,
    args: &[String],
    env: &[String],
    cwd: &str,
) -> Result<Option<String>> {
    plan(&security.process(args, env, cwd)?)?.with_seccomp(security.seccomp_program()?).apply()
}

impl Plan {
    /// The compiled `linux.seccomp` filter, installed by [`Plan::apply`].
    pub fn with_seccomp(mut self, program: Option<Vec<libc::sock_filter>>) -> Plan {
        self.seccomp = program;
        self
    }

    /// In the container: everything up to (not including) `execve`. Returns the home
    /// directory of a user looked up by name (for HOME).
    pub fn apply(&self) -> Result<Option<String>> {
        for &(resource, soft, hard) in &self.rlimits {
            set_rlimit(resource, soft, hard)?;
        }
        if let Some(adj) = self.oom_score_adj {
            explain::step(&format!("echo {adj} > /proc/self/oom_score_adj"), "the OOM killer's preference");
            std::fs::write("/proc/self/oom_score_adj", adj.to_string()).context("writing oom_score_adj")?;
        }
        if let Some(mask) = self.umask {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
        }
        if self.no_new_privs {
            explain::approx("setpriv --no-new-privs", "setuid binaries cannot gain privileges");
            // SAFETY: plain prctl.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(std::io::Error::last_os_error()).context("setting no_new_privs");
            }
        }
        // Without no_new_privs the filter needs CAP_SYS_ADMIN, which we still hold here.
        if !self.no_new_privs {
            self.install_seccomp()?;
        }
        let mut dropped: Vec<String> =
            caps::all().difference(&self.bounding).map(|c| c.to_string().to_lowercase()).collect();
        if !dropped.is_empty() {
            dropped.sort();
            explain::approx(
                &format!("capsh --drop={}", dropped.join(",")),
                "the container keeps only its capabilities",
            );
        }
        for cap in caps::all().difference(&self.bounding) {
            caps::drop(None, CapSet::Bounding, *cap)
                .with_context(|| format!("dropping {cap} from the bounding set"))?;
        }
        let home = self.switch_user()?;
        // Effective first: it must stay a subset of permitted at every step.
        caps::set(None, CapSet::Effective, &self.effective).context("setting the effective capabilities")?;
        caps::set(None, CapSet::Permitted, &self.permitted).context("setting the permitted capabilities")?;
        caps::set(None, CapSet::Inheritable, &self.inheritable).context("setting the inheritable capabilities")?;
        caps::clear(None, CapSet::Ambient).context("clearing ambient capabilities")?;
        for cap in &self.ambient {
            caps::raise(None, CapSet::Ambient, *cap).with_context(|| format!("raising ambient {cap}"))?;
        }
        if self.no_new_privs {
            self.install_seccomp()?;
        }
        Ok(home)
    }

    fn install_seccomp(&self) -> Result<()> {
        match &self.seccomp {
            Some(program) => {
                explain::approx(
                    "(seccomp) allow only the listed system calls (Docker's default: EPERM for mount, io_uring, bpf, keyctl, unshare, ...)",
                    "the kernel refuses system calls a container does not need",
                );
                crate::security::seccomp::load(program)
            }
            None => Ok(()),
        }
    }

    /// Groups, gid, uid; capabilities survive the switch (keepcaps) to be set after it.
    fn switch_user(&self) -> Result<Option<String>> {
        let (uid, gid, groups, home) = match &self.username {
            Some(name) => {
                let u = crate::security::user::resolve(name)?;
                (u.uid, u.gid, vec![u.gid], u.home)
            }
            None => (self.uid, self.gid, self.groups.clone(), None),
        };
        explain::approx(
            &format!("setpriv --reuid={uid} --regid={gid} --groups={groups:?}"),
            "run the command as the container's user",
        );
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
        let groups: Vec<nix::unistd::Gid> = groups.iter().map(|g| nix::unistd::Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups).context("setgroups")?;
        let gid = nix::unistd::Gid::from_raw(gid);
        nix::unistd::setresgid(gid, gid, gid).context("setresgid")?;
        let uid = nix::unistd::Uid::from_raw(uid);
        nix::unistd::setresuid(uid, uid, uid).context("setresuid")?;
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
        Ok(home)
    }
}

/// Sets a limit. Raising a hard limit needs CAP_SYS_RESOURCE, which root lacks on some
/// machines (these ones): that is refused with both numbers, never tried (and never
/// lowered quietly instead).
fn set_rlimit(resource: i32, soft: u64, hard: u64) -> Result<()> {
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit fills the struct we own.
    if unsafe { libc::getrlimit(resource as _, &mut current) } != 0 {
        return Err(std::io::Error::last_os_error()).context("reading an rlimit");
    }
    let may_raise = caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_RESOURCE).unwrap_or(false);
    if hard > current.rlim_max && !may_raise {
        bail!(
            "rlimit {resource}: the hard limit {hard} is above the runtime's {} and raising it needs CAP_SYS_RESOURCE",
            current.rlim_max
        );
    }
    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(resource as _, &limit) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("setting rlimit {resource}"));
    }
    Ok(())
}
