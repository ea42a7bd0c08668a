//! Pseudo-terminals for `run -t` and `exec -t`.
//!
//! The pty is opened *inside* the container (its own devpts instance), as runc does, and
//! the master is handed to the host side over a unix socket (SCM_RIGHTS). The host side
//! puts its own terminal in raw mode, copies bytes both ways, keeps the window size in
//! step (SIGWINCH), and restores the terminal on every way out.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{anyhow, Context, Result};
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use nix::sys::termios::{self, SetArg, Termios};

use super::relay::{self, Sink, Stream, Watch};

/// A socket pair to pass a pty master from the container to the host side.
pub fn console_socket() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .context("creating the console socket")
}

/// Inside the container: open a pty, make its slave our controlling terminal and stdio,
/// and send the master to the host side.
pub fn become_tty(console: RawFd) -> nix::Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let slave_path = ptsname_r(&master)?;
    // Init is already the leader of a session of its own: the slave becomes its
    // controlling terminal.
    let slave = nix::fcntl::open(slave_path.as_str(), OFlag::O_RDWR | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
    crate::sys::terminal::take_as_stdio(slave)?;
    if slave > 2 {
        nix::unistd::close(slave)?;
    }
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(console, &[IoSlice::new(b"m")], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)?;
    Ok(())
}

/// Host side: receive the pty master sent by [`become_tty`].
pub fn receive_master(console: &OwnedFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(console.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .context("receiving the container's terminal")?;
    for cmsg in msg.cmsgs().context("reading the terminal message")? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(anyhow!("the container did not send a terminal"))
}

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
