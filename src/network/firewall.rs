//! The firewall driver behind one trait (as netavark does): dockling's own chains,
//! hooked from the built-in ones, so they are easy to list and to remove.
//!
//! Shared (once per network): egress MASQUERADE, the localhost and hairpin masquerade,
//! FORWARD accepts that survive a DROP policy, and the jumps into our DNAT chain; and,
//! so that published ports are secure by default, two drops: nothing from the bridge to
//! 127.0.0.0/8, and nothing from elsewhere into the bridge that is neither a published
//! port nor a reply. Every rule names our bridge or sits in our own chains.
//! Per container: one DNAT rule per published port, and nothing else.

use std::net::Ipv4Addr;

use anyhow::{anyhow, Result};

use super::ipam::Subnet;
use crate::explain;
use crate::types::PortMapping;

pub const NAT_POSTROUTING: &str = "DOCKLING-POSTROUTING";
pub const NAT_DNAT: &str = "DOCKLING-DNAT";
pub const FILTER_FORWARD: &str = "DOCKLING-FORWARD";
pub const RAW_PREROUTING: &str = "DOCKLING-PREROUTING";

/// Our chains: (table, chain).
const CHAINS: [(&str, &str); 4] =
    [("raw", RAW_PREROUTING), ("nat", NAT_POSTROUTING), ("nat", NAT_DNAT), ("filter", FILTER_FORWARD)];

/// Hooks an older dockling made, removed on sight (so `network prune` can delete the
/// chain they jump to): PREROUTING once sent 127.0.0.0/8 into the DNAT chain too.
const RETIRED: [(&str, &str, &str); 1] = [("nat", "PREROUTING", "-m addrtype --dst-type LOCAL -j DOCKLING-DNAT")];

/// One rule: (table, chain, rule spec without `-A CHAIN`).
pub type Rule = (String, String, String);

pub trait Firewall {
    /// Creates the shared chains and rules; safe to call again (nothing is added twice).
    fn setup_network(&self, subnet: Subnet, bridge: &str) -> Result<()>;
    /// The rules that publish one port of a container.
    fn port_rules(&self, ip: Ipv4Addr, port: &PortMapping, owner: &str) -> Vec<Rule>;
    fn add(&self, rule: &Rule) -> Result<()>;
    /// Removes a rule; a rule that is already gone is fine.
    fn remove(&self, rule: &Rule) -> Result<()>;
    /// Removes the shared chains and rules.
    fn teardown_network(&self, subnet: Subnet, bridge: &str) -> Result<()>;
}

/// The iptables driver (the `iptables` crate runs the iptables binary).
pub struct Iptables {
    ipt: iptables::IPTables,
}

impl Iptables {
    pub fn new() -> Iptables {
        // Built directly: `iptables::new` runs `iptables --version` each time, and every
        // iptables current enough for the nat rules here has -C and -w. Numeric, or every
        // listing waits on reverse DNS lookups.
        Iptables { ipt: iptables::IPTables { cmd: "iptables", has_check: true, has_wait: true, is_numeric: true } }
    }

    fn err(what: String) -> impl FnOnce(Box<dyn std::error::Error>) -> anyhow::Error {
        move |e| anyhow!("{what}: {e} (is the iptables package installed?)")
    }

    fn ensure_chain(&self, table: &str, chain: &str) -> Result<()> {
        if !self.ipt.chain_exists(table, chain).map_err(Self::err(format!("iptables -t {table} -L {chain}")))? {
            explain::step(&format!("iptables -t {table} -N {chain}"), "dockling's own chain, easy to list and remove");
            self.ipt.new_chain(table, chain).map_err(Self::err(format!("iptables -t {table} -N {chain}")))?;
        }
        Ok(())
    }

    /// Appends (or inserts first) unless the exact rule is there already.
    fn ensure_rule(&self, table: &str, chain: &str, rule: &str, first: bool, why: &str) -> Result<()> {
        let cmd = format!("iptables -t {table} {} {chain} {rule}", if first { "-I" } else { "-A" });
        if self.ipt.exists(table, chain, rule).map_err(Self::err(cmd.clone()))? {
            return Ok(());
        }
        explain::step(&cmd, why);
        let res = if first { self.ipt.insert(table, chain, rule, 1) } else { self.ipt.append(table, chain, rule) };
        res.map_err(Self::err(cmd))
    }

    /// Removes the hooks in [`RETIRED`] that are still there.
    fn remove_retired(&self) -> Result<()> {
        for (table, chain, rule) in RETIRED {
            while self.ipt.exists(table, chain, rule).unwrap_or(false) {
                let cmd = format!("iptables -t {table} -D {chain} {rule}");
                explain::step(&cmd, "a hook an older dockling made (it sent 127.0.0.0/8 to DNAT too)");
                self.ipt.delete(table, chain, rule).map_err(Self::err(cmd))?;
            }
        }
        Ok(())
    }

