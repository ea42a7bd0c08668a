//! Running from a copy of our own binary that nobody can write, and staying non-dumpable,
//! while a process of ours is inside a container (the CVE-2019-5736 class).
//!
//! A process in a container's pid namespace can open `/proc/PID/exe` of any process there
//! it may ptrace-read (same uid, dumpable, no more capabilities than its own). If that
//! process is still the host's dockling, the container holds the host's binary and can
//! reopen it for writing (via `/proc/self/fd/N`) once nothing runs it. So whatever enters
//! a container from dockling is non-dumpable until its `execve` ([`make_non_dumpable`]), and
//! `exec` re-executes itself ([`reexec_sealed`]) from a read-only view of its binary: a
//! detached read-only bind mount of it (`open_tree` + `mount_setattr`, no copy, as runc's
//! bindfd), or where the kernel lacks those, a memfd copy sealed against writes, growth and
//! shrinking. Even an opened exe then refuses writes (EROFS, or EPERM from the seals).

use std::convert::Infallible;
use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use anyhow::{bail, Context, Result};

/// Set in the environment of the re-executed process: it skips the re-exec, and if it still
/// finds its binary writable, fails instead of re-executing forever.
const MARKER: &str = "_DOCKLING_SEALED_EXE";

/// The seals the copy carries; [`running_sealed`] checks for all of them.
const SEALS: libc::c_int = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// `MFD_EXEC` (Linux 6.3): says the memfd will be executed (without it, newer kernels warn,
/// and with `vm.memfd_noexec=1` the memfd would not be executable at all).
const MFD_EXEC: libc::c_uint = 0x0010;

/// Whether this is the re-executed process and its binary refuses writes (a sealed memfd,
/// or a read-only mount). Clears the re-exec marker from our environment (it must not
/// reach any child). Called before any thread exists.
pub fn running_sealed() -> Result<bool> {
    if std::env::var_os(MARKER).is_none() {
        return Ok(false);
    }
    std::env::remove_var(MARKER);
    let exe = File::open("/proc/self/exe").context("opening /proc/self/exe")?;
    // SAFETY: F_GET_SEALS only reads the seals of our own descriptor (EINVAL if no memfd).
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return Ok(true);
    }
    let st = nix::sys::statvfs::fstatvfs(&exe).context("statvfs of /proc/self/exe")?;
    if st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(true);
    }
    // The marker without the protection: never re-execute again (that could loop).
    bail!("re-executing dockling from a read-only copy did not take (its binary is still writable)")
}

/// Executes our binary again through a read-only view of it, with the same argv and
/// environment (plus a marker). Returns only on failure.
pub fn reexec_sealed() -> Result<Infallible> {
    let view = match read_only_bind(c"/proc/self/exe") {
        Ok(fd) => fd,
        // No open_tree/mount_setattr (before 5.12) or no right to make mounts: copy it.
        Err(_) => sealed_copy()?,
    };
    let to_c = |s: OsString| CString::new(s.as_bytes()).context("an argument or variable with a NUL byte");
    let argv = std::env::args_os().map(to_c).collect::<Result<Vec<_>>>()?;
    let mut envp = std::env::vars_os()
        .filter(|(k, _)| k != MARKER)
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
    // the descriptor itself (close-on-exec: the new program does not inherit it).
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            view.as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(std::io::Error::last_os_error()).context("executing the read-only copy of dockling")
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached bind mount of `file` (our binary), made read-only: no copy, attached nowhere
/// (so no other namespace sees it), gone with its last user. Writes through it fail with
/// EROFS (or ETXTBSY first, while it runs).
fn read_only_bind(file: &std::ffi::CStr) -> std::io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    // SAFETY: open_tree on a NUL-terminated path; the new descriptor is ours alone.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            file.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned to us and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let attr = MountAttr { attr_set: MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: mount_setattr on our own detached mount, with a valid mount_attr and its size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
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
        assert!(!running_sealed().unwrap(), "the test binary itself was not re-executed");
    }

    #[test]
    fn the_read_only_bind_refuses_writes() {
        // Needs CAP_SYS_ADMIN (root); without it `exec` falls back to the memfd copy. A file
        // that does not run (a running one answers ETXTBSY before EROFS).
        let scratch = std::env::temp_dir().join(format!("dockling-ro-bind-{}", std::process::id()));
        std::fs::write(&scratch, b"x").unwrap();
        let path = CString::new(scratch.as_os_str().as_bytes()).unwrap();
        let view = read_only_bind(&path);
        std::fs::remove_file(&scratch).unwrap();
        let Ok(view) = view else { return };
        let st = nix::sys::statvfs::fstatvfs(&view).unwrap();
        assert!(st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
        let reopen = std::fs::OpenOptions::new().write(true).open(format!("/proc/self/fd/{}", view.as_raw_fd()));
        assert_eq!(reopen.unwrap_err().raw_os_error(), Some(libc::EROFS));
    }
}
