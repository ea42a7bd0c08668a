//! A container never gets the caller's terminal or files: without `-t`, `run` and `exec`
//! hand it pipes that dockling relays, and its processes have no controlling terminal.
//! So a container cannot type into the administrator's shell (TIOCSTI) or reopen the
//! caller's files through /proc/self/fd; and output, input and exit codes are as before.

mod common;
use common::*;

use std::time::{Duration, Instant};

/// Pushes argv[1] + newline into the input queue of whichever terminal it can reach:
/// fds 0, 1, 2, then /dev/tty. Prints where it succeeded (or why not) on stderr.
const PUSH: &str = r#"
import fcntl, os, sys, termios
line = sys.argv[1].encode() + b"\n"
for name in ("0", "1", "2", "/dev/tty"):
    try:
        fd = os.open(name, os.O_RDWR) if name == "/dev/tty" else int(name)
        for c in line:
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([c]))
        print("pushed via", name, file=sys.stderr)
        break
    except OSError as e:
        print("push via", name, "failed:", e, file=sys.stderr)
"#;

/// Plays the administrator: an interactive shell in a pty runs the script, then an end
/// marker is typed; whatever was pushed into the terminal's input comes before it.
const DRIVER: &str = r##"
import os, pty, sys, time, select
script = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.execv("/bin/sh", ["sh", "-i"])
seen = b""
def until(needle, t):
    global seen
    end = time.time() + t
    while time.time() < end and needle not in seen:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return needle in seen
os.write(fd, b"sh " + script.encode() + b"; echo SCRIPT-''DONE\n")
ok1 = until(b"SCRIPT-DONE", 90)
os.write(fd, b"echo SESSION-''END\n")
ok2 = until(b"SESSION-END", 20)
os.write(fd, b"exit\n")
time.sleep(0.3)
try:
    os.kill(pid, 9)
except OSError:
    pass
os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(0 if ok1 and ok2 else 1)
"##;

#[test]
fn a_container_cannot_type_into_the_callers_terminal() {
    let sim = SimHost::new("tiocsti");
    sim.image("python");
    let box_name = sim.cname("box");
    // Seccomp (which refuses TIOCSTI) off and CAP_SYS_ADMIN (which newer kernels want for
    // TIOCSTI) on: the only thing left between the container and the caller's terminal is
    // what this test is about, the session and the relayed pipes.
    let loose = ["--security-opt", "seccomp=unconfined", "--cap-add", "SYS_ADMIN"];
    let mut args = vec!["--name", box_name.as_str(), "--network", "none"];
    args.extend(loose);
    args.extend(["python", "sleep", "300"]);
    sim.run_d(&args);

    let push = sim.write_file("push.py", PUSH);
    let marker = |what: &str| sim.tmp.join(format!("pwned-{what}"));
    let d = format!("{} --root {}", bin(), shq(&sim.root.to_string_lossy()));
    let script = format!(
        "PUSH=$(cat {push})\n\
         {d} run --rm --network none {loose} python python3 -c \"$PUSH\" {run_cmd}\n\
         echo run-exit=$?\n\
         {d} exec {box_name} python3 -c \"$PUSH\" {exec_cmd}\n\
         echo exec-exit=$?\n\
         {py} {push} {host_cmd}\n",
        push = shq(&push.to_string_lossy()),
        loose = loose.join(" "),
        py = python(),
        run_cmd = shq(&format!("touch {}", marker("run").display())),
        exec_cmd = shq(&format!("touch {}", marker("exec").display())),
        host_cmd = shq(&format!("touch {}", marker("host").display())),
    );
    let script = sim.write_file("attack.sh", &script);
    let driver = sim.write_file("tiocsti_driver.py", DRIVER);
    let o = sim.sh(&format!("{} {} {}", python(), shq(&driver.to_string_lossy()), shq(&script.to_string_lossy())));
    assert!(o.ok(), "the terminal session did not finish:\n{o}");
    assert!(o.stdout.contains("run-exit=0") && o.stdout.contains("exec-exit=0"), "{o}");

    // Positive control: a process that does have the terminal can push a command, and
    // the shell runs it (so the probe sees the hole when there is one).
    assert!(marker("host").exists(), "control: the host's push did not run:\n{o}");
    assert!(!marker("run").exists(), "a `run` container typed a command into the caller's shell:\n{o}");
    assert!(!marker("exec").exists(), "an `exec`'d process typed a command into the caller's shell:\n{o}");
    sim.dockling_ok(&["rm", "-f", &box_name]);
    sim.finish();
}