    fn shared_rules(subnet: Subnet, bridge: &str) -> Vec<(&'static str, &'static str, String, bool, &'static str)> {
        let s = subnet.to_string();
        vec![
            (
                "raw",
                "PREROUTING",
                format!("-j {RAW_PREROUTING}"),
                true,
                "our drops come first, before conntrack and NAT see the packet",
            ),
            // route_localnet=1 on the bridge (for the host's 127.0.0.1 -> container DNAT)
            // also lets a container (NET_RAW is a default capability) send a hand-made
            // frame to the gateway's MAC addressed to 127.0.0.1, and a service the host
            // binds to loopback answers (CVE-2020-8558). Dropped in raw, not in filter:
            // raw sees the packet as it came off the wire, before conntrack and NAT. The
            // replies to the host's own `curl 127.0.0.1:PORT` arrive addressed to the
            // bridge's address (the localhost MASQUERADE below) and become 127.0.0.1 only
            // later, in conntrack, so this stateless drop never meets them. The filter
            // form (INPUT, `! --ctstate RELATED,ESTABLISHED,DNAT`) needs those exceptions,
            // and lets the packet make a conntrack entry and be DNATed before it is judged.
            (
                "raw",
                RAW_PREROUTING,
                format!("-i {bridge} -d 127.0.0.0/8 -j DROP"),
                false,
                "no container reaches the host's 127.0.0.1 (route_localnet is on for the bridge)",
            ),
            (
                "nat",
                "POSTROUTING",
                format!("-j {NAT_POSTROUTING}"),
                false,
                "send all outgoing NAT decisions through our chain",
            ),
            (
                "nat",
                "PREROUTING",
                // 127.0.0.0/8 never arrives legitimately on an interface (the host's own
                // come through OUTPUT); DNATed here it would slip past the kernel's
                // martian check, which runs after PREROUTING, and reach a port
                // published on 127.0.0.1 from a neighbour's hand-made frame.
                format!("! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j {NAT_DNAT}"),
                false,
                "traffic from outside to a host address may be a published port (never to 127.0.0.0/8)",
            ),
            (
                "nat",
                "OUTPUT",
                format!("-m addrtype --dst-type LOCAL -j {NAT_DNAT}"),
                false,
                "so may traffic from the host itself, 127.0.0.1 included",
            ),
            (
                "nat",
                NAT_POSTROUTING,
                format!("-s {s} ! -o {bridge} -j MASQUERADE"),
                false,
                "containers reach the world with the host's address",
            ),
            (
                "nat",
                NAT_POSTROUTING,
                format!("-s {s} -d {s} -o {bridge} -m conntrack --ctstate DNAT -j MASQUERADE"),
                false,
                "hairpin: a container reaching a published port gets replies back through the host",
            ),
            (
                "nat",
                NAT_POSTROUTING,
                format!("-s 127.0.0.0/8 -o {bridge} -j MASQUERADE"),
                false,
                "localhost: replies to 127.0.0.1 must come back through the host",
            ),
            (
                "filter",
                "FORWARD",
                format!("-j {FILTER_FORWARD}"),
                true,
                "our accepts come first, even when the FORWARD policy is DROP",
            ),
            (
                "filter",
                FILTER_FORWARD,
                format!("-o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
                false,
                "replies to the containers' own connections",
            ),
            ("filter", FILTER_FORWARD, format!("-i {bridge} -j ACCEPT"), false, "containers may send anywhere"),
            (
                "filter",
                FILTER_FORWARD,
                format!("-o {bridge} -m conntrack --ctstate DNAT -j ACCEPT"),
                false,
                "published ports (DNATed) may come in",
            ),
            // Last, after `-i bridge` (so container to container still passes when
            // br_netfilter sends bridged frames through FORWARD): as Docker 28 does.
            (
                "filter",
                FILTER_FORWARD,
                format!("! -i {bridge} -o {bridge} -j DROP"),
                false,
                "nothing else from outside: a neighbour routing the subnet via this host reaches no unpublished port",
            ),
        ]
    }
}

impl Firewall for Iptables {
    fn setup_network(&self, subnet: Subnet, bridge: &str) -> Result<()> {
        for (table, chain) in CHAINS {
            self.ensure_chain(table, chain)?;
        }
        for (table, chain, rule, first, why) in Self::shared_rules(subnet, bridge) {
            self.ensure_rule(table, chain, &rule, first, why)?;
        }
        self.remove_retired()
    }

    fn port_rules(&self, ip: Ipv4Addr, p: &PortMapping, owner: &str) -> Vec<Rule> {
        let dest = if p.host_ip.is_unspecified() { String::new() } else { format!("-d {}/32 ", p.host_ip) };
        let spec = format!(
            "{dest}-p {proto} -m {proto} --dport {hp} -m comment --comment dockling:{owner} -j DNAT --to-destination {ip}:{cp}",
            proto = p.proto.as_str(),
            hp = p.host_port,
            cp = p.container_port,
        );
        vec![("nat".into(), NAT_DNAT.into(), spec)]
    }

