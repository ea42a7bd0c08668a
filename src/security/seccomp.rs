//! A default seccomp filter in the spirit of Docker's profile, as a deny-list built with
//! seccompiler: the syscalls that reach into the kernel or other namespaces fail with
//! EPERM; creating user namespaces is refused; clone3 reports ENOSYS so libc falls back
//! to clone, whose flags a filter can inspect (Docker does the same).

use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::explain;

/// Denied outright.
const DENIED: &[libc::c_long] = &[
    libc::SYS_acct,
    libc::SYS_add_key,
    libc::SYS_bpf,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_settime,
    libc::SYS_delete_module,
    libc::SYS_finit_module,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fsopen,
    libc::SYS_fspick,
    libc::SYS_get_mempolicy,
    libc::SYS_init_module,
    libc::SYS_kcmp,
    libc::SYS_kexec_file_load,
    libc::SYS_kexec_load,
    libc::SYS_keyctl,
    libc::SYS_lookup_dcookie,
    libc::SYS_mbind,
    libc::SYS_mount,
    libc::SYS_move_mount,
    libc::SYS_move_pages,
    libc::SYS_name_to_handle_at,
    libc::SYS_open_by_handle_at,
    libc::SYS_open_tree,
    libc::SYS_perf_event_open,
    libc::SYS_pivot_root,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_quotactl,
    libc::SYS_reboot,
    libc::SYS_request_key,
    libc::SYS_set_mempolicy,
    libc::SYS_setns,
    libc::SYS_settimeofday,
    libc::SYS_swapoff,
    libc::SYS_swapon,
    libc::SYS_syslog,
    libc::SYS_umount2,
    libc::SYS_userfaultfd,
    libc::SYS_vhangup,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    #[cfg(target_arch = "x86_64")]
    libc::SYS__sysctl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ustat,
];

fn arch() -> Result<TargetArch> {
    std::env::consts::ARCH.try_into().map_err(|e| anyhow!("seccomp: unsupported architecture: {e:?}"))
}

fn flag_set(arg: u8, flag: u64) -> Result<SeccompRule> {
    let cond = SeccompCondition::new(arg, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(flag), flag)?;
    Ok(SeccompRule::new(vec![cond])?)
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram> {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), arch()?)?;
    BpfProgram::try_from(filter).context("compiling the seccomp filter")
}

/// Installs the filters on this thread (inherited by the exec'd command).
pub fn install() -> Result<()> {
    explain::approx("(seccomp) deny mount, reboot, kexec_load, init_module, bpf, keyctl, setns, unshare/clone of user namespaces, ...", "the kernel refuses dangerous system calls, as Docker's default profile");
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    let newuser = libc::CLONE_NEWUSER as u64;
    rules.insert(libc::SYS_unshare, vec![flag_set(0, newuser)?]);
    // clone's flags are its first argument on x86_64 and arm64.
    rules.insert(libc::SYS_clone, vec![flag_set(0, newuser)?]);
    let deny = compile(rules, libc::EPERM)?;
    let no_clone3 = compile([(libc::SYS_clone3, Vec::new())].into_iter().collect(), libc::ENOSYS)?;
    load(&deny)?;
    load(&no_clone3)?;
    Ok(())
}

/// Loads a filter with the seccomp syscall itself: seccompiler's `apply_filter` would also
/// set no_new_privs, which `--security-opt no-new-privileges=false` must be able to lift
/// (we still hold CAP_SYS_ADMIN here, so the kernel does not require it).
fn load(program: &BpfProgram) -> Result<()> {
    let prog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `prog` points at a valid, live BPF program for the duration of the call.
    let rc = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog as *const libc::sock_fprog) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("installing the seccomp filter");
    }
    Ok(())
}
