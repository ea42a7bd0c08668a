//! Unpacking one layer tar into an empty directory, safely and faithfully.
//!
//! Faithfully: regular files, directories, symlinks, hard links, device nodes and fifos
//! keep their ownership, mode (setuid included), xattrs and mtime, and whiteouts become
//! what overlayfs reads in a lower dir: `.wh.NAME` a 0/0 character device `NAME`, and
//! `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory.
//!
//! Safely, because a layer is untrusted input: an entry path with `..` is refused, as is
//! a hard link to a path outside the layer, a relative symlink whose target climbs above
//! the layer's root (Docker's rule; absolute targets are resolved inside the container),
//! and any entry whose parent is not a real directory (writing "through" a symlink that
//! an earlier entry planted). Archive xattrs in `trusted.overlay.*` are dropped, so a
//! layer cannot forge overlay metadata.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use tar::EntryType;

use crate::error;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const OVERLAY_XATTRS: &str = "trusted.overlay.";

/// Ownership, mode, times and xattrs of one entry.
#[derive(Clone)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Unpacker<'a> {
    root: &'a Path,
    /// Directories known to be real directories (not symlinks) under `root`.
    known_dirs: HashSet<PathBuf>,
    /// Directory metadata, applied last and deepest first (so writing into them works,
    /// and their mtimes are not bumped by their own contents).
    dirs: HashMap<PathBuf, Meta>,
    size: u64,
    buf: Vec<u8>,
}

/// Unpacks the tar stream `reader` into the existing empty directory `root`; returns
/// the number of bytes of file content written.
pub fn unpack(reader: impl Read, root: &Path) -> Result<u64> {
    let mut u = Unpacker { root, known_dirs: HashSet::new(), dirs: HashMap::new(), size: 0, buf: vec![0; 256 * 1024] };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().context("reading the layer (not a tar archive?)")? {
        let mut entry = entry.context("reading the layer's next tar entry")?;
        u.entry(&mut entry)?;
    }
    u.finish_dirs()?;
    Ok(u.size)
}

fn hostile(path: &Path, why: &str) -> anyhow::Error {
    error::user(format!("refusing layer entry {:?}: {why}", path.display().to_string()))
}

