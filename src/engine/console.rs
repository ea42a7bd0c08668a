//! The container's terminal: opened *inside* the container, from its own devpts instance,
//! as runc does, and its master handed to whoever holds the console socket (SCM_RIGHTS):
//! `dockling run -t`'s relay, or containerd's shim for `dockling-runc create
//! --console-socket`.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{anyhow, Context, Result};
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};

/// A socket pair to pass a pty master from the container to the host side.
pub fn console_socket() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .context("creating the console socket")
}

/// Inside the container: open a pty, make its slave our controlling terminal and stdio,
/// and send the master to the host side. Returns the slave's path.
pub fn become_tty(console: RawFd) -> nix::Result<String> {
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
    Ok(slave_path)
}

/// The container's terminal is also its /dev/console (as runc makes it: a bind of the
/// pty's slave), for programs that write there.
pub fn bind_dev_console(slave: &str) -> Result<()> {
    let console = std::path::Path::new("/dev/console");
    if !console.exists() {
        std::fs::write(console, b"").context("creating /dev/console")?;
    }
    crate::explain::step(&format!("mount --bind {slave} /dev/console"), "the terminal is the console too");
    nix::mount::mount(Some(slave), console, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>)
        .context("binding the terminal on /dev/console")
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
