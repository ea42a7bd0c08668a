//! Linux capabilities with the caps crate: Docker's default 14, `--cap-add`, `--cap-drop`,
//! `--privileged`.

use std::str::FromStr;

use anyhow::Result;
use caps::{CapSet, Capability, CapsHashSet};

use crate::error;

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

/// The process's own sets (effective, permitted, inheritable): the kept capabilities we
/// can grant for root; none after a switch to another user (as Docker).
pub fn process_sets(keep: &[String], switched_user: bool) -> Result<Vec<String>> {
    if switched_user {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = to_set(keep)?.intersection(&grantable()).map(|c| c.to_string()).collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut out = v(names);
        out.sort();
        out
    }

    /// What "all" means for this test process (everything for root, little or nothing
    /// for an ordinary user), as the sorted names resolve() returns.
    fn all_grantable() -> Vec<String> {
        let mut names: Vec<String> = grantable().iter().map(|c| c.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn default_set_is_dockers() {
        assert_eq!(resolve(&[], &[], false).unwrap(), sorted(&DEFAULT));
        assert_eq!(resolve(&[], &[], false).unwrap().len(), 14);
    }

    #[test]
    fn add_and_drop_with_or_without_prefix_in_any_case() {
        let mut want = sorted(&DEFAULT);
        want.push("CAP_NET_ADMIN".into());
        want.push("CAP_SYS_PTRACE".into());
        want.retain(|c| c != "CAP_NET_RAW" && c != "CAP_MKNOD");
        want.sort();
        let got = resolve(&v(&["NET_ADMIN", "cap_sys_ptrace"]), &v(&["CAP_NET_RAW", "mknod"]), false).unwrap();
        assert_eq!(got, want);
        // Adding one already there and dropping one not there change nothing.
        assert_eq!(resolve(&v(&["CHOWN"]), &v(&["SYS_ADMIN"]), false).unwrap(), sorted(&DEFAULT));
        // Drops come after adds: adding and dropping the same one leaves it out.
        let got = resolve(&v(&["SYS_ADMIN"]), &v(&["sys_admin"]), false).unwrap();
        assert_eq!(got, sorted(&DEFAULT));
    }

    #[test]
    fn all() {
        assert_eq!(resolve(&[], &v(&["ALL"]), false).unwrap(), Vec::<String>::new());
        assert_eq!(resolve(&v(&["NET_ADMIN"]), &v(&["all"]), false).unwrap(), ["CAP_NET_ADMIN"]);
        assert_eq!(resolve(&v(&["CHOWN", "KILL"]), &v(&["All"]), false).unwrap(), ["CAP_CHOWN", "CAP_KILL"]);
        assert_eq!(resolve(&v(&["all"]), &[], false).unwrap(), all_grantable());
        let mut want = all_grantable();
        want.retain(|c| c != "CAP_SYS_ADMIN");
        assert_eq!(resolve(&v(&["ALL"]), &v(&["SYS_ADMIN"]), false).unwrap(), want);
        // ALL in add wins over ALL in drop (Docker's order).
        assert_eq!(resolve(&v(&["ALL"]), &v(&["ALL"]), false).unwrap(), all_grantable());
    }

    #[test]
    fn privileged() {
        assert_eq!(resolve(&[], &[], true).unwrap(), all_grantable());
        assert_eq!(resolve(&[], &v(&["ALL"]), true).unwrap(), Vec::<String>::new());
        let mut want = all_grantable();
        want.retain(|c| c != "CAP_NET_RAW");
        assert_eq!(resolve(&[], &v(&["NET_RAW"]), true).unwrap(), want);
    }

    #[test]
    fn unknown_names_are_user_errors() {
        for (add, drop) in
            [(v(&["NOPE"]), vec![]), (vec![], v(&["CAP_NOPE"])), (v(&[""]), vec![]), (v(&["CAP_"]), vec![])]
        {
            let err = resolve(&add, &drop, false).unwrap_err();
            assert!(err.to_string().starts_with("invalid capability: "), "{err}");
            assert_eq!(error::code_of(&err), error::RUNTIME_ERROR);
        }
        assert_eq!(resolve(&v(&["NOPE"]), &[], true).unwrap_err().to_string(), "invalid capability: \"NOPE\"");
        // An unknown name is refused even where ALL makes it moot.
        assert!(resolve(&v(&["ALL", "BOGUS"]), &[], false).is_err());
    }

    #[test]
    fn to_set_parses_names() {
        let set = to_set(&v(&["chown", "CAP_KILL"])).unwrap();
        assert_eq!(set, [Capability::CAP_CHOWN, Capability::CAP_KILL].into_iter().collect());
        assert!(to_set(&v(&["chown", "what"])).is_err());
    }
}
