//! No spoofing on the bridge: each container's host-side veth is tied to the container's
//! MAC and IPv4 address, as Kubernetes network plugins do (CNI's `macspoofchk`). A
//! container holds NET_RAW by default, so without this it could send frames with another
//! container's source address or answer ARP for the gateway.
//!
//! One bridge-family nftables table, `dockling`, hooked at bridge prerouting (before the
//! bridge learns addresses or delivers anything, to other containers or to the host):
//! a verdict map from the ingress port's name to that container's own chain. A container's
//! chain lets through only frames from its MAC that are IPv4 from its address or ARP
//! whose sender is its MAC and address; everything else from that port (IPv6 included:
//! containers get no IPv6 address) is dropped. Ports not in the map (none today) pass.
//!
//! Each change is one nf_tables transaction over netlink ([`super::nftables`]): a
//! container's chain and its map entry appear and disappear together, by name.
//! `--explain` prints the same change as the `nft` script a person would type.

use std::net::Ipv4Addr;

use anyhow::Result;
use nlink::netlink::nftables::connection::Transaction;
use nlink::netlink::nftables::expr::{Expr, LookupExpr};
use nlink::netlink::nftables::{
    BaseChain, Chain, ChainName, Family, FilterHook, MetaKey, PayloadBase, Policy, Priority, Register, Rule, Set,
    SetElement, SetKeyType, Verdict,
};

use super::nftables::{self, compare, load};
use crate::explain;
use crate::state::PortFilter;

/// The bridge-family table that holds every dockling port filter.
pub const TABLE: &str = "dockling";
/// The map from a host veth's name to its container's chain.
const MAP: &str = "ports";
/// The base chain, hooked at bridge prerouting.
const BASE: &str = "prerouting";
const FAMILY: Family = Family::Bridge;
/// nft's `ifname` type: 16 bytes, NUL-padded.
const IFNAME: SetKeyType = SetKeyType::Other { type_id: 41, len: 16 };

/// What [`super::plan`] records before the filter exists: the port and its chain's name.
pub fn plan(id: &str, host_veth: &str) -> PortFilter {
    PortFilter { veth: host_veth.to_string(), chain: format!("port-{}", &id[..12]) }
}

fn map() -> Set {
    Set::new(TABLE, MAP).family(FAMILY).key_type(IFNAME).vmap()
}

/// A veth's name as the map's key.
fn ifname_key(name: &str) -> SetElement {
    let mut key = name.as_bytes().to_vec();
    key.resize(16, 0);
    SetElement::new(key)
}

/// The base chain's one rule: `iifname vmap @ports`.
fn dispatch_rule() -> Rule {
    Rule::new(TABLE, BASE)
        .family(FAMILY)
        .expr(Expr::Meta { dreg: Register::R1, key: MetaKey::IifName })
        .expr(Expr::from(LookupExpr::new(MAP, Register::R1).dreg(Register::Verdict)))
}

/// The shared table, map and base chain; safe to run again (the base chain's one rule is
/// rewritten, the map's entries and the containers' chains are kept).
pub fn setup_shared() -> Result<()> {
    explain::step(
        &format!(
            "nft 'add table bridge {TABLE}; \
             add map bridge {TABLE} {MAP} {{ type ifname : verdict; }}; \
             add chain bridge {TABLE} {BASE} {{ type filter hook prerouting priority -300; policy accept; }}; \
             flush chain bridge {TABLE} {BASE}; \
             add rule bridge {TABLE} {BASE} iifname vmap @{MAP}'"
        ),
        "frames entering the bridge go through their port's filter",
    );
    let base = || {
        Chain::new(TABLE, BASE).map(|c| {
            c.family(FAMILY).base(BaseChain::filter(FilterHook::Prerouting, Priority::Raw).policy(Policy::Accept))
        })
    };
    let base = base().map_err(|e| anyhow::anyhow!("nf_tables chain {BASE}: {e}"))?;
    if nftables::table_exists(FAMILY, TABLE)? {
        nftables::commit(|tx| Ok(tx.update_chain(base).flush_chain(TABLE, BASE, FAMILY).add_rule(dispatch_rule())))
    } else {
        nftables::commit(|tx| {
            Ok(tx
                .add_table(TABLE, FAMILY)
                .raw(nftables::ifname_verdict_map(FAMILY, TABLE, MAP))
                .add_chain(base)
                .add_rule(dispatch_rule()))
        })
    }
}

