//! What a container's record keeps of its firewall rules: typed values (which driver made
//! them, and what each published port does), never a driver's syntax. The driver turns
//! them into iptables lines or nftables rules, for adding, removing and `--explain` alike.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::PortMapping;

/// The firewall driver that makes (and so must remove) a network's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallDriver {
    /// The `iptables` tools (iptables-restore batches), as Docker does.
    Iptables,
    /// nf_tables over netlink, one transaction per change, as netavark can.
    Nftables,
}

impl FirewallDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            FirewallDriver::Iptables => "iptables",
            FirewallDriver::Nftables => "nftables",
        }
    }
}

impl fmt::Display for FirewallDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FirewallDriver {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "iptables" => Ok(FirewallDriver::Iptables),
            "nftables" | "nft" => Ok(FirewallDriver::Nftables),
            _ => Err(format!("invalid firewall driver {s:?}: use iptables or nftables")),
        }
    }
}

/// One published port as a rule: traffic for `port.host_ip:port.host_port` goes to
/// `container_ip:port.container_port`. `owner` (the container's short id) tags the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRule {
    pub owner: String,
    pub container_ip: Ipv4Addr,
    pub port: PortMapping,
}

/// A container's rules and the driver that makes them, recorded before they are made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRecord {
    pub driver: FirewallDriver,
    pub ports: Vec<PortRule>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_names_round_trip() {
        for d in [FirewallDriver::Iptables, FirewallDriver::Nftables] {
            assert_eq!(d.as_str().parse::<FirewallDriver>(), Ok(d));
        }
        assert!("ebtables".parse::<FirewallDriver>().is_err());
    }
}
