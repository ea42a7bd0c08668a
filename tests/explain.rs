//! `--explain` must be the truth: the networking lines that `run --explain -p ...`
//! printed, replayed by a shell in a *fresh* simulated host against a netns of the same
//! name, give the same connectivity (the world reaches the published port; the netns
//! reaches the world, masqueraded).

mod common;
use common::*;

/// Keep the lines a person would type to rebuild the network, without their comments.
fn network_lines(transcript: &str) -> Vec<String> {
    transcript
        .lines()
        .map(|l| l.split("  # ").next().unwrap_or("").trim().to_string())
        .filter(|l| ["ip ", "iptables ", "sysctl ", "nft ", "printf "].iter().any(|p| l.starts_with(p)))
        .collect()
}

/// How the firewall driver under test prints a published port.
fn publish_line() -> &'static str {
    match firewall_driver() {
        "nftables" => "add rule ip dockling published tcp dport 8080 counter dnat to ",
        _ => "-A DOCKLING-DNAT -p tcp -m tcp --dport 8080 -m comment --comment \"dockling:",
    }
}

#[test]
fn explain_transcript_replayed_by_a_shell_gives_the_same_network() {
    // 1. The real run, with --explain.
    let sim = SimHost::new("explain-run");
    sim.image("busybox");
    let name = "web";
    let out = sim.dockling(&[
        "--explain",
        "run",
        "-d",
        "--name",
        name,
        "-p",
        "8080:80",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo real > /www/index.html && exec /usr/sbin/httpd -f -p 80 -h /www",
    ]);
    assert!(out.ok(), "run --explain failed:\n{out}");
    sim.wait_http(true, &format!("http://{HOST_IP}:8080/"), "real");
    let transcript = out.stderr.clone();
    for expected in [
        "ip link add dockling0 type bridge",
        "type veth peer name eth0 netns web",
        publish_line(),
        "nft 'add table bridge dockling; ",
        "add chain bridge dockling port-",
        "sysctl -w net.ipv4.ip_forward=1",
        "mount -t overlay",
        "(nearest equivalent)",
    ] {
        assert!(transcript.contains(expected), "transcript lacks {expected:?}:\n{transcript}");
    }
    let lines = network_lines(&transcript);
    sim.dockling_ok(&["rm", "-f", name]);
    sim.finish();

    // 2. A fresh simulated host where only a shell follows the transcript.
    let replay = SimHost::new("explain-replay");
    let script = format!("set -e\nip netns add {name}\n{}\n", lines.join("\n"));
    let o = replay.sh(&script);
    assert!(o.ok(), "replaying the transcript failed:\n{o}\nscript:\n{script}");
    let page = replay.write_file("index.html", "replayed\n");
    let dir = page.parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let _server = replay.spawn_host(&format!("exec ip netns exec {name} /bin/busybox httpd -f -p 80 -h {}", shq(&dir)));
    // The world reaches the published port on the replayed host (DNAT rebuilt by hand).
    replay.wait_http(true, &format!("http://{HOST_IP}:8080/"), "replayed");
    // The netns reaches the world, and the world sees the host's address (MASQUERADE).
    let peer = replay.write_file("peer_server.py", PEER_SERVER_PY);
    let _world = replay.spawn_world(&format!("exec {} -u {} 9000", python(), peer.display()));
    replay.wait_http(false, &format!("http://{WORLD_IP}:9000/"), "peer=");
    let got = poll("netns to world", WAIT, || {
        let fetch = format!("import urllib.request; print(urllib.request.urlopen('http://{WORLD_IP}:9000/', timeout=3).read().decode())");
        let o = replay.sh(&format!("ip netns exec {name} {} -c {}", python(), shq(&fetch)));
        if o.ok() {
            Ok(o.stdout)
        } else {
            Err(o.to_string())
        }
    });
    assert!(got.contains(&format!("peer={HOST_IP}")), "the world saw {got:?}, expected the host's address");
}

#[test]
fn inspect_shows_namespaces_veth_addresses_and_rule_counters() {
    let sim = SimHost::new("inspect");
    sim.image("busybox");
    sim.run_d(&[
        "--name",
        "web",
        "-p",
        "8080:80",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo hello > /www/index.html && exec /usr/sbin/httpd -f -p 80 -h /www",
    ]);
    let ip = sim.ip_of("web");
    sim.wait_http(false, &format!("http://{ip}:80/"), "hello");
    let j = sim.inspect("web");
    let pid = j.path("State.Pid").as_i64().unwrap_or(0);
    assert!(pid > 0, "no pid in inspect");
    // Namespaces are the kernel's: the same inodes /proc shows for the process.
    let nss = j.get("Namespaces").as_array().unwrap_or_default();
    let net = nss
        .iter()
        .find(|n| n.get("Type").as_str() == Some("net"))
        .map(|n| n.get("Inode").as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    let real = sim.sh_ok(&format!("readlink /proc/{pid}/ns/net"));
    assert_eq!(net, real.trim(), "net namespace inode");
    assert!(nss.len() >= 5, "pid, mnt, uts, ipc, net at least: {nss:?}");
    // The veth pair and addresses.
    let veth = j.path("NetworkSettings.HostVeth").as_str().unwrap_or_default().to_string();
    assert!(sim.veths().contains(&veth), "host veth {veth} not on the host");
    assert_eq!(j.path("NetworkSettings.Gateway").as_str(), Some(GATEWAY));
    assert_eq!(j.path("NetworkSettings.NetnsName").as_str(), Some("web"));
    assert!(j.path("GraphDriver.Data.UpperDir").as_str().is_some());
    let fmt = sim.dockling_ok(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", "web"]);
    assert_eq!(fmt.trim(), ip);

    // The DNAT counter rises when the port is used.
    let count = |sim: &SimHost| -> u64 {
        let out = sim.dockling_ok(&["inspect", "--rules", "web"]);
        let row = out
            .lines()
            .find(|l| (l.contains("DNAT") || l.contains("dnat to")) && l.contains("8080"))
            .unwrap_or_else(|| panic!("no DNAT rule listed:\n{out}"))
            .to_string();
        row.split_whitespace()
            .nth(3)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no packet count in {row:?}"))
    };
    let before = count(&sim);
    sim.wait_http(true, &format!("http://{HOST_IP}:8080/"), "hello");
    let after = count(&sim);
    assert!(after > before, "DNAT packet counter did not rise ({before} -> {after})");
    sim.finish();
}
