//! `--user uid[:gid]` or `name[:group]`, looked up in the container's own /etc/passwd
//! and /etc/group, as Docker does.

use anyhow::{Context, Result};

use crate::error;

pub fn validate(spec: &str) -> Result<()> {
    let ok = !spec.is_empty()
        && spec.split(':').count() <= 2
        && spec.split(':').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
    if ok {
        Ok(())
    } else {
        Err(error::user(format!("invalid --user value {spec:?}: expected uid[:gid] or name[:group]")))
    }
}

fn lookup(file: &str, name: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .map(|l| l.split(':').map(String::from).collect::<Vec<_>>())
        .find(|f| f.first().map(String::as_str) == Some(name))
}

/// A user as the container's own /etc/passwd and /etc/group name it.
pub struct Resolved {
    pub uid: u32,
    pub gid: u32,
    /// Its home directory, when /etc/passwd knows it.
    pub home: Option<String>,
}

/// Looks `uid[:gid]` or `name[:group]` up in the container's files (we are inside it).
pub fn resolve(spec: &str) -> Result<Resolved> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry =
        match user.parse::<u32>() {
            Ok(uid) => std::fs::read_to_string("/etc/passwd").ok().and_then(|t| {
                t.lines()
                    .map(|l| l.split(':').map(String::from).collect::<Vec<_>>())
                    .find(|f| f.get(2).and_then(|u| u.parse().ok()) == Some(uid))
            }),
            Err(_) => Some(lookup("/etc/passwd", user).ok_or_else(|| {
                error::user(format!("unable to find user {user}: no matching entries in passwd file"))
            })?),
        };
    let uid: u32 = match user.parse() {
        Ok(u) => u,
        Err(_) => {
            entry.as_ref().and_then(|e| e.get(2)).and_then(|u| u.parse().ok()).context("bad uid in /etc/passwd")?
        }
    };
    let gid: u32 = match group {
        Some(g) => match g.parse() {
            Ok(n) => n,
            Err(_) => lookup("/etc/group", g)
                .and_then(|e| e.get(2).and_then(|n| n.parse().ok()))
                .ok_or_else(|| error::user(format!("unable to find group {g}: no matching entries in group file")))?,
        },
        None => entry.as_ref().and_then(|e| e.get(3)).and_then(|g| g.parse().ok()).unwrap_or(uid),
    };
    Ok(Resolved { uid, gid, home: entry.and_then(|e| e.get(5).cloned()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_user_specs() {
        for spec in ["0", "1000", "1000:1000", "nobody", "www-data:www-data", "user.name", "a_b:0", "postgres:999"] {
            assert!(validate(spec).is_ok(), "{spec}");
        }
    }

    #[test]
    fn invalid_user_specs() {
        for spec in [
            "",
            ":",
            "1000:",
            ":1000",
            "a:b:c",
            "a b",
            " root",
            "../etc",
            "a/b",
            "root;id",
            "$(id)",
            "é",
            "root\n",
            "root:wheel:",
        ] {
            let err = validate(spec).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid --user value {spec:?}: expected uid[:gid] or name[:group]"));
            assert_eq!(error::code_of(&err), error::RUNTIME_ERROR);
        }
    }

    #[test]
    fn lookup_finds_the_entry_by_its_first_field() {
        let path = std::env::temp_dir().join(format!("dockling-test-passwd-{}", std::process::id()));
        std::fs::write(
            &path,
            "root:x:0:0:root:/root:/bin/sh\nrooter:x:5:5::/home/rooter:/bin/sh\nalice:x:1000:100:Alice:/home/alice:/bin/sh\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let alice = lookup(file, "alice").unwrap();
        assert_eq!(alice, ["alice", "x", "1000", "100", "Alice", "/home/alice", "/bin/sh"]);
        assert_eq!(lookup(file, "root").unwrap()[5], "/root");
        assert_eq!(lookup(file, "rooter").unwrap()[2], "5");
        assert_eq!(lookup(file, "roo"), None);
        assert_eq!(lookup(file, "1000"), None); // a name, not a uid
        assert_eq!(lookup(file, ""), None);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(lookup(file, "alice"), None); // no file
    }
}