/// The entry's path relative to the layer root (None for the root itself); `..` refused.
fn clean(path: &Path) -> Result<Option<PathBuf>> {
    crate::image::archive_path::normalize(path, false).map_err(|_| hostile(path, "its path leaves the layer ('..')"))
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let raw = entry.path().context("reading a tar entry's path")?.into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let meta = self.meta(entry, &raw)?;
        let Some(rel) = clean(&raw)? else {
            // "./": the layer root's own metadata.
            if kind == EntryType::Directory {
                self.dirs.insert(PathBuf::new(), meta);
            }
            return Ok(());
        };
        let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            return self.whiteout(&rel, &name, hidden);
        }
        self.ensure_parent(&rel)?;
        let full = self.root.join(&rel);
        match kind {
            EntryType::Directory => {
                if !self.make_way(&rel, true)? {
                    fs::DirBuilder::new()
                        .mode(0o700)
                        .create(&full)
                        .with_context(|| format!("creating {}", rel.display()))?;
                }
                self.known_dirs.insert(rel.clone());
                self.dirs.insert(rel, meta);
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.make_way(&rel, false)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&full)
                    .with_context(|| format!("creating {}", rel.display()))?;
                loop {
                    let n = match entry.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e).with_context(|| format!("reading {} from the layer", rel.display())),
                    };
                    file.write_all(&self.buf[..n]).with_context(|| format!("writing {}", rel.display()))?;
                    self.size += n as u64;
                }
                std::os::unix::fs::fchown(&file, Some(meta.uid), Some(meta.gid))
                    .with_context(|| format!("chown {}", rel.display()))?;
                file.set_permissions(fs::Permissions::from_mode(meta.mode))
                    .with_context(|| format!("chmod {}", rel.display()))?;
                set_xattrs(&full, &meta)?;
                file.set_times(fs::FileTimes::new().set_accessed(time(meta.mtime)).set_modified(time(meta.mtime)))
                    .with_context(|| format!("setting times of {}", rel.display()))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .context("reading a symlink target")?
                    .ok_or_else(|| hostile(&raw, "symlink without a target"))?
                    .into_owned();
                check_symlink(&rel, &target)?;
                self.make_way(&rel, false)?;
                std::os::unix::fs::symlink(&target, &full)
                    .with_context(|| format!("creating symlink {}", rel.display()))?;
                std::os::unix::fs::lchown(&full, Some(meta.uid), Some(meta.gid))
                    .with_context(|| format!("chown {}", rel.display()))?;
                set_xattrs(&full, &meta)?;
                set_times_nofollow(&full, meta.mtime)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .context("reading a hard link target")?
                    .ok_or_else(|| hostile(&raw, "hard link without a target"))?
                    .into_owned();
                let Some(target_rel) =
                    clean(&target).map_err(|_| hostile(&raw, "hard link target leaves the layer ('..')"))?
                else {
                    return Err(hostile(&raw, "hard link to the layer root"));
                };
                self.check_parents(&target_rel)
                    .map_err(|_| hostile(&raw, "hard link target goes through a symlink"))?;
                let source = self.root.join(&target_rel);
                match fs::symlink_metadata(&source) {
                    Ok(m) if !m.is_dir() => {}
                    Ok(_) => return Err(hostile(&raw, "hard link to a directory")),
                    Err(_) => return Err(hostile(&raw, "hard link to a file that is not in the layer")),
                }
                if target_rel == rel {
                    return Ok(());
                }
                self.make_way(&rel, false)?;
                fs::hard_link(&source, &full).with_context(|| format!("creating hard link {}", rel.display()))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (major, minor) = (
                    entry.header().device_major().ok().flatten().unwrap_or(0),
                    entry.header().device_minor().ok().flatten().unwrap_or(0),
                );
                let fmt = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                self.make_way(&rel, false)?;
                mknod(&full, fmt | (meta.mode & 0o7777), major, minor)
                    .with_context(|| format!("mknod {}", rel.display()))?;
                std::os::unix::fs::lchown(&full, Some(meta.uid), Some(meta.gid))
                    .with_context(|| format!("chown {}", rel.display()))?;
                fs::set_permissions(&full, fs::Permissions::from_mode(meta.mode))
                    .with_context(|| format!("chmod {}", rel.display()))?;
                set_xattrs(&full, &meta)?;
                set_times_nofollow(&full, meta.mtime)?;
            }
            other => {
                return Err(error::user(format!(
                    "layer entry {:?}: unsupported tar entry type {other:?}",
                    rel.display().to_string()
                )))
            }
        }
        Ok(())
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<R>, raw: &Path) -> Result<Meta> {
        let h = entry.header();
        let old = h.as_old();
        let bad = |what: &str| hostile(raw, &format!("unreadable {what} in its tar header"));
        let id = |field: &[u8], parsed: io::Result<u64>, what: &str| -> Result<u32> {
            u32::try_from(numeric(field, parsed).map_err(|_| bad(what))?).map_err(|_| bad(what))
        };
        let mut meta = Meta {
            uid: id(&old.uid, h.uid(), "uid")?,
            gid: id(&old.gid, h.gid(), "gid")?,
            mode: numeric(&old.mode, h.mode().map(u64::from)).map_err(|_| bad("mode"))? as u32 & 0o7777,
            mtime: h.mtime().unwrap_or(0),
            xattrs: Vec::new(),
        };
        if let Some(exts) = entry.pax_extensions().context("reading pax headers")? {
            for ext in exts {
                let ext = ext.context("reading a pax header")?;
                let Ok(key) = ext.key() else { continue };
                let number = || ext.value().ok().and_then(|v| v.trim().parse::<u32>().ok());
                match key {
                    "uid" => meta.uid = number().ok_or_else(|| bad("pax uid"))?,
                    "gid" => meta.gid = number().ok_or_else(|| bad("pax gid"))?,
                    _ => {}
                }
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if !name.starts_with(OVERLAY_XATTRS) {
                        meta.xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
        Ok(meta)
    }

    /// `.wh.NAME` hides NAME of the layers below; `.wh..wh..opq` hides all of its directory.
    fn whiteout(&mut self, rel: &Path, name: &str, hidden: &str) -> Result<()> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        if name == OPAQUE {
            self.ensure_dir(parent)?;
            return set_xattr(&self.root.join(parent), "trusted.overlay.opaque", b"y").with_context(|| {
                format!("marking {} opaque (does this filesystem allow trusted xattrs?)", parent.display())
            });
        }
        if hidden.starts_with(WHITEOUT) || hidden.is_empty() || hidden == "." || hidden == ".." {
            return Ok(()); // aufs bookkeeping (.wh..wh.plnk and the like): nothing to hide
        }
        self.ensure_parent(rel)?;
        let target = parent.join(hidden);
        self.make_way(&target, false)?;
        mknod(&self.root.join(&target), libc::S_IFCHR, 0, 0)
            .with_context(|| format!("creating whiteout {}", target.display()))
    }

    /// Creates the missing directories above `rel`; refuses a parent that is not a directory.
    fn ensure_parent(&mut self, rel: &Path) -> Result<()> {
        match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => self.ensure_dir(p),
            _ => Ok(()),
        }
    }

    fn ensure_dir(&mut self, rel: &Path) -> Result<()> {
        if rel.as_os_str().is_empty() || self.known_dirs.contains(rel) {
            return Ok(());
        }
        let mut cur = PathBuf::new();
        for c in rel.components() {
            cur.push(c);
            if self.known_dirs.contains(&cur) {
                continue;
            }
            let full = self.root.join(&cur);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(hostile(rel, &format!("its parent {:?} is not a directory", cur.display().to_string())))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&full)
                        .with_context(|| format!("creating {}", cur.display()))?;
                }
                Err(e) => return Err(e).with_context(|| format!("inspecting {}", cur.display())),
            }
            self.known_dirs.insert(cur.clone());
        }
        Ok(())
    }

    /// Like [`Self::ensure_dir`] for the parents of `rel`, without creating anything.
    fn check_parents(&self, rel: &Path) -> Result<()> {
        let mut cur = PathBuf::new();
        if let Some(parent) = rel.parent() {
            for c in parent.components() {
                cur.push(c);
                if !self.known_dirs.contains(&cur)
                    && !fs::symlink_metadata(self.root.join(&cur)).map(|m| m.is_dir()).unwrap_or(false)
                {
                    return Err(hostile(rel, "a parent is not a directory"));
                }
            }
        }
        Ok(())
    }

    /// Removes what is at `rel` so a new entry can take its place; returns true when a
    /// directory is there and a directory is wanted (it is kept, as tar does).
    fn make_way(&mut self, rel: &Path, want_dir: bool) -> Result<bool> {
        let full = self.root.join(rel);
        match fs::symlink_metadata(&full) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("inspecting {}", rel.display())),
            Ok(m) if m.is_dir() => {
                if want_dir {
                    return Ok(true);
                }
                fs::remove_dir_all(&full).with_context(|| format!("replacing directory {}", rel.display()))?;
                self.known_dirs.retain(|d| !d.starts_with(rel));
                self.dirs.retain(|d, _| !d.starts_with(rel));
                Ok(false)
            }
            Ok(_) => {
                fs::remove_file(&full).with_context(|| format!("replacing {}", rel.display()))?;
                Ok(false)
            }
        }
    }

    fn finish_dirs(&mut self) -> Result<()> {
        let mut dirs: Vec<(PathBuf, Meta)> = self.dirs.drain().collect();
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (rel, meta) in dirs {
            let full = self.root.join(&rel);
            std::os::unix::fs::lchown(&full, Some(meta.uid), Some(meta.gid))
                .with_context(|| format!("chown {}", rel.display()))?;
            fs::set_permissions(&full, fs::Permissions::from_mode(meta.mode))
                .with_context(|| format!("chmod {}", rel.display()))?;
            set_xattrs(&full, &meta)?;
            set_times_nofollow(&full, meta.mtime)?;
        }
        Ok(())
    }
}

