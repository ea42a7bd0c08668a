//! Address and port bookkeeping for the bridge network, in `<run>/network.json` under a
//! file lock, so parallel runs never get the same address or host port.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error;
use crate::state::Store;
use crate::sys::lock::FileLock;
use crate::types::PortMapping;

/// An IPv4 subnet like 10.131.0.0/24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(text: &str) -> Result<Subnet> {
        let bad = || error::user(format!("invalid subnet {text:?}: expected IPv4 CIDR like 10.131.0.0/24"));
        let (ip, prefix) = text.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let base = Ipv4Addr::from(u32::from(ip) & Self::mask_of(prefix));
        Ok(Subnet { base, prefix })
    }

    fn mask_of(prefix: u8) -> u32 {
        u32::MAX << (32 - prefix)
    }

    pub fn overlaps(&self, other_base: Ipv4Addr, other_prefix: u8) -> bool {
        let p = self.prefix.min(other_prefix);
        let m = if p == 0 { 0 } else { Self::mask_of(p) };
        u32::from(self.base) & m == u32::from(other_base) & m
    }

    /// The bridge's own address: the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }

    /// Addresses containers may get: from .2 to the last before broadcast.
    fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.base) + 2;
        let last = u32::from(self.base) | !Self::mask_of(self.prefix);
        (first..last).map(Ipv4Addr::from)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct NetState {
    pub subnet: Option<String>,
    /// address -> container id
    pub leases: BTreeMap<Ipv4Addr, String>,
    pub ports: Vec<(PortMapping, String)>,
    /// The bridge, sysctls and shared chains were set up (cleared by `network prune`).
    pub shared_ready: bool,
    /// `net.ipv4.ip_forward` before dockling first set it, restored by `network prune`.
    #[serde(default)]
    pub ip_forward_before: Option<String>,
}

/// The locked network state; saved with [`Ipam::save`].
pub struct Ipam {
    path: PathBuf,
    pub state: NetState,
    _lock: FileLock,
}

impl Ipam {
    pub fn lock(store: &Store) -> Result<Ipam> {
        let lock = FileLock::exclusive(&store.runtime_dir.join("network.lock"))?;
        let path = store.runtime_dir.join("network.json");
        let state = match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).with_context(|| format!("parsing {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => NetState::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Ipam { path, state, _lock: lock })
    }

    pub fn save(&self) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(&self.state)?)?;
        fs::rename(&tmp, &self.path).context("saving network.json")
    }

    /// The subnet in use (fixed once the first container got an address); asking for
    /// another one then is an error rather than silently ignored.
    pub fn subnet(&mut self, requested: Option<&str>) -> Result<Subnet> {
        let asked = requested.map(Subnet::parse).transpose()?;
        match &self.state.subnet {
            Some(s) => {
                let current = Subnet::parse(s)?;
                match asked {
                    Some(a) if a != current => Err(error::user(format!(
                        "the bridge network already uses {current}; remove its containers and run `dockling network prune` to change it"
                    ))),
                    _ => Ok(current),
                }
            }
            None => {
                let s = match asked {
                    Some(a) => a,
                    None => Subnet::parse(super::DEFAULT_SUBNET)?,
                };
                self.state.subnet = Some(s.to_string());
                Ok(s)
            }
        }
    }

    /// The lowest free address, so a released one is reused first.
    pub fn allocate(&mut self, subnet: Subnet, id: &str) -> Result<Ipv4Addr> {
        let ip = subnet
            .hosts()
            .find(|ip| !self.state.leases.contains_key(ip))
            .ok_or_else(|| error::user(format!("no free address left in {subnet}")))?;
        self.state.leases.insert(ip, id.to_string());
        Ok(ip)
    }

    pub fn port_taken(&self, m: &PortMapping) -> Option<&str> {
        self.state.ports.iter().find(|(p, _)| p.clashes(m)).map(|(_, id)| id.as_str())
    }

    pub fn release(&mut self, id: &str) {
        self.state.leases.retain(|_, owner| owner != id);
        self.state.ports.retain(|(_, owner)| owner != id);
    }
}
