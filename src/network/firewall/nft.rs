//! The nftables driver: one table, `ip dockling`, with the same semantics as the iptables
//! driver's chains. Every change is one nf_tables transaction sent over netlink
//! ([`crate::network::nftables`]), ~0.1 ms where an `nft` or `iptables` run costs 5-20 ms;
//! `--explain` prints the same change as the `nft` command a person would type.
//!
//! It coexists with iptables-nft and other nftables users: their tables are theirs, ours
//! is ours. A packet must pass every table's chains at a hook, so on a host whose
//! iptables FORWARD policy is DROP the same FORWARD accepts also go into iptables, in
//! dockling's own chain ([`iptables::forward_policy_drops`]).

use anyhow::{anyhow, Result};
use nlink::netlink::nftables::expr::RuleExpr;
use nlink::netlink::nftables::{
    BaseChain, Chain, ChainName, CtState, CtStatus, Family, FibFlags, FilterHook, NatHook, Policy, Priority,
    Rule as NftRule,
};
use nlink::netlink::types::route::RouteType;

use super::rules::{self, bound_address, port_comment, Network, Rule, Stage, LOOPBACK};
use super::{iptables, CountedRule, Firewall, Publishing};
use crate::explain;
use crate::network::nftables;
use crate::types::{PortRule, Proto};

pub const TABLE: &str = "dockling";
const FAMILY: Family = Family::Ip;
/// The regular chain holding the published ports, reached from `prerouting` and `output`.
const DNAT: &str = "published";

pub struct Nftables;

/// The base chains: (name, its `nft` declaration, how it is made).
fn base_chains() -> Vec<(&'static str, &'static str, BaseChain)> {
    let policy = |b: BaseChain| b.policy(Policy::Accept);
    vec![
        (
            "prerouting",
            "type nat hook prerouting priority dstnat; policy accept;",
            policy(BaseChain::nat(NatHook::Prerouting, Priority::DstNat)),
        ),
        (
            "output",
            "type nat hook output priority -100; policy accept;",
            policy(BaseChain::nat(NatHook::Output, Priority::DstNat)),
        ),
        (
            "postrouting",
            "type nat hook postrouting priority srcnat; policy accept;",
            policy(BaseChain::nat(NatHook::Postrouting, Priority::SrcNat)),
        ),
        (
            "forward",
            "type filter hook forward priority filter; policy accept;",
            policy(BaseChain::filter(FilterHook::Forward, Priority::Filter)),
        ),
        (
            "raw",
            "type filter hook prerouting priority raw; policy accept;",
            policy(BaseChain::filter(FilterHook::Prerouting, Priority::Raw)),
        ),
    ]
}

fn chain_of(stage: Stage) -> &'static str {
    match stage {
        Stage::Dnat => DNAT,
        Stage::Postrouting => "postrouting",
        Stage::Forward => "forward",
        Stage::Raw => "raw",
    }
}

fn named(chain: &str) -> Result<ChainName> {
    ChainName::new(chain).map_err(|e| anyhow!("nf_tables chain name {chain}: {e}"))
}

/// The rule in `nft` syntax and as nlink builds it, from the same values.
fn render(rule: &Rule) -> (String, NftRule) {
    let r = NftRule::new(TABLE, chain_of(rule.stage())).family(FAMILY);
    match rule {
        Rule::MasqueradeEgress { subnet, bridge } => (
            format!("ip saddr {subnet} oifname != \"{bridge}\" masquerade"),
            r.match_saddr_v4(subnet.base, subnet.prefix).match_oif_not(bridge).masquerade(),
        ),
        Rule::MasqueradeHairpin { subnet, bridge } => (
            format!("ip saddr {subnet} ip daddr {subnet} oifname \"{bridge}\" ct status dnat masquerade"),
            r.match_saddr_v4(subnet.base, subnet.prefix)
                .match_daddr_v4(subnet.base, subnet.prefix)
                .match_oif(bridge)
                .match_ct_status(CtStatus::DST_NAT)
                .masquerade(),
        ),
        Rule::MasqueradeLocalhost { bridge } => (
            format!("ip saddr 127.0.0.0/8 oifname \"{bridge}\" masquerade"),
            r.match_saddr_v4([127, 0, 0, 0].into(), 8).match_oif(bridge).masquerade(),
        ),
        Rule::AcceptReplies { bridge } => (
            format!("oifname \"{bridge}\" ct state established,related accept"),
            r.match_oif(bridge).match_ct_state(CtState::ESTABLISHED | CtState::RELATED).accept(),
        ),
        Rule::AcceptFromBridge { bridge } => (format!("iifname \"{bridge}\" accept"), r.match_iif(bridge).accept()),
        Rule::AcceptPublished { bridge } => (
            format!("oifname \"{bridge}\" ct status dnat accept"),
            r.match_oif(bridge).match_ct_status(CtStatus::DST_NAT).accept(),
        ),
        Rule::DropUnpublished { bridge } => (
            format!("iifname != \"{bridge}\" oifname \"{bridge}\" drop"),
            r.match_iif_not(bridge).match_oif(bridge).drop(),
        ),
        Rule::DropLoopbackFromBridge { bridge } => (
            format!("iifname \"{bridge}\" ip daddr 127.0.0.0/8 drop"),
            r.match_iif(bridge).match_daddr_v4(LOOPBACK.0, LOOPBACK.1).drop(),
        ),
        Rule::Publish(p) => {
            let mut text = String::new();
            let mut r = r;
            if let Some(a) = bound_address(p) {
                text += &format!("ip daddr {a} ");
                r = r.match_daddr_v4(a, 32);
            }
            let proto = p.port.proto.as_str();
            text += &format!(
                "{proto} dport {} counter dnat to {}:{} comment \"{}\"",
                p.port.host_port,
                p.container_ip,
                p.port.container_port,
                port_comment(p)
            );
            r = match p.port.proto {
                Proto::Tcp => r.match_tcp_dport(p.port.host_port),
                Proto::Udp => r.match_udp_dport(p.port.host_port),
            };
            (text, r.counter().dnat(p.container_ip, Some(p.port.container_port)).comment(&port_comment(p)))
        }
    }
}

