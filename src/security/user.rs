//! `--user uid[:gid]` or `name[:group]`, looked up in the container's own /etc/passwd
//! and /etc/group, as Docker does.

use anyhow::{Context, Result};
use nix::unistd::{Gid, Uid};

use crate::{error, explain};

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

/// Switches to the user; returns its home directory when /etc/passwd knows it.
pub fn switch(spec: &str) -> Result<Option<String>> {
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
    explain::approx(&format!("setpriv --reuid={uid} --regid={gid} --clear-groups"), "run the command as this user");
    nix::unistd::setgroups(&[Gid::from_raw(gid)]).context("setgroups")?;
    nix::unistd::setgid(Gid::from_raw(gid)).context("setgid")?;
    nix::unistd::setuid(Uid::from_raw(uid)).context("setuid")?;
    Ok(entry.and_then(|e| e.get(5).cloned()))
}
