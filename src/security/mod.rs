//! The protections a container gets on top of its namespaces, with Docker's defaults:
//! capabilities ([`capabilities`]), no_new_privs, a seccomp allowlist ([`seccomp`]),
//! masked and read-only kernel paths ([`paths`]), and the user it runs as ([`user`]).
//!
//! Applied in the container's init (and in every `exec`) right before `execve`.

pub mod capabilities;
pub mod masked_paths;
pub mod seccomp;
pub mod user;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error;

/// What a container is allowed, as decided by `run`'s flags; kept in its record so
/// `exec` applies the same.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Security {
    /// Capability names (`CAP_CHOWN`, ...) kept in every set.
    pub capabilities: Vec<String>,
    pub privileged: bool,
    pub no_new_privs: bool,
    pub seccomp: bool,
    /// `--user`: `uid[:gid]` or `name[:group]`.
    pub user: Option<String>,
    pub read_only: bool,
}

impl Security {
    /// From `--cap-add`, `--cap-drop`, `--privileged`, `--security-opt`, `--user`, `--read-only`.
    pub fn from_flags(
        cap_add: &[String],
        cap_drop: &[String],
        privileged: bool,
        security_opts: &[String],
        user: Option<String>,
        read_only: bool,
    ) -> Result<Security> {
        let mut no_new_privs = true;
        let mut seccomp = !privileged;
        for opt in security_opts {
            match opt.as_str() {
                "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => no_new_privs = true,
                "no-new-privileges=false" | "no-new-privileges:false" => no_new_privs = false,
                "seccomp=unconfined" | "seccomp:unconfined" => seccomp = false,
                other => return Err(error::user(format!("invalid --security-opt: {other:?}"))),
            }
        }
        let capabilities = capabilities::resolve(cap_add, cap_drop, privileged)?;
        if let Some(u) = &user {
            user::validate(u)?;
        }
        Ok(Security { capabilities, privileged, no_new_privs, seccomp, user, read_only })
    }

    /// The container's process as the runtime spec describes it (the engine applies it):
    /// the kept capabilities in the bounding set, and in the process's own sets for root
    /// (none after a switch to another user, as Docker), no_new_privs, and the user by
    /// name, looked up inside the container.
    pub fn process(&self, args: &[String], env: &[String], cwd: &str) -> Result<oci_spec::runtime::Process> {
        let own = capabilities::process_sets(&self.capabilities, self.user.is_some())?;
        let value = serde_json::json!({
            "args": args,
            "env": env,
            "cwd": cwd,
            "user": {"uid": 0, "gid": 0, "username": self.user},
            "capabilities": {
                "bounding": self.capabilities,
                "effective": own,
                "permitted": own,
                "inheritable": own,
            },
            "noNewPrivileges": self.no_new_privs,
        });
        serde_json::from_value(value).context("describing the container's process")
    }

    /// Docker's default seccomp filter for the kept capabilities, unless unconfined.
    pub fn seccomp_program(&self) -> Result<Option<Vec<libc::sock_filter>>> {
        if !self.seccomp {
            return Ok(None);
        }
        Ok(Some(seccomp::default_program(&self.capabilities)?))
    }
}
