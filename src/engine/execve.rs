//! The last step of init and of `exec`'s child: find the command as a shell would, enter
//! the working directory, hand over clean signals and descriptors, and `execve`.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::sys::signal::{self, SigHandler, SigSet, Signal};

use super::sync::Failure;
use crate::error::{CANNOT_EXECUTE, NOT_FOUND, RUNTIME_ERROR};

pub enum Never {}

/// Default PATH, as Docker sets it (and runc when the spec has none).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves and execs the command with its environment and working directory; returns
/// only on failure (126 cannot execute, 127 not found). Shared with `exec`.
pub fn exec_command(argv: &[String], env: &[String], workdir: &str) -> Failure {
    exec_keeping(argv, env, workdir, 3)
}

/// As [`exec_command`], keeping descriptors below `first_closed` open (`--preserve-fds`).
pub fn exec_keeping(argv: &[String], env: &[String], workdir: &str, first_closed: i32) -> Failure {
    match try_exec(argv, env, workdir, first_closed) {
        Ok(never) => match never {},
        Err(failure) => failure,
    }
}

/// Finds the command as [`exec_command`] will, without running it (a missing command
/// fails `dockling-runc create`, as runc's).
pub fn resolve_command(argv: &[String], env: &[String]) -> Result<String, Failure> {
    let env_path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH).to_string();
    let first = argv.first().ok_or(Failure::new(RUNTIME_ERROR, "no command given"))?;
    resolve(first, &env_path)
}

fn try_exec(argv: &[String], env: &[String], workdir: &str, first_closed: i32) -> Result<Never, Failure> {
    let program = resolve_command(argv, env)?;
    let first = &argv[0];
    enter_workdir(workdir)?;
    reset_signals();
    // Nothing but stdio crosses into the container: whatever descriptors the caller of
    // dockling had open (a shell's `7</`, say) are closed by the exec.
    crate::sys::fd::cloexec_from(first_closed.max(3));

    let to_c = |s: &String| CString::new(s.as_bytes()).map_err(Failure::context("argument with a NUL byte"));
    let c_argv = argv.iter().map(to_c).collect::<Result<Vec<_>, _>>()?;
    let envp = env.iter().map(to_c).collect::<Result<Vec<_>, _>>()?;
    let path = CString::new(program.as_bytes()).map_err(Failure::context("path with a NUL byte"))?;
    let errno = match nix::unistd::execve(&path, &c_argv, &envp) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let code = if errno == nix::errno::Errno::ENOENT { NOT_FOUND } else { CANNOT_EXECUTE };
    Err(Failure::new(code, format!("exec: {first:?}: {}", errno.desc().to_lowercase())))
}

/// Finds the program like a shell would, telling "not found" (127) from "cannot execute" (126).
fn resolve(name: &str, path: &str) -> Result<String, Failure> {
    if name.is_empty() {
        return Err(Failure::new(NOT_FOUND, "exec: \"\": executable file not found in $PATH"));
    }
    if name.contains('/') {
        return match std::fs::metadata(name) {
            Ok(m) if m.is_dir() => Err(Failure::new(CANNOT_EXECUTE, format!("exec: {name:?}: is a directory"))),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => {
                Err(Failure::new(CANNOT_EXECUTE, format!("exec: {name:?}: permission denied")))
            }
            Ok(_) => Ok(name.to_string()),
            Err(e) => {
                Err(Failure::new(NOT_FOUND, format!("exec: {name:?}: stat {name}: {}", e.to_string().to_lowercase())))
            }
        };
    }
    let mut denied = None;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = format!("{dir}/{name}");
        if let Ok(m) = std::fs::metadata(&candidate) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
            denied.get_or_insert(candidate);
        }
    }
    match denied {
        Some(p) => Err(Failure::new(CANNOT_EXECUTE, format!("exec: {p:?}: permission denied"))),
        None => Err(Failure::new(NOT_FOUND, format!("exec: {name:?}: executable file not found in $PATH"))),
    }
}

/// `-w DIR`: Docker creates a missing working directory.
fn enter_workdir(dir: &str) -> Result<(), Failure> {
    if !Path::new(dir).exists() {
        std::fs::create_dir_all(dir).map_err(Failure::context("creating the working directory"))?;
    }
    std::env::set_current_dir(dir).map_err(|e| Failure::new(RUNTIME_ERROR, format!("chdir to cwd ({dir:?}): {e}")))
}

/// Rust ignores SIGPIPE and we may have blocked signals: the command gets clean defaults.
/// Real-time signals too: an ignored one (a caller's) would stay ignored across exec.
fn reset_signals() {
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: restoring default dispositions right before exec.
            let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
        }
    }
    // The kernel's 32..=64 (the C library keeps 32 and 33 for itself and refuses them:
    // the system call does not).
    let default = [0u64; 4]; // struct kernel_sigaction: handler SIG_DFL, no flags, no mask
    for sig in 32..=64 {
        // SAFETY: rt_sigaction with a zeroed kernel_sigaction (SIG_DFL) and no old action.
        unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, default.as_ptr(), std::ptr::null::<u64>(), 8usize) };
    }
    let _ = SigSet::empty().thread_set_mask();
}
