//! The container's first process, from clone to exec, inside the new namespaces.
//!
//! Runs in the cloned child: it must not return into the rest of dockling. Failures are
//! written to the error pipe as `code\tmessage` and become the exit status.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::sys::signal::{self, SigHandler, SigSet, Signal};

use super::rootfs;
use super::spawn::InitConfig;
use crate::error::{CANNOT_EXECUTE, NOT_FOUND, RUNTIME_ERROR};
use crate::types::NetworkMode;

pub fn main(cfg: &mut InitConfig, go: RawFd, err: RawFd) -> i32 {
    match setup_and_exec(cfg, go) {
        Ok(never) => match never {},
        Err((code, message)) => {
            // SAFETY: err is the child's copy of the error pipe's write end.
            let mut pipe = unsafe { std::fs::File::from_raw_fd(err) };
            let _ = write!(pipe, "{code}\t{message}");
            code
        }
    }
}

pub enum Never {}

pub type Failure = (i32, String);

fn fail<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Failure + '_ {
    move |e| (RUNTIME_ERROR, format!("{what}: {e}"))
}

fn setup_and_exec(cfg: &mut InitConfig, go: RawFd) -> Result<Never, Failure> {
    crate::timing::mark("init: start");
    crate::cgroups::join_self(&cfg.cgroups).map_err(|e| (RUNTIME_ERROR, format!("{e:#}")))?;
    crate::timing::mark("init: joined");
    if let Some((out, err)) = cfg.stdio.take() {
        nix::unistd::dup2(out.as_raw_fd(), 1).map_err(fail("dup2 stdout"))?;
        nix::unistd::dup2(err.as_raw_fd(), 2).map_err(fail("dup2 stderr"))?;
    }
    if !cfg.interactive {
        // Without -i, stdin is not attached (as Docker).
        let null = std::fs::File::open("/dev/null").map_err(fail("opening /dev/null"))?;
        nix::unistd::dup2(null.as_raw_fd(), 0).map_err(fail("dup2 stdin"))?;
    }
    rootfs::prepare(cfg).map_err(|e| (RUNTIME_ERROR, format!("{e:#}")))?;
    crate::timing::mark("init: rootfs");
    if let Some(console) = cfg.console.take() {
        super::tty::become_tty(console.as_raw_fd()).map_err(fail("allocating the terminal"))?;
    }
    if cfg.network_mode == NetworkMode::None {
        loopback_up().map_err(fail("bringing lo up"))?;
    }
    crate::explain::step(&format!("hostname {}", cfg.hostname), "the container's own host name (UTS namespace)");
    nix::unistd::sethostname(&cfg.hostname).map_err(fail("sethostname"))?;

    // Wait until the host side (network) is ready; EOF means `run` died: give up.
    let mut byte = [0u8; 1];
    match nix::unistd::read(go, &mut byte) {
        Ok(1) => {}
        _ => return Err((RUNTIME_ERROR, "dockling run went away before the container started".into())),
    }
    let _ = nix::unistd::close(go);
    crate::timing::mark("init: go");
    // `run` has put us in our cgroups: now a cgroup namespace rooted there.
    if std::path::Path::new("/proc/self/ns/cgroup").exists() {
        crate::explain::approx("unshare --cgroup", "the container sees its own cgroup as /");
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).map_err(fail("unsharing the cgroup namespace"))?;
    }
    let home = cfg.security.apply().map_err(|e| (RUNTIME_ERROR, format!("{e:#}")))?;
    super::env::apply_home(&mut cfg.env, home);
    crate::timing::mark("init: secured");
    crate::explain::close_output();

    Err(exec_command(&cfg.argv, &cfg.env, &cfg.workdir))
}

/// Resolves and execs the command with its environment and working directory; returns
/// only on failure (126 cannot execute, 127 not found). Shared with `exec`.
pub fn exec_command(argv: &[String], env: &[String], workdir: &str) -> Failure {
    match try_exec(argv, env, workdir) {
        Ok(never) => match never {},
        Err(failure) => failure,
    }
}

