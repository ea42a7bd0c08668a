//! Test harness for dockling's integration tests.
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
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const HOST_IP: &str = "198.51.100.1";
pub const WORLD_IP: &str = "198.51.100.2";
pub const INTERNET_IP: &str = "203.0.113.1";
pub const BRIDGE: &str = "dockling0";
pub const SUBNET_PREFIX: &str = "10.131.0.";
pub const GATEWAY: &str = "10.131.0.1";

/// Default time limit for one dockling command.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(120);
/// Time limit for waiting on servers, states, cleanups.
pub const WAIT: Duration = Duration::from_secs(15);

const SEARCH_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

extern "C" {
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
}
const PR_SET_PDEATHSIG: i32 = 1;
const SIGKILL: i32 = 9;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_dockling")
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The host's Python 3 (used for test servers and clients in the world and sim host).
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Directory of a prebuilt image tree (rootfs/out/NAME).
pub fn image_dir(name: &str) -> PathBuf {
    manifest_dir().join("rootfs").join("out").join(name)
}

/// Single-quote a string for sh.
pub fn shq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Poll `f` every 100 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Poll `f` until it returns Ok; panic with `what` and the last error on timeout.
pub fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let end = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) => {
                if Instant::now() >= end {
                    panic!("timed out after {timeout:?} waiting for: {what}\nlast result:\n{e}");
                }
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// Running commands with captured output and a time limit
// ---------------------------------------------------------------------------

/// Result of a finished (or timed-out) command.
#[derive(Clone)]
pub struct Out {
    pub cmd: String,
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    /// The command did not finish within its time limit (it was killed).
    pub timed_out: bool,
    /// The command exited but some other process still held its stdout or
    /// stderr open 3 s later (e.g. a detached monitor that inherited them).
    pub pipes_held_open: bool,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
    pub fn signal(&self) -> Option<i32> {
        self.status.and_then(|s| s.signal())
    }
    pub fn ok(&self) -> bool {
        self.code() == Some(0)
    }
    /// Non-blank stderr lines.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| !l.trim().is_empty()).collect()
    }
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| !l.trim().is_empty()).collect()
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.cmd)?;
        match self.status {
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => writeln!(f, "exit code: {c}")?,
                (None, Some(sig)) => writeln!(f, "killed by signal {sig}")?,
                _ => writeln!(f, "status: {s:?}")?,
            },
            None => writeln!(f, "status: none")?,
        }
        if self.timed_out {
            writeln!(f, "TIMED OUT (killed)")?;
        }
        if self.pipes_held_open {
            writeln!(f, "NOTE: stdout/stderr were still held open by another process after exit")?;
        }
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

impl fmt::Debug for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Default)]
struct Captured {
    buf: Mutex<Vec<u8>>,
    done: AtomicBool,
}

fn pump<R: Read + Send + 'static>(mut r: R, cap: Arc<Captured>) {
    thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => cap.buf.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
        cap.done.store(true, Ordering::SeqCst);
    });
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$;&|<>()\\*?".contains(c)) {
            s.push(' ');
            s.push_str(&shq(&a));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// A running process whose stdout and stderr are being captured.
