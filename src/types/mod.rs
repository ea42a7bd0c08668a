//! Plain data types a container's record is made of: its network mode, published ports
//! and mounts. They live below `state` and every domain module, so that the record on
//! disk depends on no domain code (see tests/layers.rs for the order).

mod firewall;
mod mount;
mod network_mode;
mod ports;

pub use firewall::{FirewallDriver, FirewallRecord, PortRule};
pub use mount::{Mount, TmpfsOptions};
pub use network_mode::NetworkMode;
pub use ports::{parse_all as parse_ports, PortMapping, PortSpec, Proto};