#[test]
fn a_container_cannot_reopen_the_callers_files() {
    let sim = SimHost::new("fdreopen");
    sim.image("busybox");
    let out = sim.tmp.join("caller-out.txt");
    let outq = shq(&out.to_string_lossy());
    let d = format!("{} --root {}", bin(), shq(&sim.root.to_string_lossy()));
    // The container sees pipes, not the caller's file.
    let o = sim.sh(&format!(
        "printf 'precious\\n' > {outq}; {d} run --rm --network none busybox sh -c \
         'readlink /proc/self/fd/1; readlink /proc/self/fd/2; : > /proc/self/fd/1' >> {outq} 2>&1; echo code=$?; cat {outq}"
    ));
    assert!(o.stdout.contains("code=0"), "{o}");
    assert!(o.stdout.contains("precious"), "the container truncated the caller's file through /proc/self/fd/1:\n{o}");
    let links: Vec<&str> = o.stdout.lines().filter(|l| l.starts_with("pipe:") || l.starts_with('/')).collect();
    assert_eq!(links.len(), 2, "{o}");
    assert!(links.iter().all(|l| l.starts_with("pipe:[")), "the container's stdout/stderr must be pipes:\n{o}");
    // Control: a host process with the same descriptors does reach (and truncate) the file.
    let o = sim.sh(&format!(
        "printf 'precious\\n' > {outq}; sh -c 'readlink /proc/self/fd/1; : > /proc/self/fd/1' >> {outq}; cat {outq}"
    ));
    assert!(!o.stdout.contains("precious"), "control: truncating through /proc/self/fd/1 did not work:\n{o}");

    // exec: the same.
    let box_name = sim.cname("box");
    sim.run_d(&["--name", &box_name, "--network", "none", "busybox", "sleep", "300"]);
    let o = sim.sh(&format!(
        "printf 'precious\\n' > {outq}; {d} exec {box_name} sh -c \
         'readlink /proc/self/fd/1; : > /proc/self/fd/1' >> {outq} 2>&1; \
         cat {outq}"
    ));
    assert!(o.stdout.contains("precious") && o.stdout.contains("pipe:["), "{o}");
    sim.dockling_ok(&["rm", "-f", &box_name]);
    sim.finish();
}

#[test]
fn output_input_and_exit_codes_are_relayed_whole() {
    let sim = SimHost::new("relay");
    sim.image("busybox");
    let d = format!("{} --root {}", bin(), shq(&sim.root.to_string_lossy()));
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(args);
        sim.dockling(&a)
    };
    // stdout and stderr stay apart; the exit code comes back.
    let o = run(&["busybox", "sh", "-c", "echo to-out; echo to-err >&2; exit 3"]);
    assert_eq!(o.code(), Some(3), "{o}");
    assert_eq!(o.stdout, "to-out\n", "{o}");
    assert_eq!(o.stderr, "to-err\n", "{o}");
    // 1 MB on each stream, all of it, before `run` exits.
    let o = sim.sh(&format!(
        "{d} run --rm --network none busybox sh -c 'head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2' \
         2>/dev/null | wc -c; {d} run --rm --network none busybox sh -c 'head -c 1048576 /dev/zero >&2' 2>&1 >/dev/null | wc -c"
    ));
    assert_eq!(o.stdout.split_whitespace().collect::<Vec<_>>(), ["1048576", "1048576"], "{o}");
    // Output a process left in the background wrote before init exited arrives too, and
    // `run` does not wait for it.
    let t0 = Instant::now();
    let o = run(&["busybox", "sh", "-c", "sleep 60 & echo fg; exit 5"]);
    assert_eq!((o.code(), o.stdout.as_str()), (Some(5), "fg\n"), "{o}");
    assert!(t0.elapsed() < Duration::from_secs(30), "run waited for a background process: {:?}", t0.elapsed());
    // -i: piped stdin reaches the container, its EOF too; a large input that the
    // container echoes back does not deadlock.
    let o = sim.sh(&format!("echo hi | {d} run -i --rm --network none busybox cat"));
    assert_eq!((o.code(), o.stdout.as_str()), (Some(0), "hi\n"), "{o}");
    let o = sim.sh(&format!("head -c 3000000 /dev/urandom | {d} run -i --rm --network none busybox cat | wc -c"));
    assert_eq!(o.stdout.trim(), "3000000", "{o}");
    // Without -i, stdin is /dev/null (as Docker).
    let o = sim.sh(&format!("echo hi | {d} run --rm --network none busybox sh -c 'cat; readlink /proc/self/fd/0'"));
    assert_eq!(o.stdout, "/dev/null\n", "{o}");

    // exec: the same, and a background process holding the pipes does not hold exec.
    let box_name = sim.cname("box");
    sim.run_d(&["--name", &box_name, "--network", "none", "busybox", "sleep", "300"]);
    let o = sim.dockling(&["exec", &box_name, "sh", "-c", "echo e-out; echo e-err >&2; exit 3"]);
    assert_eq!((o.code(), o.stdout.as_str(), o.stderr.as_str()), (Some(3), "e-out\n", "e-err\n"), "{o}");
    let o =
        sim.sh(&format!("echo hi | {d} exec -i {box_name} cat; {d} exec {box_name} head -c 1048576 /dev/zero | wc -c"));
    assert_eq!(o.stdout.split_whitespace().collect::<Vec<_>>(), ["hi", "1048576"], "{o}");
    let t0 = Instant::now();
    let o = sim.dockling(&["exec", &box_name, "sh", "-c", "sleep 60 & echo now"]);
    assert_eq!((o.code(), o.stdout.as_str()), (Some(0), "now\n"), "{o}");
    assert!(t0.elapsed() < Duration::from_secs(30), "exec waited for a background process: {:?}", t0.elapsed());
    sim.dockling_ok(&["rm", "-f", &box_name]);
    sim.finish();
}
