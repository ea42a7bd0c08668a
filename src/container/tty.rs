//! Pseudo-terminals for `run -t` and `exec -t`.
//!
//! The pty is opened inside the container and its master handed over (see
//! [`crate::engine::console`]). The host side
//! puts its own terminal in raw mode, copies bytes both ways, keeps the window size in
//! step (SIGWINCH), and restores the terminal on every way out.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Result;
use nix::fcntl::OFlag;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};

use super::relay::{self, Sink, Stream, Watch};

/// Restores the host terminal when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

static WINCH_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_winch(_: libc::c_int) {
    let fd = WINCH_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write is async-signal-safe.
        unsafe { libc::write(fd, b"w".as_ptr().cast(), 1) };
    }
}

/// Copies the host's window size onto the container's terminal.
pub fn copy_window_size(master: BorrowedFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a valid winsize.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Attaches the host terminal to the container's pty until the container side closes.
pub fn attach(master: &OwnedFd, forward_stdin: bool) -> Result<()> {
    let _raw = if forward_stdin { RawMode::enter() } else { None };
    let (winch_r, winch_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    WINCH_PIPE.store(winch_w.as_raw_fd(), Ordering::Relaxed);
    let action = SigAction::new(SigHandler::Handler(on_winch), SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: the handler only writes one byte to a pipe.
    let _ = unsafe { signal::sigaction(Signal::SIGWINCH, &action) };
    copy_window_size(master.as_fd());

    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut streams = vec![Stream::new(master.as_fd(), Sink::Borrowed(stdout.as_fd()), true)];
    if forward_stdin {
        streams.push(Stream::new(stdin.as_fd(), Sink::Borrowed(master.as_fd()), false));
    }
    let copied = relay::copy(&mut streams, &[winch_r.as_fd()], None, |_| {
        let mut b = [0u8; 64];
        let _ = nix::unistd::read(winch_r.as_raw_fd(), &mut b);
        copy_window_size(master.as_fd());
        Watch::Continue
    });
    WINCH_PIPE.store(-1, Ordering::Relaxed);
    copied
}
