//! `SimHost`: a simulated host for one test, and the commands a test runs in it.
//!
//! Every test runs dockling inside a *simulated host*: a holder process in new
//! mount, network, PID, UTS and IPC namespaces (PID 1 of its PID namespace is a
//! tiny reaper). Inside it:
//!
//! * `lo` is up, and `/run/netns` is a private tmpfs, so `ip netns` names are
//!   private to the test;
//! * `/sys` is a fresh sysfs (so `/sys/class/net` shows the simulated host's
//!   interfaces), with the real cgroup tree moved back under `/sys/fs/cgroup`;
//! * a netns named `world` is joined by the veth pair `wan0` (sim host,
//!   198.51.100.1/24) <-> `wan1` (world, 198.51.100.2/24); the world also owns
//!   203.0.113.1/24 on its `lo` (an "internet" address); the sim host's
//!   default route points at the world.
//!
//! Only documentation addresses are used, and no traffic leaves these
//! namespaces. When a `SimHost` is dropped (even on panic) every container is
//! removed with `rm -f`, `network prune` runs, PID 1 of the simulated host is
//! killed (which kills everything left in its PID namespace and frees its
//! namespaces and mounts) and the temp dir is removed. `SimHost::finish()`
//! does the same but *asserts* that dockling cleaned up after itself.
//!
//! Building the simulated host is in `setup`, what tests ask it in `queries`, the
//! "nothing was created" snapshots in `snapshot`, and the end of a test (`finish`,
//! `Drop`) in `cleanup`.

mod cleanup;
mod queries;
mod setup;
mod snapshot;

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::paths::{bin, image_dir, search_path};
use super::process::{run_cmd, wait_until, Captured, Out, Proc, CMD_TIMEOUT, WAIT};
use super::text::shq;

pub use snapshot::Snapshot;

/// The simulated host's address on `wan0`, its link to the world.
pub const HOST_IP: &str = "198.51.100.1";
/// The world's address on `wan1`, the simulated host's default gateway.
pub const WORLD_IP: &str = "198.51.100.2";
/// An "internet" address, on the world's `lo`.
pub const INTERNET_IP: &str = "203.0.113.1";
/// The bridge dockling creates for containers, and its subnet.
pub const BRIDGE: &str = "dockling0";
pub const SUBNET_PREFIX: &str = "10.131.0.";
pub const GATEWAY: &str = "10.131.0.1";

// From libc: the holder's parent-death signal (setup) and killing PID 1 (cleanup).
extern "C" {
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
}
const PR_SET_PDEATHSIG: i32 = 1;
const SIGKILL: i32 = 9;

/// One test's simulated host (see the module comment).
pub struct SimHost {
    /// Label used in temp dir and container names.
    pub label: String,
    /// Per-test temp dir (on the real host's filesystem; visible inside).
    pub tmp: PathBuf,
    /// dockling's state root (`--root`).
    pub root: PathBuf,
    /// PID (in the test's PID namespace) of PID 1 of the simulated host.
    pub pid: u32,
    /// "net:[inode]" of the simulated host's network namespace.
    pub netns_id: String,
    holder: Mutex<Option<Child>>,
    holder_err: Arc<Captured>,
    images: Mutex<BTreeSet<String>>,
    used_dockling: AtomicBool,
    seen_ids: Mutex<BTreeSet<String>>,
    counter: AtomicUsize,
    bg_pidfiles: Mutex<Vec<PathBuf>>,
    finished: AtomicBool,
}

impl SimHost {
    /// A unique, valid container name: `<base>-<label>`.
    pub fn cname(&self, base: &str) -> String {
        format!("{base}-{}", self.label)
    }

