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
//! Each change is one `nft` run, one netfilter transaction: a container's chain and its
//! map entry appear and disappear together, by name.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{anyhow, Context, Result};

use crate::explain;
use crate::state::PortFilter;

/// The bridge-family table that holds every dockling port filter.
pub const TABLE: &str = "dockling";
/// The map from a host veth's name to its container's chain.
const MAP: &str = "ports";
/// The base chain, hooked at bridge prerouting.
const BASE: &str = "prerouting";

/// What [`super::plan`] records before the filter exists: the port and its chain's name.
pub fn plan(id: &str, host_veth: &str) -> PortFilter {
    PortFilter { veth: host_veth.to_string(), chain: format!("port-{}", &id[..12]) }
}

/// The shared table, map and base chain; safe to run again (the base chain's one rule is
/// rewritten, the map's entries and the containers' chains are kept).
pub fn setup_shared() -> Result<()> {
    let script = format!(
        "add table bridge {TABLE}; \
         add map bridge {TABLE} {MAP} {{ type ifname : verdict; }}; \
         add chain bridge {TABLE} {BASE} {{ type filter hook prerouting priority -300; policy accept; }}; \
         flush chain bridge {TABLE} {BASE}; \
         add rule bridge {TABLE} {BASE} iifname vmap @{MAP}"
    );
    nft(&script, "frames entering the bridge go through their port's filter")
}

/// Removes the shared table (with anything left in it); a missing table is fine.
pub fn teardown_shared() -> Result<()> {
    match nft(&format!("delete table bridge {TABLE}"), "remove dockling's port filters") {
        Ok(()) => Ok(()),
        Err(_) if !exists(&format!("table bridge {TABLE}")) => Ok(()),
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

/// Makes the container's filter. Should the shared table be missing (removed by hand,
/// or made by a dockling before this one), it is made and the filter tried again.
pub fn add(f: &PortFilter, ip: Ipv4Addr, mac: &str) -> Result<()> {
    let script = add_script(f, ip, mac);
    let why = "the container's port may send only from its own MAC and IPv4 address";
    match nft(&script, why) {
        Ok(()) => Ok(()),
        Err(_) if !exists(&format!("table bridge {TABLE}")) => {
            setup_shared()?;
            nft(&script, why)
        }
        Err(e) => Err(e),
    }
}

/// Removes the container's filter; one already gone is fine (after a crash, or a second
/// teardown), as is a table `network prune` already removed.
pub fn remove(f: &PortFilter) -> Result<()> {
    let script =
        format!("delete element bridge {TABLE} {MAP} {{ \"{}\" }}; delete chain bridge {TABLE} {}", f.veth, f.chain);
    let chain = format!("chain bridge {TABLE} {}", f.chain);
    match nft(&script, "remove the container's port filter") {
        Ok(()) => Ok(()),
        // Dockling makes and removes chain and entry together: no chain, no entry.
        Err(_) if !exists(&chain) => Ok(()),
        // The entry alone was removed by hand: the chain is all that is left.
        Err(e) => nft(&format!("delete {chain}"), "remove the container's port filter").map_err(|_| e),
    }
}

/// `nft list OBJECT` succeeds (used only after a change failed, to tell "already so").
fn exists(object: &str) -> bool {
    let mut args = vec!["list"];
    args.extend(object.split(' '));
    Command::new("nft")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs `nft 'SCRIPT'`: the whole script is one netfilter transaction.
fn nft(script: &str, why: &str) -> Result<()> {
    explain::step(&format!("nft '{script}'"), why);
    let out = Command::new("nft")
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .context("running nft (is the nftables package installed?)")?;
    if out.status.success() {
        return Ok(());
    }
    Err(anyhow!("nft '{script}': {}", String::from_utf8_lossy(&out.stderr).trim()))
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
