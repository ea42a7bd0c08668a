//! Running commands with captured output and a time limit (`Out`, `Proc`, `run_cmd`); polling until a deadline.

use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::text::shq;

/// Default time limit for one dockling command.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(120);
/// Time limit for waiting on servers, states, cleanups.
pub const WAIT: Duration = Duration::from_secs(15);

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

/// Bytes read so far from a pipe, and whether it reached EOF.
#[derive(Default)]
pub(super) struct Captured {
    pub(super) buf: Mutex<Vec<u8>>,
    done: AtomicBool,
}

/// Read `r` into `cap` on a thread of its own until EOF.
pub(super) fn pump<R: Read + Send + 'static>(mut r: R, cap: Arc<Captured>) {
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
    pub(super) pgid: Option<(u32, PathBuf)>,
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