/// `fib daddr type local jump dnat`: traffic for one of the host's own addresses may be
/// a published port (from outside in `prerouting`, never to 127.0.0.0/8 there; from the
/// host itself in `output`).
fn dispatch(chain: &str) -> Result<(String, NftRule)> {
    let mut rule = NftRule::new(TABLE, chain).family(FAMILY);
    let mut text = format!("add rule ip {TABLE} {chain} ");
    if chain == "prerouting" {
        rule = rule.match_daddr_v4_not(LOOPBACK.0, LOOPBACK.1);
        text += "ip daddr != 127.0.0.0/8 ";
    }
    let rule = rule.match_fib_type(FibFlags::DADDR, RouteType::Local).jump(named(DNAT)?);
    Ok((text + &format!("fib daddr type local jump {DNAT}"), rule))
}

fn add_rule_text(rule: &Rule) -> (String, NftRule) {
    let (text, r) = render(rule);
    (format!("add rule ip {TABLE} {} {text}", chain_of(rule.stage())), r)
}

fn script(commands: &[String]) -> String {
    format!("nft '{}'", commands.join("; "))
}

/// A rule of our table as the kernel lists it.
struct Listed {
    chain: String,
    handle: u64,
    comment: Option<String>,
    /// (packets, bytes), when the rule counts.
    counter: Option<(u64, u64)>,
}

/// The table's rules now.
fn listed() -> Result<Vec<Listed>> {
    nftables::rules_of(FAMILY, TABLE).map(|rules| {
        rules
            .into_iter()
            .map(|r| {
                let counter = r.expressions().into_iter().find_map(|e| match e {
                    RuleExpr::Counter { packets, bytes, .. } => Some((packets, bytes)),
                    _ => None,
                });
                Listed { chain: r.chain.clone(), handle: r.handle, comment: r.comment_text.clone(), counter }
            })
            .collect()
    })
}

/// Deleting the rules of `ports` that are in `listed`, as one change.
fn deletions(ports: &[PortRule], listed: Vec<Listed>) -> nftables::Change {
    let ours: Vec<String> = ports.iter().map(port_comment).collect();
    let mut d = nftables::Change::default();
    for r in listed.into_iter().filter(|r| r.chain == DNAT && r.comment.as_ref().is_some_and(|c| ours.contains(c))) {
        d.delete_rule(FAMILY, TABLE, DNAT, r.handle);
    }
    d
}

/// The rules that publish `ports`, as one change.
fn publication(ports: &[PortRule]) -> nftables::Change {
    let mut change = nftables::Change::default();
    for p in ports {
        let (text, rule) = add_rule_text(&Rule::Publish(p.clone()));
        change.add(text, move |tx| Ok(tx.add_rule(rule)));
    }
    change
}

