//! The default seccomp filter: an allowlist in the spirit of Docker's default profile.
//!
//! The profile is data ([`profile`], `default.json`, in the OCI runtime-spec form with
//! Docker's `includes`/`excludes` by capability), compiled to classic BPF ([`bpf`]) for
//! the container's capabilities. The JSON is parsed at build time ([`builtin`], build.rs):
//! a container with Docker's default capabilities loads a ready program, others have
//! their rules chosen from static tables; the runtime parse stays for profiles given at
//! run time, and the tests check both give the same program. Choices, where Docker
//! leaves room:
//! - A syscall the profile does not name fails with EPERM (`defaultErrnoRet` 1), also
//!   syscalls newer than the profile (Docker answers ENOSYS for those); clone3 answers
//!   ENOSYS without CAP_SYS_ADMIN, so libc falls back to clone, whose flags a filter can
//!   see.
//! - The mount family (mount, umount2, mount_setattr, move_mount, open_tree, fsopen, ...)
//!   stays denied even with CAP_SYS_ADMIN, unlike Docker (which counts on AppArmor):
//!   masked and read-only kernel paths must hold under `--cap-add SYS_ADMIN`. The rest of
//!   Docker's CAP_SYS_ADMIN entries (sethostname, setns, unshare, clone with namespace
//!   flags, clone3, bpf, ...) follow it.
//! - Comparisons of 32-bit arguments (ioctl's request, socket's family) mask the low 32
//!   bits, so junk in a register's upper half does not slip past a deny rule.

mod bpf;
mod builtin;
pub mod profile;
mod syscalls;

use std::borrow::Cow;

use anyhow::{Context, Result};

/// The compiled default filter for a container holding `caps`: the one build.rs made when
/// it fits, else compiled from the build-time tables (or, cross-compiled, from the JSON).
fn program(caps: &[String]) -> Result<Cow<'static, [libc::sock_filter]>> {
    if let Some(program) = builtin::precompiled(caps) {
        return Ok(Cow::Borrowed(program));
    }
    let rules = match builtin::resolved() {
        Some(resolved) => resolved.select(caps, kernel_version()),
        None => profile::default_profile()?.resolve(profile::ARCH)?.select(caps, kernel_version()),
    };
    Ok(Cow::Owned(bpf::compile(&rules)?))
}

/// The running kernel's (major, minor); (0, 0) if unknown (then no `minKernel` entry
/// applies).
fn kernel_version() -> (u32, u32) {
    // SAFETY: uname fills the zeroed struct we own.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to our struct.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return (0, 0);
    }
    // SAFETY: the kernel NUL-terminates release.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
    release.to_str().ok().and_then(profile::parse_kernel).unwrap_or((0, 0))
}

/// Docker's default filter for a container keeping `caps` (some entries depend on them).
pub fn default_program(caps: &[String]) -> Result<Vec<libc::sock_filter>> {
    Ok(program(caps)?.into_owned())
}

/// The filter a runtime spec asks for (`linux.seccomp`, as Docker and containerd write
/// it: their own profile, already chosen for the container's capabilities), compiled by
/// the same generator, argument conditions included. What it cannot honour (an action or
/// a comparison it does not know, no rules for this architecture) is an error.
pub fn compile_spec(seccomp: &serde_json::Value) -> Result<Vec<libc::sock_filter>> {
    let text = serde_json::to_string(seccomp).context("reading linux.seccomp")?;
    let profile: profile::Profile = serde_json::from_str(&text).context("parsing linux.seccomp")?;
    let rules = profile.resolve(profile::ARCH)?.select(&[], kernel_version());
    bpf::compile(&rules)
}

/// Loads a filter with the seccomp syscall itself, without setting no_new_privs:
/// `--security-opt no-new-privileges=false` must be able to lift it (we still hold
/// CAP_SYS_ADMIN here, so the kernel does not require it).
pub fn load(program: &[libc::sock_filter]) -> Result<()> {
    let len = u16::try_from(program.len()).context("seccomp filter too long")?;
    let prog = libc::sock_fprog { len, filter: program.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `prog` points at a valid, live BPF program for the duration of the call.
    let rc =
        unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog as *const libc::sock_fprog) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("installing the seccomp filter");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
