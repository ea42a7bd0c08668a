//! Running from a sealed in-memory copy of our own binary, and staying non-dumpable, while
//! a process of ours is inside a container (the CVE-2019-5736 class).
//!
//! A process in a container's pid namespace can open `/proc/PID/exe` of any process there
//! it may ptrace-read (same uid, dumpable, no more capabilities than its own). If that
//! process is still the host's dockling, the container holds the host's binary and can
//! reopen it for writing (via `/proc/self/fd/N`) once nothing runs it. So whatever enters
//! a container from dockling is non-dumpable until its `execve` ([`make_non_dumpable`]), and
//! `exec` runs from a memfd copy sealed against writes, growth and shrinking
//! ([`reexec_sealed`]): even an opened exe is only that copy, and it cannot be changed.

use std::convert::Infallible;
use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use anyhow::{bail, Context, Result};

/// Set in the environment of the re-executed copy: if that copy still finds itself
/// unsealed, it fails instead of re-executing forever.
const MARKER: &str = "_DOCKLING_SEALED_EXE";

/// The seals the copy carries; [`running_sealed`] checks for all of them.
const SEALS: libc::c_int = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// `MFD_EXEC` (Linux 6.3): says the memfd will be executed (without it, newer kernels warn,
/// and with `vm.memfd_noexec=1` the memfd would not be executable at all).
const MFD_EXEC: libc::c_uint = 0x0010;

/// Whether this process runs from a memfd that carries all of [`SEALS`]. Clears the
/// re-exec marker from our environment either way (it must not reach any child).
pub fn running_sealed() -> bool {
    let sealed = File::open("/proc/self/exe").is_ok_and(|exe| {
        // SAFETY: F_GET_SEALS only reads the seals of our own open descriptor (EINVAL
        // when it is not a memfd).
        let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
        seals >= 0 && seals & SEALS == SEALS
    });
    if sealed {
        // Called before any thread exists (exec is single-threaded until it forks).
        std::env::remove_var(MARKER);
    }
    sealed
}

/// Copies `/proc/self/exe` into a memfd, seals it, and executes it with the same argv and
/// environment (plus a marker). Returns only on failure.
pub fn reexec_sealed() -> Result<Infallible> {
    if std::env::var_os(MARKER).is_some() {
        bail!("re-executing dockling from a sealed copy did not take (still not sealed)");
    }
    let copy = sealed_copy()?;
    let to_c = |s: OsString| CString::new(s.as_bytes()).context("an argument or variable with a NUL byte");
    let argv = std::env::args_os().map(to_c).collect::<Result<Vec<_>>>()?;
    let mut envp = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect::<Result<Vec<_>>>()?;
    envp.push(to_c(format!("{MARKER}=1").into())?);
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: NUL-terminated argv and envp arrays of live CStrings; AT_EMPTY_PATH executes
    // the memfd itself (close-on-exec: the new program does not inherit it).
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            copy.as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(std::io::Error::last_os_error()).context("executing the sealed copy of dockling")
}

/// The memfd: a byte-for-byte copy of our binary that nobody can write, grow or shrink.
fn sealed_copy() -> Result<OwnedFd> {
    let exe = File::open("/proc/self/exe").context("opening /proc/self/exe")?;
    let size = exe.metadata().context("stat of /proc/self/exe")?.len();
    let memfd = memfd(libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | MFD_EXEC)
        .or_else(|_| memfd(libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING))
        .context("memfd_create for a sealed copy of dockling")?;
    let mut copied: u64 = 0;
    while copied < size {
        let left = usize::try_from(size - copied).unwrap_or(usize::MAX);
        // SAFETY: sendfile between two descriptors we own, from exe's own file offset.
        let n = unsafe { libc::sendfile(memfd.as_raw_fd(), exe.as_raw_fd(), std::ptr::null_mut(), left) };
        match n {
            n if n > 0 => copied += n as u64,
            0 => bail!("copying dockling into a memfd: the binary ended after {copied} of {size} bytes"),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e).context("copying dockling into a memfd");
                }
            }
        }
    }
    // SAFETY: adding seals to our own memfd (no shared writable mapping exists).
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(std::io::Error::last_os_error()).context("sealing the copy of dockling");
    }
    Ok(memfd)
}

fn memfd(flags: libc::c_uint) -> std::io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name; the new descriptor is ours alone.
    let fd = unsafe { libc::memfd_create(c"dockling".as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned to us and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `prctl(PR_SET_DUMPABLE, 0)`: from now until our next `execve` (which resets it for the
/// container's program), only a process holding CAP_SYS_PTRACE may open our /proc files
/// such as `exe`, `mem` or `fd/`, and we may not be ptraced. Inherited across fork.
pub fn make_non_dumpable() -> std::io::Result<()> {
    // SAFETY: plain prctl on ourselves.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};

    use super::*;

    #[test]
    fn the_copy_is_our_binary_and_refuses_changes() {
        let copy = sealed_copy().unwrap();
        let mut copy = File::from(copy);
        let ours = std::fs::read("/proc/self/exe").unwrap();
        let mut theirs = Vec::new();
        copy.seek(std::io::SeekFrom::Start(0)).unwrap();
        copy.read_to_end(&mut theirs).unwrap();
        assert!(ours == theirs, "the memfd must hold the same bytes as /proc/self/exe");
        // SAFETY: reading our own memfd's seals.
        let seals = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & SEALS, SEALS);
        let write = copy.write(b"x").unwrap_err();
        assert_eq!(write.raw_os_error(), Some(libc::EPERM), "{write}");
        assert!(copy.set_len(1).is_err(), "shrinking must fail");
        assert!(!running_sealed(), "the test binary itself is not sealed");
    }
}
