//! The class walk-through in examples/ (issue 4). Each numbered script runs in a
//! fresh simulated host exactly as a class runs it on a real one (DOCKLING,
//! DOCKLING_ROOT and WORLD set, nothing else), so the scripts never rot: each must
//! exit 0, print what it promises, and leave the host as it found it.

mod common;
use common::*;
use std::time::Duration;

/// A whole script: several containers, iptables listings, retries.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Run examples/SCRIPT in the sim host; assert it exits 0 and leaves no
/// container, link, netns name or iptables rule behind (its trap's job).
fn run_example(sim: &SimHost, script: &str) -> Out {
    let before = sim.snapshot();
    let mut cmd = sim.ns_command("bash");
    cmd.arg(manifest_dir().join("examples").join(script))
        .env("DOCKLING", bin())
        .env("DOCKLING_ROOT", &sim.root)
        .env("WORLD", WORLD_IP);
    let o = run_cmd(cmd, SCRIPT_TIMEOUT);
    assert!(o.ok(), "examples/{script} failed:\n{o}\n{}", sim.dump());
    // Switched-off veths of removed containers go with their netns a moment later.
    sim.settle();
    let after = sim.snapshot();
    for (what, b, a) in [
        ("containers", &before.containers, &after.containers),
        ("links", &before.links, &after.links),
        ("netns names", &before.netns, &after.netns),
    ] {
        assert_eq!(b, a, "examples/{script} left {what} behind\n{o}");
    }
    // Rules and user chains (an iptables listing also makes empty tables appear).
    let rules =
        |r: &[String]| r.iter().filter(|l| l.starts_with("-A") || l.ends_with(" -")).cloned().collect::<Vec<_>>();
    assert_eq!(rules(&before.rules), rules(&after.rules), "examples/{script} left iptables rules behind\n{o}");
    o
}

/// Assert that the script's stdout (or, for `--explain` lines and server logs,
/// its stderr) contains every needle.
fn expect(o: &Out, stdout: &[&str], stderr: &[&str]) {
    for n in stdout {
        assert!(o.stdout.contains(n), "stdout should contain {n:?}\n{o}");
    }
    for n in stderr {
        assert!(o.stderr.contains(n), "stderr (--explain) should contain {n:?}\n{o}");
    }
}

/// The first number on the line of `text` that contains `marker` (a counter column).
fn counter_on_line(text: &str, marker: &str, column: usize) -> u64 {
    let line =
        text.lines().find(|l| l.contains(marker)).unwrap_or_else(|| panic!("no line with {marker:?} in:\n{text}"));
    line.split_whitespace().nth(column).and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("no counter in {line:?}"))
}

#[test]
fn example_01_isolation() {
    let sim = SimHost::new("ex01");
    let o = run_example(&sim, "01-isolation.sh");
    expect(
        &o,
        &[
            "    1 root     sleep 600",
            "host name on the host:      simhost",
            "host name in the container: demo-box",
            "overlay / overlay",
            "written inside",
            "hello.txt",
            "the host's mount table has no trace of the container's root",
            "isolation demo done",
        ],
        &[
            "unshare --pid --mount --uts --ipc --net --fork",
            "mount -t overlay overlay -o lowerdir=",
            "pivot_root . .",
            "hostname demo-box",
        ],
    );
    for ns in ["pid", "uts", "mnt", "ipc", "net"] {
        let row =
            o.stdout.lines().find(|l| l.starts_with(&format!("{ns} "))).unwrap_or_else(|| panic!("no {ns} row\n{o}"));
        assert!(row.ends_with("private"), "the container's {ns} namespace must be its own: {row}");
    }
    sim.finish();
}

