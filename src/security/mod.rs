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

use crate::{error, explain};

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

    /// Inside the container, after its mounts: everything up to (not including) execve.
    /// Returns the environment changes the user switch implies (HOME).
    pub fn apply(&self) -> Result<Option<String>> {
        if self.no_new_privs {
            explain::approx("setpriv --no-new-privs", "setuid binaries cannot gain privileges");
            // SAFETY: plain prctl.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(std::io::Error::last_os_error()).context("setting no_new_privs");
            }
        }
        // The filter goes in while we still hold CAP_SYS_ADMIN (so no_new_privs is optional).
        if self.seccomp {
            seccomp::install(&self.capabilities)?;
        }
        capabilities::drop_bounding(&self.capabilities)?;
        let home = match &self.user {
            Some(u) => Some(user::switch(u)?),
            None => None,
        };
        capabilities::set_process(&self.capabilities, self.user.is_some())?;
        Ok(home.flatten())
    }
}
