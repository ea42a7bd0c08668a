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
        .filter(|l| l.starts_with("ip ") || l.starts_with("iptables ") || l.starts_with("sysctl "))
        .collect()
}

#[test]
fn explain_transcript_replayed_by_a_shell_gives_the_same_network() {
    // 1. The real run, with --explain.
    let sim = SimHost::new("explain-run");
    sim.image("busybox");
    let name = "web";
    let out = sim.dockling(&[
        "--explain", "run", "-d", "--name", name, "-p", "8080:80", "busybox",
        "sh", "-c", "mkdir -p /www && echo real > /www/index.html && exec /usr/sbin/httpd -f -p 80 -h /www",
    ]);
    assert!(out.ok(), "run --explain failed:\n{out}");
    sim.wait_http(true, &format!("http://{HOST_IP}:8080/"), "real");
    let transcript = out.stderr.clone();
    for expected in ["ip link add dockling0 type bridge", "type veth peer name eth0 netns web", "iptables -t nat -A DOCKLING-DNAT", "sysctl -w net.ipv4.ip_forward=1", "mount -t overlay", "(nearest equivalent)"] {
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
        if o.ok() { Ok(o.stdout) } else { Err(o.to_string()) }
    });
    assert!(got.contains(&format!("peer={HOST_IP}")), "the world saw {got:?}, expected the host's address");
}
