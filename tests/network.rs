//! Networking (issue 3). Every test moves real bytes between namespaces of
//! its own simulated host: containers, the sim host (198.51.100.1) and the
//! "world" (198.51.100.2 and 203.0.113.1).

mod common;
use common::*;
use std::thread;
use std::time::Duration;

/// busybox httpd serving BODY at / on port 80 (absolute paths: no PATH assumption).
fn httpd_cmd(body: &str) -> String {
    format!("mkdir -p /www && echo {} > /www/index.html && exec /usr/sbin/httpd -f -p 80 -h /www", shq(body))
}

/// A busybox shell loop doing `GET /` on HOST:PORT with nc (HTTP/1.0), up to
/// 5 tries; prints the whole response. (busybox-static's wget is not used: it
/// crashes in the busybox image.)
fn http_get_cmd(host: &str, port: u16) -> String {
    format!(
        "for i in 1 2 3 4 5; do r=$(printf 'GET / HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' | nc -w 5 {host} {port}) \
         && [ -n \"$r\" ] && {{ echo \"$r\"; exit 0; }}; sleep 1; done; exit 1"
    )
}

/// Last non-blank line of an output (the body of a one-line HTTP response).
fn last_line(s: &str) -> &str {
    s.lines().map(|l| l.trim()).rfind(|l| !l.is_empty()).unwrap_or("")
}

/// Start the peer-reporting server in the world on PORT and wait until it answers.
fn start_world_peer_server(sim: &SimHost, port: u16) -> Proc {
    let script = sim.write_file("peer_server.py", PEER_SERVER_PY);
    let p = sim.spawn_world(&format!("exec {} -u {} {port}", python(), script.display()));
    sim.wait_http(false, &format!("http://{WORLD_IP}:{port}/"), "peer=");
    p
}

/// Start a busybox httpd container publishing `publish` and wait until it
/// answers on its own address; returns (id, ip).
fn start_httpd(sim: &SimHost, name: &str, publish: Option<&str>, body: &str) -> (String, String) {
    let cmd = httpd_cmd(body);
    let mut args = vec!["--name", name];
    if let Some(p) = publish {
        args.extend(["-p", p]);
    }
    args.extend(["busybox", "sh", "-c", &cmd]);
    let id = sim.run_d(&args);
    let ip = sim.ip_of(name);
    sim.wait_http(false, &format!("http://{ip}:80/"), body);
    (id, ip)
}

/// Poll until nothing of the container's network is left in the sim host.
fn assert_network_gone(sim: &SimHost, what: &str, name: &str, ip: &str, port: u16) {
    let mut why = String::new();
    let ok = wait_until(WAIT, || {
        why.clear();
        let rules = sim.firewall_rules();
        for l in rules.lines().filter(|l| !l.starts_with('#') && mentions_ip(l, ip)) {
            why.push_str(&format!("iptables rule mentions {ip}: {l}\n"));
        }
        for l in rules_mentioning_port(&rules, port) {
            why.push_str(&format!("iptables rule mentions port {port}: {l}\n"));
        }
        for v in sim.veths() {
            why.push_str(&format!("veth link left: {v}\n"));
        }
        if sim.netns_names().contains(name) {
            why.push_str(&format!("netns name {name} left\n"));
        }
        why.is_empty()
    });
    assert!(ok, "{what}: the container's network was not cleaned up:\n{why}\n{}", sim.dump());
}

/// While running: veth named veth+7 hex of the id, netns named after the
/// container, DNAT rule for the port, gateway.
fn assert_network_present(sim: &SimHost, name: &str, id: &str, ip: &str, port: u16) {
    let veth = format!("veth{}", &id[..7]);
    let links = sim.links();
    assert!(links.contains(&veth), "expected host veth {veth}; links: {links:?}");
    assert!(links.contains(BRIDGE), "expected bridge {BRIDGE}; links: {links:?}");
    let ns = sim.netns_names();
    assert!(ns.contains(name), "expected netns name {name}; ip netns: {ns:?}");
    let rules = sim.firewall_rules();
    let dnat = |l: &str| l.contains("DNAT") || l.contains("dnat to");
    assert!(rules.lines().any(|l| dnat(l) && mentions_ip(l, ip)), "expected a DNAT rule to {ip}:\n{rules}");
    assert!(!rules_mentioning_port(&rules, port).is_empty(), "expected rules for port {port}:\n{rules}");
    let gw = sim.inspect(name).path("NetworkSettings.Gateway").as_str().unwrap_or("").to_string();
    assert_eq!(gw, GATEWAY);
}

/// The next container gets the freed address again.
fn assert_ip_reused(sim: &SimHost, ip: &str) {
    let next = sim.cname("next");
    sim.run_d(&["--name", &next, "busybox", "sleep", "1000"]);
    assert_eq!(sim.ip_of(&next), ip, "the next container should get the freed address again");
    sim.dockling_ok(&["rm", "-f", &next]);
}