    fn add(&self, (table, chain, rule): &Rule) -> Result<()> {
        let cmd = format!("iptables -t {table} -A {chain} {rule}");
        explain::step(&cmd, "publish the port: rewrite the destination to the container");
        self.ipt.append(table, chain, rule).map_err(Self::err(cmd))
    }

    fn remove(&self, (table, chain, rule): &Rule) -> Result<()> {
        let cmd = format!("iptables -t {table} -D {chain} {rule}");
        explain::step(&cmd, "unpublish the port");
        match self.ipt.delete(table, chain, rule) {
            Ok(()) => Ok(()),
            // Missing chain or rule: already gone (one exec instead of check-then-delete).
            Err(e) if is_missing(&e.to_string()) => Ok(()),
            Err(e) => Err(Self::err(cmd)(e)),
        }
    }

    fn teardown_network(&self, subnet: Subnet, bridge: &str) -> Result<()> {
        for (table, chain, rule, _, _) in Self::shared_rules(subnet, bridge) {
            if chain.starts_with("DOCKLING") {
                continue; // flushed with their chain below
            }
            while self.ipt.exists(table, chain, &rule).unwrap_or(false) {
                explain::step(&format!("iptables -t {table} -D {chain} {rule}"), "unhook dockling's chain");
                self.ipt
                    .delete(table, chain, &rule)
                    .map_err(Self::err(format!("iptables -t {table} -D {chain} {rule}")))?;
            }
        }
        self.remove_retired()?;
        for (table, chain) in CHAINS {
            if self.ipt.chain_exists(table, chain).unwrap_or(false) {
                explain::step(
                    &format!("iptables -t {table} -F {chain} && iptables -t {table} -X {chain}"),
                    "remove dockling's chain",
                );
                self.ipt.flush_chain(table, chain).map_err(Self::err(format!("iptables -t {table} -F {chain}")))?;
                self.ipt.delete_chain(table, chain).map_err(Self::err(format!("iptables -t {table} -X {chain}")))?;
            }
        }
        Ok(())
    }
}

/// iptables' ways of saying "no such rule or chain".
fn is_missing(message: &str) -> bool {
    ["does a matching rule exist", "No chain/target/match by that name", "Bad rule", "does not exist"]
        .iter()
        .any(|m| message.contains(m))
}

/// A rule a container owns, with its counters.
pub struct CountedRule {
    pub table: String,
    pub chain: String,
    pub spec: String,
    pub packets: u64,
    pub bytes: u64,
}

/// Every rule tagged `dockling:<owner>` in our chains, read live with `iptables -v -S`.
pub fn owned_rules_with_counters(owner: &str) -> Result<Vec<CountedRule>> {
    let ipt = Iptables::new().ipt;
    let tag = format!("dockling:{owner}");
    let mut out = Vec::new();
    for (table, chain) in [("nat", NAT_DNAT), ("nat", NAT_POSTROUTING), ("filter", FILTER_FORWARD)] {
        if !ipt.chain_exists(table, chain).unwrap_or(false) {
            continue;
        }
        let output = ipt
            .execute(table, &format!("-v -S {chain}"))
            .map_err(|e| anyhow!("iptables -t {table} -v -S {chain}: {e}"))?;
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if !line.contains(&tag) {
                continue;
            }
            // "-A CHAIN ... -c PACKETS BYTES ..." (counters appear as `-c p b`).
            let words: Vec<&str> = line.split_whitespace().collect();
            let (mut packets, mut bytes, mut spec) = (0, 0, Vec::new());
            let mut i = 2;
            while i < words.len() {
                if words[i] == "-c" && i + 2 < words.len() {
                    packets = words[i + 1].parse().unwrap_or(0);
                    bytes = words[i + 2].parse().unwrap_or(0);
                    i += 3;
                    continue;
                }
                spec.push(words[i]);
                i += 1;
            }
            out.push(CountedRule { table: table.into(), chain: chain.into(), spec: spec.join(" "), packets, bytes });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forward_drop_comes_after_every_accept_and_names_our_bridge() {
        let subnet = Subnet::parse("10.131.0.0/24").unwrap();
        let rules = Iptables::shared_rules(subnet, "dockling0");
        let forward: Vec<&str> = rules.iter().filter(|r| r.1 == FILTER_FORWARD).map(|r| r.2.as_str()).collect();
        assert_eq!(forward.last(), Some(&"! -i dockling0 -o dockling0 -j DROP"), "{forward:?}");
        assert!(forward.contains(&"-i dockling0 -j ACCEPT"), "container to container passes first: {forward:?}");
        let raw: Vec<_> = rules.iter().filter(|r| r.0 == "raw").collect();
        assert!(raw.iter().any(|r| r.1 == "PREROUTING" && r.3), "raw hook inserted first: {raw:?}");
        assert!(raw.iter().any(|r| r.2 == "-i dockling0 -d 127.0.0.0/8 -j DROP"), "{raw:?}");
        // Every drop is scoped to our bridge.
        assert!(rules.iter().filter(|r| r.2.ends_with("DROP")).all(|r| r.2.contains("-i dockling0")));
    }
}
