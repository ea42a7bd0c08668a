//! The rules dockling needs, by what each one does. This is the one list of the network's
//! semantics; the drivers only say how to write each rule in their syntax, so the
//! iptables and nftables drivers cannot drift apart.

use std::net::Ipv4Addr;

use crate::network::ipam::Subnet;
use crate::types::PortRule;

/// A bridge network: its subnet and the bridge's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub subnet: Subnet,
    pub bridge: String,
}

/// A rule, as what it does. Where a rule sits (which hook, which chain, the jump that
/// reaches it) is the driver's business: each driver has one place per [`Stage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Containers reach the world with the host's address.
    MasqueradeEgress { subnet: Subnet, bridge: String },
    /// A container reaching a published port of the host gets its replies through the host.
    MasqueradeHairpin { subnet: Subnet, bridge: String },
    /// The host's `curl 127.0.0.1:PORT` to a published port: replies to 127.0.0.1 cannot
    /// come back from a container, so the host's bridge address stands in.
    MasqueradeLocalhost { bridge: String },
    /// Replies to the containers' own connections may come in.
    AcceptReplies { bridge: String },
    /// Containers may send anywhere.
    AcceptFromBridge { bridge: String },
    /// Published (DNATed) traffic may come in.
    AcceptPublished { bridge: String },
    /// Nothing else from other interfaces into the bridge (as Docker 28): a neighbour that
    /// routes the subnet via this host reaches no unpublished port. Last in its stage,
    /// after [`Rule::AcceptFromBridge`], so container to container still passes when
    /// br_netfilter sends bridged frames through FORWARD.
    DropUnpublished { bridge: String },
    /// Nothing from the bridge to 127.0.0.0/8. `route_localnet=1` on the bridge (for the
    /// host's `curl 127.0.0.1:PORT` to a published port) also lets a container (NET_RAW is
    /// a default capability) send a hand-made frame to the gateway's MAC addressed to
    /// 127.0.0.1, and a service the host binds to loopback would answer (CVE-2020-8558).
    /// Dropped before conntrack and NAT see the packet ([`Stage::Raw`]): the replies to the
    /// host's own `curl 127.0.0.1:PORT` arrive addressed to the bridge's address (the
    /// localhost masquerade) and become 127.0.0.1 only later, so this stateless drop never
    /// meets them; a filter-table form would need conntrack exceptions, and would let the
    /// packet make a conntrack entry and be DNATed before it is judged.
    DropLoopbackFromBridge { bridge: String },
    /// A published port: traffic for a host address and port goes to the container.
    Publish(PortRule),
}

/// Where a rule is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before connection tracking and NAT, as the packet came in.
    Raw,
    /// Destination NAT for traffic to the host's own addresses (from outside and from
    /// the host itself).
    Dnat,
    /// Source NAT on the way out.
    Postrouting,
    /// Forwarding decisions (filter).
    Forward,
}

impl Rule {
    pub fn stage(&self) -> Stage {
        match self {
            Rule::MasqueradeEgress { .. } | Rule::MasqueradeHairpin { .. } | Rule::MasqueradeLocalhost { .. } => {
                Stage::Postrouting
            }
            Rule::AcceptReplies { .. }
            | Rule::AcceptFromBridge { .. }
            | Rule::AcceptPublished { .. }
            | Rule::DropUnpublished { .. } => Stage::Forward,
            Rule::DropLoopbackFromBridge { .. } => Stage::Raw,
            Rule::Publish(_) => Stage::Dnat,
        }
    }
}

/// The network's shared rules, in order, once per network.
pub fn shared(net: &Network) -> Vec<Rule> {
    let (subnet, bridge) = (net.subnet, net.bridge.clone());
    vec![
        Rule::DropLoopbackFromBridge { bridge: bridge.clone() },
        Rule::MasqueradeEgress { subnet, bridge: bridge.clone() },
        Rule::MasqueradeHairpin { subnet, bridge: bridge.clone() },
        Rule::MasqueradeLocalhost { bridge: bridge.clone() },
        Rule::AcceptReplies { bridge: bridge.clone() },
        Rule::AcceptFromBridge { bridge: bridge.clone() },
        Rule::AcceptPublished { bridge: bridge.clone() },
        Rule::DropUnpublished { bridge },
    ]
}

/// 127.0.0.0/8 never arrives legitimately on an interface (the host's own traffic to it
/// comes through OUTPUT). DNATed in PREROUTING it would slip past the kernel's martian
/// check, which runs after PREROUTING, and a neighbour's hand-made frame would reach a
/// port published on 127.0.0.1: the DNAT hook for traffic from outside excludes it.
pub const LOOPBACK: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 0, 0, 0), 8);

/// The tag on every rule a container owns: how its rules are found again.
pub fn owner_tag(owner: &str) -> String {
    format!("dockling:{owner}")
}

/// The nftables comment of one published port: the owner's tag and the port, so
/// `nft list ruleset` tells the ports apart and `inspect --rules` finds each one.
pub fn port_comment(p: &PortRule) -> String {
    format!("{} {}:{}/{}", owner_tag(&p.owner), p.port.host_ip, p.port.host_port, p.port.proto.as_str())
}

/// A host address a port is bound to, or None for every address.
pub fn bound_address(p: &PortRule) -> Option<Ipv4Addr> {
    (!p.port.host_ip.is_unspecified()).then_some(p.port.host_ip)
}
