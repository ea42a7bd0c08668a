//! No spoofing on the bridge (security issue, part 5). A default container holds NET_RAW,
//! so it can write any Ethernet frame; dockling's bridge port filter must drop frames
//! whose source MAC, IPv4 source or ARP sender is not the container's own. Every probe
//! runs twice: with the filter (blocked) and with the container's filter entry deleted
//! by hand (it gets through: the probe can see the hole).

mod common;
use common::*;
use std::thread;
use std::time::Duration;

/// Victim: prints the source address of every UDP datagram it receives on port 9999.
const LISTENER_PY: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', 9999))
print('ready', flush=True)
while True:
    d, a = s.recvfrom(2048)
    print('got %s from %s' % (d.decode(errors='replace'), a[0]), flush=True)
"#;

/// Attacker: hand-made frames over AF_PACKET on eth0 (each sent three times).
/// `udp DST_MAC SRC_MAC SRC_IP DST_IP PAYLOAD` or
/// `arp-request|arp-reply DST_MAC SRC_MAC SENDER_MAC SENDER_IP TARGET_MAC TARGET_IP`.
const FRAME_PY: &str = r#"
import socket, struct, sys
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def mac(m):
    return bytes.fromhex(m.replace(':', ''))
kind, dst_mac, src_mac = sys.argv[1], mac(sys.argv[2]), mac(sys.argv[3])
if kind == 'udp':
    src, dst, payload = socket.inet_aton(sys.argv[4]), socket.inet_aton(sys.argv[5]), sys.argv[6].encode()
    udp = struct.pack('!HHHH', 40000, 9999, 8 + len(payload), 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    frame = dst_mac + src_mac + b'\x08\x00' + ip + udp
else:
    op = 1 if kind == 'arp-request' else 2
    sha, spa = mac(sys.argv[4]), socket.inet_aton(sys.argv[5])
    tha, tpa = mac(sys.argv[6]), socket.inet_aton(sys.argv[7])
    frame = dst_mac + src_mac + b'\x08\x06' + struct.pack('!HHBBH', 1, 0x0800, 6, 4, op) + sha + spa + tha + tpa
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
for _ in range(3):
    s.send(frame)
print('sent', kind)
"#;

/// An ordinary UDP datagram: `DST_IP PAYLOAD`.
const SEND_PY: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(sys.argv[2].encode(), (sys.argv[1], 9999))
"#;

/// An unused address in the subnet, and its dockling-style MAC: the "third container".
const IP_C: &str = "10.131.0.200";
const MAC_C: &str = "02:42:0a:83:00:c8";

struct Pair<'a> {
    sim: &'a SimHost,
    a: String,
    b: String,
    ip_a: String,
    ip_b: String,
    mac_a: String,
    mac_b: String,
}

impl Pair<'_> {
    fn exec_py(&self, name: &str, script: &str, args: &[&str]) -> String {
        let mut a = vec!["exec", name, "python3", "-c", script];
        a.extend_from_slice(args);
        self.sim.dockling_ok(&a)
    }

    fn logs_b(&self) -> String {
        self.sim.dockling_ok(&["logs", &self.b])
    }

    fn wait_log(&self, needle: &str) {
        let mut last = String::new();
        let ok = wait_until(WAIT, || {
            last = self.logs_b();
            last.contains(needle)
        });
        assert!(ok, "the victim never logged {needle:?}; its log:\n{last}\n{}", self.sim.dump());
    }

    /// B's neighbour entry for `ip` (`ip neigh` in B's netns).
    fn neigh_b(&self, ip: &str) -> String {
        self.sim.sh_ok(&format!("ip netns exec {} ip neigh show {ip}", self.b))
    }

    /// Sends the spoofed frames tagged `tag`, then an honest marker datagram, and waits
    /// for the marker (the spoofed ones, sent before it on the same path, came first).
    fn probe(&self, tag: &str) {
        let gw_mac = "00:00:00:00:00:00";
        let spoof_ip = format!("spoof-ip-{tag}");
        let spoof_mac = format!("spoof-mac-{tag}");
        // (1) another address as IPv4 source, own MAC; (1b) another MAC and address.
        self.exec_py(&self.a, FRAME_PY, &["udp", &self.mac_b, &self.mac_a, IP_C, &self.ip_b, &spoof_ip]);
        self.exec_py(&self.a, FRAME_PY, &["udp", &self.mac_b, MAC_C, IP_C, &self.ip_b, &spoof_mac]);
        // (2) ARP telling B that the gateway is at A's MAC: a reply, and a request for
        // B's address (which Linux always learns its sender from).
        for kind in ["arp-reply", "arp-request"] {
            let tha = if kind == "arp-reply" { self.mac_b.as_str() } else { gw_mac };
            self.exec_py(&self.a, FRAME_PY, &[kind, &self.mac_b, &self.mac_a, &self.mac_a, GATEWAY, tha, &self.ip_b]);
        }
        let marker = format!("marker-{tag}");
        self.exec_py(&self.a, SEND_PY, &[&self.ip_b, &marker]);
        self.wait_log(&format!("got {marker} from {}", self.ip_a));
        thread::sleep(Duration::from_millis(300));
    }
}

fn mac_of(sim: &SimHost, name: &str) -> String {
    sim.dockling_ok(&["exec", name, "cat", "/sys/class/net/eth0/address"]).trim().to_string()
}