/// Removes the shared table (with anything left in it); a missing table is fine.
pub fn teardown_shared() -> Result<()> {
    explain::step(&format!("nft 'delete table bridge {TABLE}'"), "remove dockling's port filters");
    match nftables::commit(|tx| Ok(tx.del_table(TABLE, FAMILY))) {
        Ok(()) => Ok(()),
        Err(_) if !nftables::table_exists(FAMILY, TABLE)? => Ok(()),
        Err(e) => Err(e),
    }
}

/// The nft commands that make a container's filter: its chain and its map entry.
pub fn add_script(f: &PortFilter, ip: Ipv4Addr, mac: &str) -> String {
    let (chain, veth) = (&f.chain, &f.veth);
    let rule = |r: &str| format!("add rule bridge {TABLE} {chain} {r}; ");
    let mut s = format!("add chain bridge {TABLE} {chain}; ");
    s += &rule(&format!("ether saddr != {mac} counter drop"));
    s += &rule(&format!(
        "ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp saddr ether {mac} arp saddr ip {ip} accept"
    ));
    s += &rule(&format!("ether type ip ip saddr {ip} accept"));
    s += &rule("counter drop");
    s += &format!("add element bridge {TABLE} {MAP} {{ \"{veth}\" : jump {chain} }}");
    s
}

/// The same change as [`add_script`], as one netlink transaction.
fn add_transaction(tx: Transaction, f: &PortFilter, ip: Ipv4Addr, mac: [u8; 6]) -> Result<Transaction> {
    let chain = || ChainName::new(f.chain.as_str()).map_err(|e| anyhow::anyhow!("chain name {}: {e}", f.chain));
    let rule = || Rule::new(TABLE, &f.chain).family(FAMILY);
    let (ll, nh) = (PayloadBase::LinkLayer, PayloadBase::Network);
    let ethertype = |t: u16| [load(ll, 12, 2), compare(true, &t.to_be_bytes())];
    let from_mac_drop = rule().expr(load(ll, 6, 6)).expr(compare(false, &mac)).counter().drop();
    let arp = rule()
        .expressions(ethertype(0x0806).to_vec())
        .expr(load(nh, 0, 2))
        .expr(compare(true, &1u16.to_be_bytes())) // htype: Ethernet
        .expr(load(nh, 2, 2))
        .expr(compare(true, &0x0800u16.to_be_bytes())) // ptype: IPv4
        .expr(load(nh, 4, 1))
        .expr(compare(true, &[6])) // hlen
        .expr(load(nh, 5, 1))
        .expr(compare(true, &[4])) // plen
        .expr(load(nh, 8, 6))
        .expr(compare(true, &mac)) // sender MAC
        .expr(load(nh, 14, 4))
        .expr(compare(true, &ip.octets())) // sender IPv4
        .accept();
    let ipv4 =
        rule().expressions(ethertype(0x0800).to_vec()).expr(load(nh, 12, 4)).expr(compare(true, &ip.octets())).accept();
    let new_chain =
        Chain::new(TABLE, f.chain.as_str()).map_err(|e| anyhow::anyhow!("chain {}: {e}", f.chain))?.family(FAMILY);
    Ok(tx
        .add_chain(new_chain)
        .add_rule(from_mac_drop)
        .add_rule(arp)
        .add_rule(ipv4)
        .add_rule(rule().counter().drop())
        .add_set_elements(&map(), &[ifname_key(&f.veth).verdict(Verdict::JumpTo(chain()?))]))
}

