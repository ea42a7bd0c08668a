//! `network ls` and `network prune`: the bridge network as a small table, and what
//! pruning it removed.

use anyhow::Result;

use crate::network::{self, PruneOutcome};
use crate::state::Store;

pub fn ls(store: &Store) -> Result<()> {
    let report = network::report(store)?;
    println!("BRIDGE     SUBNET           CONTAINERS");
    println!("{:<10} {:<16} {}", report.bridge, report.subnet, report.leases.len());
    for (ip, id) in &report.leases {
        println!("  {ip}  {}", short(id));
    }
    for (m, id) in &report.ports {
        println!("  {m}  {}", short(id));
    }
    Ok(())
}

pub fn prune(store: &Store) -> Result<()> {
    match network::prune(store)? {
        PruneOutcome::InUse { containers } => {
            println!("network in use by {containers} container(s); nothing removed")
        }
        PruneOutcome::Pruned { deleted: Some(bridge) } => println!("Deleted Networks:\n{bridge}"),
        PruneOutcome::Pruned { deleted: None } => {}
    }
    Ok(())
}

/// A container id as the table shows it (12 characters, as Docker's short ids).
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