/// A numeric header field; an empty one (all NULs or spaces, as some writers leave
/// them) is 0, as Go's archive/tar reads it.
fn numeric(field: &[u8], parsed: io::Result<u64>) -> io::Result<u64> {
    match parsed {
        Ok(n) => Ok(n),
        Err(_) if field.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        Err(e) => Err(e),
    }
}

/// Docker's rule: a relative symlink target may not climb above the layer root.
fn check_symlink(rel: &Path, target: &Path) -> Result<()> {
    if target.as_os_str().is_empty() {
        return Err(hostile(rel, "symlink with an empty target"));
    }
    if target.is_absolute() {
        return Ok(()); // resolved against the container's root, never the host's
    }
    let mut depth = rel.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err(hostile(
                        rel,
                        &format!("symlink target {:?} leaves the layer", target.display().to_string()),
                    ));
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    Ok(())
}

fn time(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).with_context(|| format!("path {} has a NUL byte", path.display()))
}

fn mknod(path: &Path, mode: u32, major: u32, minor: u32) -> Result<()> {
    let c = cpath(path)?;
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::mknod(c.as_ptr(), mode, libc::makedev(major, minor)) } != 0 {
        return Err(io::Error::last_os_error().into());
    }
    Ok(())
}

fn set_times_nofollow(path: &Path, mtime: u64) -> Result<()> {
    let c = cpath(path)?;
    let t = libc::timespec { tv_sec: mtime as libc::time_t, tv_nsec: 0 };
    let times = [t, t];
    // SAFETY: valid path and a two-element timespec array.
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("setting times of {}", path.display()));
    }
    Ok(())
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    let c = cpath(path)?;
    let n = CString::new(name).context("xattr name with a NUL byte")?;
    // SAFETY: valid path, name and value buffer.
    let rc = unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error().into());
    }
    Ok(())
}