pub struct Proc {
    pub desc: String,
    child: Child,
    out: Arc<Captured>,
    err: Arc<Captured>,
    /// For background servers: (sim host PID 1, file holding the process group id).
    pgid: Option<(u32, PathBuf)>,
    finished: Option<Out>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let desc = describe(&cmd);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn `{desc}`: {e}"));
        let out = Arc::new(Captured::default());
        let err = Arc::new(Captured::default());
        let so: ChildStdout = child.stdout.take().unwrap();
        let se: ChildStderr = child.stderr.take().unwrap();
        pump(so, out.clone());
        pump(se, err.clone());
        Proc { desc, child, out, err, pgid: None, finished: None }
    }

    /// Pid of the directly spawned process (in the test's PID namespace).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&self.out.buf.lock().unwrap()).into_owned()
    }
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.err.buf.lock().unwrap()).into_owned()
    }

    pub fn has_exited(&mut self) -> bool {
        self.finished.is_some() || matches!(self.child.try_wait(), Ok(Some(_)))
    }

    fn collect(&mut self, status: Option<ExitStatus>, timed_out: bool) -> Out {
        // After exit, give the readers a moment to hit EOF.
        let end = Instant::now() + Duration::from_secs(3);
        while !(self.out.done.load(Ordering::SeqCst) && self.err.done.load(Ordering::SeqCst)) && Instant::now() < end {
            thread::sleep(Duration::from_millis(10));
        }
        let held = !(self.out.done.load(Ordering::SeqCst) && self.err.done.load(Ordering::SeqCst));
        Out {
            cmd: self.desc.clone(),
            status,
            stdout: self.stdout_so_far(),
            stderr: self.stderr_so_far(),
            timed_out,
            pipes_held_open: held && !timed_out,
        }
    }

    /// Wait up to `timeout` for the process to exit. On timeout the process is
    /// killed and the result has `timed_out` set.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Out {
        if let Some(o) = &self.finished {
            return o.clone();
        }
        let end = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    let o = self.collect(Some(st), false);
                    self.finished = Some(o.clone());
                    return o;
                }
                Ok(None) => {}
                Err(e) => panic!("waiting for `{}`: {e}", self.desc),
            }
            if Instant::now() >= end {
                self.kill_now();
                let st = self.child.wait().ok();
                let o = self.collect(st, true);
                self.finished = Some(o.clone());
                return o;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill_now(&mut self) {
        if let Some((holder, pidfile)) = &self.pgid {
            // Kill the whole process group inside the simulated host.
            let mut pg = None;
            wait_until(Duration::from_secs(2), || {
                pg = fs::read_to_string(pidfile).ok().and_then(|s| s.trim().parse::<u32>().ok());
                pg.is_some()
            });
            if let Some(pg) = pg {
                let _ = Command::new("nsenter")
                    .args(["-t", &holder.to_string(), "-m", "-p", "--", "kill", "-9", "--", &format!("-{pg}")])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = self.child.kill();
    }

    /// Kill the process (for background servers: its whole process group) and reap it.
    pub fn stop(&mut self) -> Out {
        if let Some(o) = &self.finished {
            return o.clone();
        }
        self.kill_now();
        let st = self.child.wait().ok();
        let o = self.collect(st, false);
        self.finished = Some(o.clone());
        o
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.finished.is_none() {
            self.kill_now();
            let _ = self.child.wait();
        }
    }
}

/// Run a command to completion with a time limit, capturing its output.
pub fn run_cmd(cmd: Command, timeout: Duration) -> Out {
    let t0 = Instant::now();
    let mut p = Proc::spawn(cmd);
    let o = p.wait_timeout(timeout);
    if std::env::var_os("DOCKLING_IT_TRACE").is_some() {
        eprintln!("[trace] {:>7.3}s {:?} {}", t0.elapsed().as_secs_f64(), o.code(), o.cmd);
    }
    o
}

// ---------------------------------------------------------------------------
// Minimal JSON (for `inspect`)
// ---------------------------------------------------------------------------

/// `inspect` output, read with serde_json: a thin view whose lookups never fail
/// (a missing member is Null), so tests read like `j.path("State.Pid").as_i64()`.
#[derive(Debug, Clone, PartialEq)]
#[repr(transparent)]
pub struct Json(serde_json::Value);

static JSON_NULL: serde_json::Value = serde_json::Value::Null;

fn view(v: &serde_json::Value) -> &Json {
    // SAFETY: Json is a repr(transparent) wrapper of serde_json::Value.
    unsafe { &*(v as *const serde_json::Value as *const Json) }
}

impl Json {
    pub fn parse(s: &str) -> Result<Json, String> {
        serde_json::from_str(s).map(Json).map_err(|e| e.to_string())
    }
    /// Object member (Null if absent or not an object).
    pub fn get(&self, key: &str) -> &Json {
        view(self.0.get(key).unwrap_or(&JSON_NULL))
    }
    /// Dotted path, e.g. "State.Pid".
    pub fn path(&self, p: &str) -> &Json {
        p.split('.').fold(self, |j, k| j.get(k))
    }
    pub fn idx(&self, i: usize) -> &Json {
        view(self.0.get(i).unwrap_or(&JSON_NULL))
    }
    pub fn as_i64(&self) -> Option<i64> {
        self.0.as_i64().or_else(|| self.0.as_f64().map(|f| f as i64))
    }
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_str()
    }
    pub fn as_bool(&self) -> Option<bool> {
        self.0.as_bool()
    }
    pub fn as_array(&self) -> Option<Vec<&Json>> {
        self.0.as_array().map(|a| a.iter().map(view).collect())
    }
    pub fn is_null(&self) -> bool {
        self.0.is_null()
    }
}

// ---------------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------------

/// Does `text` mention IPv4 address `ip` (not as a prefix of a longer address)?
pub fn mentions_ip(text: &str, ip: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find(ip) {
        let s = from + pos;
        let e = s + ip.len();
        let before_ok = s == 0 || !(b[s - 1].is_ascii_digit() || b[s - 1] == b'.');
        let after_ok =
            e >= b.len() || !(b[e].is_ascii_digit() || (b[e] == b'.' && e + 1 < b.len() && b[e + 1].is_ascii_digit()));
        if before_ok && after_ok {
            return true;
        }
        from = s + 1;
    }
    false
}

/// Lines of `iptables-save` output that mention a port number as a port
/// (`--dport N`, `--sport N`, `:N` at the end of an address, `--to-ports N`).
pub fn rules_mentioning_port(rules: &str, port: u16) -> Vec<String> {
    let p = port.to_string();
    rules
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let toks: Vec<&str> = l.split_whitespace().collect();
            toks.iter().enumerate().any(|(i, t)| {
                let prev = if i > 0 { toks[i - 1] } else { "" };
                (matches!(prev, "--dport" | "--sport" | "--to-ports" | "--dports" | "--sports")
                    && t.split([',', '-', ':']).any(|x| x == p))
                    || t.rsplit_once(':').map(|(a, b)| !a.is_empty() && b == p).unwrap_or(false)
            })
        })
        .map(|s| s.to_string())
        .collect()
}

