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
use crate::types::{FirewallDriver, PortMapping};

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
    /// The firewall driver that makes this network's rules (cleared by `network prune`).
    #[serde(default)]
    pub firewall: Option<FirewallDriver>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Proto;

    /// A fresh directory for a store's runtime state, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("dockling-test-ipam-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn store(&self) -> Store {
            Store::at(self.0.clone(), self.0.clone())
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn mapping(host_ip: &str, host_port: u16, proto: Proto) -> PortMapping {
        PortMapping { host_ip: ip(host_ip), host_port, container_port: 80, proto }
    }

    #[test]
    fn subnet_parse_masks_host_bits() {
        let s = Subnet::parse("10.131.0.0/24").unwrap();
        assert_eq!(s, Subnet { base: ip("10.131.0.0"), prefix: 24 });
        assert_eq!(Subnet::parse("10.131.7.200/16").unwrap(), Subnet { base: ip("10.131.0.0"), prefix: 16 });
        assert_eq!(Subnet::parse("192.168.5.77/30").unwrap().base, ip("192.168.5.76"));
        assert_eq!(Subnet::parse("10.255.255.255/8").unwrap().base, ip("10.0.0.0"));
        assert_eq!(Subnet::parse("172.20.3.4/20").unwrap().to_string(), "172.20.0.0/20");
    }

    #[test]
    fn subnet_parse_refuses_bad_input() {
        for bad in [
            "",
            "10.0.0.0",
            "10.0.0.0/",
            "/24",
            "10.0.0/24",
            "10.0.0.256/24",
            "10.0.0.0/7",
            "10.0.0.0/31",
            "10.0.0.0/32",
            "10.0.0.0/-1",
            "10.0.0.0/999",
            "10.0.0.0/24/1",
            "fd00::/64",
            "10.0.0.0 /24",
        ] {
            let err = Subnet::parse(bad).unwrap_err();
            assert_eq!(error::code_of(&err), error::RUNTIME_ERROR, "{bad}");
            assert!(err.to_string().contains("invalid subnet"), "{bad}: {err}");
        }
        // The extreme prefixes allowed.
        assert!(Subnet::parse("10.0.0.0/8").is_ok());
        assert!(Subnet::parse("10.0.0.0/30").is_ok());
    }

    #[test]
    fn gateway_and_hosts() {
        let s = Subnet::parse("10.131.0.0/24").unwrap();
        assert_eq!(s.gateway(), ip("10.131.0.1"));
        let hosts: Vec<Ipv4Addr> = s.hosts().collect();
        assert_eq!(hosts.len(), 253); // .2 to .254: not the network, the gateway, nor broadcast
        assert_eq!(hosts[0], ip("10.131.0.2"));
        assert_eq!(*hosts.last().unwrap(), ip("10.131.0.254"));
        let small = Subnet::parse("192.168.1.4/30").unwrap();
        assert_eq!(small.gateway(), ip("192.168.1.5"));
        assert_eq!(small.hosts().collect::<Vec<_>>(), [ip("192.168.1.6")]);
        let big = Subnet::parse("10.8.0.0/16").unwrap();
        assert_eq!(big.hosts().count(), 65_533);
        assert_eq!(big.hosts().nth(254), Some(ip("10.8.1.0")));
    }

    #[test]
    fn overlaps() {
        let s = Subnet::parse("10.131.0.0/24").unwrap();
        assert!(s.overlaps(ip("10.131.0.0"), 24));
        assert!(s.overlaps(ip("10.0.0.0"), 8)); // a wider route containing it
        assert!(s.overlaps(ip("10.131.0.128"), 25)); // a narrower route inside it
        assert!(s.overlaps(ip("0.0.0.0"), 0)); // the default route covers everything
        assert!(!s.overlaps(ip("10.131.1.0"), 24));
        assert!(!s.overlaps(ip("10.132.0.0"), 16));
        assert!(!s.overlaps(ip("192.168.0.0"), 16));
    }

    #[test]
    fn subnet_is_fixed_by_the_first_use() {
        let dir = TempDir::new("subnet");
        let mut ipam = Ipam::lock(&dir.store()).unwrap();
        assert_eq!(ipam.subnet(None).unwrap().to_string(), super::super::DEFAULT_SUBNET);
        assert_eq!(ipam.state.subnet.as_deref(), Some(super::super::DEFAULT_SUBNET));
        // The same subnet (even written with host bits) is fine; another one is not.
        assert!(ipam.subnet(Some("10.131.0.9/24")).is_ok());
        let err = ipam.subnet(Some("10.200.0.0/24")).unwrap_err();
        assert!(err.to_string().contains("already uses 10.131.0.0/24"), "{err}");
        assert!(ipam.subnet(Some("nonsense")).is_err());

        let other = TempDir::new("subnet2");
        let mut fresh = Ipam::lock(&other.store()).unwrap();
        assert_eq!(fresh.subnet(Some("172.30.5.1/16")).unwrap().to_string(), "172.30.0.0/16");
        assert_eq!(fresh.state.subnet.as_deref(), Some("172.30.0.0/16"));
    }

    #[test]
    fn allocation_order_release_and_exhaustion() {
        let dir = TempDir::new("alloc");
        let mut ipam = Ipam::lock(&dir.store()).unwrap();
        let s = Subnet::parse("10.9.0.0/29").unwrap(); // .2 to .6
        let got: Vec<Ipv4Addr> = (0..5).map(|i| ipam.allocate(s, &format!("c{i}")).unwrap()).collect();
        assert_eq!(got, ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"].map(ip));
        let err = ipam.allocate(s, "c5").unwrap_err();
        assert_eq!(err.to_string(), "no free address left in 10.9.0.0/29");
        assert_eq!(error::code_of(&err), error::RUNTIME_ERROR);
        assert_eq!(ipam.state.leases.len(), 5); // the failure took nothing

        // Released addresses are reused lowest first.
        ipam.release("c3");
        ipam.release("c1");
        ipam.release("nobody");
        assert_eq!(ipam.state.leases.len(), 3);
        assert_eq!(ipam.allocate(s, "d1").unwrap(), ip("10.9.0.3"));
        assert_eq!(ipam.allocate(s, "d2").unwrap(), ip("10.9.0.5"));
        assert!(ipam.allocate(s, "d3").is_err());
        assert_eq!(ipam.state.leases[&ip("10.9.0.3")], "d1");
    }

    #[test]
    fn ports_taken_and_released_with_their_owner() {
        let dir = TempDir::new("ports");
        let mut ipam = Ipam::lock(&dir.store()).unwrap();
        ipam.state.ports.push((mapping("0.0.0.0", 8080, Proto::Tcp), "a".into()));
        ipam.state.ports.push((mapping("127.0.0.1", 5353, Proto::Udp), "b".into()));
        ipam.state.leases.insert(ip("10.131.0.2"), "a".into());
        assert_eq!(ipam.port_taken(&mapping("127.0.0.1", 8080, Proto::Tcp)), Some("a"));
        assert_eq!(ipam.port_taken(&mapping("0.0.0.0", 5353, Proto::Udp)), Some("b"));
        assert_eq!(ipam.port_taken(&mapping("127.0.0.2", 5353, Proto::Udp)), None);
        assert_eq!(ipam.port_taken(&mapping("0.0.0.0", 8080, Proto::Udp)), None);
        assert_eq!(ipam.port_taken(&mapping("0.0.0.0", 8081, Proto::Tcp)), None);
        ipam.release("a");
        assert_eq!(ipam.port_taken(&mapping("127.0.0.1", 8080, Proto::Tcp)), None);
        assert!(ipam.state.leases.is_empty());
        assert_eq!(ipam.state.ports.len(), 1);
    }

    #[test]
    fn state_survives_save_and_lock() {
        let dir = TempDir::new("save");
        let store = dir.store();
        {
            let mut ipam = Ipam::lock(&store).unwrap();
            assert!(ipam.state.leases.is_empty() && ipam.state.subnet.is_none());
            let s = ipam.subnet(Some("10.50.0.0/24")).unwrap();
            ipam.allocate(s, "abc").unwrap();
            ipam.state.ports.push((mapping("0.0.0.0", 80, Proto::Tcp), "abc".into()));
            ipam.save().unwrap();
        }
        assert!(!dir.0.join("network.json.tmp").exists());
        let ipam = Ipam::lock(&store).unwrap();
        assert_eq!(ipam.state.subnet.as_deref(), Some("10.50.0.0/24"));
        assert_eq!(ipam.state.leases.get(&ip("10.50.0.2")).map(String::as_str), Some("abc"));
        assert_eq!(ipam.state.ports, [(mapping("0.0.0.0", 80, Proto::Tcp), "abc".to_string())]);
        assert!(!ipam.state.shared_ready);
        drop(ipam);
        fs::write(dir.0.join("network.json"), "{not json").unwrap();
        assert!(Ipam::lock(&store).is_err());
    }
}