fn try_exec(argv: &[String], env: &[String], workdir: &str) -> Result<Never, Failure> {
    let env_path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(super::env::DEFAULT_PATH).to_string();
    let first = argv.first().ok_or((RUNTIME_ERROR, "no command given".to_string()))?;
    let program = resolve(first, &env_path)?;
    enter_workdir(workdir)?;
    reset_signals();
    close_inherited_fds();

    let to_c = |s: &String| CString::new(s.as_bytes()).map_err(fail("argument with a NUL byte"));
    let c_argv = argv.iter().map(to_c).collect::<Result<Vec<_>, _>>()?;
    let envp = env.iter().map(to_c).collect::<Result<Vec<_>, _>>()?;
    let path = CString::new(program.as_bytes()).map_err(fail("path with a NUL byte"))?;
    let errno = match nix::unistd::execve(&path, &c_argv, &envp) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let code = if errno == nix::errno::Errno::ENOENT { NOT_FOUND } else { CANNOT_EXECUTE };
    Err((code, format!("exec: {first:?}: {}", errno.desc().to_lowercase())))
}

/// Finds the program like a shell would, telling "not found" (127) from "cannot execute" (126).
fn resolve(name: &str, path: &str) -> Result<String, Failure> {
    if name.is_empty() {
        return Err((NOT_FOUND, "exec: \"\": executable file not found in $PATH".into()));
    }
    if name.contains('/') {
        return match std::fs::metadata(name) {
            Ok(m) if m.is_dir() => Err((CANNOT_EXECUTE, format!("exec: {name:?}: is a directory"))),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => {
                Err((CANNOT_EXECUTE, format!("exec: {name:?}: permission denied")))
            }
            Ok(_) => Ok(name.to_string()),
            Err(e) => Err((NOT_FOUND, format!("exec: {name:?}: stat {name}: {}", e.to_string().to_lowercase()))),
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
        Some(p) => Err((CANNOT_EXECUTE, format!("exec: {p:?}: permission denied"))),
        None => Err((NOT_FOUND, format!("exec: {name:?}: executable file not found in $PATH"))),
    }
}

/// `-w DIR`: Docker creates a missing working directory.
fn enter_workdir(dir: &str) -> Result<(), Failure> {
    if !Path::new(dir).exists() {
        std::fs::create_dir_all(dir).map_err(fail("creating the working directory"))?;
    }
    std::env::set_current_dir(dir).map_err(|e| (RUNTIME_ERROR, format!("chdir to cwd ({dir:?}): {e}")))
}

/// Nothing but stdio crosses into the container: whatever descriptors the caller of
/// dockling had open (a shell's `7</`, say) are marked close-on-exec.
/// Marks every descriptor above stderr close-on-exec (what we pass on is then chosen).
pub(super) fn close_inherited_fds() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on our own fds.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if rc != 0 {
        // Older kernels: walk the fds ourselves.
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
            for fd in fds.into_iter().filter(|fd| *fd > 2) {
                // SAFETY: setting FD_CLOEXEC on a descriptor number (invalid ones just fail).
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
}

/// Rust ignores SIGPIPE and we may have blocked signals: the command gets clean defaults.
fn reset_signals() {
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: restoring default dispositions right before exec.
            let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
        }
    }
    let _ = SigSet::empty().thread_set_mask();
}

/// `ip link set lo up` inside a `--network none` netns, with one ioctl (bridge mode does it
/// over netlink with the rest of eth0's setup).
fn loopback_up() -> std::io::Result<()> {
    crate::explain::approx("nsenter --net=/proc/PID/ns/net ip link set lo up", "the container's own loopback");
    // SAFETY: a plain datagram socket and two ioctls on a zeroed, NUL-terminated ifreq.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut rc = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(sock);
        if rc < 0 {
            Err(err)
        } else {
            Ok(())
        }
    }
}