/// `iptables-save` output without comments and without packet counters.
pub fn normalize_rules(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            if l.starts_with(':') {
                match l.find('[') {
                    Some(i) => l[..i].trim_end().to_string(),
                    None => l.to_string(),
                }
            } else {
                l.to_string()
            }
        })
        .collect()
}

/// The names in a directory (none if it is missing).
pub fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Recursively list directories (relative paths) under `root`, not following symlinks.
pub fn list_dirs(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                let p = e.path();
                out.insert(p.strip_prefix(root).unwrap_or(&p).to_string_lossy().into_owned());
                stack.push(p);
            }
        }
    }
    out
}

/// Recursive listing "path kind size mode [symlink target]" for comparing trees.
pub fn tree_listing(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = fs::symlink_metadata(&p) else { continue };
            let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().into_owned();
            let ft = md.file_type();
            if ft.is_symlink() {
                let t = fs::read_link(&p).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                out.push(format!("{rel} link -> {t}"));
            } else if ft.is_dir() {
                out.push(format!("{rel} dir {:o}", md.mode()));
                stack.push(p);
            } else {
                out.push(format!("{rel} file {} {:o}", md.len(), md.mode()));
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// The simulated host
// ---------------------------------------------------------------------------

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

/// What exists in a simulated host at one moment (for "nothing was created" checks).
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Snapshot {
    pub containers: BTreeSet<String>,
    pub links: BTreeSet<String>,
    pub netns: BTreeSet<String>,
    pub rules: Vec<String>,
    pub dirs: BTreeSet<String>,
}

impl Snapshot {
    /// Human-readable difference, empty if equal.
    pub fn diff(&self, after: &Snapshot) -> String {
        fn set_diff(name: &str, a: &BTreeSet<String>, b: &BTreeSet<String>, out: &mut String) {
            for x in b.difference(a) {
                out.push_str(&format!("{name}: added {x}\n"));
            }
            for x in a.difference(b) {
                out.push_str(&format!("{name}: removed {x}\n"));
            }
        }
        let mut s = String::new();
        set_diff("container", &self.containers, &after.containers, &mut s);
        set_diff("link", &self.links, &after.links, &mut s);
        set_diff("netns", &self.netns, &after.netns, &mut s);
        set_diff("dir", &self.dirs, &after.dirs, &mut s);
        let ra: BTreeSet<String> = self.rules.iter().cloned().collect();
        let rb: BTreeSet<String> = after.rules.iter().cloned().collect();
        set_diff("iptables", &ra, &rb, &mut s);
        if s.is_empty() && self.rules != after.rules {
            s.push_str("iptables: rule order changed\n");
        }
        s
    }
}

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

    // ---- queries ---------------------------------------------------------

    /// `ps -aq` ids.
    pub fn ps_ids(&self) -> Vec<String> {
        let o = self.dockling(&["ps", "-aq"]);
        assert!(o.ok(), "ps -aq failed:\n{o}");
        o.stdout.split_whitespace().map(|s| s.to_string()).collect()
    }

    /// The `ps -a` row whose NAMES column is `name`.
    pub fn ps_row(&self, name: &str) -> Option<String> {
        let o = self.dockling(&["ps", "-a"]);
        assert!(o.ok(), "ps -a failed:\n{o}");
        o.stdout.lines().skip(1).find(|l| l.split_whitespace().last() == Some(name)).map(|s| s.to_string())
    }

    /// `inspect NAME`, parsed; the first element of the array.
    pub fn try_inspect(&self, name: &str) -> Result<Json, String> {
        let o = self.dockling(&["inspect", name]);
        if !o.ok() {
            return Err(o.to_string());
        }
        let j = Json::parse(&o.stdout).map_err(|e| format!("{e}\n{o}"))?;
        let first = j.idx(0).clone();
        if first.is_null() {
            return Err(format!("inspect did not print a non-empty JSON array\n{o}"));
        }
        if let Some(id) = first.get("Id").as_str() {
            self.seen_ids.lock().unwrap().insert(id.to_string());
        }
        Ok(first)
    }

    pub fn inspect(&self, name: &str) -> Json {
        self.try_inspect(name).unwrap_or_else(|e| panic!("inspect {name} failed:\n{e}"))
    }

    /// Wait until `inspect` reports the container running with a pid; returns State.Pid.
    pub fn wait_running_pid(&self, name: &str) -> u32 {
        poll(&format!("container {name} running with a State.Pid"), WAIT, || {
            let j = self.try_inspect(name)?;
            let st = j.get("State");
            match (st.get("Running").as_bool(), st.get("Pid").as_i64()) {
                (Some(true), Some(p)) if p > 0 => Ok(p as u32),
                _ => Err(format!("State = {:?}", st)),
            }
        })
    }

    /// Wait until the container's State.Status is "exited"; returns State.ExitCode.
    pub fn wait_exited(&self, name: &str) -> i64 {
        poll(&format!("container {name} exited"), WAIT, || {
            let j = self.try_inspect(name)?;
            let st = j.get("State");
            if st.get("Status").as_str() == Some("exited") {
                st.get("ExitCode").as_i64().ok_or_else(|| format!("no State.ExitCode: {st:?}"))
            } else {
                Err(format!("State = {st:?}"))
            }
        })
    }

    /// NetworkSettings.IPAddress (asserted to be in the bridge subnet).
    pub fn ip_of(&self, name: &str) -> String {
        let j = self.inspect(name);
        let ip = j.path("NetworkSettings.IPAddress").as_str().unwrap_or("").to_string();
        assert!(
            ip.starts_with(SUBNET_PREFIX),
            "container {name} should have an address in {SUBNET_PREFIX}0/24, inspect says {ip:?}"
        );
        ip
    }

    /// `iptables-save` in the sim host (all tables).
    pub fn iptables_save(&self) -> String {
        let o = self.sh("iptables-save");
        assert!(o.ok(), "iptables-save failed:\n{o}");
        o.stdout
    }

    /// Names of all links in the sim host.
    pub fn links(&self) -> BTreeSet<String> {
        let o = self.sh("ip -o link show");
        assert!(o.ok(), "ip link failed:\n{o}");
        o.stdout
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).trim().to_string())
            .collect()
    }

    pub fn veths(&self) -> BTreeSet<String> {
        self.links().into_iter().filter(|l| l.starts_with("veth")).collect()
    }

    /// `ip netns list` names in the sim host.
    pub fn netns_names(&self) -> BTreeSet<String> {
        let o = self.sh("ip netns list");
        assert!(o.ok(), "ip netns list failed:\n{o}");
        o.stdout.lines().filter_map(|l| l.split_whitespace().next()).map(|s| s.to_string()).collect()
    }

    /// Processes in the sim host's PID namespace other than PID 1: (pid, args).
    pub fn processes(&self) -> Vec<(u32, String)> {
        let mut c = self.ns_command("ps");
        c.args(["-eo", "pid=,args="]);
        let o = run_cmd(c, CMD_TIMEOUT);
        assert!(o.ok(), "ps failed:\n{o}");
        o.stdout
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let (p, a) = l.split_once(' ').unwrap_or((l, ""));
                Some((p.parse::<u32>().ok()?, a.trim().to_string()))
            })
            .filter(|(p, a)| *p != 1 && !a.starts_with("ps -eo"))
            .collect()
    }

    /// Mount points inside the sim host that lie under the dockling root.
    pub fn mounts_under_root(&self) -> Vec<String> {
        let o = self.sh("cat /proc/self/mountinfo");
        let r = self.root.to_string_lossy().into_owned();
        o.stdout
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|mp| mp.starts_with(&r))
            .map(|s| s.to_string())
            .collect()
    }

    /// Waits (bounded) until the kernel has dismantled the netns of every container that
    /// ended: dockling switches such a host veth off and leaves its removal to the kernel,
    /// which takes some milliseconds; a snapshot taken meanwhile would see it go later.
    /// Likewise removed containers' directories, which a background process deletes
    /// from the root's trash/.
    pub fn settle(&self) {
        wait_until(WAIT, || {
            let o = self.sh("ip -o link show");
            let veths = o.stdout.lines().any(|l| {
                let name = l.split(": ").nth(1).unwrap_or("");
                let flags = l.split(['<', '>']).nth(1).unwrap_or("");
                name.starts_with("veth") && !flags.split(',').any(|f| f == "UP")
            });
            !veths && self.trash().is_empty()
        });
    }

    /// What is in the root's trash/ (removed containers' directories not yet deleted).
    pub fn trash(&self) -> Vec<String> {
        entries(&self.root.join("trash"))
    }

    /// Snapshot for "nothing was created" assertions.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            containers: self.ps_ids().into_iter().collect(),
            links: self.links(),
            netns: self.netns_names(),
            rules: normalize_rules(&self.iptables_save()),
            dirs: list_dirs(&self.tmp),
        }
    }

    /// Assert that `dockling ARGS` is rejected: exit 125, exactly one line on
    /// stderr, nothing on stdout, and nothing created or changed (containers,
    /// links, netns names, iptables rules, directories under the temp dir).
    pub fn assert_rejected(&self, args: &[&str], what: &str) {
        self.settle();
        let before = self.snapshot();
        let o = self.dockling(args);
        assert_eq!(o.code(), Some(125), "{what}: must exit 125\n{o}");
        assert_eq!(o.stderr_lines().len(), 1, "{what}: exactly one line on stderr\n{o}");
        assert!(o.stdout.trim().is_empty(), "{what}: nothing on stdout\n{o}");
        let after = self.snapshot();
        let d = before.diff(&after);
        assert!(d.is_empty(), "{what}: something was created or changed:\n{d}\n{o}");
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

    /// Diagnostics: the sim host's network state, processes and dockling's view.
    pub fn dump(&self) -> String {
        let o = self.sh("echo '== ip addr'; ip -br addr; echo '== ip route'; ip route; \
             echo '== ip netns'; ip netns list; echo '== iptables-save'; iptables-save; \
             echo '== processes'; ps -eo pid,ppid,stat,args");
        let ps = if self.used_dockling.load(Ordering::SeqCst) {
            let p = run_cmd(self.dockling_command(&["ps", "-a", "--no-trunc"]), Duration::from_secs(30));
            format!("== dockling ps -a\n{}{}", p.stdout, p.stderr)
        } else {
            String::new()
        };
        format!("===== sim host state =====\n{}{}\n{ps}==========================", o.stdout, o.stderr)
    }

    /// Kill all background processes started with spawn_world/spawn_host.
    pub fn kill_background(&self) {
        let files: Vec<PathBuf> = self.bg_pidfiles.lock().unwrap().clone();
        for f in files {
            if let Some(pg) = fs::read_to_string(&f).ok().and_then(|s| s.trim().parse::<u32>().ok()) {
                let mut c = self.ns_command("kill");
                c.args(["-9", "--", &format!("-{pg}")]);
                let _ = run_cmd(c, Duration::from_secs(30));
            }
        }
    }

    fn remove_all_containers(&self) -> Vec<Out> {
        let mut problems = Vec::new();
        let o = run_cmd(self.dockling_command(&["ps", "-aq"]), Duration::from_secs(60));
        if !o.ok() {
            problems.push(o.clone());
        }
        let ids: Vec<String> = o.stdout.split_whitespace().map(|s| s.to_string()).collect();
        if !ids.is_empty() {
            let mut a: Vec<&str> = vec!["rm", "-f"];
            a.extend(ids.iter().map(|s| s.as_str()));
            let o = run_cmd(self.dockling_command(&a), Duration::from_secs(120));
            if !o.ok() {
                problems.push(o);
            }
        }
        let o = run_cmd(self.dockling_command(&["network", "prune"]), Duration::from_secs(60));
        if !o.ok() {
            problems.push(o);
        }
        problems
    }

    /// End of test: remove every container and prune the network, and ASSERT
    /// that dockling left nothing behind in the sim host (no containers, veths,
    /// bridge, netns names, DOCKLING rules or rules for the subnet, mounts under
    /// the root, processes, cgroups named after container ids).
    pub fn finish(self) {
        self.finished.store(true, Ordering::SeqCst);
        let problems = self.remove_all_containers();
        assert!(
            problems.is_empty(),
            "cleanup commands failed:\n{}",
            problems.iter().map(|o| o.to_string()).collect::<Vec<_>>().join("\n")
        );
        let left = self.ps_ids();
        assert!(left.is_empty(), "containers left after rm -f: {left:?}");
        self.kill_background();
        let mut why = String::new();
        let clean = wait_until(Duration::from_secs(10), || {
            why.clear();
            let links = self.links();
            for l in &links {
                if l.starts_with("veth") || l == BRIDGE {
                    why.push_str(&format!("link {l} still exists\n"));
                }
            }
            let ns: Vec<String> = self.netns_names().into_iter().filter(|n| n != "world").collect();
            if !ns.is_empty() {
                why.push_str(&format!("netns names left: {ns:?}\n"));
            }
            let rules = self.iptables_save();
            for l in rules.lines().filter(|l| !l.starts_with('#')) {
                if l.contains("DOCKLING") || l.contains("10.131.") || l.contains(BRIDGE) {
                    why.push_str(&format!("iptables rule left: {l}\n"));
                }
            }
            for m in self.mounts_under_root() {
                why.push_str(&format!("mount left: {m}\n"));
            }
            for (p, a) in self.processes() {
                why.push_str(&format!("process left: {p} {a}\n"));
            }
            for n in entries(&self.root.join("names")).into_iter().filter(|n| n != ".built") {
                why.push_str(&format!("name still claimed: names/{n}\n"));
            }
            for t in self.trash() {
                why.push_str(&format!("removed container's directory not deleted: trash/{t}\n"));
            }
            why.is_empty()
        });
        assert!(clean, "dockling left things behind after rm -f + network prune:\n{why}\n{}", self.dump());
        let ids: Vec<String> = self.seen_ids.lock().unwrap().iter().cloned().collect();
        let cg = cgroups_named_after(&ids);
        assert!(cg.is_empty(), "cgroups named after removed containers are left: {cg:?}");
    }
}

