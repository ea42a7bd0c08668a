//! Container networking, as the classic netns + bridge + NAT tutorial does it by hand:
//! bridge and veth ([`bridge`], [`veth`]), addresses ([`ipam`]), NAT and published ports
//! ([`firewall`]), and `ip netns` names ([`netns`]).
//!
//! Every host change is recorded in the container's record *before* it is made, so
//! [`teardown`] can undo a half-finished `run` after a crash.

mod antispoof;
mod bridge;
pub mod firewall;
pub mod inside;
mod ipam;
mod netlink;
mod netns;
mod nftables;
mod resolv;
mod veth;

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use anyhow::Result;

use crate::error;
use crate::explain;
use crate::state::{Container, PortFilter, Store};
use crate::types::{FirewallDriver, FirewallRecord, NetworkMode, PortMapping, PortRule, PortSpec, Proto};
use firewall::{Network, Publishing};
use ipam::{Ipam, Subnet};

/// Chosen to collide with neither Docker's 172.17.0.0/16 nor Podman's 10.88.0.0/16.
pub const DEFAULT_SUBNET: &str = "10.131.0.0/24";

/// Reserves an address and the host ports (refusing taken ones) before anything is made.
pub fn reserve(store: &Store, c: &mut Container, specs: &[PortSpec]) -> Result<()> {
    if c.network_mode != NetworkMode::Bridge {
        return Ok(());
    }
    if netns::path(&c.name).exists() {
        return Err(error::conflict(format!(
            "a network namespace named {:?} already exists in {}",
            c.name,
            netns::NETNS_DIR
        )));
    }
    let mut ipam = Ipam::lock(store)?;
    let (driver, _) = pick_driver(ipam.state.firewall, store.firewall)?;
    let subnet = ipam.subnet(store.subnet.as_deref())?;
    if !bridge::exists() {
        // Before anything is made: a subnet the host already routes elsewhere would break it.
        // (The runtime is gone again before the clone: a current-thread runtime has no threads.)
        netlink::with_handle(|h| async move { bridge::refuse_overlap(&h, subnet).await })?;
    }
    let mut mappings: Vec<PortMapping> = Vec::new();
    for spec in specs {
        let m = match spec.host_port {
            Some(port) => {
                let m = PortMapping {
                    host_ip: spec.host_ip,
                    host_port: port,
                    container_port: spec.container_port,
                    proto: spec.proto,
                };
                if let Some(owner) =
                    ipam.port_taken(&m).or(mappings.iter().any(|o| o.clashes(&m)).then_some(c.id.as_str()))
                {
                    let owner = if owner == c.id { "this container" } else { &owner[..12] };
                    return Err(error::conflict(format!(
                        "Bind for {}:{} failed: port is already allocated (published by {owner})",
                        m.host_ip, m.host_port
                    )));
                }
                host_port_free(&m)?;
                m
            }
            None => free_port(&ipam, &mappings, spec)?,
        };
        mappings.push(m);
    }
    let ip = ipam.allocate(subnet, &c.id)?;
    for m in &mappings {
        ipam.state.ports.push((m.clone(), c.id.clone()));
    }
    ipam.state.firewall = Some(driver);
    ipam.save()?;
    c.network.firewall = Some(FirewallRecord { driver, ports: Vec::new() });
    c.ports = mappings;
    c.network.ip = Some(ip);
    c.network.gateway = Some(subnet.gateway());
    c.network.prefix = Some(subnet.prefix);
    c.network.mac = Some(veth::mac_string(veth::mac_for(ip)));
    Ok(())
}

/// The firewall driver the next container gets, and a note for the user when the
/// default (iptables) cannot be used here. The network's own driver wins once it has one.
pub fn firewall_driver(store: &Store) -> Result<(FirewallDriver, Option<String>)> {
    pick_driver(Ipam::lock(store)?.state.firewall, store.firewall)
}

