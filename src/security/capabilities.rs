//! Linux capabilities with the caps crate: Docker's default 14, `--cap-add`, `--cap-drop`,
//! `--privileged`.

use std::str::FromStr;

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};

use crate::{error, explain};

/// Docker's default set.
pub const DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn parse(name: &str) -> Result<Capability> {
    let canonical = caps::to_canonical(name);
    Capability::from_str(&canonical).map_err(|_| error::user(format!("invalid capability: {name:?}")))
}

/// The final set, in Docker's order of operations: ALL in drop empties, ALL in add fills,
/// then single adds and drops.
pub fn resolve(add: &[String], drop: &[String], privileged: bool) -> Result<Vec<String>> {
    let mut set: CapsHashSet =
        if privileged { grantable() } else { DEFAULT.iter().map(|c| parse(c)).collect::<Result<_>>()? };
    let is_all = |s: &String| s.eq_ignore_ascii_case("all");
    if drop.iter().any(is_all) {
        set.clear();
    }
    if add.iter().any(is_all) {
        set = grantable();
    }
    for c in add.iter().filter(|c| !is_all(c)) {
        set.insert(parse(c)?);
    }
    for c in drop.iter().filter(|c| !is_all(c)) {
        set.remove(&parse(c)?);
    }
    let mut names: Vec<String> = set.iter().map(|c| c.to_string()).collect();
    names.sort();
    Ok(names)
}

/// "All" capabilities means all that we hold: root here may lack some (CAP_SYS_RESOURCE
/// on these machines), and asking for one we lack would make capset fail.
fn grantable() -> CapsHashSet {
    caps::read(None, CapSet::Permitted).unwrap_or_else(|_| caps::all())
}

fn to_set(names: &[String]) -> Result<CapsHashSet> {
    names.iter().map(|n| parse(n)).collect()
}

/// Drops every capability not kept from the bounding set (needs CAP_SETPCAP, so first).
pub fn drop_bounding(keep: &[String]) -> Result<()> {
    let keep = to_set(keep)?;
    let mut dropped: Vec<String> = caps::all().difference(&keep).map(|c| c.to_string().to_lowercase()).collect();
    dropped.sort();
    if !dropped.is_empty() {
        explain::approx(
            &format!("capsh --drop={}", dropped.join(",")),
            "the container keeps only Docker's default capabilities",
        );
    }
    for cap in caps::all().difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap).with_context(|| format!("dropping {cap} from the bounding set"))?;
    }
    Ok(())
}

/// Sets effective, permitted and inheritable to the kept set (root), or leaves them empty
/// after a switch to another user (as Docker does); clears ambient.
pub fn set_process(keep: &[String], switched_user: bool) -> Result<()> {
    let keep =
        if switched_user { CapsHashSet::new() } else { to_set(keep)?.intersection(&grantable()).copied().collect() };
    // Effective first: it must stay a subset of permitted at every step.
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        caps::set(None, set, &keep).with_context(|| format!("setting the {set:?} capabilities"))?;
    }
    caps::clear(None, CapSet::Ambient).context("clearing ambient capabilities")?;
    Ok(())
}
