//! `Snapshot`: what exists in a simulated host, for asserting that a rejected command created or changed nothing.

use std::collections::BTreeSet;

use super::SimHost;
use crate::common::text::{list_dirs, normalize_rules};

/// What exists in a simulated host at one moment (for "nothing was created" checks).
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Snapshot {
    pub containers: BTreeSet<String>,
    pub links: BTreeSet<String>,
    pub netns: BTreeSet<String>,
    pub rules: Vec<String>,
    /// Bridge-family nftables rules (the port filters), line by line.
    pub bridge_rules: Vec<String>,
    pub dirs: BTreeSet<String>,
}

impl Snapshot {
    /// Human-readable difference, empty if equal.
    pub fn diff(&self, after: &Snapshot) -> String {
        fn set_diff(name: &str, a: &BTreeSet<String>, b: &BTreeSet<String>, out: &mut String) {
            for x in b.difference(a) {
                out.push_str(&format!("{name}: added {x}\n"));
            }
            for x in a.difference(b) {
                out.push_str(&format!("{name}: removed {x}\n"));
            }
        }
        let mut s = String::new();
        set_diff("container", &self.containers, &after.containers, &mut s);
        set_diff("link", &self.links, &after.links, &mut s);
        set_diff("netns", &self.netns, &after.netns, &mut s);
        set_diff("dir", &self.dirs, &after.dirs, &mut s);
        let ra: BTreeSet<String> = self.rules.iter().cloned().collect();
        let rb: BTreeSet<String> = after.rules.iter().cloned().collect();
        set_diff("iptables", &ra, &rb, &mut s);
        let ba: BTreeSet<String> = self.bridge_rules.iter().cloned().collect();
        let bb: BTreeSet<String> = after.bridge_rules.iter().cloned().collect();
        set_diff("nft bridge", &ba, &bb, &mut s);
        if s.is_empty() && self.rules != after.rules {
            s.push_str("iptables: rule order changed\n");
        }
        s
    }
}

impl SimHost {
    /// Snapshot for "nothing was created" assertions.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            containers: self.ps_ids().into_iter().collect(),
            links: self.links(),
            netns: self.netns_names(),
            rules: normalize_rules(&self.firewall_rules()),
            bridge_rules: self.bridge_rules().lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect(),
            dirs: list_dirs(&self.tmp),
        }
    }

    /// Assert that `dockling ARGS` is rejected: exit 125, exactly one line on
    /// stderr, nothing on stdout, and nothing created or changed (containers,
    /// links, netns names, iptables rules, directories under the temp dir).
    pub fn assert_rejected(&self, args: &[&str], what: &str) {
        self.settle();
        let before = self.snapshot();
        let o = self.dockling(args);
        assert_eq!(o.code(), Some(125), "{what}: must exit 125\n{o}");
        assert_eq!(o.stderr_lines().len(), 1, "{what}: exactly one line on stderr\n{o}");
        assert!(o.stdout.trim().is_empty(), "{what}: nothing on stdout\n{o}");
        let after = self.snapshot();
        let d = before.diff(&after);
        assert!(d.is_empty(), "{what}: something was created or changed:\n{d}\n{o}");
    }
}
