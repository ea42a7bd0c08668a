//! `-v HOST:CONTAINER[:ro]` bind mounts and `--tmpfs PATH`, as Docker has them.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};

use crate::types::Mount;
use crate::{error, explain};

/// Checks the flags before anything is created: absolute paths, existing sources.
pub fn parse(volumes: &[String], tmpfs: &[String]) -> Result<Vec<Mount>> {
    let mut out = Vec::new();
    for v in volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [s, t] => (*s, *t, ""),
            [s, t, m] => (*s, *t, *m),
            _ => {
                return Err(error::user(format!(
                    "invalid volume specification: {v:?} (use HOST_PATH:CONTAINER_PATH[:ro])"
                )))
            }
        };
        if !source.starts_with('/') {
            return Err(error::user(format!(
                "invalid volume {v:?}: the host path {source:?} must be absolute (named volumes are not supported)"
            )));
        }
        if !Path::new(source).exists() {
            return Err(error::user(format!("invalid volume {v:?}: host path {source:?} does not exist")));
        }
        check_target(target, v)?;
        let read_only = match mode {
            "" | "rw" => false,
            "ro" => true,
            m => return Err(error::user(format!("invalid volume {v:?}: unknown mode {m:?} (use ro or rw)"))),
        };
        out.push(Mount::Bind { source: PathBuf::from(source), target: target.to_string(), read_only });
    }
    for t in tmpfs {
        let target = t.split(':').next().unwrap_or(t);
        check_target(target, t)?;
        out.push(Mount::Tmpfs { target: target.to_string() });
    }
    Ok(out)
}

fn check_target(target: &str, spec: &str) -> Result<()> {
    // `//`, `/.` and `/./` name the root too: only real components count.
    let names_root = target.split('/').all(|c| c.is_empty() || c == ".");
    if !target.starts_with('/') || names_root || target.split('/').any(|c| c == "..") {
        return Err(error::user(format!(
            "invalid mount {spec:?}: the container path {target:?} must be absolute, not / and without '..'"
        )));
    }
    Ok(())
}

/// `open_tree(2)` flags (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
/// `move_mount(2)`: the source is the descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// The host sources of the binds, taken before pivot_root as detached copies of their
/// mount trees (`open_tree` with OPEN_TREE_CLONE): they can be attached inside the
/// container after the host's tree is gone. One entry per mount; None for tmpfs.
pub fn open_sources(mounts: &[Mount]) -> Result<Vec<Option<OwnedFd>>> {
    mounts
        .iter()
        .map(|m| match m {
            Mount::Bind { source, .. } => {
                let path = std::ffi::CString::new(source.as_os_str().as_encoded_bytes())
                    .with_context(|| format!("bad path {}", source.display()))?;
                let flags = OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint;
                // SAFETY: a NUL-terminated path; returns a new descriptor or -1.
                let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error())
                        .with_context(|| format!("opening {}", source.display()));
                }
                // SAFETY: a fresh descriptor we own.
                Ok(Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) }))
            }
            Mount::Tmpfs { .. } => Ok(None),
        })
        .collect()
}

