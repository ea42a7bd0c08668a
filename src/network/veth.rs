//! The per-container cable: a veth pair, host end on the bridge, peer moved into the
//! container's netns as `eth0` (init configures it: [`super::inside`]).

use std::net::Ipv4Addr;

use anyhow::{Context, Result};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkUnspec, LinkVeth};

use super::netlink;
use crate::explain;

/// Host end of a container's veth: `veth` + 7 hex characters of its id.
pub fn host_name(id: &str) -> String {
    format!("veth{}", &id[..7])
}

/// Docker-style MAC derived from the address: 02:42:a.b.c.d.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Host side: create the pair with its peer born inside `pid`'s netns as `eth0` (no move,
/// no rename: both are slow in the kernel), and plug the host end into the bridge.
pub async fn create(
    handle: &Handle,
    host: &str,
    bridge: u32,
    bridge_name: &str,
    pid: i32,
    netns_name: &str,
    mac: [u8; 6],
) -> Result<()> {
    explain::step(
        &format!("ip link add {host} type veth peer name eth0 netns {netns_name} address {}", mac_string(mac)),
        "a virtual cable: one end on the host, the other is the container's eth0",
    );
    let peer = LinkUnspec::new_with_name("eth0").address(mac.to_vec()).setns_by_pid(pid as u32).build();
    let veth = rtnetlink::LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host.to_string())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    handle.link().add(veth).execute().await.context("creating the veth pair")?;
    let host_idx = netlink::link_by_name(handle, host).await?.context("host veth missing")?.header.index;
    explain::step(&format!("ip link set {host} master {bridge_name} up"), "plug the host end into the bridge");
    handle
        .link()
        .set(LinkUnspec::new_with_index(host_idx).controller(bridge).up().build())
        .execute()
        .await
        .context("attaching the veth to the bridge")?;
    Ok(())
}