impl Drop for SimHost {
    fn drop(&mut self) {
        if !self.finished.load(Ordering::SeqCst) && self.used_dockling.load(Ordering::SeqCst) {
            for o in self.remove_all_containers() {
                eprintln!("[harness] cleanup command failed:\n{o}");
            }
        }
        // Killing PID 1 of the sim host's PID namespace kills everything in it;
        // its namespaces and mounts go away with the last process.
        unsafe {
            kill(self.pid as i32, SIGKILL);
        }
        if let Some(mut h) = self.holder.lock().unwrap().take() {
            let done = wait_until(Duration::from_secs(20), || matches!(h.try_wait(), Ok(Some(_))));
            if !done {
                eprintln!("[harness] holder did not exit; killing unshare");
                let _ = h.kill();
                let _ = h.wait();
            }
        }
        let err: String = String::from_utf8_lossy(&self.holder_err.buf.lock().unwrap())
            .lines()
            .filter(|l| !l.contains("sigprocmask unblock failed")) // unshare's noise when PID 1 is killed
            .map(|l| format!("{l}\n"))
            .collect();
        if !err.trim().is_empty() && std::thread::panicking() {
            eprintln!("[harness] sim host stderr:\n{err}");
        }
        if let Err(e) = fs::remove_dir_all(&self.tmp) {
            eprintln!("[harness] cannot remove {}: {e}", self.tmp.display());
        }
    }
}

