//! Published ports, secure by default (issue 13), with real packets in a simulated host:
//!
//! 1. no container reaches a service the host binds to 127.0.0.1 (`route_localnet=1` on
//!    the bridge would let a hand-made frame to the gateway's MAC through: CVE-2020-8558);
//! 2. a neighbour that routes the container subnet via the host reaches only published
//!    ports, not the containers' other ports;
//! 3. a port published on one host address answers there and nowhere else, from the
//!    world, the host and other containers;
//! 4. on a host that already has Docker's chains and a FORWARD policy of DROP, dockling
//!    works and leaves every rule of theirs as it was.
//!
//! Every attack has a positive control: a probe that gets an answer where one is due.

mod common;
use common::*;

/// A second address of the simulated host, on its link to the world.
const EXTRA_IP: &str = "198.51.100.3";

/// Hand-made TCP SYNs over AF_PACKET: `IFACE DST_MAC SRC_IP TARGET... MARKER`, each
/// `IP:PORT`. The SYNs go out in order, the marker last; the probe waits until the
/// marker answers (a marker that never answers is reported as such), listens a little
/// longer, and prints one line per target: `IP:PORT synack|rst|none`.
const SYN_PROBE_PY: &str = r#"
import random, select, socket, struct, sys, time
def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
ifname, dst_mac, src = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', '')), socket.inet_aton(sys.argv[3])
targets = sys.argv[4:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
src_mac = s.getsockname()[4]
base = random.randint(20000, 60000)
frames, sport_of = [], {}
for i, t in enumerate(targets):
    ip, port = t.rsplit(':', 1)
    dst, port, sport = socket.inet_aton(ip), int(port), base + i
    tcp = struct.pack('!HHIIBBHHH', sport, port, 1000 + i, 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack('!H', csum(src + dst + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip_hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), i + 1, 0, 64, 6, 0, src, dst)
    ip_hdr = ip_hdr[:10] + struct.pack('!H', csum(ip_hdr)) + ip_hdr[12:]
    frames.append(dst_mac + src_mac + b'\x08\x00' + ip_hdr + tcp)
    sport_of[sport] = t
seen = {}
deadline, marker_at, sent_at = time.time() + 8, None, 0
while time.time() < deadline and (marker_at is None or time.time() < marker_at + 0.5):
    if marker_at is None and time.time() - sent_at > 2:
        for f in frames:
            s.send(f)
        sent_at = time.time()
    if not select.select([s], [], [], 0.1)[0]:
        continue
    frame, addr = s.recvfrom(65535)
    if addr[2] == socket.PACKET_OUTGOING or frame[12:14] != b'\x08\x00' or frame[23] != 6:
        continue
    ihl = (frame[14] & 0x0f) * 4
    if frame[30:34] != src:
        continue
    tcp = frame[14 + ihl:]
    dport, flags = struct.unpack('!H', tcp[2:4])[0], tcp[13]
    if dport not in sport_of:
        continue
    kind = 'synack' if flags & 0x12 == 0x12 else 'rst' if flags & 0x04 else 'other'
    seen.setdefault(sport_of[dport], kind)
    if sport_of[dport] == targets[-1] and marker_at is None:
        marker_at = time.time()
for t in targets:
    print(t, seen.get(t, 'none'))
"#;

/// HTTP GETs from inside a container: `URL...`; prints `URL ok BODY` or `URL err REASON`.
const GET_PY: &str = r#"
import sys, urllib.request
for url in sys.argv[1:]:
    try:
        print(url, 'ok', urllib.request.urlopen(url, timeout=3).read().decode().strip())
    except Exception as e:
        print(url, 'err', e)
"#;

/// A listening TCP socket in the simulated host: `IP PORT` (accepts, never answers).
const LISTEN_PY: &str = r#"
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
time.sleep(100000)
"#;

/// busybox httpd serving BODY on port 80 (and on 81 too when `also_81`).
fn httpd_cmd(body: &str, also_81: bool) -> String {
    let extra = if also_81 { "/usr/sbin/httpd -p 81 -h /www && " } else { "" };
    format!("mkdir -p /www && echo {} > /www/index.html && {extra}exec /usr/sbin/httpd -f -p 80 -h /www", shq(body))
}

/// The SYN probe's verdict per target, from its output.
fn parse_probe(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines().filter_map(|l| l.split_once(' ')).map(|(t, v)| (t.to_string(), v.trim().to_string())).collect()
}

fn probe_from_container(
    sim: &SimHost,
    name: &str,
    gw_mac: &str,
    targets: &[&str],
) -> std::collections::BTreeMap<String, String> {
    let ip = sim.ip_of(name);
    let mut args = vec!["exec", name, "python3", "-c", SYN_PROBE_PY, "eth0", gw_mac, &ip];
    args.extend_from_slice(targets);
    parse_probe(&sim.dockling_ok(&args))
}

fn probe_from_world(sim: &SimHost, targets: &[&str]) -> std::collections::BTreeMap<String, String> {
    let script = sim.write_file("syn_probe.py", SYN_PROBE_PY);
    let wan_mac = sim.sh_ok("cat /sys/class/net/wan0/address").trim().to_string();
    let cmd = format!("{} {} wan1 {wan_mac} {WORLD_IP} {}", python(), script.display(), targets.join(" "));
    parse_probe(&sim.world_sh_ok(&cmd))
}

fn bridge_mac(sim: &SimHost) -> String {
    sim.sh_ok(&format!("cat /sys/class/net/{BRIDGE}/address")).trim().to_string()
}

/// Starts a listener in the simulated host and waits until it listens.
fn host_listener(sim: &SimHost, ip: &str, port: u16) -> Proc {
    let script = sim.write_file(&format!("listen-{port}.py"), LISTEN_PY);
    let p = sim.spawn_host(&format!("exec {} {} {ip} {port}", python(), script.display()));
    poll(&format!("a sim-host listener on {ip}:{port}"), WAIT, || {
        let o = sim.sh(&format!("ss -Htln 'sport = :{port}'"));
        if o.stdout.contains(&format!("{ip}:{port}")) {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    p
}

/// Deletes every DROP rule of one of dockling's chains by hand (the positive controls):
/// `stage` is "raw" (the loopback drop) or "forward" (the unpublished-port drop), in
/// whichever driver's rules the test runs with.
fn delete_drops(sim: &SimHost, stage: &str) {
    if firewall_driver() == "nftables" {
        let rules = sim.sh_ok(&format!("nft -a list chain ip dockling {stage}"));
        let handles: Vec<&str> = rules
            .lines()
            .filter(|l| l.contains(" drop # handle "))
            .filter_map(|l| l.split(" # handle ").nth(1))
            .collect();
        assert!(!handles.is_empty(), "no drop rule in chain {stage}:\n{rules}");
        for h in handles {
            sim.sh_ok(&format!("nft delete rule ip dockling {stage} handle {}", h.trim()));
        }
        return;
    }
    let (table, chain) = if stage == "raw" { ("raw", "DOCKLING-PREROUTING") } else { ("filter", "DOCKLING-FORWARD") };
    let rules = sim.sh_ok(&format!("iptables -t {table} -S {chain}"));
    let drops: Vec<&str> = rules.lines().filter(|l| l.ends_with("-j DROP")).collect();
    assert!(!drops.is_empty(), "no DROP rule in {table} {chain}:\n{rules}");
    for rule in drops {
        sim.sh_ok(&format!("iptables -t {table} -D {}", rule.trim_start_matches("-A ")));
    }
}

#[test]
fn a_container_cannot_reach_services_on_the_hosts_loopback() {
    let sim = SimHost::new("localnet");
    sim.image("python");
    let _lo = host_listener(&sim, "127.0.0.1", 7001);
    let _any = host_listener(&sim, "0.0.0.0", 7002);
    let p = sim.cname("prober");
    sim.run_d(&["--name", &p, "-p", "8080:8000", "python", "python3", "-m", "http.server", "8000"]);
    // The host still reaches a published port through 127.0.0.1 (OUTPUT DNAT + masquerade).
    sim.wait_http(false, "http://127.0.0.1:8080/", "Directory listing");
    let gw_mac = bridge_mac(&sim);
    let marker = format!("{GATEWAY}:7002");

    let got = probe_from_container(&sim, &p, &gw_mac, &["127.0.0.1:7001", &marker]);
    assert_eq!(got.get(&marker).map(String::as_str), Some("synack"), "control: the host answers on {marker}: {got:?}");
    assert_eq!(
        got.get("127.0.0.1:7001").map(String::as_str),
        Some("none"),
        "a hand-made SYN to 127.0.0.1:7001 through the gateway must get no answer: {got:?}\n{}",
        sim.dump()
    );

    // Positive control: with dockling's raw DROP gone, the same probe reaches the host's
    // loopback-only service (the hole is real, and the probe sees it).
    delete_drops(&sim, "raw");
    let got = probe_from_container(&sim, &p, &gw_mac, &["127.0.0.1:7001", &marker]);
    assert_eq!(got.get("127.0.0.1:7001").map(String::as_str), Some("synack"), "control: {got:?}");
    sim.finish();
}

#[test]
fn a_neighbour_routing_the_subnet_reaches_only_published_ports() {
    let sim = SimHost::new("routed");
    sim.image("busybox");
    // Bridged frames through iptables too (br_netfilter): container to container must
    // still work. The sysctl is per network namespace.
    let brnf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    let br_netfilter = sim.sh(&format!("echo 1 > {brnf} && cat {brnf}")).stdout.trim() == "1";
    if !br_netfilter {
        eprintln!("br_netfilter is not available: container to container is tested without it");
    }
    let web = sim.cname("web");
    sim.run_d(&["--name", &web, "-p", "8080:80", "busybox", "sh", "-c", &httpd_cmd("web", true)]);
    let ip = sim.ip_of(&web);
    sim.world_sh_ok(&format!("ip route add 10.131.0.0/24 via {HOST_IP}"));

    // Published: the world reaches it. The host itself and another container reach every port.
    sim.wait_http(true, &format!("http://{HOST_IP}:8080/"), "web");
    sim.wait_http(false, &format!("http://{ip}:81/"), "web");
    let get = format!(
        "for i in 1 2 3 4 5; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 81 && exit 0; sleep 1; done; exit 1"
    );
    let o = sim.dockling(&["run", "--rm", "busybox", "sh", "-c", &get]);
    assert!(o.ok() && o.stdout.contains("web"), "container to {ip}:81 (br_netfilter {br_netfilter}):\n{o}");

    // Unpublished, and the published one's container port directly: closed to the world.
    for port in [81, 80] {
        let o = sim.world_sh(&format!("curl -sS --max-time 3 http://{ip}:{port}/"));
        assert!(!o.ok(), "the world reached {ip}:{port} by routing through the host:\n{o}\n{}", sim.dump());
    }
    // Positive control: with dockling's DROP gone, the same route reaches the port.
    delete_drops(&sim, "forward");
    sim.wait_http(true, &format!("http://{ip}:81/"), "web");
    sim.finish();
}

#[test]
fn a_port_published_on_one_address_answers_only_there() {
    let sim = SimHost::new("bound");
    sim.image("busybox");
    sim.image("python");
    sim.sh_ok(&format!("ip addr add {EXTRA_IP}/24 dev wan0"));
    let (lo, ex, c) = (sim.cname("lo"), sim.cname("extra"), sim.cname("client"));
    sim.run_d(&["--name", &lo, "-p", "127.0.0.1:8080:80", "busybox", "sh", "-c", &httpd_cmd("lo-bound", false)]);
    sim.run_d(&[
        "--name",
        &ex,
        "-p",
        &format!("{EXTRA_IP}:8081:80"),
        "busybox",
        "sh",
        "-c",
        &httpd_cmd("extra-bound", false),
    ]);
    sim.run_d(&["--name", &c, "python", "sleep", "100000"]);

    // Where they answer.
    sim.wait_http(false, "http://127.0.0.1:8080/", "lo-bound");
    sim.wait_http(false, &format!("http://{EXTRA_IP}:8081/"), "extra-bound");
    sim.wait_http(true, &format!("http://{EXTRA_IP}:8081/"), "extra-bound");
    let url = format!("http://{EXTRA_IP}:8081/");
    let o = sim.dockling_ok(&["exec", &c, "python3", "-c", GET_PY, &url]);
    assert!(o.contains(&format!("{url} ok extra-bound")), "another container reaches {url} (hairpin):\n{o}");

    // Nowhere else: from the host...
    for url in [
        format!("http://{HOST_IP}:8080/"),
        format!("http://{EXTRA_IP}:8080/"),
        format!("http://{GATEWAY}:8080/"),
        "http://127.0.0.1:8081/".to_string(),
        format!("http://{HOST_IP}:8081/"),
        format!("http://{GATEWAY}:8081/"),
    ] {
        let o = sim.host_get(&url);
        assert!(!o.ok(), "the host reached {url}:\n{o}");
    }
    // ...from the world...
    for url in
        [format!("http://{HOST_IP}:8080/"), format!("http://{EXTRA_IP}:8080/"), format!("http://{HOST_IP}:8081/")]
    {
        let o = sim.world_get(&url);
        assert!(!o.ok(), "the world reached {url}:\n{o}");
    }
    let marker = format!("{EXTRA_IP}:8081");
    let got = probe_from_world(&sim, &["127.0.0.1:8080", &marker]);
    assert_eq!(got.get(&marker).map(String::as_str), Some("synack"), "control: the world reaches {marker}: {got:?}");
    assert_eq!(
        got.get("127.0.0.1:8080").map(String::as_str),
        Some("none"),
        "a hand-made SYN from the world to 127.0.0.1:8080 must get no answer: {got:?}\n{}",
        sim.dump()
    );
    // ...and from another container.
    let urls: Vec<String> = [
        format!("{HOST_IP}:8080"),
        format!("{EXTRA_IP}:8080"),
        format!("{GATEWAY}:8080"),
        format!("{HOST_IP}:8081"),
        format!("{GATEWAY}:8081"),
    ]
    .iter()
    .map(|a| format!("http://{a}/"))
    .collect();
    let mut args = vec!["exec", c.as_str(), "python3", "-c", GET_PY];
    args.extend(urls.iter().map(String::as_str));
    let o = sim.dockling_ok(&args);
    for url in &urls {
        assert!(o.contains(&format!("{url} err")), "another container reached {url}:\n{o}");
    }
    let got = probe_from_container(&sim, &c, &bridge_mac(&sim), &["127.0.0.1:8080", &marker]);
    assert_eq!(got.get(&marker).map(String::as_str), Some("synack"), "control: {got:?}");
    assert_eq!(got.get("127.0.0.1:8080").map(String::as_str), Some("none"), "from a container: {got:?}");
    sim.finish();
}

/// Docker's chains as a Docker host has them (docker0 and its container need not exist:
/// only the rules matter), with FORWARD's policy DROP.
const DOCKER_RULES: &str = "
iptables -P FORWARD DROP
iptables -N DOCKER
iptables -N DOCKER-USER
iptables -N DOCKER-ISOLATION-STAGE-1
iptables -N DOCKER-ISOLATION-STAGE-2
iptables -A FORWARD -j DOCKER-USER
iptables -A FORWARD -j DOCKER-ISOLATION-STAGE-1
iptables -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
iptables -A FORWARD -o docker0 -j DOCKER
iptables -A FORWARD -i docker0 ! -o docker0 -j ACCEPT
iptables -A FORWARD -i docker0 -o docker0 -j ACCEPT
iptables -A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
iptables -A DOCKER ! -i docker0 -o docker0 -j DROP
iptables -A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
iptables -A DOCKER-ISOLATION-STAGE-1 -j RETURN
iptables -A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
iptables -A DOCKER-ISOLATION-STAGE-2 -j RETURN
iptables -A DOCKER-USER -j RETURN
iptables -t nat -N DOCKER
iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
iptables -t nat -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
iptables -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
iptables -t nat -A DOCKER -i docker0 -j RETURN
iptables -t nat -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8000 -j DNAT --to-destination 172.17.0.2:80
iptables -t raw -A PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP
";

/// The lines of `iptables-save` that belong to Docker (its chains and the jumps to them).
fn docker_lines(sim: &SimHost) -> Vec<String> {
    normalize_rules(&sim.firewall_rules())
        .into_iter()
        .filter(|l| l.contains("DOCKER") || l.contains("docker0"))
        .collect()
}

#[test]
fn dockling_works_beside_docker_and_leaves_its_rules_alone() {
    let sim = SimHost::new("docker-host");
    sim.image("busybox");
    sim.sh_ok(DOCKER_RULES);
    let before = normalize_rules(&sim.firewall_rules());
    let docker_before = docker_lines(&sim);
    assert!(docker_before.len() > 20, "{docker_before:#?}");
    let peer = sim.write_file("peer_server.py", PEER_SERVER_PY);
    let _server = sim.spawn_world(&format!("exec {} -u {} 7000", python(), peer.display()));
    sim.wait_http(false, &format!("http://{WORLD_IP}:7000/"), "peer=");

    let web = sim.cname("web");
    sim.run_d(&["--name", &web, "-p", "8080:80", "busybox", "sh", "-c", &httpd_cmd("beside-docker", false)]);
    sim.wait_http(true, &format!("http://{HOST_IP}:8080/"), "beside-docker");
    let get = format!(
        "for i in 1 2 3 4 5; do r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {WORLD_IP} 7000) && [ -n \"$r\" ] && {{ echo \"$r\"; exit 0; }}; sleep 1; done; exit 1"
    );
    let o = sim.dockling(&["run", "--rm", "busybox", "sh", "-c", &get]);
    assert!(o.ok() && o.stdout.contains(&format!("peer={HOST_IP}")), "egress beside Docker's chains:\n{o}");
    assert_eq!(docker_lines(&sim), docker_before, "dockling changed Docker's rules while running");
    assert!(sim.firewall_rules().contains(":FORWARD DROP"), "FORWARD's policy is theirs to keep");

    sim.dockling_ok(&["rm", "-f", &web]);
    sim.dockling_ok(&["network", "prune"]);
    let after = normalize_rules(&sim.firewall_rules());
    assert_eq!(after, before, "after rm and prune, the rules must be exactly as before dockling");
    sim.finish();
}