#[test]
fn a_container_cannot_spoof_its_address_or_poison_arp_on_the_bridge() {
    let sim = SimHost::new("spoof");
    sim.image("python");
    let (a, b) = (sim.cname("attacker"), sim.cname("victim"));
    sim.run_d(&["--name", &b, "python", "python3", "-u", "-c", LISTENER_PY]);
    let id_a = sim.run_d(&["--name", &a, "python", "python3", "-c", "import time; time.sleep(100000)"]);
    let p = Pair {
        sim: &sim,
        ip_a: sim.ip_of(&a),
        ip_b: sim.ip_of(&b),
        mac_a: mac_of(&sim, &a),
        mac_b: mac_of(&sim, &b),
        a,
        b,
    };
    p.wait_log("ready");
    let bridge_mac = sim.sh_ok(&format!("cat /sys/class/net/{BRIDGE}/address")).trim().to_string();

    // Honest traffic still works: A's datagram arrives with A's address, B learned A's
    // MAC by ARP, and B resolves the gateway to the bridge.
    p.exec_py(&p.a, SEND_PY, &[&p.ip_b, "hello"]);
    p.wait_log(&format!("got hello from {}", p.ip_a));
    p.exec_py(&p.b, SEND_PY, &[GATEWAY, "to-gateway"]);
    p.exec_py(&p.b, SEND_PY, &[&p.ip_a, "to-a"]);
    let ok = wait_until(WAIT, || p.neigh_b(GATEWAY).contains(&bridge_mac) && p.neigh_b(&p.ip_a).contains(&p.mac_a));
    assert!(ok, "ARP on the bridge must work: gateway {:?}, A {:?}", p.neigh_b(GATEWAY), p.neigh_b(&p.ip_a));

    // With the filter: nothing spoofed gets through.
    p.probe("1");
    let log = p.logs_b();
    assert!(!log.contains("spoof-ip-1"), "a datagram with a spoofed IPv4 source reached the victim:\n{log}");
    assert!(!log.contains("spoof-mac-1"), "a frame with a spoofed MAC reached the victim:\n{log}");
    let gw = p.neigh_b(GATEWAY);
    assert!(!gw.contains(&p.mac_a), "forged ARP poisoned the victim's gateway entry: {gw}");
    assert!(gw.contains(&bridge_mac), "the victim's gateway entry must stay the bridge's MAC: {gw}");

    // Positive control: A's filter entry deleted by hand, the same probes get through.
    let veth_a = format!("veth{}", &id_a[..7]);
    sim.sh_ok(&format!("nft delete element bridge dockling ports '{{ \"{veth_a}\" }}'"));
    p.probe("2");
    let log = p.logs_b();
    assert!(
        log.contains(&format!("got spoof-ip-2 from {IP_C}")),
        "control: without the filter the spoofed datagram must arrive (the probe works):\n{log}"
    );
    let ok = wait_until(Duration::from_secs(5), || p.neigh_b(GATEWAY).contains(&p.mac_a));
    assert!(ok, "control: without the filter forged ARP must poison the entry: {}", p.neigh_b(GATEWAY));

    // rm takes the container's chain away (what is left of it after the hand edit too).
    let chain = format!("port-{}", &id_a[..12]);
    assert!(sim.sh(&format!("nft list chain bridge dockling {chain}")).ok(), "{}", sim.dump());
    sim.dockling_ok(&["rm", "-f", &p.a]);
    let left = sim.sh_ok("nft list ruleset bridge");
    assert!(!left.contains(&chain) && !left.contains(&veth_a), "A's filter is left after rm:\n{left}");
    sim.finish();
}

#[test]
fn every_container_gets_its_own_filter_and_rm_removes_only_its_own() {
    let sim = SimHost::new("spoof-rules");
    sim.image("busybox");
    let ids: Vec<String> =
        (0..2).map(|i| sim.run_d(&["--name", &sim.cname(&format!("c{i}")), "busybox", "sleep", "100000"])).collect();
    let ruleset = sim.sh_ok("nft list ruleset bridge");
    for (i, id) in ids.iter().enumerate() {
        let ip = sim.ip_of(&sim.cname(&format!("c{i}")));
        let chain = sim.sh_ok(&format!("nft list chain bridge dockling port-{}", &id[..12]));
        assert!(chain.contains(&format!("ip saddr {ip} accept")), "{chain}");
        assert!(chain.contains("arp saddr ip"), "{chain}");
        assert!(ruleset.contains(&format!("\"veth{}\" : jump port-{}", &id[..7], &id[..12])), "{ruleset}");
    }
    sim.dockling_ok(&["rm", "-f", &sim.cname("c0")]);
    let ruleset = sim.sh_ok("nft list ruleset bridge");
    assert!(!ruleset.contains(&ids[0][..12]), "c0's filter must go with it:\n{ruleset}");
    assert!(ruleset.contains(&ids[1][..12]), "c1's filter must stay:\n{ruleset}");
    // The shared table stays while a container uses it; prune refuses then.
    sim.dockling_ok(&["network", "prune"]);
    assert!(sim.sh("nft list table bridge dockling").ok());
    sim.finish(); // rm -f, prune, and no table left (the harness checks)
}