/// The network's driver (`made`, once it has rules) against the one asked for.
fn pick_driver(
    made: Option<FirewallDriver>,
    asked: Option<FirewallDriver>,
) -> Result<(FirewallDriver, Option<String>)> {
    match (made, asked) {
        (Some(made), Some(asked)) if made != asked => Err(error::conflict(format!(
            "the network's rules are made by the {made} firewall driver, not {asked}: \
             remove its containers and run `dockling network prune` to switch"
        ))),
        (Some(made), _) => Ok((made, None)),
        (None, asked) => Ok(firewall::choose(asked)),
    }
}

/// Is a host process already listening there? (We do not hold the port: DNAT needs no socket.)
fn host_port_free(m: &PortMapping) -> Result<()> {
    let addr = SocketAddrV4::new(m.host_ip, m.host_port);
    let res = match m.proto {
        Proto::Tcp => TcpListener::bind(addr).map(drop),
        Proto::Udp => UdpSocket::bind(addr).map(drop),
    };
    res.map_err(|e| error::user(format!("Bind for {}:{} failed: {}", m.host_ip, m.host_port, e)))
}

/// A free host port from the ephemeral range, as Docker picks for `-p 80`.
fn free_port(ipam: &Ipam, taken: &[PortMapping], spec: &PortSpec) -> Result<PortMapping> {
    let start = 32768 + (std::process::id() % 28000) as u16;
    for port in (start..=60999).chain(32768..start) {
        let m = PortMapping {
            host_ip: spec.host_ip,
            host_port: port,
            container_port: spec.container_port,
            proto: spec.proto,
        };
        if ipam.port_taken(&m).is_none() && !taken.iter().any(|o| o.clashes(&m)) && host_port_free(&m).is_ok() {
            return Ok(m);
        }
    }
    Err(error::user("no free host port left to publish on"))
}

/// Fills in the names and rules [`attach`] will make, so they are recorded (with the pid)
/// in one write before any of them exists.
pub fn plan(c: &mut Container) {
    if c.network_mode != NetworkMode::Bridge {
        return;
    }
    c.network.bridge = Some(bridge::BRIDGE.to_string());
    c.network.host_veth = Some(veth::host_name(&c.id));
    c.network.port_filter = Some(antispoof::plan(&c.id, &veth::host_name(&c.id)));
    c.network.netns_name = Some(c.name.clone());
    if let (Some(ip), Some(record)) = (c.network.ip, c.network.firewall.as_mut()) {
        record.ports = c
            .ports
            .iter()
            .map(|p| PortRule { owner: c.id[..12].to_string(), container_ip: ip, port: p.clone() })
            .collect();
    }
}

/// What init sets up on eth0 once [`attach`] has made it (bridge mode only).
pub fn eth0(c: &Container) -> Option<inside::Eth0> {
    match (c.network_mode, c.network.ip, c.network.prefix, c.network.gateway, &c.network.netns_name) {
        (NetworkMode::Bridge, Some(ip), Some(prefix), Some(gateway), Some(netns)) => {
            Some(inside::Eth0 { ip, prefix, gateway, netns: netns.clone() })
        }
        _ => None,
    }
}

/// What [`prepare`] readied before the clone, for [`attach`] to finish.
#[derive(Default)]
pub struct Prepared {
    bridge: u32,
    publishing: Option<Publishing>,
}

