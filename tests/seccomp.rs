//! The default seccomp profile is an allowlist: syscalls it does not name (io_uring,
//! mount_setattr, open_tree_attr), and the argument forms it refuses (personality flags,
//! AF_VSOCK sockets, TIOCSTI), fail with EPERM inside a default container, probed with
//! ctypes from Python; the positive controls run in the same container, and
//! `seccomp=unconfined` shows each probe can see the difference.

mod common;
use common::*;

/// Prints `name=OK` or `name=<errno name>` for each probe.
const PROBE: &str = r#"
import ctypes, errno, fcntl, os, socket, termios
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sys(name, nr, *args):
    args = [ctypes.c_ulong(a) if isinstance(a, int) else a for a in args]
    r = libc.syscall(ctypes.c_long(nr), *args)
    e = ctypes.get_errno()
    print(name + "=" + ("OK" if r >= 0 else errno.errorcode.get(e, str(e))), flush=True)
params = ctypes.create_string_buffer(120)
sys("io_uring_setup", 425, 1, params)
attr = ctypes.create_string_buffer(32)
sys("mount_setattr", 442, 2**64 - 1, b"", 0x1000, attr, 32)
sys("open_tree_attr", 467, 2**64 - 1, b"", 0, 0, 0)
sys("personality_query", 135, 0xffffffff)
sys("personality_addr_no_randomize", 135, 0x0040000)
def sock(name, family):
    try:
        socket.socket(family, socket.SOCK_STREAM).close()
        print(name + "=OK", flush=True)
    except OSError as e:
        print(name + "=" + errno.errorcode.get(e.errno, str(e.errno)), flush=True)
sock("socket_inet", socket.AF_INET)
sock("socket_vsock", 40)
# TIOCSTI on a pty of our own that is our controlling terminal (the kernel itself refuses
# TIOCSTI on another tty without CAP_SYS_ADMIN): in a child that starts a session.
master, slave = os.openpty()
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    termios.tcgetattr(slave)
    print("tcgets=OK", flush=True)
    x = ctypes.c_char(b"x")
    sys("tiocsti", 16, slave, 0x5412, ctypes.byref(x))
    sys("tiocsti_high_bits", 16, slave, 0xdead00005412, ctypes.byref(x))
    sys("tioclinux", 16, slave, 0x541C, ctypes.byref(x))
    os._exit(0)
os.waitpid(pid, 0)
sys("sethostname", 170, b"probe", 5)
"#;

fn probe(sim: &SimHost, extra: &[&str]) -> (Out, Vec<(String, String)>) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["python", "python3", "-c", PROBE]);
    let o = sim.dockling(&args);
    let results =
        o.stdout.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    (o, results)
}

fn result<'a>(results: &'a [(String, String)], name: &str) -> &'a str {
    results.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("missing")
}

#[test]
fn default_profile_refuses_what_it_does_not_allow() {
    let sim = SimHost::new("seccomp-allow");
    sim.image("python");
    let (o, r) = probe(&sim, &[]);
    assert!(o.ok(), "{o}");
    for name in [
        "io_uring_setup",
        "mount_setattr",
        "open_tree_attr",
        "personality_addr_no_randomize",
        "socket_vsock",
        "tiocsti",
        "tiocsti_high_bits",
        "tioclinux",
        "sethostname",
    ] {
        assert_eq!(result(&r, name), "EPERM", "{name} in a default container:\n{o}");
    }
    for name in ["personality_query", "socket_inet", "tcgets"] {
        assert_eq!(result(&r, name), "OK", "{name} (positive control):\n{o}");
    }

    // Without the filter the same probes get through to the kernel.
    let (o, r) = probe(&sim, &["--security-opt", "seccomp=unconfined"]);
    assert!(o.ok(), "{o}");
    assert_eq!(result(&r, "tiocsti"), "OK", "TIOCSTI on our own controlling pty:\n{o}");
    // (mount_setattr needs CAP_SYS_ADMIN from the kernel too: its control is in the next test.)
    for name in ["io_uring_setup", "open_tree_attr", "personality_addr_no_randomize", "socket_vsock"] {
        assert_ne!(result(&r, name), "EPERM", "{name} unconfined:\n{o}");
        assert_ne!(result(&r, name), "missing", "{name} unconfined:\n{o}");
    }
    sim.finish();
}

#[test]
fn cap_sys_admin_opens_its_syscalls_but_not_mount_setattr() {
    let sim = SimHost::new("seccomp-admin");
    sim.image("python");
    let (o, r) = probe(&sim, &["--cap-add", "SYS_ADMIN"]);
    assert!(o.ok(), "{o}");
    assert_eq!(result(&r, "sethostname"), "OK", "CAP_SYS_ADMIN allows sethostname (positive control):\n{o}");
    assert_eq!(result(&r, "mount_setattr"), "EPERM", "mount_setattr with CAP_SYS_ADMIN:\n{o}");
    assert_eq!(result(&r, "open_tree_attr"), "EPERM", "{o}");
    assert_eq!(result(&r, "io_uring_setup"), "EPERM", "{o}");
    // The kernel would have answered: the call is malformed (a bad fd), not refused.
    let (o, r) = probe(&sim, &["--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined"]);
    assert!(o.ok(), "{o}");
    assert_ne!(result(&r, "mount_setattr"), "EPERM", "{o}");
    assert_ne!(result(&r, "mount_setattr"), "missing", "{o}");
    sim.finish();
}