#[test]
fn container_reaches_world_through_masquerade() {
    let sim = SimHost::new("egress");
    sim.image("busybox");
    let _server = start_world_peer_server(&sim, 7000);
    for target in [WORLD_IP, INTERNET_IP] {
        let o = sim.dockling(&["run", "--rm", "busybox", "sh", "-c", &http_get_cmd(target, 7000)]);
        assert!(o.ok(), "container could not reach {target}:7000\n{o}\n{}", sim.dump());
        assert_eq!(
            last_line(&o.stdout),
            format!("peer={HOST_IP}"),
            "the world must see the sim host's address (MASQUERADE), not the container's\n{o}"
        );
    }
    sim.finish();
}

#[test]
fn published_port_serves_world_and_host() {
    let sim = SimHost::new("publish");
    sim.image("python");
    let name = sim.cname("web");
    sim.run_d(&["--name", &name, "-p", "5000:5000", "python", "python3", "-m", "http.server", "5000"]);

    // from the world, to the sim host's address
    let body = sim.wait_http(true, &format!("http://{HOST_IP}:5000/"), "Directory listing");
    assert!(body.contains("Directory listing"), "{body}");
    // the server saw the world's real address (in-kernel DNAT, no proxy)
    let logs = poll("http.server to log the world's request", WAIT, || {
        let o = sim.dockling(&["logs", &name]);
        if o.stderr.contains(WORLD_IP) || o.stdout.contains(WORLD_IP) {
            Ok(o)
        } else {
            Err(o.to_string())
        }
    });
    assert!(logs.stderr.contains("GET / "), "{logs}");

    // from the sim host itself, to 127.0.0.1 and to its own address
    sim.wait_http(false, "http://127.0.0.1:5000/", "Directory listing");
    sim.wait_http(false, &format!("http://{HOST_IP}:5000/"), "Directory listing");

    // ps shows the published port
    let row = sim.ps_row(&name).unwrap();
    assert!(row.contains("0.0.0.0:5000->5000/tcp"), "ps PORTS column: {row}");
    let j = sim.inspect(&name);
    assert_eq!(
        j.path("NetworkSettings.Ports").get("5000/tcp").idx(0).get("HostPort").as_str(),
        Some("5000"),
        "{:?}",
        j.path("NetworkSettings.Ports")
    );
    sim.finish();
}

#[test]
fn hairpin_and_container_to_container() {
    let sim = SimHost::new("hairpin");
    sim.image("busybox");
    let c1 = sim.cname("c1");
    let (_, ip1) = start_httpd(&sim, &c1, Some("5000:80"), "hello-from-c1");

    // another container to the published port on the sim host's address (hairpin)
    let o = sim.dockling(&["run", "--rm", "busybox", "sh", "-c", &http_get_cmd(HOST_IP, 5000)]);
    assert!(o.ok(), "hairpin to {HOST_IP}:5000 failed\n{o}\n{}", sim.dump());
    assert_eq!(last_line(&o.stdout), "hello-from-c1", "{o}");

    // container to container, directly by address
    let o = sim.dockling(&["run", "--rm", "busybox", "sh", "-c", &http_get_cmd(&ip1, 80)]);
    assert!(o.ok(), "container to {ip1}:80 failed\n{o}\n{}", sim.dump());
    assert_eq!(last_line(&o.stdout), "hello-from-c1", "{o}");

    // and the same published port from the world and 127.0.0.1
    sim.wait_http(true, &format!("http://{HOST_IP}:5000/"), "hello-from-c1");
    sim.wait_http(false, "http://127.0.0.1:5000/", "hello-from-c1");
    sim.finish();
}

const UDP_ECHO_PY: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', 80))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b'echo:' + d + b' from:' + a[0].encode(), a)
"#;

const UDP_CLIENT_PY: &str = r#"
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 20
n = 0
while time.time() < deadline:
    n += 1
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.connect((host, port))
    try:
        s.send(('ping-%d' % n).encode())
        print(s.recv(2048).decode())
        sys.exit(0)
    except (socket.timeout, ConnectionRefusedError):
        pass
    finally:
        s.close()
    time.sleep(0.2)
print('no reply')
sys.exit(1)
"#;

#[test]
fn published_udp_port_echoes_to_world() {
    let sim = SimHost::new("udp");
    sim.image("python");
    let name = sim.cname("udp");
    sim.run_d(&["--name", &name, "-p", "8080:80/udp", "python", "python3", "-c", UDP_ECHO_PY]);
    sim.wait_running_pid(&name);
    let client = sim.write_file("udp_client.py", UDP_CLIENT_PY);
    let o = sim.world_sh(&format!("{} {} {HOST_IP} 8080", python(), client.display()));
    assert!(o.ok(), "no UDP reply from {HOST_IP}:8080\n{o}\n{}", sim.dump());
    let reply = o.stdout.trim();
    assert!(
        reply.starts_with("echo:ping-") && reply.ends_with(&format!(" from:{WORLD_IP}")),
        "the datagram must reach the container with the world's address and come back: {reply:?}"
    );
    let row = sim.ps_row(&name).unwrap();
    assert!(row.contains("0.0.0.0:8080->80/udp"), "ps PORTS column: {row}");
    // the UDP mapping does not publish TCP
    let o = sim.world_sh(&format!("curl -sS --max-time 3 http://{HOST_IP}:8080/"));
    assert!(!o.ok(), "TCP 8080 must not be forwarded by a /udp mapping\n{o}");
    sim.finish();
}

