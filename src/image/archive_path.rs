//! Normalising paths that come from archives and layers (untrusted input).

use std::path::{Component, Path, PathBuf};

/// `path` relative to its root, lexically normalised; None for the root itself.
/// `..` pops a component when `resolve_up` is set (archive symlinks do that), and is
/// refused otherwise; climbing above the root is always refused (`Err`).
pub fn normalize(path: &Path, resolve_up: bool) -> Result<Option<PathBuf>, ()> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir if resolve_up && out.pop() => {}
            Component::ParentDir | Component::Prefix(_) => return Err(()),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}
