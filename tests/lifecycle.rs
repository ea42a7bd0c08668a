//! Container lifecycle (issue 2): processes, exit codes, isolation, detached
//! containers, stop/rm/logs, errors. Every test runs in its own simulated host.

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Pids of the children of `pid` inside the simulated host.
fn sim_children(sim: &SimHost, pid: u32) -> Vec<u32> {
    sim.sh(&format!("ps -o pid= --ppid {pid}")).stdout.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

/// Directories under `root` (depth <= 8) that look like an unpacked busybox image tree.
fn busybox_trees(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        if fs::symlink_metadata(d.join("bin/busybox")).is_ok() {
            out.push(d.clone());
            continue;
        }
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if depth < 8 && e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    out
}

#[test]
fn output_and_exit_codes_propagate() {
    let sim = SimHost::new("exitcodes");
    sim.image("busybox");

    let o = sim.dockling(&["run", "--rm", "busybox", "echo", "hello world"]);
    assert_eq!(o.code(), Some(0), "{o}");
    assert_eq!(o.stdout, "hello world\n", "{o}");

    let o = sim.dockling(&["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.code(), Some(3), "exit code of the container must become dockling's\n{o}");
    assert_eq!(o.stdout, "out\n", "container stdout goes to stdout\n{o}");
    assert!(o.stderr.contains("err"), "container stderr goes to stderr\n{o}");

    // a file that exists but is not executable
    let o = sim.dockling(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(o.code(), Some(126), "non-executable command must give 126\n{o}");

    // a command that does not exist (by name and by path)
    let o = sim.dockling(&["run", "--rm", "busybox", "no-such-command-xyz"]);
    assert_eq!(o.code(), Some(127), "missing command must give 127\n{o}");
    let o = sim.dockling(&["run", "--rm", "busybox", "/no/such/file"]);
    assert_eq!(o.code(), Some(127), "missing command must give 127\n{o}");

    sim.finish();
}

#[test]
fn foreground_run_killed_by_sigkill_exits_137() {
    let sim = SimHost::new("fgkill");
    sim.image("busybox");
    let name = sim.cname("fg");
    let mut fg = sim.spawn_dockling(&["run", "--name", &name, "busybox", "sh", "-c", "echo ready; exec sleep 1000"]);
    // wait until the command really runs (setup finished), then kill it from the sim host
    assert!(
        wait_until(WAIT, || fg.stdout_so_far().contains("ready") || fg.has_exited()),
        "container never printed 'ready'"
    );
    let pid = sim.wait_running_pid(&name);
    sim.sh_ok(&format!("kill -9 {pid}"));
    let o = fg.wait_timeout(Duration::from_secs(60));
    assert!(!o.timed_out, "foreground run did not return after its container was killed\n{o}");
    assert_eq!(o.code(), Some(137), "container killed by SIGKILL must give 137\n{o}");
    let row = sim.ps_row(&name).expect("container must still be listed by ps -a");
    assert!(row.contains("Exited (137)"), "ps -a row: {row}");
    assert_eq!(sim.wait_exited(&name), 137);
    sim.finish();
}

#[test]
fn container_process_is_pid_1_and_sees_few_processes() {
    let sim = SimHost::new("pid1");
    sim.image("busybox");
    let o = sim.dockling(&["run", "--rm", "busybox", "sh", "-c", "echo $$"]);
    assert!(o.ok(), "{o}");
    assert_eq!(o.stdout.trim(), "1", "the container's process must be PID 1\n{o}");

    let o = sim.dockling(&["run", "--rm", "busybox", "ps"]);
    assert!(o.ok(), "{o}");
    let procs: Vec<&str> = o.stdout.lines().skip(1).filter(|l| !l.trim().is_empty()).collect();
    assert!(!procs.is_empty() && procs.len() <= 3, "ps inside the container must see only its own few processes\n{o}");
    assert!(procs.iter().any(|l| l.split_whitespace().next() == Some("1")), "ps inside must show PID 1\n{o}");
    assert!(!o.stdout.contains("python3"), "the sim host's processes must not be visible\n{o}");
    sim.finish();
}

#[test]
fn hostname_defaults_to_short_id_and_can_be_set() {
    let sim = SimHost::new("hostname");
    sim.image("busybox");
    let name = sim.cname("h");
    let o = sim.dockling(&["run", "--name", &name, "busybox", "hostname"]);
    assert!(o.ok(), "{o}");
    let id = sim.inspect(&name).get("Id").as_str().unwrap_or("").to_string();
    assert_eq!(id.len(), 64, "inspect Id must be 64 hex chars: {id:?}");
    assert_eq!(o.stdout.trim(), &id[..12], "default hostname is the 12-char short id\n{o}");

    let o = sim.dockling(&["run", "--rm", "--hostname", "foo", "busybox", "hostname"]);
    assert!(o.ok(), "{o}");
    assert_eq!(o.stdout.trim(), "foo", "{o}");
    // the (simulated) host's own hostname is untouched
    assert_eq!(sim.sh_ok("cat /proc/sys/kernel/hostname").trim(), "simhost");
    sim.finish();
}

#[test]
fn image_is_unchanged_by_a_container_writing_to_root() {
    let sim = SimHost::new("cow");
    sim.image("busybox");
    let trees = busybox_trees(&sim.root);
    assert!(
        !trees.is_empty(),
        "expected the imported image to be stored as an unpacked tree (with bin/busybox) under --root {}",
        sim.root.display()
    );
    let before: Vec<Vec<String>> = trees.iter().map(|t| tree_listing(t)).collect();
    let source_before = tree_listing(&image_dir("busybox"));

    let w1 = sim.cname("w1");
    let o = sim.dockling(&[
        "run",
        "--name",
        &w1,
        "busybox",
        "sh",
        "-c",
        "echo hi > /hello && echo changed >> /etc/passwd && cat /hello && rm /bin/sh",
    ]);
    assert!(o.ok(), "{o}");
    assert_eq!(o.stdout.trim(), "hi", "{o}");

    let o = sim.dockling(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "if [ -e /hello ]; then echo present; else echo absent; fi; grep -c changed /etc/passwd; true",
    ]);
    assert!(o.ok(), "a second container must still have /bin/sh\n{o}");
    let lines = o.stdout_lines();
    assert_eq!(lines.first(), Some(&"absent"), "a second container must not see /hello\n{o}");
    assert_eq!(lines.get(1), Some(&"0"), "a second container must see the original /etc/passwd\n{o}");

    for (t, b) in trees.iter().zip(before.iter()) {
        assert!(!t.join("hello").exists(), "image tree {} got /hello", t.display());
        assert_eq!(&tree_listing(t), b, "image tree {} changed", t.display());
    }
    assert_eq!(tree_listing(&image_dir("busybox")), source_before, "import source changed");
    sim.finish();
}

#[test]
fn detached_ps_logs_stop_rm() {
    let sim = SimHost::new("detached");
    sim.image("busybox");
    let name = sim.cname("d");
    let id = sim.run_d(&[
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-term; exit 0' TERM; echo started; echo to-stderr >&2; while true; do sleep 1; done",
    ]);

    // ps shows it Up, with its 12-char id, image and name
    let ps = sim.dockling_ok(&["ps"]);
    let header = ps.lines().next().unwrap_or("");
    for col in ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"] {
        assert!(header.contains(col), "ps header lacks {col}: {header}");
    }
    let row = ps
        .lines()
        .find(|l| l.split_whitespace().last() == Some(name.as_str()))
        .unwrap_or_else(|| panic!("ps does not list {name}:\n{ps}"));
    assert!(row.starts_with(&id[..12]), "ps row must start with the short id {}: {row}", &id[..12]);
    assert!(row.contains("busybox"), "{row}");
    assert!(row.contains("Up "), "a running container is 'Up ...': {row}");
    let q = sim.dockling_ok(&["ps", "-q"]);
    assert_eq!(q.split_whitespace().collect::<Vec<_>>(), vec![&id[..12]], "ps -q prints short ids");
    let nt = sim.dockling_ok(&["ps", "--no-trunc"]);
    assert!(nt.contains(&id), "ps --no-trunc shows the full id:\n{nt}");

    let j = sim.inspect(&name);
    assert_eq!(j.get("Id").as_str(), Some(id.as_str()));
    assert_eq!(j.get("Name").as_str(), Some(format!("/{name}").as_str()));
    assert_eq!(j.path("State.Status").as_str(), Some("running"));
    assert_eq!(j.path("State.Running").as_bool(), Some(true));
    // inspect also works by id and by short id
    assert_eq!(sim.inspect(&id[..12]).get("Id").as_str(), Some(id.as_str()));

    // logs: stdout to stdout, stderr to stderr
    let logs = poll("logs to show the container's output", WAIT, || {
        let o = sim.dockling(&["logs", &name]);
        if o.ok() && o.stdout.contains("started") && o.stderr.contains("to-stderr") {
            Ok(o)
        } else {
            Err(o.to_string())
        }
    });
    assert!(!logs.stdout.contains("to-stderr"), "stderr lines must not be on stdout\n{logs}");
    assert!(!logs.stderr.contains("started"), "stdout lines must not be on stderr\n{logs}");

    // stop: SIGTERM is handled, exit 0; returns only once stopped
    let o = sim.dockling(&["stop", &name]);
    assert!(o.ok(), "{o}");
    let j = sim.inspect(&name);
    assert_eq!(j.path("State.Status").as_str(), Some("exited"), "stop must return when stopped: {:?}", j.get("State"));
    assert_eq!(j.path("State.Running").as_bool(), Some(false));
    assert_eq!(j.path("State.ExitCode").as_i64(), Some(0));
    let ps = sim.dockling_ok(&["ps"]);
    assert!(!ps.contains(&name), "a stopped container is not in ps without -a:\n{ps}");
    let row = sim.ps_row(&name).expect("stopped container is in ps -a");
    assert!(row.contains("Exited (0)"), "{row}");
    let logs = sim.dockling_ok(&["logs", &name]);
    assert!(logs.contains("got-term"), "the container saw SIGTERM:\n{logs}");

    // rm: gone from ps -a, inspect fails
    let o = sim.dockling(&["rm", &name]);
    assert!(o.ok(), "{o}");
    assert!(sim.ps_row(&name).is_none(), "removed container still in ps -a");
    assert!(sim.ps_ids().is_empty());
    assert!(!sim.dockling(&["inspect", &name]).ok(), "inspect of a removed container must fail");
    sim.finish();
}

#[test]
fn logs_tail_and_follow() {
    let sim = SimHost::new("logs");
    sim.image("busybox");
    let a = sim.cname("tail");
    sim.run_d(&["--name", &a, "busybox", "sh", "-c", "echo l1; echo l2; echo l3"]);
    assert_eq!(sim.wait_exited(&a), 0);
    let o = sim.dockling(&["logs", "--tail", "2", &a]);
    assert!(o.ok(), "{o}");
    assert_eq!(o.stdout, "l2\nl3\n", "{o}");

    // logs -f follows until the container ends
    let b = sim.cname("follow");
    sim.run_d(&["--name", &b, "busybox", "sh", "-c", "echo first; sleep 1000; echo last"]);
    let pid = sim.wait_running_pid(&b);
    let mut follow = sim.spawn_dockling(&["logs", "-f", &b]);
    assert!(
        wait_until(WAIT, || follow.stdout_so_far().contains("first")),
        "logs -f did not show 'first': {:?} / {:?}",
        follow.stdout_so_far(),
        follow.stderr_so_far()
    );
    assert!(!follow.has_exited(), "logs -f must keep following a running container");
    // end the container by itself: kill its sleep, so sh prints 'last' and exits
    let kids = poll("the container's sleep process", WAIT, || {
        let k = sim_children(&sim, pid);
        if k.is_empty() {
            Err("no children yet".into())
        } else {
            Ok(k)
        }
    });
    for k in kids {
        sim.sh_ok(&format!("kill {k}"));
    }
    let o = follow.wait_timeout(Duration::from_secs(30));
    assert!(!o.timed_out, "logs -f must exit when the container exits\n{o}");
    assert!(o.ok(), "{o}");
    assert_eq!(o.stdout, "first\nlast\n", "{o}");
    sim.finish();
}

#[test]
fn stop_falls_back_to_sigkill() {
    let sim = SimHost::new("stopkill");
    sim.image("busybox");
    let name = sim.cname("stubborn");
    sim.run_d(&["--name", &name, "busybox", "sh", "-c", "trap '' TERM; echo ready; sleep 1000"]);
    sim.wait_running_pid(&name);
    let o = sim.dockling(&["stop", "-t", "1", &name]);
    assert!(o.ok(), "{o}");
    let j = sim.inspect(&name);
    assert_eq!(j.path("State.Status").as_str(), Some("exited"), "stop must return when stopped: {:?}", j.get("State"));
    assert_eq!(j.path("State.ExitCode").as_i64(), Some(137));
    let row = sim.ps_row(&name).unwrap();
    assert!(row.contains("Exited (137)"), "{row}");

    // plain `sleep` as PID 1 has no handler: SIGTERM is ignored too
    let name2 = sim.cname("sleeper");
    sim.run_d(&["--name", &name2, "busybox", "sleep", "1000"]);
    sim.wait_running_pid(&name2);
    let o = sim.dockling(&["stop", "-t", "1", &name2]);
    assert!(o.ok(), "{o}");
    let row = sim.ps_row(&name2).unwrap();
    assert!(row.contains("Exited (137)"), "{row}");
    sim.finish();
}

#[test]
fn rm_refuses_running_container_without_force() {
    let sim = SimHost::new("rmforce");
    sim.image("busybox");
    let name = sim.cname("r");
    sim.run_d(&["--name", &name, "busybox", "sleep", "1000"]);
    sim.wait_running_pid(&name);
    let o = sim.dockling(&["rm", &name]);
    assert!(!o.ok(), "rm of a running container must fail without -f\n{o}");
    assert!(!o.stderr.trim().is_empty(), "rm must say why\n{o}");
    let row = sim.ps_row(&name).expect("container must survive a refused rm");
    assert!(row.contains("Up "), "{row}");
    let o = sim.dockling(&["rm", "-f", &name]);
    assert!(o.ok(), "{o}");
    assert!(sim.ps_ids().is_empty());
    sim.finish();
}

#[test]
fn detached_container_killed_from_outside_shows_exited() {
    let sim = SimHost::new("extkill");
    sim.image("busybox");
    let name = sim.cname("victim");
    sim.run_d(&["--name", &name, "busybox", "sleep", "1000"]);
    let pid = sim.wait_running_pid(&name);
    sim.sh_ok(&format!("kill -9 {pid}"));
    let row = poll("ps -a to show the killed container as Exited (137)", WAIT, || {
        let r = sim.ps_row(&name).unwrap_or_default();
        if r.contains("Exited (137)") {
            Ok(r)
        } else {
            Err(r)
        }
    });
    assert!(!row.contains("Up "), "{row}");
    let j = sim.inspect(&name);
    assert_eq!(j.path("State.Running").as_bool(), Some(false));
    assert_eq!(j.path("State.ExitCode").as_i64(), Some(137));
    sim.finish();
}

#[test]
fn monitor_and_container_both_killed_shows_exited_and_rm_cleans() {
    let sim = SimHost::new("bothkill");
    sim.image("busybox");
    let name = sim.cname("orphan");
    sim.run_d(&["--name", &name, "-p", "5000:80", "busybox", "sleep", "1000"]);
    let pid = sim.wait_running_pid(&name);
    let j = sim.inspect(&name);
    let mon = j.path("State.MonitorPid").as_i64().unwrap_or(0);
    assert!(mon > 0, "inspect must expose State.MonitorPid for a running container: {:?}", j.get("State"));
    let ip = sim.ip_of(&name);
    sim.sh_ok(&format!("kill -9 {mon}; kill -9 {pid} 2>/dev/null; true"));
    let row = poll("ps -a to show the container as Exited (not Up)", WAIT, || {
        let r = sim.ps_row(&name).unwrap_or_default();
        if r.contains("Exited") && !r.contains("Up ") {
            Ok(r)
        } else {
            Err(r)
        }
    });
    assert!(row.contains("Exited"), "{row}");
    assert_eq!(sim.inspect(&name).path("State.Running").as_bool(), Some(false));

    let o = sim.dockling(&["rm", "-f", &name]);
    assert!(o.ok(), "{o}");
    assert!(sim.ps_ids().is_empty());
    let mut why = String::new();
    let clean = wait_until(WAIT, || {
        why.clear();
        let rules = sim.firewall_rules();
        for l in rules.lines().filter(|l| mentions_ip(l, &ip)) {
            why.push_str(&format!("rule mentions {ip}: {l}\n"));
        }
        for l in rules_mentioning_port(&rules, 5000) {
            why.push_str(&format!("rule mentions port 5000: {l}\n"));
        }
        for v in sim.veths() {
            why.push_str(&format!("veth left: {v}\n"));
        }
        if sim.netns_names().contains(&name) {
            why.push_str("netns name left\n");
        }
        for (p, a) in sim.processes() {
            why.push_str(&format!("process left: {p} {a}\n"));
        }
        why.is_empty()
    });
    assert!(clean, "rm -f after monitor+container were killed left:\n{why}\n{}", sim.dump());
    sim.finish();
}

#[test]
fn invalid_requests_exit_125_and_create_nothing() {
    let sim = SimHost::new("invalid");
    sim.image("busybox");

    fn check(sim: &SimHost, args: &[&str], what: &str) {
        sim.assert_rejected(args, what)
    }

    // on a host with no container yet (no bridge must appear either)
    check(&sim, &["run", "--name", "../../etc", "busybox", "true"], "name ../../etc");
    check(&sim, &["run", "--name=-x", "busybox", "true"], "name -x");
    check(&sim, &["run", "--name", "-x", "busybox", "true"], "name -x (separate arg)");
    check(&sim, &["run", "--name", "", "busybox", "true"], "empty name");
    check(&sim, &["run", "--name", "a/b", "busybox", "true"], "name a/b");
    check(&sim, &["run", "--pull", "never", "no-such-image", "true"], "unknown image");
    check(&sim, &["run", "-d", "no-such-image:v9", "true"], "unknown image:tag (-d)");
    check(&sim, &["run", "--rm", "-p", "abc", "busybox", "true"], "-p abc");
    assert!(!sim.tmp.join("etc").exists() && !sim.root.join("etc").exists());

    // name taken (by a running and by an exited container)
    let taken = sim.cname("taken");
    sim.run_d(&["--name", &taken, "busybox", "sleep", "1000"]);
    sim.wait_running_pid(&taken);
    check(&sim, &["run", "--name", &taken, "busybox", "true"], "name taken (running)");
    check(&sim, &["run", "-d", "--name", &taken, "busybox", "sleep", "1"], "name taken (-d)");
    let done = sim.cname("done");
    let o = sim.dockling(&["run", "--name", &done, "busybox", "true"]);
    assert!(o.ok(), "{o}");
    check(&sim, &["run", "--name", &done, "busybox", "true"], "name taken (exited)");
    check(&sim, &["run", "--name", "../../etc", "busybox", "true"], "name ../../etc (network exists)");
    check(&sim, &["run", "--pull", "never", "no-such-image", "true"], "unknown image (network exists)");
    sim.finish();
}

#[test]
fn two_containers_at_once() {
    let sim = SimHost::new("two");
    sim.image("busybox");
    let a = sim.cname("a");
    let b = sim.cname("b");
    let ida = sim.run_d(&["--name", &a, "busybox", "sleep", "1000"]);
    let idb = sim.run_d(&["--name", &b, "busybox", "sleep", "1000"]);
    assert_ne!(ida, idb);
    let pa = sim.wait_running_pid(&a);
    let pb = sim.wait_running_pid(&b);
    assert_ne!(pa, pb);
    for n in [&a, &b] {
        let row = sim.ps_row(n).unwrap_or_else(|| panic!("{n} missing from ps -a"));
        assert!(row.contains("Up "), "{row}");
    }
    let ipa = sim.ip_of(&a);
    let ipb = sim.ip_of(&b);
    assert_ne!(ipa, ipb, "two containers must get different addresses");
    let q = sim.dockling_ok(&["ps", "-q"]);
    assert_eq!(q.split_whitespace().count(), 2, "{q}");
    // stopping one leaves the other running
    sim.dockling_ok(&["stop", "-t", "1", &a]);
    assert!(sim.ps_row(&a).unwrap().contains("Exited"));
    assert!(sim.ps_row(&b).unwrap().contains("Up "));
    sim.finish();
}

#[test]
fn rm_flag_leaves_nothing() {
    let sim = SimHost::new("autorm");
    sim.image("busybox");
    let o = sim.dockling(&["run", "--rm", "--name", &sim.cname("fg"), "busybox", "echo", "bye"]);
    assert!(o.ok(), "{o}");
    assert_eq!(o.stdout, "bye\n");
    assert!(sim.ps_ids().is_empty(), "--rm container still listed");

    let o = sim.dockling(&["run", "--rm", "busybox", "sh", "-c", "exit 5"]);
    assert_eq!(o.code(), Some(5), "{o}");
    assert!(sim.ps_ids().is_empty(), "--rm container still listed after non-zero exit");

    // detached --rm: removed once it ends by itself
    let name = sim.cname("bg");
    sim.run_d(&["--rm", "--name", &name, "busybox", "sh", "-c", "sleep 1"]);
    assert!(
        wait_until(WAIT, || sim.ps_ids().is_empty()),
        "detached --rm container not removed after it exited:\n{}",
        sim.dump()
    );
    assert!(
        wait_until(WAIT, || sim.veths().is_empty() && !sim.netns_names().contains(&name)),
        "network of a --rm container not cleaned up:\n{}",
        sim.dump()
    );
    sim.finish();
}

/// `--rm` and `rm` take the directory away at once (renamed into the root's trash/) and a
/// background process deletes it; a trash entry left by a deleter that was killed is
/// swept by the next one.
#[test]
fn removed_containers_directories_are_deleted_in_the_background() {
    let sim = SimHost::new("trash");
    sim.image("busybox");
    let containers = |sim: &SimHost| fs::read_dir(sim.root.join("containers")).unwrap().count();
    let o = sim.dockling(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && for i in $(seq 300); do echo $i > /data/f$i; done",
    ]);
    assert!(o.ok(), "{o}");
    assert_eq!(containers(&sim), 0, "the --rm container's directory is still under containers/");
    assert!(wait_until(WAIT, || sim.trash().is_empty()), "trash not emptied: {:?}", sim.trash());

    // What a killed deleter would leave: the next removal sweeps it.
    let left = sim.root.join("trash/0123abcd/upper/data");
    fs::create_dir_all(&left).unwrap();
    fs::write(left.join("f"), "x").unwrap();
    let name = sim.cname("gone");
    sim.run_d(&["--name", &name, "busybox", "sleep", "100"]);
    let o = sim.dockling(&["rm", "-f", &name]);
    assert!(o.ok(), "{o}");
    assert_eq!(containers(&sim), 0, "the removed container's directory is still under containers/");
    assert!(wait_until(WAIT, || sim.trash().is_empty()), "trash not emptied: {:?}", sim.trash());
    sim.finish();
}

/// Names are claimed in `<root>/names/` (a hard link to the holder's first record per
/// name, no reading of every record):
/// taken names conflict, a root without the index gets it rebuilt from its records, a
/// stale link (its container gone) is taken over, and `rm` gives the name back.
#[test]
fn container_names_are_claimed_and_released_through_the_index() {
    let sim = SimHost::new("names");
    sim.image("busybox");
    let name = sim.cname("web");
    sim.run_d(&["--name", &name, "busybox", "sleep", "100"]);
    let link = sim.root.join("names").join(&name);
    assert!(fs::read_to_string(&link).map(|t| t.contains(&name)).unwrap_or(false), "no link for the name");
    let conflict = |sim: &SimHost, why: &str| {
        let o = sim.dockling(&["run", "--name", &name, "busybox", "true"]);
        assert_eq!(o.code(), Some(125), "{why}: {o}");
        assert!(o.stderr.contains("is already in use"), "{why}: {o}");
    };
    conflict(&sim, "taken name");
    // A root from before the index: rebuilt from the records on the next run.
    fs::remove_dir_all(sim.root.join("names")).unwrap();
    conflict(&sim, "index rebuilt");
    assert!(fs::symlink_metadata(&link).is_ok(), "index not rebuilt");
    // A stale link (the record of a container that is gone) does not hold its name.
    let ghost = sim.cname("ghost");
    let stale = fs::read_to_string(&link).unwrap().replace(&name, &ghost).replacen("\"id\": \"", "\"id\": \"0", 1);
    fs::write(sim.root.join("names").join(&ghost), stale).unwrap();
    let o = sim.dockling(&["run", "--rm", "--name", &ghost, "busybox", "true"]);
    assert!(o.ok(), "{o}");
    assert!(fs::symlink_metadata(sim.root.join("names").join(&ghost)).is_err(), "--rm left its name");
    let o = sim.dockling(&["rm", "-f", &name]);
    assert!(o.ok(), "{o}");
    assert!(fs::symlink_metadata(&link).is_err(), "rm left the name");
    let o = sim.dockling(&["run", "--rm", "--name", &name, "busybox", "true"]);
    assert!(o.ok(), "name not reusable after rm: {o}");
    sim.finish();
}

#[test]
fn env_and_workdir_take_effect() {
    let sim = SimHost::new("envwd");
    sim.image("busybox");
    let o = sim.dockling(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar baz",
        "-e",
        "EMPTY=",
        "-e",
        "X=1=2",
        "-w",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        "echo \"$FOO|$EMPTY|$X|$(pwd)\"; echo \"$PATH\"",
    ]);
    assert!(o.ok(), "{o}");
    let lines = o.stdout_lines();
    assert_eq!(lines.first(), Some(&"bar baz||1=2|/tmp"), "{o}");
    let path = lines.get(1).copied().unwrap_or("");
    for d in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        assert!(path.split(':').any(|p| p == d), "default PATH must include {d}: {path:?}");
    }
    // relative commands resolve through PATH, /usr/sbin included
    let o = sim.dockling(&["run", "--rm", "busybox", "sh", "-c", "command -v httpd"]);
    assert!(o.ok() && o.stdout.contains("httpd"), "{o}");
    sim.finish();
}

