//! `--explain`: print each host change as the shell command a person would type.
//!
//! The same code that makes a change calls [`step`] right before making it, so the
//! transcript is the truth. Lines go to stderr so stdout stays the container's.

use std::io::{IsTerminal, Write};
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);
/// Where lines go: stderr, or a saved copy of `run`'s stderr inside the detached monitor.
static OUTPUT: AtomicI32 = AtomicI32::new(2);

/// Sends the transcript to `fd` (the monitor keeps `run`'s stderr for its container's steps).
pub fn set_output(fd: RawFd) {
    OUTPUT.store(fd, Ordering::Relaxed);
}

/// Stops writing the transcript (right before the container's command runs).
pub fn close_output() {
    let fd = OUTPUT.swap(-1, Ordering::Relaxed);
    if fd > 2 {
        let _ = nix::unistd::close(fd);
    }
}

pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A command with an exact shell form.
pub fn step(command: &str, why: &str) {
    print(command, why, false);
}

/// A step with no exact shell form, shown with its nearest tool.
pub fn approx(command: &str, why: &str) {
    print(command, why, true);
}

fn print(command: &str, why: &str, approximate: bool) {
    if !enabled() {
        return;
    }
    let fd = OUTPUT.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let mark = if approximate { " (nearest equivalent)" } else { "" };
    // SAFETY: fd is stderr or a descriptor we keep open until close_output.
    let out = unsafe { BorrowedFd::borrow_raw(fd) };
    let line = if out.is_terminal() {
        format!("\x1b[1;36m{command}\x1b[0m  \x1b[2m# {why}{mark}\x1b[0m\n")
    } else {
        format!("{command}  # {why}{mark}\n")
    };
    let _ = std::io::stderr().flush();
    let _ = nix::unistd::write(out, line.as_bytes());
}
