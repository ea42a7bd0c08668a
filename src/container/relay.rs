//! The one copy loop behind every attached stream: `run` and `exec` without `-t` (the
//! container's stdio are pipes dockling owns, never the caller's terminal or files),
//! `-t` (a pty master), and the detached monitor's log when it runs in-process.
//!
//! A [`Stream`] copies one descriptor into a [`Sink`]. Reads happen only after poll says
//! the source is ready, so the caller's stdin is never made non-blocking (it is shared
//! with the caller's shell). A sink that would block (our end of the container's stdin
//! pipe is non-blocking) keeps the bytes and stops reading its source until they are
//! written: `cat big | dockling run -i IMAGE cat` cannot deadlock.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::logfile::LogWriter;

/// Where a stream's bytes go.
pub enum Sink<'a> {
    /// A descriptor the caller keeps (our stdout or stderr, a pty master).
    Borrowed(BorrowedFd<'a>),
    /// A descriptor closed when the source ends: the container's stdin pipe, so EOF on
    /// our stdin reaches the container.
    Owned(OwnedFd),
    /// One stream of the container's json-file log.
    Log(usize),
    /// Written to once and failed (a closed reader): the rest is read and dropped.
    Gone,
}

/// One copy from a source descriptor to a sink.
pub struct Stream<'a> {
    from: BorrowedFd<'a>,
    to: Sink<'a>,
    /// The loop ends when every stream that ends it has reached EOF.
    ends_loop: bool,
    reading: bool,
    pending: Vec<u8>,
}

impl<'a> Stream<'a> {
    pub fn new(from: BorrowedFd<'a>, to: Sink<'a>, ends_loop: bool) -> Stream<'a> {
        Stream { from, to, ends_loop, reading: true, pending: Vec::new() }
    }

    fn sink_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.to {
            Sink::Borrowed(fd) => Some(*fd),
            Sink::Owned(fd) => Some(fd.as_fd()),
            Sink::Log(_) | Sink::Gone => None,
        }
    }

    /// Writes what it can of `pending` without waiting; a sink that failed becomes Gone.
    fn flush(&mut self, log: &mut Option<&mut LogWriter>) {
        if self.pending.is_empty() {
            return;
        }
        if let Sink::Log(i) = self.to {
            if let Some(log) = log.as_deref_mut() {
                log.write(i, &self.pending);
            }
            self.pending.clear();
            return;
        }
        let Some(fd) = self.sink_fd() else {
            self.pending.clear();
            return;
        };
        let mut done = 0;
        let result = loop {
            match nix::unistd::write(fd, &self.pending[done..]) {
                Ok(n) => {
                    done += n;
                    if done == self.pending.len() {
                        break Ok(());
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(()) => self.pending.clear(),
            Err(Errno::EAGAIN) => {
                self.pending.drain(..done);
            }
            Err(_) => {
                // The reader went away (EPIPE, EIO): drop this and everything after it.
                self.pending.clear();
                self.to = Sink::Gone;
            }
        }
    }

    /// The source ended: the sink learns it too.
    fn end(&mut self, log: &mut Option<&mut LogWriter>) {
        self.reading = false;
        self.flush_blocking(log);
        match &self.to {
            Sink::Log(i) => {
                if let Some(log) = log.as_deref_mut() {
                    log.finish(*i);
                }
            }
            // Closing our end of the container's stdin is how it learns of the EOF.
            Sink::Owned(_) => self.to = Sink::Gone,
            Sink::Borrowed(_) | Sink::Gone => {}
        }
    }

    /// Writes all of `pending`, waiting for the sink as long as it takes.
    fn flush_blocking(&mut self, log: &mut Option<&mut LogWriter>) {
        while !self.pending.is_empty() {
            self.flush(log);
            if let (false, Some(fd)) = (self.pending.is_empty(), self.sink_fd()) {
                let mut p = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut p, PollTimeout::from(100u16));
            }
        }
    }

    /// Reads once from the source (poll said it is ready); false at EOF or error.
    fn read_once(&mut self, buf: &mut Vec<u8>, log: &mut Option<&mut LogWriter>) -> bool {
        // Made at the first read: zeroing it touches 16 fresh pages, which a container
        // that writes nothing (`run --rm IMAGE true`) need not pay for (~15 page faults).
        if buf.is_empty() {
            buf.resize(64 * 1024, 0);
        }
        match nix::unistd::read(self.from.as_raw_fd(), buf) {
            Ok(0) => false,
            Ok(n) => {
                if !matches!(self.to, Sink::Gone) {
                    self.pending.extend_from_slice(&buf[..n]);
                    self.flush(log);
                }
                true
            }
            Err(Errno::EINTR | Errno::EAGAIN) => true,
            // EIO from a pty master: every slave is closed, the container is gone.
            Err(_) => false,
        }
    }
}

/// What the owner of a watched descriptor says when it is ready.
pub enum Watch {
    Continue,
    /// Stop now, after reading what the sources already hold (the process exited).
    Drain,
}

/// Makes our own end of a pipe non-blocking (never a descriptor shared with the caller).
pub fn set_nonblocking(fd: BorrowedFd) -> Result<()> {
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).context("reading descriptor flags")?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags)).context("making a pipe non-blocking")?;
    Ok(())
}