/// Before the container is cloned (the process is single-threaded: no thread here): the
/// shared pieces, once, and the container's ports set going. A driver that needs a
/// process for them (`iptables-restore`) starts it now, so that it runs while the
/// container is cloned and builds its root filesystem; the record, with the plan, is
/// saved before (a crash leaves what it names, for `rm -f` to undo).
pub fn prepare(store: &Store, c: &Container) -> Result<Prepared> {
    if c.network_mode != NetworkMode::Bridge {
        return Ok(Prepared::default());
    }
    let (Some(prefix), Some(gateway)) = (c.network.prefix, c.network.gateway) else {
        anyhow::bail!("no address was reserved for the container");
    };
    let subnet = Subnet::parse(&format!("{}/{prefix}", gateway))?;

    // Shared pieces, once: bridge, sysctls, chains (the marker is cleared by prune).
    let bridge = {
        let mut ipam = Ipam::lock(store)?;
        // No bridge (a reboot, someone deleted it): the shared rules may be gone too, and
        // setting them up again is idempotent.
        let idx = match bridge::index() {
            Some(idx) => idx,
            None => {
                ipam.state.shared_ready = false;
                netlink::with_handle(|h| async move { bridge::ensure(&h, subnet).await })?
            }
        };
        if !ipam.state.shared_ready {
            if ipam.state.ip_forward_before.is_none() {
                ipam.state.ip_forward_before = Some(bridge::ip_forward());
                ipam.save()?;
            }
            bridge::sysctls()?;
            let driver = ipam.state.firewall.unwrap_or(FirewallDriver::Iptables);
            firewall::driver(driver).setup_network(&network(subnet))?;
            antispoof::setup_shared()?;
            ipam.state.shared_ready = true;
            ipam.save()?;
        }
        idx
    };
    let publishing = match c.network.firewall.as_ref().filter(|f| !f.ports.is_empty()) {
        Some(f) => {
            let driver = firewall::driver(f.driver);
            if driver.publishes_in_a_process() {
                // The process changes the host for this container before the record
                // saved after the clone: the plan is recorded first.
                store.save(c)?;
            }
            Some(driver.publish_begin(&f.ports)?)
        }
        None => None,
    };
    Ok(Prepared { bridge, publishing })
}

/// Wires a cloned container (waiting in its netns) to the bridge and finishes publishing
/// its ports, as [`plan`] recorded and [`prepare`] began; init then configures its end
/// ([`eth0`]). The port rules and the port
/// filter go in on a second thread while the veth is made; the two do not depend on each
/// other.
pub fn attach(c: &Container, pid: nix::unistd::Pid, prepared: Prepared) -> Result<()> {
    if c.network_mode != NetworkMode::Bridge {
        return Ok(());
    }
    let pid = pid.as_raw();
    let Some(ip) = c.network.ip else {
        anyhow::bail!("no address was reserved for the container");
    };
    let (Some(host), Some(name)) = (c.network.host_veth.clone(), c.network.netns_name.clone()) else {
        anyhow::bail!("the container's network was not planned");
    };
    let mac = veth::mac_for(ip);
    let Prepared { bridge: bridge_idx, publishing } = prepared;

    let (record, filter) = (c.network.firewall.clone(), c.network.port_filter.clone());
    // The container waits until attach returns, so it never sends before its filter exists.
    let rules = std::thread::spawn(move || put_rules(record, publishing, filter, ip, mac));
    let wired = (|| -> Result<()> {
        netns::add(&name, pid)?;
        {
            let (host, name) = (host.clone(), name.clone());
            netlink::with_handle(|h| async move {
                veth::create(&h, &host, bridge_idx, bridge::BRIDGE, pid, &name, mac).await
            })?;
        }
        Ok(())
    })();
    crate::timing::mark("attach: veth");
    let ruled = rules.join().map_err(|_| anyhow::anyhow!("the firewall thread panicked"))?;
    wired.and(ruled)
}

/// Finishes the container's ports and makes its port filter: one nf_tables transaction
/// for whatever speaks nf_tables (two would cost a socket each), and the word of an
/// `iptables-restore` already under way.
fn put_rules(
    record: Option<FirewallRecord>,
    publishing: Option<Publishing>,
    filter: Option<PortFilter>,
    ip: Ipv4Addr,
    mac: [u8; 6],
) -> Result<()> {
    let (mut change, running) = match publishing {
        Some(Publishing::Change(change)) => (change, None),
        Some(Publishing::Running(pending)) => (nftables::Change::default(), Some(pending)),
        None => (nftables::Change::default(), None),
    };
    let ports_in_change = !change.is_empty();
    if let Some(f) = &filter {
        change.append(antispoof::addition(f, ip, mac, &veth::mac_string(mac)));
    }
    let committed = if change.is_empty() {
        Ok(())
    } else {
        explain::step(&change.command(), "publish the ports and filter the container's port, in one transaction");
        match change.commit() {
            Ok(()) => Ok(()),
            // Nothing of it happened; one at a time, each part copes with what is missing
            // (the filter's table removed by hand is made again).
            Err(_) => {
                let published = match &record {
                    Some(f) if ports_in_change => firewall::driver(f.driver).publish(&f.ports),
                    _ => Ok(()),
                };
                let filtered = match &filter {
                    Some(f) => antispoof::add(f, ip, mac, &veth::mac_string(mac)),
                    None => Ok(()),
                };
                published.and(filtered)
            }
        }
    };
    let waited = running.map_or(Ok(()), |pending| pending.wait());
    committed.and(waited)
}