#[test]
fn cleanup_after_stop() {
    let sim = SimHost::new("clean-stop");
    sim.image("busybox");
    let name = sim.cname("web");
    let (id, ip) = start_httpd(&sim, &name, Some("5000:80"), "up");
    assert_network_present(&sim, &name, &id, &ip, 5000);
    sim.dockling_ok(&["stop", "-t", "1", &name]);
    assert_network_gone(&sim, "after stop", &name, &ip, 5000);
    let o = sim.world_get(&format!("http://{HOST_IP}:5000/"));
    assert!(!o.ok(), "the port must not answer after stop\n{o}");
    assert_ip_reused(&sim, &ip);
    sim.dockling_ok(&["rm", &name]);
    sim.finish();
}

#[test]
fn cleanup_after_rm_force() {
    let sim = SimHost::new("clean-rm");
    sim.image("busybox");
    let name = sim.cname("web");
    let (id, ip) = start_httpd(&sim, &name, Some("5000:80"), "up");
    assert_network_present(&sim, &name, &id, &ip, 5000);
    sim.dockling_ok(&["rm", "-f", &name]);
    assert_network_gone(&sim, "after rm -f", &name, &ip, 5000);
    assert_ip_reused(&sim, &ip);
    sim.finish();
}

#[test]
fn cleanup_after_container_exits_by_itself() {
    let sim = SimHost::new("clean-exit");
    sim.image("busybox");
    let name = sim.cname("short");
    let id = sim.run_d(&["--name", &name, "-p", "5000:80", "busybox", "sh", "-c", "sleep 1000; exit 0"]);
    let pid = sim.wait_running_pid(&name);
    let ip = sim.ip_of(&name);
    assert_network_present(&sim, &name, &id, &ip, 5000);
    // end the container from inside: kill its sleep, so its shell exits 0
    let kids = poll("the container's sleep process", WAIT, || {
        let o = sim.sh(&format!("ps -o pid= --ppid {pid}"));
        let k: Vec<String> = o.stdout.split_whitespace().map(|s| s.to_string()).collect();
        if k.is_empty() {
            Err(o.to_string())
        } else {
            Ok(k)
        }
    });
    sim.sh_ok(&format!("kill {}", kids.join(" ")));
    assert_eq!(sim.wait_exited(&name), 0);
    assert_network_gone(&sim, "after the container exited by itself", &name, &ip, 5000);
    assert_ip_reused(&sim, &ip);
    sim.finish();
}

#[test]
fn cleanup_after_monitor_killed() {
    let sim = SimHost::new("clean-mon");
    sim.image("busybox");
    let name = sim.cname("web");
    let (id, ip) = start_httpd(&sim, &name, Some("5000:80"), "up");
    assert_network_present(&sim, &name, &id, &ip, 5000);
    let mon = sim.inspect(&name).path("State.MonitorPid").as_i64().unwrap_or(0);
    assert!(mon > 0, "inspect must expose State.MonitorPid");
    sim.sh_ok(&format!("kill -9 {mon}"));
    // stop must still stop the container and clean its network up
    let o = sim.dockling(&["stop", "-t", "1", &name]);
    assert!(o.ok(), "stop after the monitor was killed failed\n{o}");
    let row = sim.ps_row(&name).unwrap();
    assert!(row.contains("Exited"), "{row}");
    assert_network_gone(&sim, "after monitor kill + stop", &name, &ip, 5000);
    assert_ip_reused(&sim, &ip);
    let o = sim.dockling(&["rm", "-f", &name]);
    assert!(o.ok(), "{o}");
    sim.finish();
}