/// Mounts them after pivot_root: targets resolve inside the container, the binds come
/// from the detached trees [`open_sources`] took.
pub fn apply(mounts: &[Mount], sources: Vec<Option<OwnedFd>>) -> Result<()> {
    for (m, fd) in mounts.iter().zip(sources) {
        match (m, fd) {
            (Mount::Bind { source, target, read_only }, Some(fd)) => {
                let dest = Path::new(target);
                // The host path no longer resolves here: ask the descriptor what it is.
                let is_dir = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
                    .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                    .unwrap_or(false);
                let in_container = |p: &Path| format!("creating {} in the container", p.display());
                if is_dir {
                    std::fs::create_dir_all(dest).with_context(|| in_container(dest))?;
                } else {
                    if let Some(p) = dest.parent() {
                        std::fs::create_dir_all(p).with_context(|| in_container(p))?;
                    }
                    if !dest.exists() {
                        std::fs::write(dest, b"").with_context(|| in_container(dest))?;
                    }
                }
                explain::step(
                    &format!("mount --rbind {} {target}", source.display()),
                    "a volume: the host's directory inside the container",
                );
                let to = std::ffi::CString::new(target.as_bytes()).with_context(|| format!("bad path {target}"))?;
                // SAFETY: a valid descriptor, an empty and a NUL-terminated path.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_move_mount,
                        std::os::fd::AsRawFd::as_raw_fd(&fd),
                        c"".as_ptr(),
                        libc::AT_FDCWD,
                        to.as_ptr(),
                        MOVE_MOUNT_F_EMPTY_PATH,
                    )
                };
                if rc != 0 {
                    return Err(std::io::Error::last_os_error())
                        .with_context(|| format!("binding {} to {target}", source.display()));
                }
                if *read_only {
                    crate::security::masked_paths::remount_read_only(dest)?;
                }
            }
            (Mount::Tmpfs { target }, _) => {
                let dest = Path::new(target);
                std::fs::create_dir_all(dest).with_context(|| format!("creating {target} in the container"))?;
                explain::step(&format!("mount -t tmpfs tmpfs {target}"), "a scratch directory in memory");
                mount(Some("tmpfs"), dest, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))
                    .with_context(|| format!("mounting tmpfs on {target}"))?;
            }
            (Mount::Bind { target, .. }, None) => anyhow::bail!("no source opened for {target}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// An existing absolute host path to bind.
    fn existing() -> String {
        let dir = std::env::temp_dir();
        assert!(dir.is_absolute() && dir.is_dir());
        dir.to_str().unwrap().trim_end_matches('/').to_string()
    }

    fn bind(m: &Mount) -> (&Path, &str, bool) {
        match m {
            Mount::Bind { source, target, read_only } => (source.as_path(), target.as_str(), *read_only),
            Mount::Tmpfs { target } => panic!("tmpfs {target}, not a bind"),
        }
    }

    fn err(volumes: &[String], tmpfs: &[&str]) -> String {
        let e = parse(volumes, &strings(tmpfs)).unwrap_err();
        assert_eq!(error::code_of(&e), error::RUNTIME_ERROR);
        e.to_string()
    }

    #[test]
    fn volume_forms_and_modes() {
        let src = existing();
        let vols = [format!("{src}:/data"), format!("{src}:/ro:ro"), format!("{src}:/rw:rw"), format!("{src}:/a/b/c")];
        let mounts = parse(&vols, &[]).unwrap();
        assert_eq!(mounts.len(), 4);
        assert_eq!(bind(&mounts[0]), (Path::new(&src), "/data", false));
        assert_eq!(bind(&mounts[1]), (Path::new(&src), "/ro", true));
        assert_eq!(bind(&mounts[2]), (Path::new(&src), "/rw", false));
        assert_eq!(bind(&mounts[3]), (Path::new(&src), "/a/b/c", false));
        assert!(parse(&[], &[]).unwrap().is_empty());
    }

    #[test]
    fn tmpfs_targets() {
        let mounts = parse(&[], &strings(&["/run", "/tmp:size=64m,mode=1777"])).unwrap();
        let targets: Vec<&str> = mounts
            .iter()
            .map(|m| match m {
                Mount::Tmpfs { target } => target.as_str(),
                Mount::Bind { .. } => panic!("a bind"),
            })
            .collect();
        assert_eq!(targets, ["/run", "/tmp"]);
        // Volumes come first, then tmpfs, whatever the order on the command line.
        let mounts = parse(&[format!("{}:/v", existing())], &strings(&["/t"])).unwrap();
        assert!(matches!((&mounts[0], &mounts[1]), (Mount::Bind { .. }, Mount::Tmpfs { .. })));
    }

    #[test]
    fn bad_volume_specifications() {
        let src = existing();
        for v in ["/only-one-part".to_string(), format!("{src}:/a:ro:extra"), String::new()] {
            assert!(err(std::slice::from_ref(&v), &[]).starts_with("invalid volume specification"), "{v}");
        }
        assert!(err(&[format!("{src}:/a:z")], &[]).contains("unknown mode \"z\""));
        assert!(err(&[format!("{src}:/a:RO")], &[]).contains("unknown mode \"RO\""));
    }

    #[test]
    fn relative_or_missing_sources_are_refused() {
        for source in ["data", "./data", "../data", "~/data", ""] {
            let e = err(&[format!("{source}:/data")], &[]);
            assert!(e.contains("must be absolute (named volumes are not supported)"), "{source}: {e}");
        }
        let missing = format!("{}/dockling-test-surely-missing-{}", existing(), std::process::id());
        let e = err(&[format!("{missing}:/data")], &[]);
        assert_eq!(e, format!("invalid volume \"{missing}:/data\": host path \"{missing}\" does not exist"));
    }

    #[test]
    fn container_paths_must_be_absolute_not_root_and_without_dotdot() {
        let src = existing();
        for target in ["data", "", "/", "//", "/.", "/./", "..", "/..", "/a/..", "/a/../b", "../etc", "/a/../../etc"] {
            let spec = format!("{src}:{target}");
            let e = err(std::slice::from_ref(&spec), &[]);
            assert_eq!(
                e,
                format!(
                    "invalid mount {spec:?}: the container path {target:?} must be absolute, not / and without '..'"
                )
            );
            assert!(err(&[], &[target]).starts_with("invalid mount"), "tmpfs {target}");
        }
        // Dots inside a name are not '..'.
        for target in ["/a..b", "/..a", "/a/b..", "/.hidden"] {
            assert!(parse(&[format!("{src}:{target}")], &strings(&[target])).is_ok(), "{target}");
        }
        // One bad entry fails the whole list.
        assert!(parse(&[format!("{src}:/ok"), format!("{src}:rel")], &[]).is_err());
        assert!(parse(&[format!("{src}:/ok")], &strings(&["/ok", "/"])).is_err());
    }
}
