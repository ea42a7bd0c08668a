//! The host side that all containers share: the `dockling0` bridge with the gateway
//! address, IP forwarding and route_localnet.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context, Result};
use futures::TryStreamExt;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, RouteMessageBuilder};

use super::ipam::Subnet;
use super::netlink;
use crate::{error, explain};

pub const BRIDGE: &str = "dockling0";

/// Creates the bridge if it is missing; returns its index.
pub async fn ensure(handle: &Handle, subnet: Subnet) -> Result<u32> {
    if let Some(link) = netlink::link_by_name(handle, BRIDGE).await? {
        return Ok(link.header.index);
    }
    explain::step(&format!("ip link add {BRIDGE} type bridge"), "a virtual switch for the containers");
    handle.link().add(LinkBridge::new(BRIDGE).build()).execute().await.context("creating the bridge")?;
    let index = netlink::link_by_name(handle, BRIDGE)
        .await?
        .context("the bridge vanished right after it was created")?
        .header
        .index;
    let gw = subnet.gateway();
    explain::step(&format!("ip addr add {gw}/{} dev {BRIDGE}", subnet.prefix), "the bridge is the containers' gateway");
    handle.address().add(index, IpAddr::V4(gw), subnet.prefix).execute().await.context("adding the bridge address")?;
    explain::step(&format!("ip link set {BRIDGE} up"), "switch it on");
    handle
        .link()
        .set(rtnetlink::LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .context("bringing the bridge up")?;
    Ok(index)
}

/// Whether the bridge exists (one ioctl; no netlink needed).
pub fn exists() -> bool {
    index().is_some()
}

/// The bridge's interface index, if it exists.
pub fn index() -> Option<u32> {
    if_index(BRIDGE)
}

/// A link's index by name in this netns (`if_nametoindex`, one ioctl).
pub fn if_index(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated interface name.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (idx != 0).then_some(idx)
}

/// Refuses a subnet that overlaps a route the host already has (other than the default).
pub async fn refuse_overlap(handle: &Handle, subnet: Subnet) -> Result<()> {
    let mut routes = handle.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
    while let Some(route) = routes.try_next().await.context("listing routes")? {
        let prefix = route.header.destination_prefix_length;
        if prefix == 0 || route.header.table != 254 {
            continue;
        }
        let dest = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
            _ => None,
        });
        if let Some(dest) = dest {
            if subnet.overlaps(dest, prefix) {
                return Err(error::user(format!(
                    "subnet {subnet} overlaps the host route {dest}/{prefix}; choose another with --subnet"
                )));
            }
        }
    }
    Ok(())
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// The current `net.ipv4.ip_forward` (recorded before we change it).
pub fn ip_forward() -> String {
    std::fs::read_to_string(IP_FORWARD).map(|v| v.trim().to_string()).unwrap_or_else(|_| "0".into())
}

/// Puts `net.ipv4.ip_forward` back as it was before dockling.
pub fn restore_ip_forward(before: &str) -> Result<()> {
    if ip_forward() == before {
        return Ok(());
    }
    explain::step(&format!("sysctl -w net.ipv4.ip_forward={before}"), "the host forwarded no packets before dockling");
    std::fs::write(IP_FORWARD, before).context("restoring net.ipv4.ip_forward")
}

/// Host sysctls the network needs (per network namespace).
pub fn sysctls() -> Result<()> {
    for (key, path) in [
        ("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward".to_string()),
        (
            &*format!("net.ipv4.conf.{BRIDGE}.route_localnet"),
            format!("/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet"),
        ),
    ] {
        if std::fs::read_to_string(&path).map(|v| v.trim() == "1").unwrap_or(false) {
            continue;
        }
        let why = if key.ends_with("forward") {
            "let the host route packets between the bridge and the world"
        } else {
            "let 127.0.0.1 traffic be DNATed to a container"
        };
        explain::step(&format!("sysctl -w {key}=1"), why);
        std::fs::write(&path, "1").with_context(|| format!("setting {key}"))?;
    }
    Ok(())
}
