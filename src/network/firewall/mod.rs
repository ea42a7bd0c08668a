//! The firewall behind one trait, as netavark does: a network's shared rules (NAT for
//! egress, the accepts that survive a DROP policy) and each container's published
//! ports. Rules are typed values ([`rules::Rule`]); a driver alone turns them into its
//! syntax. Each change is one batch: one `iptables-restore` run, or one nf_tables
//! transaction, so a container's rules appear and disappear together.
//!
//! The driver is chosen in one place, [`choose`]: `--firewall-driver` or
//! `DOCKLING_FIREWALL_DRIVER`, else iptables as Docker does, else nftables when the
//! iptables tools cannot work here. The network state and each container's record keep
//! the driver that made their rules, so the same driver removes them.

mod iptables;
mod nft;
pub mod rules;

use anyhow::Result;

use crate::network::nftables::Change;
use crate::types::{FirewallDriver, PortRule};
pub use rules::Network;

/// A rule a container owns, with its live counters (`inspect --rules`).
pub struct CountedRule {
    pub table: String,
    pub chain: String,
    pub spec: String,
    pub packets: u64,
    pub bytes: u64,
}

/// A container's ports being published ([`Firewall::publish_begin`]).
pub enum Publishing {
    /// To commit, in one nf_tables transaction with the container's other changes.
    Change(Change),
    /// Already running in a process of its own (`iptables-restore`): wait for its word.
    Running(iptables::Pending),
}

pub trait Firewall {
    /// Makes the shared chains and rules; safe to call again (nothing is added twice,
    /// and the published ports already there are kept).
    fn setup_network(&self, net: &Network) -> Result<()>;
    /// Removes the shared chains and rules, and anything left in them.
    fn teardown_network(&self, net: &Network) -> Result<()>;
    /// Publishes a container's ports, all in one batch.
    fn publish(&self, ports: &[PortRule]) -> Result<()>;
    /// Starts publishing `ports`: an nf_tables change to commit together with others in
    /// one transaction, or a process already under way.
    fn publish_begin(&self, ports: &[PortRule]) -> Result<Publishing>;
    /// Whether [`Firewall::publish_begin`] changes the host at once (a process started),
    /// rather than handing back a change to commit later.
    fn publishes_in_a_process(&self) -> bool;
    /// Removes a container's published ports; rules already gone are fine.
    fn unpublish(&self, ports: &[PortRule]) -> Result<()>;
    /// The nf_tables deletions that remove exactly `ports`' rules, to commit together with
    /// other deletions in one transaction ([`Change`]); None when this driver's rules
    /// are not nf_tables rules here, or not all of them are there (the caller then uses
    /// [`Firewall::unpublish`], which copes with any state).
    fn unpublish_deletions(&self, ports: &[PortRule]) -> Result<Option<Change>>;
    /// The commands that would make `ports`' rules, in the driver's syntax (`inspect`).
    fn commands(&self, ports: &[PortRule]) -> Vec<String>;
    /// The rules of `ports` as they are in the kernel now, with their counters.
    fn counters(&self, ports: &[PortRule]) -> Result<Vec<CountedRule>>;
}

/// The driver of that kind.
pub fn driver(kind: FirewallDriver) -> Box<dyn Firewall> {
    match kind {
        FirewallDriver::Iptables => Box::new(iptables::Iptables),
        FirewallDriver::Nftables => Box::new(nft::Nftables),
    }
}

/// Which driver a network gets: the one asked for, else iptables when it works here,
/// else nftables. The second value says why the default was not taken, for the user.
pub fn choose(asked: Option<FirewallDriver>) -> (FirewallDriver, Option<String>) {
    if let Some(kind) = asked {
        return (kind, None);
    }
    match iptables::usable() {
        Ok(()) => (FirewallDriver::Iptables, None),
        Err(why) => (
            FirewallDriver::Nftables,
            Some(format!("iptables cannot be used here ({why}); using the nftables firewall driver")),
        ),
    }
}

/// Removes rules recorded as iptables strings by an older dockling (before typed rules).
pub fn remove_legacy(rules: &[(String, String, String)]) -> Result<()> {
    iptables::remove_legacy(rules)
}