#[test]
fn stop_uses_the_images_stop_signal() {
    let sim = SimHost::new("stopsignal");
    let dir = image_dir("busybox");
    sim.dockling_ok(&["import", "-c", "STOPSIGNAL SIGUSR1", &dir.to_string_lossy(), "stopper"]);
    let name = sim.cname("s");
    // PID 1 handles only USR1: SIGTERM would be ignored and stop would wait -t, then KILL.
    sim.run_d(&["--name", &name, "stopper", "sh", "-c", "trap 'exit 7' USR1; while :; do sleep 0.1; done"]);
    sim.wait_running_pid(&name);
    sim.dockling_ok(&["stop", "-t", "60", &name]);
    assert_eq!(sim.wait_exited(&name), 7, "the image's StopSignal (USR1) ended the container");
    sim.finish();
}

/// The pid of a running container's monitor, as recorded (in the sim host's pid namespace).
fn monitor_pid(sim: &SimHost, name: &str) -> i64 {
    let pid = sim.inspect(name).path("State.MonitorPid").as_i64().unwrap_or(0);
    assert!(pid > 0, "no MonitorPid for running {name}: {:?}", sim.inspect(name).get("State"));
    pid
}

/// Each json-file entry of a container's log: (stream, log), after checking its shape.
fn log_entries(sim: &SimHost, name: &str) -> Vec<(String, String)> {
    let path = sim.inspect(name).get("LogPath").as_str().map(String::from).expect("LogPath");
    let text = sim.sh_ok(&format!("cat '{path}'"));
    text.lines()
        .map(|line| {
            assert!(line.starts_with("{\"log\":\""), "json-file entries start with the log field: {line}");
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad log line {line:?}: {e}"));
            let time = v["time"].as_str().unwrap_or_default();
            // 2026-11-27T20:00:00.123456789Z
            let shape_ok = time.len() == 30
                && time.ends_with('Z')
                && time.char_indices().all(|(i, c)| match i {
                    4 | 7 => c == '-',
                    10 => c == 'T',
                    13 | 16 => c == ':',
                    19 => c == '.',
                    29 => c == 'Z',
                    _ => c.is_ascii_digit(),
                });
            assert!(shape_ok, "time must be RFC 3339 UTC with nanoseconds: {time:?}");
            (v["stream"].as_str().unwrap_or_default().to_string(), v["log"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

#[test]
fn detached_monitor_is_the_small_program_and_logs_like_docker() {
    let sim = SimHost::new("smallmon");
    sim.image("busybox");
    let name = sim.cname("m");
    // Quotes, a backslash, a tab, a control byte and a byte that is not UTF-8; stderr;
    // a 40,000-byte line; then (after the sleep is killed) a last line without newline.
    let script = r#"printf 'tab\t"quote" back\\ \001 \377 end\n'; printf 'e1\ne2\n' >&2; head -c 40000 /dev/zero | tr '\0' a; echo; sleep 1000; printf tail-no-newline; exit 3"#;
    sim.run_d(&["--name", &name, "busybox", "sh", "-c", script]);
    let pid = sim.wait_running_pid(&name);
    let mpid = monitor_pid(&sim, &name);
    let exe = sim.sh_ok(&format!("readlink /proc/{mpid}/exe"));
    assert!(
        exe.trim().ends_with("/dockling-monitor"),
        "a detached container's monitor runs dockling-monitor, not {exe:?}"
    );
    let parent = sim.sh_ok(&format!("ps -o ppid= -p {pid}"));
    assert_eq!(parent.trim(), mpid.to_string(), "the container is the monitor's child");
    // It holds its stdio on /dev/null, the log, and the container's two pipes: nothing else.
    let fds = sim.sh_ok(&format!("for f in /proc/{mpid}/fd/*; do readlink $f; done"));
    let mut kinds: Vec<String> = fds
        .lines()
        .map(|l| {
            if l.starts_with("pipe:") {
                "pipe".to_string()
            } else if l.ends_with("/container.log") {
                "log".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["/dev/null", "/dev/null", "/dev/null", "log", "pipe", "pipe"],
        "the monitor's descriptors:\n{fds}"
    );

    let kids = poll("the container's sleep process", WAIT, || {
        let k = sim_children(&sim, pid);
        if k.is_empty() {
            Err("no children yet".into())
        } else {
            Ok(k)
        }
    });
    for k in kids {
        sim.sh_ok(&format!("kill {k}"));
    }
    // The exit handler (`dockling _monitor-exit`, exec'd by the monitor) recorded the code.
    assert_eq!(sim.wait_exited(&name), 3);
    assert!(
        wait_until(WAIT, || !sim.sh(&format!("kill -0 {mpid}")).ok()),
        "the monitor must be gone once the container is"
    );

    let long = "a".repeat(40000);
    let o = sim.dockling(&["logs", &name]);
    assert!(o.ok(), "{o}");
    assert_eq!(
        o.stdout,
        format!("tab\t\"quote\" back\\ \u{1} \u{FFFD} end\n{long}\ntail-no-newline"),
        "logs must give back stdout as written"
    );
    // (then sh's own "Terminated" for the killed sleep)
    assert!(o.stderr.starts_with("e1\ne2\n"), "and stderr on stderr: {:?}", o.stderr);

    let entries = log_entries(&sim, &name);
    let pieces: Vec<usize> =
        entries.iter().filter(|(s, l)| s == "stdout" && l.starts_with('a')).map(|(_, l)| l.len()).collect();
    assert_eq!(pieces, vec![16384, 16384, 7233], "a long line is logged in 16 KiB pieces, as Docker does");
    let stderr: Vec<&str> = entries.iter().filter(|(s, _)| s == "stderr").map(|(_, l)| l.as_str()).collect();
    assert_eq!(stderr[..2], ["e1\n", "e2\n"]);
    sim.finish();
}

#[test]
fn without_the_small_monitor_the_fork_monitors_itself() {
    let sim = SimHost::new("forkmon");
    sim.image("busybox");
    // dockling alone in a directory: no dockling-monitor next to it.
    let lone = sim.tmp.join("bin-alone");
    fs::create_dir_all(&lone).unwrap();
    fs::copy(bin(), lone.join("dockling")).unwrap();
    let d = lone.join("dockling");
    let name = sim.cname("f");
    let root = sim.root.display().to_string();
    let id = sim
        .sh_ok(&format!("{} --root {root} run -d --name {name} busybox sh -c 'echo hello; sleep 1000'", d.display()));
    assert_eq!(id.trim().len(), 64, "{id}");
    sim.wait_running_pid(&name);
    let mpid = monitor_pid(&sim, &name);
    let exe = sim.sh_ok(&format!("readlink /proc/{mpid}/exe"));
    assert!(exe.trim().ends_with("/bin-alone/dockling"), "the forked dockling stays the monitor: {exe:?}");
    poll("logs", WAIT, || {
        let o = sim.dockling(&["logs", &name]);
        if o.stdout == "hello\n" {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    sim.dockling_ok(&["stop", "-t", "1", &name]);
    assert_eq!(sim.inspect(&name).path("State.ExitCode").as_i64(), Some(137));
    sim.finish();
}

#[test]
fn a_dead_container_counts_as_running_until_its_monitor_records_the_exit() {
    let sim = SimHost::new("pending");
    sim.image("busybox");
    let name = sim.cname("p");
    sim.run_d(&["--name", &name, "busybox", "sleep", "1000"]);
    let pid = sim.wait_running_pid(&name);
    let mpid = monitor_pid(&sim, &name);
    // Hold the monitor still, then kill the container: it is dead (a zombie nobody reaps
    // yet), but its exit code is known only to the monitor.
    sim.sh_ok(&format!("kill -STOP {mpid}; kill -9 {pid}"));
    let state = sim.inspect(&name).get("State").clone();
    assert_eq!(
        state.get("Status").as_str(),
        Some("running"),
        "no exit may be reported before the monitor records it: {state:?}"
    );
    let row = sim.ps_row(&name).unwrap_or_default();
    assert!(row.contains("Up "), "{row}");
    sim.sh_ok(&format!("kill -CONT {mpid}"));
    assert_eq!(sim.wait_exited(&name), 137, "the monitor records the real exit code");
    sim.finish();
}
