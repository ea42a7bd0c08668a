//! Building a simulated host: the namespaces, the `world` netns and its veth link, and the reaper that is its PID 1.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{prctl, SimHost, HOST_IP, INTERNET_IP, PR_SET_PDEATHSIG, SIGKILL, WORLD_IP};
use crate::common::paths::{python, search_path};
use crate::common::process::{pump, wait_until, Captured};
use crate::common::real_host::children_of;
use crate::common::text::shq;

const REAPER_PY: &str = r#"
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
while True:
    signal.sigtimedwait([signal.SIGCHLD], 1.0)
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
"#;

static SIM_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl SimHost {
    /// Build a fresh simulated host. `label` should be unique per test
    /// (it becomes part of the temp dir and of container names).
    pub fn new(label: &str) -> SimHost {
        for tool in ["unshare", "nsenter", "ip", "setsid"] {
            let ok = Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {tool}"))
                .env("PATH", search_path())
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "required tool `{tool}` not found");
        }
        let n = SIM_COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let tmp = std::env::temp_dir().join(format!("dockling-it-{label}-{}-{n}-{nanos:x}", std::process::id()));
        let root = tmp.join("root");
        fs::create_dir_all(&root).expect("create temp root");
        fs::create_dir_all(tmp.join("cg")).unwrap();
        let setup = format!(
            r#"set -e
T={t}
mkdir -p /run/netns
mount -t tmpfs -o mode=755 dockling-test-netns /run/netns
if mountpoint -q /sys/fs/cgroup; then mount --rbind /sys/fs/cgroup "$T/cg"; fi
mount -t sysfs sysfs /sys
if mountpoint -q "$T/cg"; then mount --move "$T/cg" /sys/fs/cgroup; fi
echo simhost > /proc/sys/kernel/hostname
ip link set lo up
ip netns add world
ip link add wan0 type veth peer name wan1 netns world
ip addr add {host}/24 dev wan0
ip link set wan0 up
ip -n world link set lo up
ip -n world addr add {world}/24 dev wan1
ip -n world addr add {inet}/24 dev lo
ip -n world link set wan1 up
ip route add default via {world} dev wan0
echo READY
exec {py} -c {reaper}
"#,
            t = shq(&tmp.to_string_lossy()),
            host = HOST_IP,
            world = WORLD_IP,
            inet = INTERNET_IP,
            py = python(),
            reaper = shq(REAPER_PY),
        );
        fs::write(tmp.join("setup.sh"), &setup).unwrap();

        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--net",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--uts",
            "--ipc",
            "sh",
        ])
        .arg(tmp.join("setup.sh"))
        .env("PATH", search_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        // If the test process dies, the holder (and so the whole sim host) dies too.
        unsafe {
            cmd.pre_exec(|| {
                prctl(PR_SET_PDEATHSIG, SIGKILL as u64, 0, 0, 0);
                Ok(())
            });
        }
        let mut holder = cmd.spawn().expect("spawn unshare");
        let holder_err = Arc::new(Captured::default());
        pump(holder.stderr.take().unwrap(), holder_err.clone());
        let stdout = holder.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // keep draining
            let mut sink = Vec::new();
            let _ = r.read_to_end(&mut sink);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        if line.trim() != "READY" {
            let _ = holder.kill();
            let _ = holder.wait();
            thread::sleep(Duration::from_millis(200));
            let err = String::from_utf8_lossy(&holder_err.buf.lock().unwrap()).into_owned();
            let _ = fs::remove_dir_all(&tmp);
            panic!("simulated host setup failed (got {line:?})\nsetup script:\n{setup}\nstderr:\n{err}");
        }
        // Find PID 1 of the new PID namespace: the only child of unshare.
        let upid = holder.id();
        let mut pid1 = None;
        wait_until(Duration::from_secs(10), || {
            pid1 = children_of(upid).into_iter().next();
            pid1.is_some()
        });
        let pid = match pid1 {
            Some(p) => p,
            None => {
                let _ = holder.kill();
                let _ = holder.wait();
                panic!("cannot find the simulated host's PID 1 (child of unshare {upid})");
            }
        };
        let netns_id =
            fs::read_link(format!("/proc/{pid}/ns/net")).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        SimHost {
            label: label.to_string(),
            tmp,
            root,
            pid,
            netns_id,
            holder: Mutex::new(Some(holder)),
            holder_err,
            images: Mutex::new(BTreeSet::new()),
            used_dockling: AtomicBool::new(false),
            seen_ids: Mutex::new(BTreeSet::new()),
            counter: AtomicUsize::new(0),
            bg_pidfiles: Mutex::new(Vec::new()),
            finished: AtomicBool::new(false),
        }
    }
}