#[test]
fn example_02_network() {
    let sim = SimHost::new("ex02");
    let o = run_example(&sim, "02-network.sh");
    expect(
        &o,
        &[
            "10.131.0.1/24",
            "master dockling0",
            "link-netns demo-net-a",
            "10.131.0.2/24",
            "default via 10.131.0.1 dev eth0",
            "64 bytes from 10.131.0.1",
            "64 bytes from 10.131.0.3",
            "lladdr 02:42:0a:83:00:03",
            "network demo done",
        ],
        &[
            "ip link add dockling0 type bridge",
            "ip addr add 10.131.0.1/24 dev dockling0",
            "type veth peer name eth0 netns demo-net-a",
            "master dockling0 up",
            "ip netns exec demo-net-a ip addr add 10.131.0.2/24 brd 10.131.0.255 dev eth0",
            "ip netns exec demo-net-a ip route add default via 10.131.0.1",
        ],
    );
    sim.finish();
}

#[test]
fn example_03_egress() {
    let sim = SimHost::new("ex03");
    let script = sim.write_file("peer_server.py", PEER_SERVER_PY);
    let mut server = sim.spawn_world(&format!("exec {} -u {} 80", python(), script.display()));
    sim.wait_http(false, &format!("http://{WORLD_IP}:80/"), "peer=");
    let o = run_example(&sim, "03-egress.sh");
    expect(
        &o,
        &[
            "(failed, as expected",
            "default via 10.131.0.1 dev eth0",
            "-A DOCKLING-POSTROUTING -s 10.131.0.0/24 ! -o dockling0 -j MASQUERADE",
            &format!("64 bytes from {WORLD_IP}"),
            "HTTP/1.0 200 OK",
            // the world saw the host's address, not the container's: MASQUERADE
            &format!("peer={HOST_IP}"),
            "egress demo done",
        ],
        &[
            "Network is unreachable",
            "sysctl -w net.ipv4.ip_forward=1",
            // (in the one iptables-restore batch that makes the shared rules)
            "'-A DOCKLING-POSTROUTING -s 10.131.0.0/24 ! -o dockling0 -j MASQUERADE'",
        ],
    );
    assert!(o.stdout.contains("$ cat /proc/sys/net/ipv4/ip_forward\n1\n"), "ip_forward must be on\n{o}");
    assert!(
        counter_on_line(&o.stdout, "!dockling0", 0) > 0,
        "the MASQUERADE rule must have counted the connections\n{o}"
    );
    let served = server.stop().stdout;
    assert!(
        served.contains(&format!("served {HOST_IP}")),
        "the world server must have served the host's address:\n{served}"
    );
    assert!(!served.contains(&format!("served {SUBNET_PREFIX}")), "a container address reached the world:\n{served}");
    sim.finish();
}

#[test]
fn example_04_publish() {
    let sim = SimHost::new("ex04");
    let o = run_example(&sim, "04-publish.sh");
    expect(
        &o,
        &[
            "-j DNAT --to-destination 10.131.0.2:8000",
            "-A PREROUTING ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKLING-DNAT",
            "-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKLING-DNAT",
            "$ fetch http://127.0.0.1:8080/\nhello from demo-web",
            &format!("$ fetch http://{HOST_IP}:8080/\nhello from demo-web"),
            "publish demo done",
        ],
        &[
            "'-A DOCKLING-DNAT -p tcp -m tcp --dport 8080",
            "delete rule ip nat DOCKLING-DNAT handle",
            // http.server logs to stderr: it saw the host's own address unchanged
            &format!("{HOST_IP} - - "),
        ],
    );
    assert!(
        counter_on_line(&o.stdout, "demo-web    nat", 3) >= 2,
        "inspect --rules must count the two connections\n{o}"
    );
    sim.finish();
}

#[test]
fn example_05_cleanup() {
    let sim = SimHost::new("ex05");
    let o = run_example(&sim, "05-cleanup.sh");
    expect(
        &o,
        &["-j DNAT --to-destination 10.131.0.2:80", "Exited (137)", "Deleted Networks:", "nothing left:"],
        &[
            "delete rule ip nat DOCKLING-DNAT handle",
            "ip netns delete demo-clean",
            "'-D POSTROUTING -j DOCKLING-POSTROUTING'",
            "ip link delete dockling0",
        ],
    );
    assert!(!o.stderr.contains("LEFT BEHIND"), "{o}");
    sim.finish();
}