/// What a failed rule removal leaves, to go back into the record: the typed rules, the
/// legacy ones, and why.
type Unremoved = (Option<FirewallRecord>, Vec<(String, String, String)>, anyhow::Error);

/// Undoes every per-container change: port rules, port filter, host veth, netns name,
/// leases. Idempotent; works from the record alone. The rules and the veth each go on a
/// thread while the netns name is removed; the kernel then dismantles the namespace (and
/// the veth with it) in the background.
pub fn teardown(store: &Store, c: &mut Container) -> Result<()> {
    let legacy = std::mem::take(&mut c.network.rules);
    let record = c.network.firewall.take();
    let filter = c.network.port_filter.take();
    // One thread, ports first and then the port filter: a dump's close waits for the
    // kernel to free what a deletion just before it removed, so nothing here reads the
    // ruleset after a deletion (each deletion's own close is handed off).
    // Copies for the record, should the thread die without a word.
    let kept = (record.clone(), legacy.clone(), filter.clone());
    let rules_thread =
        std::thread::spawn(move || -> (Result<(), Unremoved>, Result<(), (PortFilter, anyhow::Error)>) {
            if legacy.is_empty() && removed_together(record.as_ref(), filter.as_ref()) {
                return (Ok(()), Ok(()));
            }
            let unpublished = if record.as_ref().is_some_and(|f| !f.ports.is_empty()) || !legacy.is_empty() {
                match firewall::remove_legacy(&legacy) {
                    Err(e) => Err((record, legacy, e)),
                    Ok(()) => match &record {
                        Some(f) => {
                            firewall::driver(f.driver).unpublish(&f.ports).map_err(|e| (record.clone(), Vec::new(), e))
                        }
                        None => Ok(()),
                    },
                }
            } else {
                Ok(())
            };
            let unfiltered = match filter {
                Some(f) => antispoof::remove(&f).map_err(|e| (f, e)),
                None => Ok(()),
            };
            (unpublished, unfiltered)
        });
    // The host end of the veth, on a thread too: switching it off waits for an RCU grace
    // period (synchronize_net), as does the name's unmount below, meanwhile.
    let alive = c.process_alive();
    let veth_thread = c.network.host_veth.clone().map(|host| {
        std::thread::spawn(move || -> Result<()> {
            // With its processes gone and its name removed, the netns is destroyed by the
            // kernel, veth pair included, in the background (a few RCU grace periods,
            // 10-30 ms here; `ip link delete` takes as long, so nobody waits for it). The
            // host end is switched off at once: should something still hold the netns
            // (an `ip netns exec` shell, a container that joined it), its eth0 can never
            // answer for an address that the next container may get. (Disabling the
            // bridge port instead would not wait for the RCU grace period switching off
            // does, but the holder could turn the port back on by toggling its end's
            // carrier; the host end it cannot touch.) Only a container still alive is
            // unplugged by hand.
            if alive {
                explain::step(&format!("ip link delete {host}"), "unplug the cable (its peer goes with it)");
                netlink::with_handle(|h| async move { netlink::delete_link(&h, &host).await })
            } else if let Some(idx) = bridge::if_index(&host) {
                explain::step(
                    &format!("ip link set {host} down"),
                    "switch the cable off; the kernel removes it with the netns",
                );
                netlink::with_handle(|h| async move { netlink::set_down(&h, idx).await })
            } else {
                Ok(())
            }
        })
    });
    if let Some(name) = c.network.netns_name.take() {
        netns::remove(&name);
    }
    crate::timing::mark("teardown: netns");
    // Both threads are joined before anything is returned: what the rules thread could
    // not remove goes back into the record, to be removed next time.
    let unplugged = match veth_thread.map(|t| t.join()) {
        Some(Ok(result)) => result,
        Some(Err(_)) => Err(anyhow::anyhow!("the veth thread panicked")),
        None => Ok(()),
    };
    if unplugged.is_ok() {
        c.network.host_veth = None;
    }
    crate::timing::mark("teardown: veth");
    let (unpublished, unfiltered) = match rules_thread.join() {
        Ok(results) => results,
        // Nothing came back: the record keeps none of it, and says why.
        Err(_) => (
            Err((kept.0, kept.1, anyhow::anyhow!("the firewall thread panicked"))),
            kept.2.map_or(Ok(()), |f| Err((f, anyhow::anyhow!("the firewall thread panicked")))),
        ),
    };
    let unpublished = unpublished.map_err(|(record, legacy, e)| {
        c.network.firewall = record;
        c.network.rules = legacy;
        e
    });
    let unfiltered = unfiltered.map_err(|(f, e)| {
        c.network.port_filter = Some(f);
        e
    });
    crate::timing::mark("teardown: rules");
    unpublished?;
    unfiltered?;
    unplugged?;
    if c.network_mode == NetworkMode::Bridge {
        let mut ipam = Ipam::lock(store)?;
        ipam.release(&c.id);
        ipam.save()?;
    }
    Ok(())
}