fn set_xattrs(path: &Path, meta: &Meta) -> Result<()> {
    for (name, value) in &meta.xattrs {
        if let Err(e) = set_xattr(path, name, value) {
            // A filesystem without that namespace (e.g. user.* on some tmpfs) loses the
            // xattr, as Docker's own unpacker does; anything else is an error.
            let unsupported = e
                .downcast_ref::<io::Error>()
                .and_then(|e| e.raw_os_error())
                .is_some_and(|c| c == libc::EOPNOTSUPP || c == libc::ENOTSUP);
            if !unsupported {
                return Err(e).with_context(|| format!("setting xattr {name} on {}", path.display()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A fresh directory with the layer root `root/` in it (and room beside it to check
    /// that nothing escaped), removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("dockling-test-unpack-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("root")).unwrap();
            TempDir(dir)
        }

        fn root(&self) -> PathBuf {
            self.0.join("root")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const MTIME: u64 = 1_600_000_000;

    /// One tar entry: (type, path, link target, mode, content). Paths are written as raw
    /// bytes, so hostile ones (`..`) the tar crate would refuse to write get through.
    type Spec<'a> = (EntryType, &'a str, &'a str, u32, &'a [u8]);

    fn layer(entries: &[Spec]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (kind, path, link, mode, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(*mode);
            // Our own ids: chown to them needs no privilege.
            h.set_uid(nix::unistd::getuid().as_raw().into());
            h.set_gid(nix::unistd::getgid().as_raw().into());
            h.set_mtime(MTIME);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn unpack_into(dir: &TempDir, entries: &[Spec]) -> Result<u64> {
        unpack(&layer(entries)[..], &dir.root())
    }

    fn refused(tag: &str, entries: &[Spec], why: &str) -> TempDir {
        let dir = TempDir::new(tag);
        let err = unpack_into(&dir, entries).unwrap_err();
        assert!(err.to_string().starts_with("refusing layer entry"), "{tag}: {err}");
        assert!(err.to_string().contains(why), "{tag}: {err}");
        assert_eq!(error::code_of(&err), error::RUNTIME_ERROR);
        dir
    }

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn unpacks_files_dirs_links_with_their_metadata() {
        let dir = TempDir::new("ok");
        let size = unpack_into(
            &dir,
            &[
                (EntryType::Directory, "./", "", 0o755, b""),
                (EntryType::Directory, "a/", "", 0o750, b""),
                (EntryType::Regular, "a/f", "", 0o640, b"hello"),
                (EntryType::Regular, "deep/er/g", "", 0o755, b"12"),
                (EntryType::Symlink, "a/abs", "/etc/passwd", 0o777, b""),
                (EntryType::Symlink, "a/up", "../deep/er/g", 0o777, b""),
                (EntryType::Link, "hard", "a/f", 0o640, b""),
                (EntryType::Regular, "a/f2", "", 0o600, b"first"),
                (EntryType::Regular, "a/f2", "", 0o644, b"second"),
            ],
        )
        .unwrap();
        let root = dir.root();
        assert_eq!(size, 5 + 2 + 5 + 6); // file contents only, hard links add nothing
        assert_eq!(fs::read(root.join("a/f")).unwrap(), b"hello");
        assert_eq!(fs::read(root.join("a/f2")).unwrap(), b"second");
        assert_eq!(fs::read(root.join("deep/er/g")).unwrap(), b"12");
        assert_eq!(mode(&root.join("a/f")), 0o640);
        assert_eq!(mode(&root.join("a/f2")), 0o644);
        assert_eq!(mode(&root.join("a")), 0o750);
        assert_eq!(mode(&root.join("deep")), 0o755); // made for its file
        assert_eq!(mode(&root), 0o755);
        assert_eq!(fs::read_link(root.join("a/abs")).unwrap(), Path::new("/etc/passwd"));
        assert_eq!(fs::read_link(root.join("a/up")).unwrap(), Path::new("../deep/er/g"));
        assert_eq!(fs::read(root.join("a/up")).unwrap(), b"12");
        let (f, h) = (fs::metadata(root.join("a/f")).unwrap(), fs::metadata(root.join("hard")).unwrap());
        assert_eq!((f.ino(), f.nlink()), (h.ino(), 2));
        for p in ["a/f", "a", "a/abs", "deep/er/g"] {
            assert_eq!(fs::symlink_metadata(root.join(p)).unwrap().mtime() as u64, MTIME, "{p}");
        }
        assert_eq!(fs::metadata(&root).unwrap().mtime() as u64, MTIME);
    }

    #[test]
    fn paths_with_dotdot_are_refused() {
        for (i, path) in ["../evil", "a/../../evil", "a/../evil", "./../evil"].iter().enumerate() {
            let dir = refused(&format!("dotdot{i}"), &[(EntryType::Regular, path, "", 0o644, b"x")], "('..')");
            assert!(!dir.0.join("evil").exists() && !dir.root().join("evil").exists());
        }
        // An absolute path is read relative to the layer root.
        let dir = TempDir::new("abs");
        unpack_into(&dir, &[(EntryType::Regular, "/etc/x", "", 0o644, b"x")]).unwrap();
        assert_eq!(fs::read(dir.root().join("etc/x")).unwrap(), b"x");
    }

    #[test]
    fn symlinks_climbing_above_the_root_are_refused() {
        for (i, (path, target)) in
            [("l", "../x"), ("a/l", "../../x"), ("a/b/l", "../c/../../../x"), ("l", "a/../../x")].iter().enumerate()
        {
            refused(&format!("symlink{i}"), &[(EntryType::Symlink, path, target, 0o777, b"")], "leaves the layer");
        }
        refused("symlink-empty", &[(EntryType::Symlink, "l", "", 0o777, b"")], "symlink without a target");
        let dir = TempDir::new("symlink-ok");
        unpack_into(
            &dir,
            &[
                (EntryType::Symlink, "a/b/l", "../../x", 0o777, b""),
                (EntryType::Symlink, "m", "./a/../y", 0o777, b""),
                (EntryType::Symlink, "n", "/../../../etc", 0o777, b""), // absolute: the container's
            ],
        )
        .unwrap();
        assert_eq!(fs::read_link(dir.root().join("a/b/l")).unwrap(), Path::new("../../x"));
    }

    #[test]
    fn nothing_is_written_through_a_planted_symlink() {
        let dir = TempDir::new("through");
        let outside = dir.0.join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("victim"), b"safe").unwrap();
        let target = outside.to_str().unwrap();
        // A file under the symlink: refused.
        let dir2 = TempDir::new("through2");
        let err = unpack(
            &layer(&[(EntryType::Symlink, "s", target, 0o777, b""), (EntryType::Regular, "s/pwned", "", 0o644, b"x")])
                [..],
            &dir2.root(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("its parent \"s\" is not a directory"), "{err}");
        assert!(!outside.join("pwned").exists());
        // A directory under it: refused too.
        let err =
            unpack(
                &layer(&[
                    (EntryType::Symlink, "s", target, 0o777, b""),
                    (EntryType::Directory, "s/d/", "", 0o755, b""),
                ])[..],
                &TempDir::new("through3").root(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
        assert!(!outside.join("d").exists());
        // A file replacing a symlink to a host file replaces the link, not the file.
        let victim = outside.join("victim");
        unpack_into(
            &dir,
            &[
                (EntryType::Symlink, "v", victim.to_str().unwrap(), 0o777, b""),
                (EntryType::Regular, "v", "", 0o644, b"layer"),
            ],
        )
        .unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"safe");
        assert_eq!(fs::read(dir.root().join("v")).unwrap(), b"layer");
        assert!(fs::symlink_metadata(dir.root().join("v")).unwrap().is_file());
    }

    #[test]
    fn hostile_hard_links_are_refused() {
        let file = (EntryType::Regular, "f", "", 0o644, &b"x"[..]);
        refused("hl-up", &[file, (EntryType::Link, "h", "../f", 0o644, b"")], "hard link target leaves the layer");
        refused("hl-missing", &[(EntryType::Link, "h", "nope", 0o644, b"")], "not in the layer");
        refused(
            "hl-dir",
            &[(EntryType::Directory, "d/", "", 0o755, b""), (EntryType::Link, "h", "d", 0o644, b"")],
            "to a directory",
        );
        refused("hl-root", &[(EntryType::Link, "h", "./", 0o644, b"")], "hard link to the layer root");
        refused("hl-empty", &[(EntryType::Link, "h", "", 0o644, b"")], "hard link without a target");
        let dir = TempDir::new("hl-through");
        let outside = dir.0.join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"s").unwrap();
        let err = unpack_into(
            &dir,
            &[
                (EntryType::Symlink, "s", outside.to_str().unwrap(), 0o777, b""),
                (EntryType::Link, "h", "s/secret", 0o644, b""),
            ],
        )
        .unwrap_err();
        assert!(err.to_string().contains("goes through a symlink"), "{err}");
        assert!(!dir.root().join("h").exists());
        assert_eq!(fs::metadata(outside.join("secret")).unwrap().nlink(), 1);
    }

    #[test]
    fn aufs_bookkeeping_whiteouts_are_skipped() {
        let dir = TempDir::new("aufs");
        unpack_into(
            &dir,
            &[
                (EntryType::Directory, ".wh..wh.plnk/", "", 0o700, b""),
                (EntryType::Regular, "a/.wh..wh.aufs", "", 0o600, b""),
                (EntryType::Regular, "keep", "", 0o644, b"k"),
            ],
        )
        .unwrap();
        let names: Vec<_> = fs::read_dir(dir.root()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["keep"]);
    }

    #[test]
    fn check_symlink_depth() {
        let ok = |rel: &str, target: &str| check_symlink(Path::new(rel), Path::new(target)).is_ok();
        assert!(ok("l", "x"));
        assert!(ok("l", "/abs/../../.."));
        assert!(ok("a/l", ".."));
        assert!(ok("a/b/l", "../.."));
        assert!(ok("a/b/l", "./../x/../../y"));
        assert!(!ok("l", ".."));
        assert!(!ok("a/l", "../.."));
        assert!(!ok("a/b/l", "x/../../../.."));
        assert!(!ok("l", ""));
        // A climb that comes back down still went above the root on the way.
        assert!(!ok("l", "../l"));
    }

    #[test]
    fn numeric_header_fields() {
        let bad = || Err(io::Error::other("bad"));
        assert_eq!(numeric(b"0000644\0", Ok(420)).unwrap(), 420);
        assert_eq!(numeric(&[0; 8], bad()).unwrap(), 0);
        assert_eq!(numeric(b"        ", bad()).unwrap(), 0);
        assert_eq!(numeric(b"", bad()).unwrap(), 0);
        assert!(numeric(b"12x4", bad()).is_err());
    }
}