/// Copies until every stream that ends the loop has ended, or a watch says to drain.
/// `watches` are extra descriptors polled for input (a SIGWINCH pipe, a pidfd); `on_watch`
/// is told which one is ready.
pub fn copy(
    streams: &mut [Stream],
    watches: &[BorrowedFd],
    mut log: Option<&mut LogWriter>,
    mut on_watch: impl FnMut(usize) -> Watch,
) -> Result<()> {
    let mut buf = Vec::new();
    while streams.iter().any(|s| s.ends_loop && (s.reading || !s.pending.is_empty())) {
        // What each stream waits for: its source, or room in its sink for what it holds.
        let mut fds = Vec::new();
        let mut owner = Vec::new();
        for (i, s) in streams.iter().enumerate() {
            if !s.pending.is_empty() {
                if let Some(fd) = s.sink_fd() {
                    fds.push(PollFd::new(fd, PollFlags::POLLOUT));
                    owner.push(i);
                }
            } else if s.reading {
                fds.push(PollFd::new(s.from, PollFlags::POLLIN));
                owner.push(i);
            }
        }
        let first_watch = fds.len();
        fds.extend(watches.iter().map(|w| PollFd::new(*w, PollFlags::POLLIN)));
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waiting on the container's streams"),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let mut drain = false;
        for (w, _) in ready.iter().enumerate().skip(first_watch).filter(|(_, r)| **r) {
            if let Watch::Drain = on_watch(w - first_watch) {
                drain = true;
            }
        }
        for (slot, &i) in owner.iter().enumerate() {
            if !ready[slot] {
                continue;
            }
            let s = &mut streams[i];
            if !s.pending.is_empty() {
                s.flush(&mut log);
            } else if !s.read_once(&mut buf, &mut log) {
                s.end(&mut log);
            }
        }
        if drain {
            return drain_all(streams, &mut buf, &mut log);
        }
    }
    Ok(())
}

/// The process is gone: take what its sources already hold, without waiting for an EOF
/// that a descriptor passed elsewhere could hold back forever.
fn drain_all(streams: &mut [Stream], buf: &mut Vec<u8>, log: &mut Option<&mut LogWriter>) -> Result<()> {
    for s in streams.iter_mut().filter(|s| s.ends_loop) {
        s.flush_blocking(log);
        // Bounded: a writer that outlived the process cannot keep us here.
        for _ in 0..4096 {
            if !s.reading {
                break;
            }
            let mut p = [PollFd::new(s.from, PollFlags::POLLIN)];
            match poll(&mut p, PollTimeout::ZERO) {
                Ok(1..) => {}
                Err(Errno::EINTR) => continue,
                _ => break,
            }
            if !s.read_once(buf, log) {
                s.reading = false;
            }
            s.flush_blocking(log);
        }
        s.end(log);
    }
    Ok(())
}