    /// A command that runs `program` inside the simulated host
    /// (its mount, net, PID, UTS and IPC namespaces).
    pub fn ns_command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid.to_string(), "-m", "-n", "-p", "-u", "-i", "--", program]);
        c.env("PATH", search_path()).stdin(Stdio::null());
        c
    }

    fn dockling_command(&self, args: &[&str]) -> Command {
        self.used_dockling.store(true, Ordering::SeqCst);
        let mut c = self.ns_command(bin());
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// Run `dockling --root ROOT ARGS...` inside the sim host (no panic on failure;
    /// panics only if it hangs for CMD_TIMEOUT).
    pub fn dockling(&self, args: &[&str]) -> Out {
        self.dockling_t(CMD_TIMEOUT, args)
    }

    pub fn dockling_t(&self, timeout: Duration, args: &[&str]) -> Out {
        let o = run_cmd(self.dockling_command(args), timeout);
        if o.timed_out {
            panic!("dockling did not finish within {timeout:?}\n{o}");
        }
        // remember container ids we see (for the cgroup leak check)
        if o.ok() && args.first() == Some(&"run") && args.iter().any(|a| *a == "-d" || *a == "--detach") {
            let id = o.stdout.trim();
            if id.len() == 64 {
                self.seen_ids.lock().unwrap().insert(id.to_string());
            }
        }
        o
    }

    /// Run dockling and panic (with full diagnostics) unless it exits 0; returns stdout.
    pub fn dockling_ok(&self, args: &[&str]) -> String {
        let o = self.dockling(args);
        assert!(o.ok(), "dockling failed:\n{o}");
        o.stdout
    }

    /// Start dockling in the background (e.g. a foreground `run` to be killed later).
    pub fn spawn_dockling(&self, args: &[&str]) -> Proc {
        Proc::spawn(self.dockling_command(args))
    }

    /// `run -d ARGS...`, asserting success and a 64-hex id; returns the id.
    pub fn run_d(&self, args: &[&str]) -> String {
        let mut a = vec!["run", "-d"];
        a.extend_from_slice(args);
        let o = self.dockling(&a);
        assert!(o.ok(), "run -d failed:\n{o}");
        let id = o.stdout.trim().to_string();
        assert!(
            id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "run -d must print the full 64-hex id, got {id:?}\n{o}"
        );
        assert!(!o.pipes_held_open, "run -d returned but its stdout/stderr are still held open by another process (would hang `$(dockling run -d ...)`)\n{o}");
        id
    }

    /// Run a shell command in the simulated host.
    pub fn sh(&self, cmd: &str) -> Out {
        let mut c = self.ns_command("sh");
        c.arg("-c").arg(cmd);
        run_cmd(c, CMD_TIMEOUT)
    }

    pub fn sh_ok(&self, cmd: &str) -> String {
        let o = self.sh(cmd);
        assert!(o.ok(), "sim host command failed:\n{o}");
        o.stdout
    }

    /// Run a shell command in the world netns.
    pub fn world_sh(&self, cmd: &str) -> Out {
        let mut c = self.ns_command("ip");
        c.args(["netns", "exec", "world", "sh", "-c", cmd]);
        run_cmd(c, CMD_TIMEOUT)
    }

    pub fn world_sh_ok(&self, cmd: &str) -> String {
        let o = self.world_sh(cmd);
        assert!(o.ok(), "world command failed:\n{o}");
        o.stdout
    }

    fn spawn_bg(&self, cmd: &str, in_world: bool) -> Proc {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let pidfile = self.tmp.join(format!("bg-{n}.pgid"));
        let inner = if in_world { "exec ip netns exec world sh -c \"$0\"" } else { "exec sh -c \"$0\"" };
        let script = format!("echo $$ > {}; {inner}", shq(&pidfile.to_string_lossy()));
        let mut c = self.ns_command("setsid");
        c.args(["-w", "sh", "-c", &script, cmd]);
        let mut p = Proc::spawn(c);
        p.pgid = Some((self.pid, pidfile.clone()));
        self.bg_pidfiles.lock().unwrap().push(pidfile);
        p
    }

    /// Start a background command (sh -c) in the world netns; killed (whole
    /// process group) when the returned Proc is dropped or stopped.
    pub fn spawn_world(&self, cmd: &str) -> Proc {
        self.spawn_bg(cmd, true)
    }

    /// Start a background command (sh -c) in the simulated host.
    pub fn spawn_host(&self, cmd: &str) -> Proc {
        self.spawn_bg(cmd, false)
    }

    /// Write a file into the test's temp dir (visible in the sim host and world).
    pub fn write_file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.tmp.join(name);
        fs::write(&p, content).unwrap();
        p
    }

    /// Import rootfs/out/NAME as image NAME (once per sim host).
    pub fn image(&self, name: &str) {
        let mut imgs = self.images.lock().unwrap();
        if imgs.contains(name) {
            return;
        }
        let dir = image_dir(name);
        assert!(
            dir.join("bin").exists(),
            "image tree {} is missing: build it first with rootfs/build.sh",
            dir.display()
        );
        let o = self.dockling(&["import", &dir.to_string_lossy(), name]);
        assert!(o.ok(), "import of {} failed:\n{o}", dir.display());
        imgs.insert(name.to_string());
    }

    /// HTTP GET with curl from the sim host (5 s limit per try).
    pub fn host_get(&self, url: &str) -> Out {
        self.sh(&format!("curl -sS --max-time 5 {}", shq(url)))
    }

    /// HTTP GET with curl from the world (5 s limit per try).
    pub fn world_get(&self, url: &str) -> Out {
        self.world_sh(&format!("curl -sS --max-time 5 {}", shq(url)))
    }

    /// Poll an HTTP GET (from the world or the sim host) until the body contains `needle`.
    pub fn wait_http(&self, from_world: bool, url: &str, needle: &str) -> String {
        let what = format!(
            "GET {url} from the {} returning a body with {needle:?}",
            if from_world { "world" } else { "sim host" }
        );
        let mut last = None;
        let ok = wait_until(WAIT, || {
            let o = if from_world { self.world_get(url) } else { self.host_get(url) };
            let hit = o.ok() && o.stdout.contains(needle);
            last = Some(o);
            hit
        });
        let last = last.unwrap();
        assert!(ok, "timed out waiting for {what}\nlast attempt:\n{last}\n{}", self.dump());
        last.stdout
    }
}
