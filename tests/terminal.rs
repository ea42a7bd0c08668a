//! `run -it` and `exec -it` in a real pseudo-terminal: a Python driver (the host's
//! python3 `pty` module) plays the user's terminal: it types, resizes the window and
//! presses Ctrl-C, and reads what the container printed.

mod common;
use common::*;

/// Drives `dockling ARGS...` in a pty; prints what it saw between markers; exits with
/// dockling's exit code.
const DRIVER: &str = r##"
import os, pty, sys, time, select, struct, fcntl, termios, signal
argv = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
def read(t):
    out = b""; end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out.decode(errors="replace")
def until(needle, t=15):
    seen = ""; end = time.time() + t
    while time.time() < end and needle not in seen:
        seen += read(0.2)
    return seen
print("START", repr(until("# ")))
os.write(fd, b"echo $((6*7)); tty; stty size\n"); print("A", repr(until("33 101")))
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0)); os.kill(pid, signal.SIGWINCH)
time.sleep(0.3)
os.write(fd, b"stty size\n"); print("B", repr(until("40 120")))
os.write(fd, b"sleep 100\n"); time.sleep(0.5); os.write(fd, b"\x03"); print("C", repr(until("# ")))
os.write(fd, b"exit 3\n"); print("D", repr(read(2)))
_, st = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(st))
"##;

fn drive(sim: &SimHost, args: &[&str]) -> Out {
    let driver = sim.write_file("pty_driver.py", DRIVER);
    let mut cmd = format!("{} {} {} --root {}", python(), driver.display(), bin(), shq(&sim.root.to_string_lossy()));
    for a in args {
        cmd.push(' ');
        cmd.push_str(&shq(a));
    }
    sim.sh(&cmd)
}

fn check_session(o: &Out) {
    assert_eq!(o.code(), Some(3), "exit code of the shell comes back:\n{o}");
    let line = |tag: &str| o.stdout.lines().find(|l| l.starts_with(tag)).unwrap_or_default().to_string();
    assert!(
        line("A").contains("42") && line("A").contains("/dev/pts/0") && line("A").contains("33 101"),
        "tty, output and initial size:\n{o}"
    );
    assert!(line("B").contains("40 120"), "window size follows SIGWINCH:\n{o}");
    assert!(line("C").contains("^C"), "Ctrl-C reaches the container and the shell survives:\n{o}");
}

#[test]
fn run_it_feels_like_a_terminal() {
    let sim = SimHost::new("tty-run");
    sim.image("busybox");
    let o = drive(&sim, &["run", "-it", "--rm", "--network", "none", "busybox", "sh"]);
    check_session(&o);
    sim.finish();
}

#[test]
fn exec_it_feels_like_a_terminal() {
    let sim = SimHost::new("tty-exec");
    sim.image("busybox");
    sim.run_d(&["--name", "box", "busybox", "sleep", "300"]);
    let o = drive(&sim, &["exec", "-it", "box", "sh"]);
    check_session(&o);
    sim.dockling_ok(&["rm", "-f", "box"]);
    sim.finish();
}

#[test]
fn exec_runs_inside_every_namespace_with_the_environment() {
    let sim = SimHost::new("exec");
    sim.image("busybox");
    sim.run_d(&["--name", "box", "-h", "boxhost", "-e", "FOO=bar", "busybox", "sleep", "300"]);
    let o = sim.dockling(&[
        "exec",
        "-e",
        "EXTRA=1",
        "-w",
        "/tmp",
        "box",
        "sh",
        "-c",
        "echo $FOO $EXTRA $(hostname) $(pwd); ps -o pid,args | grep -c 'sleep 300'; exit 4",
    ]);
    assert_eq!(o.code(), Some(4), "{o}");
    assert!(o.stdout.contains("bar 1 boxhost /tmp"), "{o}");
    let o = sim.dockling(&["exec", "box", "nope"]);
    assert_eq!(o.code(), Some(127), "{o}");
    let o = sim.dockling(&["exec", "-i", "box", "cat"]);
    assert!(o.ok(), "{o}");
    sim.dockling_ok(&["stop", "-t", "0", "box"]);
    let o = sim.dockling(&["exec", "box", "true"]);
    assert!(!o.ok() && o.stderr.contains("not running"), "{o}");
    sim.finish();
}
