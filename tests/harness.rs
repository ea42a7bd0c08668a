//! Self-tests of the simulated-host harness (they do not run dockling).

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn real_host_netns() -> String {
    let o = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn real_host_links() -> BTreeSet<String> {
    let o = Command::new("ip").args(["-o", "link", "show"]).output().expect("ip link");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

#[test]
fn sim_host_reaches_world_and_world_reaches_sim_host() {
    let sim = SimHost::new("harness-net");
    // addresses and routes as promised
    let addrs = sim.sh_ok("ip -br addr");
    assert!(addrs.contains("198.51.100.1/24"), "{addrs}");
    let routes = sim.sh_ok("ip route");
    assert!(routes.contains("default via 198.51.100.2"), "{routes}");
    assert_eq!(sim.netns_names(), ["world".to_string()].into_iter().collect());
    assert_eq!(sim.sh_ok("cat /proc/sys/kernel/hostname").trim(), "simhost");
    // /sys/class/net shows the sim host's interfaces, cgroups are still there
    let sys = sim.sh_ok("ls /sys/class/net");
    assert!(sys.contains("wan0") && !sys.contains("eth0"), "{sys}");
    // only PID 1 in the sim host's PID namespace
    assert!(sim.processes().is_empty(), "{:?}", sim.processes());

    // sim host -> world (both world addresses), world sees 198.51.100.1
    let script = sim.write_file("peer.py", PEER_SERVER_PY);
    let mut server = sim.spawn_world(&format!("exec {} {} 7000", python(), script.display()));
    let body = sim.wait_http(false, "http://198.51.100.2:7000/", "peer=");
    assert_eq!(body.trim(), "peer=198.51.100.1");
    let body = sim.wait_http(false, "http://203.0.113.1:7000/", "peer=");
    assert_eq!(body.trim(), "peer=198.51.100.1");

    // world -> sim host
    let _host_server = sim.spawn_host(&format!("exec {} {} 7001", python(), script.display()));
    let body = sim.wait_http(true, "http://198.51.100.1:7001/", "peer=");
    assert_eq!(body.trim(), "peer=198.51.100.2");

    // a stopped background server is really gone
    let out = server.stop();
    assert!(out.stdout.contains("served"), "{out}");
    assert!(wait_until(WAIT, || !sim.host_get("http://198.51.100.2:7000/").ok()));
}

#[test]
fn drop_leaves_nothing_behind() {
    let netns_before = real_host_netns();
    let links_before = real_host_links();
    let sim = SimHost::new("harness-drop");
    let pid = sim.pid;
    let ns = sim.netns_id.clone();
    let tmp = sim.tmp.clone();
    assert!(ns.starts_with("net:["), "{ns}");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    // a background process that would otherwise live forever
    let _bg = sim.spawn_world("exec sleep 100000");
    let _bg2 = sim.spawn_host("sleep 100000 & sleep 100000");
    assert!(wait_until(WAIT, || sim.processes().len() >= 3), "{:?}", sim.processes());
    // something mounted inside the sim host only
    sim.sh_ok("ip netns add leaktest");
    assert!(!real_host_netns().contains("leaktest"), "netns names must be private");
    drop(_bg);
    drop(_bg2);
    drop(sim);
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "holder pid {pid} still exists");
    assert!(wait_until(Duration::from_secs(10), || !netns_in_use(&ns)), "a process is still in {ns}");
    assert!(!tmp.exists(), "{} not removed", tmp.display());
    assert_eq!(real_host_netns(), netns_before);
    assert_eq!(real_host_links(), links_before);
}

#[test]
fn panicking_test_still_cleans_up() {
    let mut info = None;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let sim = SimHost::new("harness-panic");
        info = Some((sim.pid, sim.netns_id.clone(), sim.tmp.clone()));
        let _bg = sim.spawn_world("exec sleep 100000");
        panic!("deliberate");
    }));
    assert!(r.is_err());
    let (pid, ns, tmp) = info.unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(wait_until(Duration::from_secs(10), || !netns_in_use(&ns)));
    assert!(!tmp.exists());
}

#[test]
fn json_parser_reads_inspect_like_output() {
    let j = Json::parse(
        r#"[{"Id":"abc","Name":"/web","State":{"Status":"running","Running":true,"Pid":4242,"ExitCode":0,"MonitorPid":17},
            "NetworkSettings":{"IPAddress":"10.131.0.2","Gateway":"10.131.0.1","Ports":{"5000/tcp":[{"HostIp":"0.0.0.0","HostPort":"5000"}]}},
            "Config":{"Env":["A=b\"c","U=\u00e9"]},"X":null,"F":-1.5e2}]"#,
    )
    .unwrap();
    let c = j.idx(0);
    assert_eq!(c.get("Name").as_str(), Some("/web"));
    assert_eq!(c.path("State.Pid").as_i64(), Some(4242));
    assert_eq!(c.path("State.Running").as_bool(), Some(true));
    assert_eq!(c.path("State.MonitorPid").as_i64(), Some(17));
    assert_eq!(c.path("NetworkSettings.IPAddress").as_str(), Some("10.131.0.2"));
    assert_eq!(c.path("NetworkSettings.Ports").get("5000/tcp").idx(0).get("HostPort").as_str(), Some("5000"));
    assert_eq!(c.path("Config.Env").idx(0).as_str(), Some("A=b\"c"));
    assert_eq!(c.path("Config.Env").idx(1).as_str(), Some("U=é"));
    assert!(c.get("X").is_null() && c.get("Missing").is_null());
    assert_eq!(c.get("F").as_i64(), Some(-150));
    assert!(Json::parse("[1,").is_err());
}

#[test]
fn text_helpers() {
    assert!(mentions_ip("-A X -d 10.131.0.2/32 -j ACCEPT", "10.131.0.2"));
    assert!(mentions_ip("--to-destination 10.131.0.2:5000", "10.131.0.2"));
    assert!(!mentions_ip("-d 10.131.0.20/32", "10.131.0.2"));
    assert!(!mentions_ip("-d 110.131.0.2/32", "10.131.0.2"));
    let rules = "-A P -p tcp -m tcp --dport 5000 -j DNAT --to-destination 10.131.0.2:80\n-A Q -p tcp --dport 15000 -j X\n-A R -j DNAT --to-destination 10.131.0.3:5000\n";
    assert_eq!(rules_mentioning_port(rules, 5000).len(), 2);
    assert_eq!(rules_mentioning_port(rules, 80).len(), 1);
    assert_eq!(
        normalize_rules("# x\n:INPUT ACCEPT [12:34]\n-A INPUT -j X\n"),
        vec![":INPUT ACCEPT".to_string(), "-A INPUT -j X".to_string()]
    );
}