#[test]
fn bad_and_taken_ports_are_rejected() {
    let sim = SimHost::new("badports");
    sim.image("busybox");
    // syntax errors, before anything exists
    sim.assert_rejected(&["run", "-d", "-p", "abc", "busybox", "sleep", "1000"], "-p abc");
    sim.assert_rejected(&["run", "-d", "-p", "70000:80", "busybox", "sleep", "1000"], "-p 70000:80");

    // a container owning 5000
    let owner = sim.cname("owner");
    start_httpd(&sim, &owner, Some("5000:80"), "owner");
    sim.assert_rejected(&["run", "-d", "-p", "abc", "busybox", "sleep", "1000"], "-p abc");
    sim.assert_rejected(&["run", "-d", "-p", "70000:80", "busybox", "sleep", "1000"], "-p 70000:80");
    sim.assert_rejected(&["run", "-d", "-p", "5002:99999", "busybox", "sleep", "1000"], "-p 5002:99999");
    sim.assert_rejected(&["run", "-d", "-p", "1.2.3:80:80", "busybox", "sleep", "1000"], "-p 1.2.3:80:80");
    sim.assert_rejected(&["run", "-d", "-p", "5000:80", "busybox", "sleep", "1000"], "-p 5000:80 taken by a container");
    sim.assert_rejected(&["run", "-p", "5000:8080", "busybox", "true"], "-p 5000:8080 taken (foreground)");

    // a port bound by a process of the sim host
    let _listener = sim.spawn_host(&format!(
        "exec {} -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"0.0.0.0\", 5001)); s.listen(); time.sleep(100000)'",
        python()
    ));
    poll("sim-host listener on 5001", WAIT, || {
        let o = sim.sh("ss -Htln 'sport = :5001'");
        if o.stdout.contains(":5001") {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    sim.assert_rejected(&["run", "-d", "-p", "5001:80", "busybox", "sleep", "1000"], "-p 5001 bound by a host process");

    // -p makes no sense with the host's network
    sim.assert_rejected(
        &["run", "-d", "--network", "host", "-p", "5003:80", "busybox", "sleep", "1000"],
        "-p with --network host",
    );

    // the owner still works after all those refusals
    sim.wait_http(true, &format!("http://{HOST_IP}:5000/"), "owner");
    sim.finish();
}

#[test]
fn twenty_containers_started_in_parallel() {
    const N: usize = 20;
    let sim = SimHost::new("parallel");
    sim.image("busybox");
    let names: Vec<String> = (0..N).map(|i| sim.cname(&format!("p{i}"))).collect();
    let outs: Vec<Out> = thread::scope(|s| {
        let hs: Vec<_> = names
            .iter()
            .map(|n| {
                let sim = &sim;
                s.spawn(move || {
                    let cmd = httpd_cmd(&format!("i-am-{n}"));
                    sim.dockling(&["run", "-d", "--name", n, "busybox", "sh", "-c", &cmd])
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outs {
        assert!(o.ok() && o.stdout.trim().len() == 64, "parallel run -d failed\n{o}");
    }
    let ips: Vec<String> = names.iter().map(|n| sim.ip_of(n)).collect();
    let distinct: std::collections::BTreeSet<&String> = ips.iter().collect();
    assert_eq!(distinct.len(), N, "addresses are not distinct: {ips:?}");
    for (n, ip) in names.iter().zip(&ips) {
        sim.wait_http(false, &format!("http://{ip}:80/"), &format!("i-am-{n}"));
    }
    let veths = sim.veths();
    assert_eq!(veths.len(), N, "one host veth per container: {veths:?}");
    sim.finish();
}

#[test]
fn network_none_has_only_loopback() {
    let sim = SimHost::new("netnone");
    sim.image("busybox");
    let o = sim.dockling(&["run", "--rm", "--network", "none", "busybox", "cat", "/proc/net/dev"]);
    assert!(o.ok(), "{o}");
    let ifaces: Vec<&str> = o
        .stdout
        .lines()
        .filter_map(|l| l.split_once(':').map(|(i, _)| i.trim()))
        .filter(|i| !i.contains('|') && !i.is_empty())
        .collect();
    assert_eq!(ifaces, vec!["lo"], "--network none must have only lo\n{o}");
    assert!(sim.veths().is_empty(), "--network none must not create a veth");
    sim.finish();
}

#[test]
fn network_host_sees_host_interfaces() {
    let sim = SimHost::new("nethost");
    sim.image("busybox");
    let o = sim.dockling(&["run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev"]);
    assert!(o.ok(), "{o}");
    assert!(o.stdout.contains("wan0:"), "--network host must see the sim host's wan0\n{o}");
    assert!(sim.veths().is_empty(), "--network host must not create a veth");
    // and reaches the world from the host's own address
    let _server = start_world_peer_server(&sim, 7000);
    let o = sim.dockling(&["run", "--rm", "--network", "host", "busybox", "sh", "-c", &http_get_cmd(WORLD_IP, 7000)]);
    assert!(o.ok(), "{o}");
    assert_eq!(last_line(&o.stdout), format!("peer={HOST_IP}"), "{o}");
    sim.finish();
}

#[test]
fn shared_rules_are_set_up_once_and_pruned_when_unused() {
    let sim = SimHost::new("shared");
    sim.image("busybox");
    let a = sim.cname("a");
    let b = sim.cname("b");
    assert_eq!(sim.sh_ok("cat /proc/sys/net/ipv4/ip_forward").trim(), "0", "a fresh host forwards nothing");
    sim.run_d(&["--name", &a, "-p", "8081:80", "busybox", "sleep", "300"]);
    sim.run_d(&["--name", &b, "-p", "8082:80", "busybox", "sleep", "300"]);
    assert_eq!(sim.sh_ok("cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    let rules = sim.firewall_rules();
    let expected: &[&str] = match firewall_driver() {
        "nftables" => &[
            "ip daddr != 127.0.0.0/8 fib daddr type local jump published",
            "fib daddr type local jump published",
            "iifname \"dockling0\" ip daddr 127.0.0.0/8 drop",
            "iifname != \"dockling0\" oifname \"dockling0\" drop",
            "ip saddr 10.131.0.0/24 oifname != \"dockling0\" masquerade",
        ],
        _ => &[
            "-A POSTROUTING -j DOCKLING-POSTROUTING",
            "-A FORWARD -j DOCKLING-FORWARD",
            "-A PREROUTING ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKLING-DNAT",
            "-A PREROUTING -j DOCKLING-PREROUTING",
            "-A DOCKLING-FORWARD ! -i dockling0 -o dockling0 -j DROP",
            "-A DOCKLING-POSTROUTING -s 10.131.0.0/24 ! -o dockling0 -j MASQUERADE",
        ],
    };
    for shared in expected {
        let n = rules.lines().filter(|l| l.trim() == *shared).count();
        assert_eq!(n, 1, "{shared:?} appears {n} times:\n{rules}");
    }
    // Prune refuses while containers use the network.
    let o = sim.dockling_ok(&["network", "prune"]);
    assert!(o.contains("in use"), "{o}");
    assert!(sim.links().contains(BRIDGE));
    sim.dockling_ok(&["rm", "-f", &a, &b]);
    let o = sim.dockling_ok(&["network", "prune"]);
    assert!(o.contains(BRIDGE), "{o}");
    assert!(!sim.links().contains(BRIDGE), "bridge left after prune");
    let rules = sim.firewall_rules();
    assert!(!rules.contains("DOCKLING"), "chains left after prune:\n{rules}");
    assert!(!rules.contains("table ip dockling"), "nftables table left after prune:\n{rules}");
    let fwd = sim.sh_ok("cat /proc/sys/net/ipv4/ip_forward");
    assert_eq!(fwd.trim(), "0", "prune puts ip_forward back as it was");
    let again = sim.dockling_ok(&["network", "prune"]);
    assert!(again.trim().is_empty(), "a second prune has nothing to say: {again:?}");
    sim.finish();
}

#[test]
fn subnet_overlapping_a_host_route_is_refused_and_another_can_be_chosen() {
    let sim = SimHost::new("subnet");
    sim.image("busybox");
    sim.sh_ok(&format!("ip route add 10.131.0.0/16 via {WORLD_IP}"));
    sim.assert_rejected(&["run", "-d", "busybox", "sleep", "300"], "subnet overlapping a host route");
    let o = sim.dockling(&["run", "--rm", "busybox", "true"]);
    assert!(o.stderr.contains("overlaps"), "{o}");
    let name = sim.cname("other");
    let cmd = httpd_cmd("other-subnet");
    sim.run_d(&["--subnet", "10.132.0.0/24", "--name", &name, "busybox", "sh", "-c", &cmd]);
    let ip = sim.inspect(&name).path("NetworkSettings.IPAddress").as_str().unwrap_or_default().to_string();
    assert_eq!(ip, "10.132.0.2", "the chosen subnet is used");
    sim.wait_http(false, &format!("http://{ip}:80/"), "other-subnet");
    // The subnet is fixed while in use: asking for another is an error, not ignored.
    sim.assert_rejected(
        &["run", "-d", "--subnet", "10.133.0.0/24", "busybox", "sleep", "300"],
        "a different --subnet while one is in use",
    );
    sim.dockling_ok(&["rm", "-f", &name]);
    sim.sh_ok("ip route del 10.131.0.0/16");
    sim.finish();
}

#[test]
fn a_port_held_by_a_container_whose_monitor_died_is_freed_by_the_next_run() {
    let sim = SimHost::new("orphan-port");
    sim.image("busybox");
    let a = sim.cname("a");
    sim.run_d(&["--name", &a, "-p", "5001:80", "busybox", "sleep", "300"]);
    let pid = sim.wait_running_pid(&a);
    let mon = sim.inspect(&a).path("State.MonitorPid").as_i64().unwrap_or(0);
    assert!(mon > 0);
    // Both die with no one to tear down: the lease and the DNAT rule stay behind...
    sim.sh_ok(&format!("kill -9 {mon} {pid}"));
    let b = sim.cname("b");
    // ...until the next run that needs the port finishes that teardown and proceeds.
    let cmd = httpd_cmd("second");
    sim.run_d(&["--name", &b, "-p", "5001:80", "busybox", "sh", "-c", &cmd]);
    sim.wait_http(true, &format!("http://{HOST_IP}:5001/"), "second");
    let dnat = sim.firewall_rules().lines().filter(|l| l.contains("dport 5001 ")).count();
    assert_eq!(dnat, 1, "exactly one DNAT rule for the port:\n{}", sim.firewall_rules());
    sim.finish();
}

#[test]
fn a_netns_still_held_after_stop_keeps_only_a_switched_off_veth() {
    let sim = SimHost::new("heldns");
    sim.image("busybox");
    let first = sim.cname("first");
    let (id, ip) = start_httpd(&sim, &first, Some("5000:80"), "first");
    let veth = format!("veth{}", &id[..7]);
    // A host service on the gateway address, for the held netns to knock on.
    let _listener = sim.spawn_host(&format!(
        "exec {} -c {}",
        python(),
        shq(&format!(
            "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('{GATEWAY}',7777))\ns.listen(64)\ntime.sleep(600)"
        ))
    ));
    // Someone else is inside the container's netns (as after `ip netns exec first sh`).
    let _holder = sim.spawn_host(&format!("exec ip netns exec {first} sleep 4321"));
    let holder = poll("the holder inside the netns", WAIT, || {
        let o = sim.sh(&format!("ip netns pids {first}"));
        let pids: Vec<String> = o.stdout.split_whitespace().map(str::to_string).collect();
        let ours = sim.dockling_ok(&["inspect", "-f", "{{.State.Pid}}", &first]).trim().to_string();
        match pids.into_iter().find(|p| *p != ours) {
            Some(p) if o.stdout.split_whitespace().count() >= 2 => Ok(p),
            _ => Err(o.to_string()),
        }
    });
    let knock = format!(
        "nsenter --net=/proc/{holder}/ns/net {} -c {}",
        python(),
        shq(&format!("import socket; socket.create_connection(('{GATEWAY}', 7777), timeout=2); print('connected')"))
    );
    // Positive control: from the netns the host's service answers while the container runs.
    poll("the held netns reaches the gateway", WAIT, || {
        let o = sim.sh(&knock);
        if o.stdout.contains("connected") {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    sim.dockling_ok(&["stop", "-t", "1", &first]);
    // The name and the rules are gone; the veth lives on with the netns, switched off.
    assert!(!sim.netns_names().contains(&first), "the netns name must go with the container");
    let rules = sim.firewall_rules();
    assert!(!rules.lines().any(|l| mentions_ip(l, &ip)), "no rule may name {ip} after stop:\n{rules}");
    let link = sim.sh_ok(&format!("ip -o link show dev {veth}"));
    let flags = link.split(['<', '>']).nth(1).unwrap_or_default();
    assert!(!flags.split(',').any(|f| f == "UP"), "the held veth must be switched off: {link}");
    // The holder cannot switch it back on from inside: toggling its own end changes nothing.
    sim.sh(&format!("nsenter --net=/proc/{holder}/ns/net sh -c 'ip link set eth0 down; ip link set eth0 up'"));
    // With real packets: the held netns reaches nothing any more.
    let o = sim.sh(&knock);
    assert!(!o.stdout.contains("connected"), "the held netns still reaches the host after stop:\n{o}");

    // The next container gets the same address and answers on it, not the old netns.
    let second = sim.cname("second");
    let (_, ip2) = start_httpd(&sim, &second, Some("5000:80"), "second");
    assert_eq!(ip2, ip, "the address is free for the next container");
    let page = sim.wait_http(true, &format!("http://{HOST_IP}:5000/"), "second");
    assert!(page.contains("second"), "{page}");

    // When the holder leaves, the kernel removes the netns and the old veth with it.
    sim.kill_background();
    assert!(
        wait_until(WAIT, || !sim.links().contains(&veth)),
        "the old veth must go with its netns: {:?}",
        sim.links()
    );
    sim.dockling_ok(&["rm", "-f", &second]);
    sim.dockling_ok(&["rm", &first]);
    sim.finish();
}

#[test]
fn rm_f_racing_a_starting_run_leaves_no_rule_behind() {
    let sim = SimHost::new("racerm");
    sim.image("busybox");
    for i in 0..8 {
        let name = sim.cname(&format!("r{i}"));
        let mut run = sim.spawn_dockling(&["run", "-d", "-p", "5000:80", "--name", &name, "busybox", "sleep", "1000"]);
        // rm -f as soon as the name exists, i.e. while run may still be wiring it up.
        let removed = wait_until(WAIT, || {
            let o = sim.dockling(&["rm", "-f", &name]);
            o.ok() || run.has_exited() && !sim.dockling(&["ps", "-aq"]).stdout.contains(|c: char| c.is_ascii_hexdigit())
        });
        assert!(removed, "rm -f {name} never succeeded");
        let _ = run.wait_timeout(Duration::from_secs(30));
        let _ = sim.dockling(&["rm", "-f", &name]);
        let rules = sim.firewall_rules();
        let left = rules_mentioning_port(&rules, 5000);
        assert!(left.is_empty(), "round {i}: rules left after rm -f of a starting container:\n{}", left.join("\n"));
    }
    sim.finish();
}

#[test]
fn init_failing_while_the_network_is_wired_reports_its_own_error_and_leaves_nothing() {
    let sim = SimHost::new("initfail");
    sim.image("busybox");
    let dir = sim.tmp.join("vol");
    std::fs::create_dir_all(&dir).unwrap();
    // The volume target lies under a file: init fails making it, long before `run` has
    // published the port and releases it (the go byte then meets a closed pipe).
    let spec = format!("{}:/bin/busybox/x", dir.display());
    for detach in [false, true] {
        let mut args = vec!["run", "--rm", "-p", "8080:80", "-v", &spec];
        if detach {
            args.insert(1, "-d");
        }
        args.extend(["busybox", "true"]);
        let o = sim.dockling(&args);
        assert_eq!(o.code(), Some(125), "{o}");
        assert_eq!(o.stderr_lines().len(), 1, "one line: {o}");
        assert!(o.stderr.contains("in the container"), "init's own reason, not a broken pipe: {o}");
        let gone = wait_until(WAIT, || {
            sim.dockling_ok(&["ps", "-aq"]).trim().is_empty()
                && rules_mentioning_port(&sim.firewall_rules(), 8080).is_empty()
        });
        assert!(
            gone,
            "a failed run must leave no container and no rule: {}\n{}",
            sim.dockling_ok(&["ps", "-a"]),
            sim.firewall_rules()
        );
    }
    sim.finish();
}

/// The network's firewall driver is fixed while it has rules: a run asking for the other
/// one is refused (125, one line, nothing made); after `network prune` the other one
/// takes over and publishes ports in its own rules.
#[test]
fn the_firewall_driver_is_fixed_until_the_network_is_pruned() {
    let sim = SimHost::new("fwdriver");
    sim.image("busybox");
    let this = firewall_driver();
    let other = if this == "nftables" { "iptables" } else { "nftables" };
    let a = sim.cname("a");
    sim.run_d(&["--name", &a, "-p", "8085:80", "busybox", "sh", "-c", &httpd_cmd("first")]);
    assert_eq!(sim.inspect(&a).path("NetworkSettings.FirewallDriver").as_str(), Some(this));
    sim.wait_http(true, &format!("http://{HOST_IP}:8085/"), "first");

    let b = sim.cname("b");
    let o = sim.dockling(&["--firewall-driver", other, "run", "-d", "--name", &b, "-p", "8086:80", "busybox", "true"]);
    assert_eq!(o.code(), Some(125), "{o}");
    assert_eq!(o.stderr.trim().lines().count(), 1, "one line:\n{o}");
    assert!(o.stderr.contains("network prune"), "{o}");
    assert!(!sim.dockling_ok(&["ps", "-a"]).contains(&b), "nothing made for {b}");
    assert!(rules_mentioning_port(&sim.firewall_rules(), 8086).is_empty(), "no rule for 8086");

    sim.dockling_ok(&["rm", "-f", &a]);
    sim.dockling_ok(&["network", "prune"]);
    sim.run_d(&["--firewall-driver", other, "--name", &b, "-p", "8086:80", "busybox", "sh", "-c", &httpd_cmd("other")]);
    sim.wait_http(true, &format!("http://{HOST_IP}:8086/"), "other");
    let rules = sim.firewall_rules();
    let (theirs, ours) =
        if other == "nftables" { ("dnat to", "DOCKLING-DNAT") } else { ("DOCKLING-DNAT", "table ip dockling") };
    assert!(rules.lines().any(|l| l.contains(theirs) && l.contains("8086")), "{other} publishes 8086:\n{rules}");
    assert!(!rules.contains(ours), "the first driver's rules are gone:\n{rules}");
    sim.dockling_ok(&["rm", "-f", &b]);
    sim.finish();
}

/// `rm -f` of several containers removes their ports and port filters in one batch;
/// when one container's rules were already removed by hand, the batch cannot be applied
/// as is and each container's own teardown still removes the rest.
#[test]
fn rm_f_of_many_removes_every_rule_even_when_some_are_gone() {
    let sim = SimHost::new("rm-many");
    sim.image("busybox");
    let names: Vec<String> = (0..5).map(|i| sim.cname(&format!("m{i}"))).collect();
    for (i, n) in names.iter().enumerate() {
        let port = format!("{}:80", 8090 + i);
        sim.run_d(&["--name", n, "-p", &port, "busybox", "sh", "-c", &httpd_cmd(n)]);
    }
    sim.wait_http(true, &format!("http://{HOST_IP}:8094/"), &names[4]);
    // Remove the first container's port rule by hand, as a crash half-way could have.
    let id0 = sim.inspect(&names[0]).get("Id").as_str().unwrap_or_default().to_string();
    if firewall_driver() == "nftables" {
        let listing = sim.sh_ok("nft -a list chain ip dockling published");
        let handle = listing
            .lines()
            .find(|l| l.contains(&id0[..12]))
            .and_then(|l| l.split(" # handle ").nth(1))
            .unwrap_or_else(|| panic!("no rule of {id0} in:\n{listing}"))
            .trim()
            .to_string();
        sim.sh_ok(&format!("nft delete rule ip dockling published handle {handle}"));
    } else {
        let rule = sim
            .firewall_rules()
            .lines()
            .find(|l| l.starts_with("-A DOCKLING-DNAT") && l.contains(&id0[..12]))
            .unwrap_or_else(|| panic!("no rule of {id0}"))
            .to_string();
        sim.sh_ok(&format!("iptables -t nat {}", rule.replacen("-A ", "-D ", 1)));
    }
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(String::as_str));
    let out = sim.dockling_ok(&args);
    assert_eq!(out.lines().collect::<Vec<_>>(), names.iter().map(String::as_str).collect::<Vec<_>>(), "each key once");
    let rules = sim.firewall_rules();
    for port in 8090..8095 {
        assert!(rules_mentioning_port(&rules, port).is_empty(), "a rule for {port} is left:\n{rules}");
    }
    let filters = sim.bridge_rules();
    assert!(!filters.contains("port-"), "port filters left:\n{filters}");
    sim.finish();
}

/// Where the iptables tools cannot run (here: not on PATH), the default falls back to the
/// nftables driver, says so in one line, and the published port works.
#[test]
fn without_iptables_the_default_falls_back_to_nftables() {
    let sim = SimHost::new("fw-fallback");
    sim.image("busybox");
    let name = sim.cname("web");
    let cmd = format!(
        "env -u DOCKLING_FIREWALL_DRIVER PATH=/nonexistent {} --root {} run -d --name {name} -p 8088:80 busybox sh -c {}",
        bin(),
        sim.root.display(),
        shq(&httpd_cmd("fallback"))
    );
    let o = sim.sh(&cmd);
    assert!(o.ok(), "{o}");
    assert!(o.stderr.contains("using the nftables firewall driver"), "one line says why:\n{o}");
    assert_eq!(o.stderr.trim().lines().count(), 1, "{o}");
    assert_eq!(sim.inspect(&name).path("NetworkSettings.FirewallDriver").as_str(), Some("nftables"));
    sim.wait_http(true, &format!("http://{HOST_IP}:8088/"), "fallback");
    sim.dockling_ok(&["rm", "-f", &name]);
    sim.finish();
}

/// The pod pattern (`--network container:X --pid container:X`): the second container
/// shares the first one's network (the same loopback, the same ports) and sees its
/// processes; nothing of the network is made for it, or left by it.
#[test]
fn a_container_joins_another_ones_network_and_pid_namespaces() {
    let sim = SimHost::new("pod");
    sim.image("busybox");
    let web = sim.cname("web");
    let (_, ip) = start_httpd(&sim, &web, None, "pod-body");
    let rules_before = sim.firewall_rules();
    let links_before = sim.links();
    let net = format!("container:{web}");
    let probe = format!("({}); echo; ps -o comm", http_get_cmd("127.0.0.1", 80));
    let o = sim.dockling(&["run", "--rm", "--network", &net, "--pid", &net, "busybox", "sh", "-c", &probe]);
    assert!(o.ok(), "{o}");
    // The page came over the first container's own loopback, and its httpd is in view.
    assert!(o.stdout.contains("pod-body"), "no page over the shared loopback:\n{o}");
    assert!(o.stdout.lines().any(|l| l.trim() == "httpd"), "the first container's httpd is not in view:\n{o}");
    // The joiner got no address, veth or rule of its own, and its exit took nothing away.
    assert_eq!(sim.firewall_rules(), rules_before, "the joiner changed the rules");
    assert_eq!(sim.links(), links_before, "the joiner left a link behind");
    sim.wait_http(false, &format!("http://{ip}:80/"), "pod-body");

    // Bad input: one line, 125, nothing made.
    let stopped = sim.cname("stopped");
    sim.run_d(&["--name", &stopped, "busybox", "true"]);
    assert!(
        wait_until(WAIT, || sim
            .dockling_ok(&["ps", "-a"])
            .lines()
            .any(|l| l.contains(&stopped) && l.contains("Exited"))),
        "{stopped} never exited"
    );
    let stopped_net = format!("container:{stopped}");
    for (args, want) in [
        (vec!["--network", "container:no-such-thing"], "No such container: no-such-thing"),
        (vec!["--network", &stopped_net], "cannot join network of a non running container"),
        (vec!["--network", &net, "-p", "8080:80"], "conflicting options: port publishing"),
        (vec!["--network", &net, "--hostname", "h"], "conflicting options: hostname"),
        (vec!["--pid", "host"], "invalid --pid"),
    ] {
        let mut full = vec!["run", "--rm"];
        full.extend(args.iter().copied());
        full.extend(["busybox", "true"]);
        let o = sim.dockling(&full);
        assert_eq!(o.code(), Some(125), "{full:?}: {o}");
        assert_eq!(o.stderr_lines().len(), 1, "{full:?}: one line: {o}");
        assert!(o.stderr.contains(want), "{full:?}: {o}");
    }
    let ids = sim.dockling_ok(&["ps", "-aq"]);
    assert_eq!(ids.lines().count(), 2, "no container may have been made by bad input:\n{ids}");
    sim.dockling_ok(&["rm", "-f", &web, &stopped]);
    sim.finish();
}
