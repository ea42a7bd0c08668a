//! The per-container cable: a veth pair, host end on the bridge, peer moved into the
//! container's netns and configured there as `eth0` with its address and default route.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context, Result};
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::netlink;
use crate::explain;

/// Host end `veth<7 hex>`, temporary peer `ceth<7 hex>` (renamed `eth0` inside).
pub fn names(id: &str) -> (String, String) {
    (format!("veth{}", &id[..7]), format!("ceth{}", &id[..7]))
}

/// Docker-style MAC derived from the address: 02:42:a.b.c.d.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Host side: create the pair, plug one end into the bridge, send the other into `pid`'s netns.
pub async fn create(handle: &Handle, host: &str, peer: &str, bridge: u32, bridge_name: &str, pid: i32, netns_name: &str) -> Result<()> {
    explain::step(&format!("ip link add {host} type veth peer name {peer}"), "a virtual cable with two ends");
    handle.link().add(LinkVeth::new(host, peer).build()).execute().await.context("creating the veth pair")?;
    let host_idx = netlink::link_by_name(handle, host).await?.context("host veth missing")?.header.index;
    let peer_idx = netlink::link_by_name(handle, peer).await?.context("peer veth missing")?.header.index;
    explain::step(&format!("ip link set {host} master {bridge_name} up"), "plug the host end into the bridge");
    handle
        .link()
        .set(LinkUnspec::new_with_index(host_idx).controller(bridge).up().build())
        .execute()
        .await
        .context("attaching the veth to the bridge")?;
    explain::step(&format!("ip link set {peer} netns {netns_name}"), "the other end goes into the container");
    handle
        .link()
        .set(LinkUnspec::new_with_index(peer_idx).setns_by_pid(pid as u32).build())
        .execute()
        .await
        .context("moving the veth into the container")?;
    Ok(())
}

/// Inside the container's netns: rename, address, up, default route.
pub async fn configure_inside(handle: Handle, peer: String, ip: Ipv4Addr, prefix: u8, gateway: Ipv4Addr, ns: String) -> Result<()> {
    let idx = netlink::link_by_name(&handle, &peer).await?.context("veth missing inside the container")?.header.index;
    let mac = mac_for(ip);
    explain::step(
        &format!("ip netns exec {ns} ip link set {peer} name eth0 address {}", mac_string(mac)),
        "the container sees an ordinary eth0",
    );
    handle
        .link()
        .set(LinkUnspec::new_with_index(idx).name("eth0".into()).address(mac.to_vec()).build())
        .execute()
        .await
        .context("renaming the veth to eth0")?;
    explain::step(&format!("ip netns exec {ns} ip addr add {ip}/{prefix} dev eth0"), "the container's address on the bridge's subnet");
    handle.address().add(idx, IpAddr::V4(ip), prefix).execute().await.context("adding the container address")?;
    explain::step(&format!("ip netns exec {ns} ip link set eth0 up"), "switch the container's end on");
    handle.link().set(LinkUnspec::new_with_index(idx).up().build()).execute().await.context("bringing eth0 up")?;
    explain::step(&format!("ip netns exec {ns} ip route add default via {gateway}"), "everything not local goes to the bridge");
    handle
        .route()
        .add(RouteMessageBuilder::<Ipv4Addr>::new().gateway(gateway).build())
        .execute()
        .await
        .context("adding the default route")?;
    Ok(())
}