/// Host ends of an attached container's stdio pipes (`run` and `exec` without `-t`).
pub struct Pipes {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub stdin: Option<OwnedFd>,
    /// Our own copies of the container's stdout and stderr write ends (see [`relay`]).
    pub writers: [OwnedFd; 2],
}

/// The container's ends, to become its fds 0, 1 and 2 (stdin None: /dev/null).
pub struct ContainerEnds {
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Pipes for stdout and stderr, and for stdin with `-i`; all close-on-exec (the container
/// gets them by dup2 onto 0, 1 and 2).
pub fn pipes(interactive: bool) -> Result<(Pipes, ContainerEnds)> {
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating the stdout pipe")?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating the stderr pipe")?;
    let (ours, theirs) = if interactive {
        let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating the stdin pipe")?;
        set_nonblocking(in_w.as_fd())?;
        (Some(in_w), Some(in_r))
    } else {
        (None, None)
    };
    // Close-on-exec, like the rest: the container's process never keeps them.
    let copy = |fd: &OwnedFd| fd.try_clone().context("copying a pipe's write end");
    let writers = [copy(&out_w)?, copy(&err_w)?];
    Ok((
        Pipes { stdout: out_r, stderr: err_r, stdin: ours, writers },
        ContainerEnds { stdin: theirs, stdout: out_w, stderr: err_w },
    ))
}

/// In the container's process, right before exec: the pipe ends become fds 0, 1 and 2;
/// without a stdin pipe, stdin is the container's own /dev/null.
pub fn take_as_stdio(ends: &ContainerEnds) -> nix::Result<()> {
    match &ends.stdin {
        Some(fd) => nix::unistd::dup2(fd.as_raw_fd(), 0)?,
        None => {
            let null = open_dev_null()?;
            nix::unistd::dup2(null.as_raw_fd(), 0)?
        }
    };
    nix::unistd::dup2(ends.stdout.as_raw_fd(), 1)?;
    nix::unistd::dup2(ends.stderr.as_raw_fd(), 2)?;
    Ok(())
}

/// The container's /dev/null, which its root could have replaced: a FIFO would hang the
/// open (O_NONBLOCK), a link lead elsewhere (O_NOFOLLOW); anything but the 1:3 character
/// device is refused.
fn open_dev_null() -> nix::Result<OwnedFd> {
    use nix::sys::stat::{fstat, major, minor, Mode, SFlag};
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let raw = nix::fcntl::open("/dev/null", flags, Mode::empty())?;
    // SAFETY: the descriptor was just opened and is owned here alone.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    let st = fstat(fd.as_raw_fd())?;
    let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3 {
        return Err(nix::errno::Errno::EPERM);
    }
    Ok(fd)
}

/// Copies the container's pipes to our stdout and stderr and our stdin into its stdin
/// until both outputs end, or `process` (a pidfd) exits and what it wrote is read.
///
/// With a pidfd, we hold the write ends open ourselves (`pipes.writers`) until the copy
/// ends: the outputs then never reach EOF, and the pidfd alone (readable once the process
/// is a zombie, when what it and its pid namespace wrote is all in the pipes) ends the
/// copy. Otherwise the container's exit would wake us twice, once when its descriptors
/// close (EOF) and again when it is gone; a wake-up of an idle CPU is not free (on a
/// virtual machine it is a trip through the hypervisor). The container gets nothing more
/// for it: our copies are close-on-exec and never reach it. Without a pidfd the copies go
/// first, and EOF ends the copy as before.
pub fn relay(pipes: Pipes, process: Option<&OwnedFd>) -> Result<()> {
    let _writers = process.map(|_| pipes.writers);
    let stdin = std::io::stdin();
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let mut streams = vec![
        Stream::new(pipes.stdout.as_fd(), Sink::Borrowed(stdout.as_fd()), true),
        Stream::new(pipes.stderr.as_fd(), Sink::Borrowed(stderr.as_fd()), true),
    ];
    if let Some(w) = pipes.stdin {
        streams.push(Stream::new(stdin.as_fd(), Sink::Owned(w), false));
    }
    let watches: Vec<BorrowedFd> = process.iter().map(|p| p.as_fd()).collect();
    copy(&mut streams, &watches, None, |_| Watch::Drain)
}