fn search_path() -> String {
    match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{p}:{SEARCH_PATH}"),
        _ => SEARCH_PATH.to_string(),
    }
}

/// Pids whose parent is `ppid` (from /proc/*/stat).
pub fn children_of(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            // fields after the ")" of comm: state ppid ...
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                if f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(ppid) {
                    out.push(pid);
                }
            }
        }
    }
    out
}

/// Is any process on the real host still in network namespace `ns` ("net:[N]")?
pub fn netns_in_use(ns: &str) -> bool {
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.parse::<u32>().is_err() {
                continue;
            }
            if let Ok(l) = fs::read_link(format!("/proc/{name}/ns/net")) {
                if l.to_string_lossy() == ns {
                    return true;
                }
            }
        }
    }
    false
}

/// Directories under /sys/fs/cgroup (depth <= 6) whose names contain the
/// 12-char prefix of one of `ids`.
pub fn cgroups_named_after(ids: &[String]) -> Vec<String> {
    let shorts: Vec<&str> = ids.iter().filter(|i| i.len() >= 12).map(|i| &i[..12]).collect();
    if shorts.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let n = e.file_name().to_string_lossy().into_owned();
            if shorts.iter().any(|s| n.contains(s)) {
                out.push(e.path().to_string_lossy().into_owned());
            }
            if depth < 6 {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    out
}

/// A Python HTTP server (run with the host's python3) that answers every
/// request with body `peer=<client address>\n`. Args: PORT.
pub const PEER_SERVER_PY: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', int(sys.argv[1])))
s.listen(64)
print('listening', flush=True)
while True:
    c, a = s.accept()
    try:
        c.settimeout(5)
        data = b''
        while b'\r\n\r\n' not in data:
            d = c.recv(4096)
            if not d:
                break
            data += d
        body = ('peer=%s\n' % a[0]).encode()
        c.sendall(b'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: '
                  + str(len(body)).encode() + b'\r\nConnection: close\r\n\r\n' + body)
        print('served', a[0], flush=True)
    except Exception as e:
        print('error', e, flush=True)
    finally:
        c.close()
"#;