/// The usual case of a teardown: the container's published ports and its port filter
/// removed in one nf_tables transaction (both drivers' rules are nf_tables rules, unless
/// iptables is iptables-legacy). Two commits would cost a whole RCU grace period more,
/// the second waiting for the kernel to free what the first removed. False when that
/// cannot be done or failed; the caller then removes each part on its own, which copes
/// with whatever state a crash left.
fn removed_together(record: Option<&FirewallRecord>, filter: Option<&PortFilter>) -> bool {
    let ports = match record {
        Some(f) if !f.ports.is_empty() => match firewall::driver(f.driver).unpublish_deletions(&f.ports) {
            Ok(Some(d)) => d,
            _ => return false,
        },
        _ => nftables::Change::default(),
    };
    let mut all = ports;
    if let Some(f) = filter {
        all.append(antispoof::removal(std::slice::from_ref(f)));
    }
    if all.is_empty() {
        return true;
    }
    explain::step(&all.command(), "unpublish the ports and remove the port filter, in one transaction");
    all.commit().is_ok()
}

/// Removes the published ports and port filters of several containers in one batch per
/// kind (`rm -f` of many): one `iptables-restore` or nf_tables transaction instead of one
/// per container, each of which costs ~10 ms. Each record forgets what was removed only
/// after the batch succeeded, so a failure or a crash leaves it to the container's own
/// teardown.
pub fn release_many(store: &Store, ids: &[String]) -> Result<()> {
    let records: Vec<Container> = ids.iter().filter_map(|id| store.load(id).ok()).collect();
    let mut by_driver: Vec<(FirewallDriver, Vec<PortRule>)> = Vec::new();
    for f in records.iter().filter_map(|c| c.network.firewall.as_ref()) {
        match by_driver.iter_mut().find(|(d, _)| *d == f.driver) {
            Some((_, ports)) => ports.extend(f.ports.iter().cloned()),
            None => by_driver.push((f.driver, f.ports.clone())),
        }
    }
    let mut unpublished = Vec::new();
    for (driver, ports) in by_driver {
        if firewall::driver(driver).unpublish(&ports).is_ok() {
            unpublished.push(driver);
        }
    }
    let filters: Vec<_> = records.iter().filter_map(|c| c.network.port_filter.clone()).collect();
    let unfiltered = antispoof::remove_many(&filters).is_ok();
    for c in &records {
        let _lock = store.lock_container(&c.id)?;
        let mut c = store.load(&c.id)?;
        if c.network.firewall.as_ref().is_some_and(|f| unpublished.contains(&f.driver)) {
            c.network.firewall = None;
        }
        if unfiltered {
            c.network.port_filter = None;
        }
        store.save(&c)?;
    }
    Ok(())
}

fn network(subnet: Subnet) -> Network {
    Network { subnet, bridge: bridge::BRIDGE.to_string() }
}

/// `inspect --rules`: the rules a container owns, read live with their counters.
pub fn rule_counters(c: &Container) -> Result<Vec<firewall::CountedRule>> {
    match &c.network.firewall {
        Some(f) if !f.ports.is_empty() => firewall::driver(f.driver).counters(&f.ports),
        _ => Ok(Vec::new()),
    }
}