impl Firewall for Nftables {
    fn setup_network(&self, net: &Network) -> Result<()> {
        let mut text = vec![format!("add table ip {TABLE}"), format!("add chain ip {TABLE} {DNAT}")];
        let mut chains =
            vec![Chain::new(TABLE, DNAT).map_err(|e| anyhow!("nf_tables chain {DNAT}: {e}"))?.family(FAMILY)];
        for (name, decl, base) in base_chains() {
            text.push(format!("add chain ip {TABLE} {name} {{ {decl} }}"));
            text.push(format!("flush chain ip {TABLE} {name}"));
            chains.push(
                Chain::new(TABLE, name).map_err(|e| anyhow!("nf_tables chain {name}: {e}"))?.family(FAMILY).base(base),
            );
        }
        let mut rules = Vec::new();
        for chain in ["prerouting", "output"] {
            let (t, r) = dispatch(chain)?;
            text.push(t);
            rules.push(r);
        }
        for rule in rules::shared(net) {
            let (t, r) = add_rule_text(&rule);
            text.push(t);
            rules.push(r);
        }
        explain::step(&script(&text), "dockling's own nftables table: its chains and the network's shared rules");
        if iptables::forward_policy_drops() {
            iptables::setup_forward(net)?;
        }
        let exists = nftables::table_exists(FAMILY, TABLE)?;
        nftables::commit(|mut tx| {
            if !exists {
                tx = tx.add_table(TABLE, FAMILY);
            }
            for chain in chains {
                tx = tx.update_chain(chain);
            }
            for (name, _, _) in base_chains() {
                tx = tx.flush_chain(TABLE, name, FAMILY);
            }
            for rule in rules {
                tx = tx.add_rule(rule);
            }
            Ok(tx)
        })
    }

    fn teardown_network(&self, net: &Network) -> Result<()> {
        iptables::teardown_if_any(net)?;
        if !nftables::table_exists(FAMILY, TABLE)? {
            return Ok(());
        }
        explain::step(&script(&[format!("delete table ip {TABLE}")]), "remove dockling's nftables table");
        nftables::commit(|tx| Ok(tx.del_table(TABLE, FAMILY)))
    }

    fn publish(&self, ports: &[PortRule]) -> Result<()> {
        let change = publication(ports);
        explain::step(&change.command(), "publish the ports: rewrite the destination to the container");
        change.commit()
    }

    fn publishes_in_a_process(&self) -> bool {
        false
    }

    /// One transaction with whatever else goes in with it (the port filter).
    fn publish_begin(&self, ports: &[PortRule]) -> Result<Publishing> {
        Ok(Publishing::Change(publication(ports)))
    }

    fn unpublish(&self, ports: &[PortRule]) -> Result<()> {
        if ports.is_empty() || !nftables::table_exists(FAMILY, TABLE)? {
            return Ok(());
        }
        let d = deletions(ports, listed()?);
        if d.is_empty() {
            return Ok(());
        }
        explain::step(&d.command(), "unpublish the ports");
        d.commit()
    }

    fn unpublish_deletions(&self, ports: &[PortRule]) -> Result<Option<nftables::Change>> {
        if ports.is_empty() {
            return Ok(Some(nftables::Change::default()));
        }
        // One dump; a missing table (or any other trouble) is left to `unpublish`.
        let Ok(listed) = listed() else { return Ok(None) };
        let d = deletions(ports, listed);
        Ok((d.len() == ports.len()).then_some(d))
    }

    fn commands(&self, ports: &[PortRule]) -> Vec<String> {
        ports.iter().map(|p| format!("nft {}", add_rule_text(&Rule::Publish(p.clone())).0)).collect()
    }

    fn counters(&self, ports: &[PortRule]) -> Result<Vec<CountedRule>> {
        if !nftables::table_exists(FAMILY, TABLE)? {
            return Ok(Vec::new());
        }
        let listed = listed()?;
        let mut out = Vec::new();
        for p in ports {
            let comment = port_comment(p);
            if let Some(rule) = listed.iter().find(|r| r.comment.as_deref() == Some(comment.as_str())) {
                let (packets, bytes) = rule.counter.unwrap_or((0, 0));
                let spec = render(&Rule::Publish(p.clone())).0;
                out.push(CountedRule { table: TABLE.to_string(), chain: DNAT.into(), spec, packets, bytes });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PortMapping;

    #[test]
    fn a_port_rule_in_nft_syntax() {
        let p = PortRule {
            owner: "0123456789ab".into(),
            container_ip: [10, 131, 0, 2].into(),
            port: PortMapping {
                host_ip: [127, 0, 0, 1].into(),
                host_port: 8080,
                container_port: 80,
                proto: Proto::Tcp,
            },
        };
        let (text, _) = add_rule_text(&Rule::Publish(p));
        assert_eq!(
            text,
            "add rule ip dockling published ip daddr 127.0.0.1 tcp dport 8080 counter dnat to 10.131.0.2:80 \
             comment \"dockling:0123456789ab 127.0.0.1:8080/tcp\""
        );
    }
}
