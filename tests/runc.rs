//! `dockling-runc`, runc's command line as containerd's shim speaks it: what it answers
//! before any container of its own exists. (The engine's create/start come next.)

mod common;
use common::*;

use std::path::PathBuf;
use std::process::Command;

/// A directory of the test's own with a `dockling-runc` link to the binary under test;
/// removed when dropped.
struct Runc {
    dir: PathBuf,
    link: PathBuf,
}

impl Runc {
    fn new(name: &str) -> Runc {
        let dir = std::env::temp_dir().join(format!("dockling-runc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("dockling-runc");
        std::os::unix::fs::symlink(bin(), &link).unwrap();
        Runc { dir, link }
    }

    fn call(&self, args: &[&str]) -> (i32, String, String) {
        let o = Command::new(&self.link).args(args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into(),
            String::from_utf8_lossy(&o.stderr).into(),
        )
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn version_and_features_come_from_the_engine() {
    let r = Runc::new("features");
    let call = |a: &[&str]| r.call(a);
    let (code, out, _) = call(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("dockling-runc version ") && out.contains("\nspec: 1.0.2"), "{out}");
    let (code, out, err) = call(&["features"]);
    assert_eq!(code, 0, "{err}");
    let f: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(f["ociVersionMax"], "1.0.2");
    let opts: Vec<&str> = f["mountOptions"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    for o in ["rbind", "ro", "nosuid", "rprivate", "strictatime"] {
        assert!(opts.contains(&o), "{o} missing from {opts:?}");
    }
    assert!(!opts.contains(&"rro"), "rro is not honoured, so it is not offered: {opts:?}");
    let ns: Vec<&str> = f["linux"]["namespaces"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(ns.contains(&"network") && !ns.contains(&"user"), "{ns:?}");
    assert!(f["linux"]["capabilities"].as_array().unwrap().iter().any(|c| c == "CAP_NET_RAW"));
}

#[test]
fn unknown_ids_are_answered_as_the_shim_expects() {
    let r = Runc::new("unknown");
    let call = |a: &[&str]| r.call(a);
    let dir = r.dir.clone();
    let log = dir.join("log.json");
    let _ = std::fs::remove_file(&log);
    let root = dir.join("root");
    let (root_s, log_s) = (root.to_str().unwrap(), log.to_str().unwrap());
    let global = ["--root", root_s, "--log", log_s, "--log-format", "json"];
    // delete --force of an id that does not exist: success, and silence.
    let (code, out, err) = call(&[&global[..], &["delete", "--force", "nosuch"]].concat());
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    // state and kill: exit 1, nothing on stdout or stderr, and a JSON error line in the
    // log with the words the shim and dockerd classify by.
    for cmd in [&["state", "nosuch"][..], &["kill", "nosuch", "9"][..]] {
        let (code, out, err) = call(&[&global[..], cmd].concat());
        assert_eq!((code, out.as_str(), err.as_str()), (1, "", ""), "{cmd:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["level"], "error", "{text}");
        assert!(last["msg"].as_str().unwrap().contains("does not exist"), "{text}");
        assert!(last["time"].as_str().is_some(), "{text}");
    }
    // A hostile id is refused before it names any path.
    let (code, ..) = call(&[&global[..], &["state", "../../etc"]].concat());
    assert_eq!(code, 1);
    assert!(std::fs::read_to_string(&log).unwrap().lines().last().unwrap().contains("invalid container id"));
    // --systemd-cgroup is refused clearly, not ignored.
    let (code, ..) = call(&[&global[..], &["--systemd-cgroup", "list"]].concat());
    assert_eq!(code, 1);
    assert!(std::fs::read_to_string(&log).unwrap().lines().last().unwrap().contains("--systemd-cgroup"));
    assert!(!root.exists(), "nothing may have been created under the root");
}

/// The busybox image's tree, copied for one container (ctr's `--rootfs` uses it as is).
fn rootfs_copy(sim: &SimHost, name: &str) -> String {
    let dest = sim.tmp.join(name);
    let src = image_dir("busybox");
    sim.sh_ok(&format!("cp -a {}/. {}", shq(&src.to_string_lossy()), shq(&dest.to_string_lossy())));
    dest.to_string_lossy().into_owned()
}

/// What dockling-runc keeps for containerd's tasks, and the groups it made: nothing once
/// the tasks are deleted.
fn assert_nothing_left(sim: &SimHost, ctr: &Containerd, ids: &[&str]) {
    let state = sim.sh("ls -A /run/containerd/runc/default 2>/dev/null").stdout;
    assert_eq!(state.trim(), "", "dockling-runc state left behind\n{}", ctr.log());
    for id in ids {
        let left = sim.sh(&format!("ls -d /sys/fs/cgroup/*/dockling/default/{id} 2>/dev/null")).stdout;
        assert_eq!(left.trim(), "", "cgroups of {id} left behind");
    }
}

#[test]
fn containerd_runs_tasks_through_dockling_runc() {
    let sim = SimHost::new("ctr");
    let ctr = Containerd::start(&sim);
    let runtime = runc_link(&sim);
    let rt = shq(&runtime.to_string_lossy());
    let root1 = rootfs_copy(&sim, "rootfs1");

    // A task's output and exit code come back through the shim.
    let o = ctr.ctr(&format!("run --rm --runc-binary {rt} --rootfs {root1} t1 sh -c 'echo hello from ctr; exit 7'"));
    assert_eq!(o.code(), Some(7), "{o}\n{}", ctr.log());
    assert_eq!(o.stdout.trim(), "hello from ctr", "{o}");

    // A missing command fails create with the words dockerd turns into 127.
    let o = ctr.ctr(&format!("run --rm --runc-binary {rt} --rootfs {root1} t0 nosuchcmd"));
    assert!(!o.ok(), "{o}");
    assert!(o.stderr.contains(r#"exec: "nosuchcmd": executable file not found in $PATH"#), "{o}");

    // -t: the task's terminal comes through the console socket.
    let o = ctr.ctr_in_pty(&format!("run --rm -t --runc-binary {rt} --rootfs {root1} tt sh -c 'tty; exit 2'"));
    assert!(o.stdout.contains("/dev/pts/"), "{o}\n{}", ctr.log());

    // A detached task: exec with and without a terminal, ps, pause, kill.
    let root2 = rootfs_copy(&sim, "rootfs2");
    let o = ctr.ctr(&format!(
        "run -d --runc-binary {rt} --rootfs {root2} t2 sh -c 'trap \"exit 0\" TERM; while :; do sleep 0.05; echo tick >> /ticks; done'"
    ));
    assert!(o.ok(), "{o}\n{}", ctr.log());
    let state = sim.sh("ls -A /run/containerd/runc/default; ls -d /sys/fs/cgroup/memory/dockling/default/t2").stdout;
    assert!(state.contains("t2\n") && state.contains("dockling/default/t2"), "{state}");
    let o = ctr.ctr("task exec --exec-id e1 t2 sh -c 'echo exec says hi; exit 5'");
    assert_eq!((o.code(), o.stdout.trim()), (Some(5), "exec says hi"), "{o}");
    let o = ctr.ctr_in_pty("task exec --exec-id e2 -t t2 sh -c 'tty; test -t 0 && echo stdin is a tty'");
    assert!(o.ok(), "{o}");
    assert!(o.stdout.contains("/dev/pts/") && o.stdout.contains("stdin is a tty"), "{o}");
    let ps = ctr.ctr("task ps t2");
    let pids: Vec<&str> = ps.stdout.lines().skip(1).filter(|l| !l.trim().is_empty()).collect();
    assert!(pids.len() >= 2, "init and its sleep:\n{ps}");
    // Paused: the container's loop stops writing; resumed: it goes on.
    assert!(ctr.ctr("task pause t2").ok());
    assert!(ctr.ctr("task ls").stdout.contains("PAUSED"));
    let ticks = |root: &str| std::fs::read_to_string(format!("{root}/ticks")).unwrap_or_default().lines().count();
    let before = ticks(&root2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(ticks(&root2), before, "a paused container went on running");
    assert!(ctr.ctr("task resume t2").ok());
    assert!(wait_until(WAIT, || ticks(&root2) > before), "a resumed container stays stopped");
    // SIGTERM reaches the trap; the task ends with its code.
    let o = ctr.ctr("task kill t2");
    assert!(o.ok(), "{o}");
    assert!(wait_until(WAIT, || ctr.ctr("task ls").stdout.contains("STOPPED")), "{}", ctr.ctr("task ls"));
    assert!(ctr.ctr("task delete t2").ok());
    assert!(ctr.ctr("container delete t2").ok());
    assert_nothing_left(&sim, &ctr, &["t0", "t1", "t2", "tt"]);
    drop(ctr);
    sim.finish();
}

/// What dockling-runc keeps for dockerd's containers, and the groups it made: `id` has
/// them while it runs (so the check can see them), and nothing is left at the end.
fn assert_docker_state(d: &Dockerd, id: Option<&str>) {
    let state = entries(&d.runtime_root());
    let groups = d.cgroup_dirs();
    match id {
        Some(id) => {
            assert!(state.iter().any(|s| s == id), "no state of {id} in {}: {state:?}", d.runtime_root().display());
            assert!(groups.iter().any(|g| g.contains(id)), "no groups of {id}: {groups:?}");
        }
        None => {
            assert!(state.is_empty(), "dockling-runc state left behind: {state:?}");
            assert!(groups.is_empty(), "cgroups of docker's containers left behind: {groups:?}");
        }
    }
}

#[test]
fn docker_runs_containers_with_the_dockling_runtime() {
    let sim = SimHost::new("dkr");
    let mut d = Dockerd::start(&sim);
    let run = "run --runtime dockling";
    // Output and exit codes; a missing command is 127 with Docker's message.
    let o = d.docker(&format!("{run} --rm busybox sh -c 'echo hello from docker; exit 3'"));
    assert_eq!((o.code(), o.stdout.trim()), (Some(3), "hello from docker"), "{o}\n{}", d.log());
    let o = d.docker(&format!("{run} --rm busybox nosuchcmd"));
    assert_eq!(o.code(), Some(127), "{o}");
    assert!(o.stderr.contains(r#"exec: "nosuchcmd": executable file not found in $PATH"#), "{o}");
    // A volume is the host's directory; --read-only refuses writes elsewhere.
    let vol = sim.tmp.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let o = d.docker(&format!("{run} --rm -v {}:/data busybox sh -c 'echo written > /data/f'", vol.display()));
    assert!(o.ok(), "{o}");
    assert_eq!(std::fs::read_to_string(vol.join("f")).unwrap(), "written\n");
    let o = d.docker(&format!("{run} --rm --read-only busybox touch /x"));
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(o.stderr.contains("Read-only file system"), "{o}");

    // -t: the terminal is made inside the container at create and its master handed to
    // the shim over the console socket.
    let o = d.docker_in_pty(&format!(
        "{run} --rm -it busybox sh -c 'tty; test -t 0 && echo stdin is a tty; test -c /dev/console && echo console too'"
    ));
    assert!(o.stdout.contains("/dev/pts/") && o.stdout.contains("stdin is a tty"), "{o}\n{}", d.log());
    assert!(o.stdout.contains("console too"), "/dev/console is the terminal: {o}");

    // A detached container: exec -it in a real pty, top, pause, update, stop.
    let o = d.docker(&format!("{run} -d --name c1 busybox sh -c 'trap \"exit 0\" TERM; while :; do sleep 0.05; done'"));
    assert!(o.ok(), "{o}\n{}", d.log());
    assert_docker_state(&d, Some(o.stdout.trim()));
    let o = d.docker_in_pty("exec -it c1 sh -c 'tty; test -t 0 && echo stdin is a tty'");
    assert!(o.stdout.contains("/dev/pts/") && o.stdout.contains("stdin is a tty"), "{o}");
    let o = d.docker("exec c1 sh -c 'exit 4'");
    assert_eq!(o.code(), Some(4), "{o}");
    let top = d.docker("top c1");
    assert!(top.ok() && top.stdout.contains("sleep"), "{top}");
    assert!(d.docker("pause c1").ok());
    assert_eq!(d.docker("inspect -f '{{.State.Status}}' c1").stdout.trim(), "paused");
    assert!(d.docker("unpause c1").ok());
    assert_eq!(d.docker("inspect -f '{{.State.Status}}' c1").stdout.trim(), "running");
    let o = d.docker("update --memory 64m --memory-swap 64m c1");
    assert!(o.ok(), "{o}");
    let limit = d.docker("exec c1 cat /sys/fs/cgroup/memory/memory.limit_in_bytes");
    assert_eq!(limit.stdout.trim(), (64u64 << 20).to_string(), "{limit}");
    let o = d.docker("stop -t 5 c1");
    assert!(o.ok(), "{o}");
    assert_eq!(d.docker("inspect -f '{{.State.ExitCode}}' c1").stdout.trim(), "0", "the TERM trap's exit");
    assert!(d.docker("rm c1").ok());
    // rm -f of a running one.
    assert!(d.docker(&format!("{run} -d --name c2 busybox sleep 1000")).ok());
    assert!(d.docker("rm -f c2").ok());
    assert_docker_state(&d, None);
    d.stop();
    drop(d);
    sim.finish();
}

#[test]
fn docker_publishes_ports_and_shares_namespaces_with_the_dockling_runtime() {
    let sim = SimHost::new("dkp");
    let mut d = Dockerd::start(&sim);
    // docker's bridge networking is a prestart hook: the page is reached from the world.
    let o = d.docker(
        "run --runtime dockling -d --name web -p 8080:80 busybox sh -c \
         'mkdir /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www'",
    );
    assert!(o.ok(), "{o}\n{}", d.log());
    sim.wait_http(true, &format!("http://{HOST_IP}:8080/"), "hello-from-web");
    // The pod pattern: a second container in web's network and pid namespaces.
    let o = d
        .docker("run --runtime dockling -d --name side --network container:web --pid container:web busybox sleep 1000");
    assert!(o.ok(), "{o}");
    let o = d.docker("exec side wget -qO- http://127.0.0.1/");
    assert_eq!(o.stdout.trim(), "hello-from-web", "{o}");
    let o = d.docker("exec side ps");
    assert!(o.stdout.contains("httpd"), "web's processes are visible to side:\n{o}");
    assert!(d.docker("rm -f side web").ok());
    assert_docker_state(&d, None);
    d.stop();
    drop(d);
    sim.finish();
}

/// `dockling-runc --root ROOT ARGS` in the simulated host, its output to `out` (a
/// container's stdio is the caller's, and outlives `create`).
fn runc_in(sim: &SimHost, root: &str, args: &str, out: &str) -> Out {
    let link = runc_link(sim);
    sim.sh(&format!("{} --root {root} {args} >> {out} 2>&1", shq(&link.to_string_lossy())))
}

/// A bundle: the busybox tree as `rootfs` and the ctr fixture's config.json, changed by `edit`.
fn bundle(sim: &SimHost, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> std::path::PathBuf {
    let dir = sim.tmp.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    rootfs_copy(sim, &format!("{name}/rootfs"));
    let text =
        std::fs::read_to_string(manifest_dir().join("tests/fixtures/oci-runtime/ctr-1.6-run.config.json")).unwrap();
    let mut spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{}/{name}", sim.label));
    edit(&mut spec);
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&spec).unwrap()).unwrap();
    dir
}

/// The lines of /proc/self/status a container printed, by key.
fn status_field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines().find_map(|l| l.strip_prefix(&format!("{key}:"))).map(str::trim).unwrap_or("")
}

#[test]
fn a_bundles_spec_reaches_its_container() {
    let sim = SimHost::new("spec");
    let t = sim.tmp.to_string_lossy().into_owned();
    let hook =
        |name: &str| serde_json::json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {t}/{name}.json")]}]);
    let b = bundle(&sim, "b1", |s| {
        s["process"]["args"] = serde_json::json!(["sh", "-c",
            "cat /dev/shm/started.json; echo; cat /proc/self/status; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; hostname; \
             cat /proc/sys/net/ipv4/ip_unprivileged_port_start; stat -c 'dev %t:%T %a %u:%g' /dev/mydev; \
             touch /x 2>/dev/null && echo root writable || echo root read-only; echo done"]);
        s["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 23});
        let bind = ["CAP_NET_BIND_SERVICE"];
        s["process"]["capabilities"] = serde_json::json!({
            "bounding": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"], "effective": bind, "permitted": bind,
            "inheritable": bind, "ambient": bind});
        s["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}]);
        s["process"]["noNewPrivileges"] = serde_json::json!(true);
        s["process"]["oomScoreAdj"] = serde_json::json!(500);
        s["hostname"] = serde_json::json!("specbox");
        s["root"]["readonly"] = serde_json::json!(true);
        s["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_unprivileged_port_start": "1000"});
        s["linux"]["devices"] = serde_json::json!([{"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3,
            "fileMode": 416, "uid": 1000, "gid": 1000}]);
        s["hooks"] = serde_json::json!({"prestart": hook("prestart"), "createRuntime": hook("createRuntime"),
            "createContainer": hook("createContainer"), "startContainer": [{"path": "/bin/sh",
            "args": ["sh", "-c", "cat > /dev/shm/started.json"]}],
            "poststart": hook("poststart"), "poststop": hook("poststop")});
    });
    let root = format!("{t}/runc-root");
    let out = format!("{t}/b1.out");
    let pidfile = format!("{t}/b1.pid");
    let o = runc_in(&sim, &root, &format!("create --bundle {} --pid-file {pidfile} b1", b.display()), &out);
    assert!(o.ok(), "{o}\n{}", std::fs::read_to_string(&out).unwrap_or_default());
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(!pid.ends_with('\n') && pid.parse::<u32>().is_ok(), "pid file {pid:?}");
    // The hooks of create ran, with the state on stdin.
    for name in ["prestart", "createRuntime", "createContainer"] {
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{t}/{name}.json")).unwrap()).unwrap();
        assert_eq!(state["id"], "b1", "{name}: {state}");
        assert_eq!(state["bundle"], b.to_string_lossy().as_ref(), "{name}: {state}");
    }
    assert!(runc_in(&sim, &root, "state b1", &format!("{t}/state.out")).ok());
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{t}/state.out")).unwrap()).unwrap();
    assert_eq!((state["status"].as_str(), state["pid"].to_string()), (Some("created"), pid.clone()));
    assert!(runc_in(&sim, &root, "start b1", &out).ok());
    assert!(wait_until(WAIT, || std::fs::read_to_string(&out).unwrap_or_default().contains("done\n")));
    let text = std::fs::read_to_string(&out).unwrap();
    // startContainer ran in the container (its /dev/shm), right before the command.
    let started: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!((started["id"].as_str(), started["status"].as_str()), (Some("b1"), Some("running")), "{text}");
    assert_eq!(status_field(&text, "Uid").split_whitespace().next(), Some("1000"), "{text}");
    assert_eq!(status_field(&text, "Gid").split_whitespace().next(), Some("1000"), "{text}");
    assert_eq!(status_field(&text, "Groups"), "10 20", "{text}");
    assert_eq!(status_field(&text, "Umask"), "0027", "{text}");
    assert_eq!(status_field(&text, "NoNewPrivs"), "1", "{text}");
    assert_eq!(status_field(&text, "CapBnd"), "0000000000000401", "{text}");
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(status_field(&text, set), "0000000000000400", "{set}\n{text}");
    }
    assert_eq!(status_field(&text, "Seccomp"), "0", "no linux.seccomp in this spec: {text}");
    assert_eq!(status_field(&text, "SigIgn"), "0000000000000000", "no signal ignored from the caller: {text}");
    // The lines after /proc/self/status: rlimits, oom_score_adj, hostname, sysctl, device, root.
    let after: Vec<&str> = text.lines().filter(|l| !l.contains(':') || l.starts_with("dev ")).collect();
    assert!(after.contains(&"256") && after.contains(&"512"), "rlimits: {after:?}");
    assert!(after.contains(&"500") && after.contains(&"specbox") && after.contains(&"1000"), "{after:?}");
    assert!(after.contains(&"dev 1:3 640 1000:1000"), "{after:?}");
    assert!(after.contains(&"root read-only"), "{after:?}");
    assert!(wait_until(WAIT, || {
        runc_in(&sim, &root, "state b1", &format!("{t}/state2.out"));
        std::fs::read_to_string(format!("{t}/state2.out")).unwrap_or_default().contains("\"stopped\"")
    }));
    assert!(std::fs::read_to_string(format!("{t}/poststart.json")).is_ok(), "poststart ran");
    assert!(runc_in(&sim, &root, "delete b1", &out).ok());
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{t}/poststop.json")).unwrap()).unwrap();
    assert_eq!(state["id"], "b1");
    assert!(entries(std::path::Path::new(&root)).is_empty(), "state left");
    let left = sim.sh(&format!("ls -d /sys/fs/cgroup/*/dockling/{} 2>/dev/null", sim.label)).stdout;
    assert_eq!(left.trim(), "", "groups left");
    sim.finish();
}

#[test]
fn a_bundle_asking_for_what_would_open_the_host_is_refused() {
    let sim = SimHost::new("refuse");
    let t = sim.tmp.to_string_lossy().into_owned();
    let root = format!("{t}/runc-root");
    let log = format!("{t}/log.json");
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &str); 6] = [
        ("core", |s| s["linux"]["sysctl"] = serde_json::json!({"kernel.core_pattern": "|/tmp/x"}), "not namespaced"),
        (
            "hostuts",
            |s| {
                s["hostname"] = serde_json::json!("renamed");
                let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "uts");
            },
            "private UTS namespace",
        ),
        (
            "rlimit",
            |s| {
                s["process"]["rlimits"] =
                    serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1u64 << 40}])
            },
            "CAP_SYS_RESOURCE",
        ),
        (
            "devlink",
            |s| s["linux"]["devices"] = serde_json::json!([{"path": "/dev/fd/x", "type": "c", "major": 1, "minor": 3}]),
            "goes through the link",
        ),
        ("pinned", |s| s["linux"]["resources"]["cpu"] = serde_json::json!({"cpus": "0"}), "cpu.cpus"),
        (
            "userns",
            |s| s["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "user"})),
            "user namespaces",
        ),
    ];
    for (name, edit, words) in cases {
        let b = bundle(&sim, name, edit);
        let link = runc_link(&sim);
        let o = sim.sh(&format!(
            "{} --root {root} --log {log} --log-format json create --bundle {} {name}",
            shq(&link.to_string_lossy()),
            b.display()
        ));
        assert_eq!(o.code(), Some(1), "{name}: {o}");
        let last = std::fs::read_to_string(&log).unwrap().lines().last().unwrap_or_default().to_string();
        assert!(last.contains(words), "{name}: {last}");
        assert!(!std::path::Path::new(&root).join(name).exists(), "{name}: state left");
    }
    assert_eq!(sim.sh("hostname").stdout.trim(), "simhost", "the host's name is untouched");
    let left = sim.sh(&format!("ls -d /sys/fs/cgroup/*/dockling/{} 2>/dev/null", sim.label)).stdout;
    assert_eq!(left.trim(), "", "groups left");

    // No capabilities in the spec (as engines write `--cap-drop ALL`): none at all, the
    // bounding set included, so no exec can get one back.
    let b = bundle(&sim, "nocaps", |s| {
        s["process"].as_object_mut().unwrap().remove("capabilities");
        s["process"]["args"] = serde_json::json!(["sh", "-c", "grep Cap /proc/self/status; echo done"]);
    });
    let out = format!("{t}/nocaps.out");
    let o = runc_in(&sim, &root, &format!("run --bundle {} nocaps", b.display()), &out);
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(o.ok(), "{o}\n{text}");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&text, set), "0000000000000000", "{set}\n{text}");
    }

    // Two containers never share a group: the second create is refused, the first runs on
    // and its delete --force takes what it forked with it.
    let a = bundle(&sim, "pa", |s| {
        s["process"]["args"] = serde_json::json!(["sh", "-c", "sleep 1000 & sleep 1000 & sleep 1000"]);
        s["linux"]["cgroupsPath"] = serde_json::json!(format!("/{}/shared", sim.label));
    });
    let b2 = bundle(&sim, "pb", |s| s["linux"]["cgroupsPath"] = serde_json::json!(format!("/{}/shared", sim.label)));
    assert!(runc_in(&sim, &root, &format!("create --bundle {} pa", a.display()), &format!("{t}/pa.out")).ok());
    assert!(runc_in(&sim, &root, "start pa", &format!("{t}/pa.out")).ok());
    let o = runc_in(
        &sim,
        &root,
        &format!("--log {log} --log-format json create --bundle {} pb", b2.display()),
        "/dev/null",
    );
    assert_eq!(o.code(), Some(1));
    assert!(std::fs::read_to_string(&log).unwrap().lines().last().unwrap().contains("cgroup is not empty"));
    let ps = |id: &str| {
        let o = runc_in(&sim, &root, &format!("ps --format json {id}"), &format!("{t}/ps.out"));
        let text = std::fs::read_to_string(format!("{t}/ps.out")).unwrap_or_default();
        std::fs::remove_file(format!("{t}/ps.out")).ok();
        (o.ok(), text)
    };
    assert!(
        wait_until(WAIT, || ps("pa").1.matches(',').count() >= 2),
        "pa's three processes: {:?}\n{}",
        ps("pa"),
        std::fs::read_to_string(format!("{t}/pa.out")).unwrap_or_default()
    );
    assert!(runc_in(&sim, &root, "delete --force pa", "/dev/null").ok());
    assert!(!std::path::Path::new(&root).join("pa").exists());
    let left = sim.sh(&format!("ls -d /sys/fs/cgroup/*/dockling/{} 2>/dev/null", sim.label)).stdout;
    assert_eq!(left.trim(), "", "groups left");
    assert_eq!(sim.sh("pgrep -x sleep").stdout.trim(), "", "pa's processes left");
    sim.finish();
}