/// The commands that make the rules a container owns, in its driver's syntax.
pub fn rule_texts(c: &Container) -> Vec<String> {
    let mut texts: Vec<String> =
        c.network.rules.iter().map(|(t, ch, r)| format!("iptables -t {t} -A {ch} {r}")).collect();
    if let Some(f) = &c.network.firewall {
        texts.extend(firewall::driver(f.driver).commands(&f.ports));
    }
    texts
}

/// /etc/hosts, /etc/hostname and /etc/resolv.conf for the container: (path inside, text).
/// Init writes them into its private /dev tmpfs and binds them over the image's, so they
/// cost no disk writes on the host and go away with the container.
pub fn etc_files(c: &Container) -> Vec<(&'static str, String)> {
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(ip) = c.network.ip {
        hosts.push_str(&format!("{ip}\t{}\n", c.hostname));
    } else {
        hosts.push_str(&format!("127.0.1.1\t{}\n", c.hostname));
    }
    vec![
        ("/etc/hosts", hosts),
        ("/etc/hostname", format!("{}\n", c.hostname)),
        ("/etc/resolv.conf", resolv::resolv_conf(c.network_mode)),
    ]
}

/// What `network prune` did.
pub enum PruneOutcome {
    /// Containers still hold addresses: nothing was removed.
    InUse { containers: usize },
    /// The shared setup is gone; `deleted` names the bridge if there was one to delete.
    Pruned { deleted: Option<&'static str> },
}

/// `dockling network prune`: remove the bridge and shared chains when no container uses them.
pub fn prune(store: &Store) -> Result<PruneOutcome> {
    let mut ipam = Ipam::lock(store)?;
    if !ipam.state.leases.is_empty() {
        return Ok(PruneOutcome::InUse { containers: ipam.state.leases.len() });
    }
    let subnet = Subnet::parse(ipam.state.subnet.as_deref().or(store.subnet.as_deref()).unwrap_or(DEFAULT_SUBNET))?;
    if let Some(driver) = ipam.state.firewall {
        firewall::driver(driver).teardown_network(&network(subnet))?;
    } else {
        // A network state from before the driver was recorded: iptables made its rules.
        firewall::driver(FirewallDriver::Iptables).teardown_network(&network(subnet))?;
    }
    antispoof::teardown_shared()?;
    let had_bridge = netlink::with_handle(|h| async move {
        let found = netlink::link_by_name(&h, bridge::BRIDGE).await?.is_some();
        if found {
            explain::step(&format!("ip link delete {}", bridge::BRIDGE), "remove the bridge");
            netlink::delete_link(&h, bridge::BRIDGE).await?;
        }
        Ok(found)
    })?;
    if let Some(before) = &ipam.state.ip_forward_before {
        bridge::restore_ip_forward(before)?;
    }
    ipam.state = ipam::NetState::default();
    ipam.save()?;
    Ok(PruneOutcome::Pruned { deleted: had_bridge.then_some(bridge::BRIDGE) })
}

/// The network as `network ls` shows it: one bridge, its subnet, who holds which address
/// and which published ports (container ids in full).
pub struct NetworkReport {
    pub bridge: &'static str,
    pub subnet: String,
    /// Address -> container id, in address order.
    pub leases: Vec<(Ipv4Addr, String)>,
    /// Published port -> container id, in the order they were published.
    pub ports: Vec<(PortMapping, String)>,
}

/// `dockling network ls`: the state as recorded (the subnet the bridge got, else the one
/// it would get).
pub fn report(store: &Store) -> Result<NetworkReport> {
    let ipam = Ipam::lock(store)?;
    let subnet = ipam.state.subnet.as_deref().or(store.subnet.as_deref()).unwrap_or(DEFAULT_SUBNET);
    Ok(NetworkReport {
        bridge: bridge::BRIDGE,
        subnet: subnet.to_string(),
        leases: ipam.state.leases.iter().map(|(ip, id)| (*ip, id.clone())).collect(),
        ports: ipam.state.ports.clone(),
    })
}
