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

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(path: &str, resolve_up: bool) -> Result<Option<String>, ()> {
        normalize(Path::new(path), resolve_up).map(|p| p.map(|p| p.to_str().unwrap().to_string()))
    }

    #[test]
    fn plain_paths_become_relative() {
        for up in [false, true] {
            assert_eq!(norm("a/b", up), Ok(Some("a/b".into())));
            assert_eq!(norm("/a/b", up), Ok(Some("a/b".into())));
            assert_eq!(norm("./a/./b/", up), Ok(Some("a/b".into())));
            assert_eq!(norm("a//b", up), Ok(Some("a/b".into())));
            assert_eq!(norm("a/..b/c..", up), Ok(Some("a/..b/c..".into())));
            for root in ["", ".", "./", "/", "//", "/./."] {
                assert_eq!(norm(root, up), Ok(None), "{root:?}");
            }
        }
    }

    #[test]
    fn dotdot_refused_unless_resolving() {
        for p in ["a/../b", "..", "../a", "a/b/../../c", "/a/.."] {
            assert_eq!(norm(p, false), Err(()), "{p}");
        }
        assert_eq!(norm("a/../b", true), Ok(Some("b".into())));
        assert_eq!(norm("a/b/../../c", true), Ok(Some("c".into())));
        assert_eq!(norm("/a/b/../c/./d/..", true), Ok(Some("a/c".into())));
        assert_eq!(norm("a/..", true), Ok(None));
    }

    #[test]
    fn climbing_above_the_root_is_always_refused() {
        for p in ["..", "../a", "/..", "/../etc", "a/../..", "a/../../etc", "./a/b/../../../x"] {
            assert_eq!(norm(p, true), Err(()), "{p}");
            assert_eq!(norm(p, false), Err(()), "{p}");
        }
    }
}