/// Makes the container's filter. Should the shared table be missing (removed by hand,
/// or made by a dockling before this one), it is made and the filter tried again.
pub fn add(f: &PortFilter, ip: Ipv4Addr, mac: [u8; 6], mac_text: &str) -> Result<()> {
    explain::step(
        &format!("nft '{}'", add_script(f, ip, mac_text)),
        "the container's port may send only from its own MAC and IPv4 address",
    );
    let attempt = || nftables::commit_adding(|tx| add_transaction(tx, f, ip, mac));
    match attempt() {
        Ok(()) => Ok(()),
        Err(_) if !nftables::table_exists(FAMILY, TABLE)? => {
            setup_shared()?;
            attempt()
        }
        Err(e) => Err(e),
    }
}

/// The deletions that remove these containers' filters, to commit alone or together
/// with other deletions (see [`nftables::Deletions`]): each map entry and its chain.
pub fn removal(filters: &[PortFilter]) -> nftables::Change {
    let mut d = nftables::Change::default();
    if filters.is_empty() {
        return d;
    }
    let names: Vec<String> = filters.iter().map(|f| format!("\"{}\"", f.veth)).collect();
    let keys: Vec<SetElement> = filters.iter().map(|f| ifname_key(&f.veth)).collect();
    d.delete(format!("delete element bridge {TABLE} {MAP} {{ {} }}", names.join(", ")), move |tx| {
        Ok(tx.del_set_elements(&map(), &keys))
    });
    for f in filters {
        d.delete_chain(FAMILY, TABLE, &f.chain);
    }
    d
}

/// The change that makes the container's filter ([`add_script`] as one step), to commit
/// alone or with the container's published ports.
pub fn addition(f: &PortFilter, ip: Ipv4Addr, mac: [u8; 6], mac_text: &str) -> nftables::Change {
    let mut c = nftables::Change::default();
    let f2 = f.clone();
    c.add(add_script(f, ip, mac_text), move |tx| add_transaction(tx, &f2, ip, mac));
    c
}

/// Removes several containers' filters in one transaction (`rm -f` of many: the kernel
/// takes ~10 ms to commit a removal, whatever its size). Fails if any is already gone;
/// the caller then removes each on its own with [`remove`].
pub fn remove_many(filters: &[PortFilter]) -> Result<()> {
    let d = removal(filters);
    if d.is_empty() {
        return Ok(());
    }
    explain::step(&d.command(), "remove the containers' port filters");
    d.commit()
}

/// Removes the container's filter; one already gone is fine (after a crash, or a second
/// teardown), as is a table `network prune` already removed.
pub fn remove(f: &PortFilter) -> Result<()> {
    let d = removal(std::slice::from_ref(f));
    explain::step(&d.command(), "remove the container's port filter");
    match d.commit() {
        Ok(()) => Ok(()),
        Err(_) if !nftables::table_exists(FAMILY, TABLE)? => Ok(()),
        // Dockling makes and removes chain and entry together: no chain, no entry.
        Err(_) if !nftables::chain_exists(FAMILY, TABLE, &f.chain)? => Ok(()),
        // The entry alone was removed by hand: the chain is all that is left.
        Err(e) => nftables::commit(|tx| Ok(tx.del_chain(TABLE, &f.chain, FAMILY))).map_err(|_| e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_names_and_script() {
        let f = plan("0123456789abcdef0123", "veth0123456");
        assert_eq!(f.chain, "port-0123456789ab");
        let s = add_script(&f, Ipv4Addr::new(10, 131, 0, 2), "02:42:0a:83:00:02");
        assert!(s.starts_with("add chain bridge dockling port-0123456789ab; "), "{s}");
        assert!(s.contains("ether saddr != 02:42:0a:83:00:02 counter drop"), "{s}");
        assert!(s.contains("arp saddr ether 02:42:0a:83:00:02 arp saddr ip 10.131.0.2 accept"), "{s}");
        assert!(s.contains("ether type ip ip saddr 10.131.0.2 accept"), "{s}");
        assert!(s.ends_with("add element bridge dockling ports { \"veth0123456\" : jump port-0123456789ab }"), "{s}");
        // The catch-all drop comes last among the chain's rules.
        let drop = s.rfind("counter drop").unwrap();
        assert!(drop > s.find("ip saddr").unwrap());
        assert!(!s.contains('\''), "the script is quoted with single quotes by --explain");
    }
}
