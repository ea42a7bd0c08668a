//! The OCI lifecycle's two halves: `create` makes the container (namespaces, cgroups,
//! root filesystem, process settings) and leaves its init waiting, `start` lets it exec
//! the spec's command. Between them init waits on the *exec fifo* (runc's design): it
//! opens the fifo for writing, which blocks until `start` opens it for reading.
//!
//! create ⇄ init, on the sync pipes ([`super::sync`]): init sends `ready` once its
//! namespaces, root and terminal exist (the command was found, so a missing one fails
//! `create`); create runs the prestart and createRuntime hooks (Docker's networking),
//! sends `go`; init applies the process settings (rlimits, user, capabilities, seccomp)
//! and sends `created`. Then create writes the pid file and exits: init is re-parented
//! to the caller's subreaper (containerd's shim), which waits for it.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::execve::{self, Never};
use super::spawn::{self, SyncPipes};
use super::spec::Plan;
use super::sync::{self, Failure, Message};
use super::{console, hooks, rootfs};
use crate::error::RUNTIME_ERROR;
use crate::explain;

/// What the caller gives besides the spec.
pub struct Request<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    /// The fifo `start` opens: made here.
    pub exec_fifo: &'a Path,
    /// The groups (already recorded by the caller; made here).
    pub cgroups: &'a [PathBuf],
    /// `--console-socket`: where the terminal's master goes.
    pub console_socket: Option<&'a Path>,
    /// `--preserve-fds N`: descriptors 3..3+N stay open into the container.
    pub preserve_fds: i32,
}

/// The group directories for a spec (`cgroupsPath`, else the id), under dockling's parent.
pub fn cgroups_for(plan: &Plan, id: &str) -> Vec<PathBuf> {
    let rel = plan.cgroups_path.clone().unwrap_or_else(|| PathBuf::from(id));
    crate::cgroups::plan(&rel.to_string_lossy())
}

/// Creates the container; returns init's pid. On failure nothing is left running (the
/// caller removes the groups and its state).
pub fn create(mut plan: Plan, req: &Request) -> Result<Pid> {
    plan.rootfs.cgroups = req.cgroups.to_vec();
    // Unenforced device rules would leave a container with CAP_MKNOD free to open the
    // host's disks: refuse rather than run without them.
    let restricts = plan.resources.as_ref().is_some_and(|r| !super::resources::device_rules(r).is_empty());
    // A group with processes is someone else's (another container's cgroupsPath): one
    // container never takes over, or later kills, another's.
    if !crate::cgroups::pids_recursive(req.cgroups).is_empty() {
        bail!("the container's cgroup is not empty: {}", req.cgroups[0].display());
    }
    if let Some(r) = &plan.resources {
        super::resources::check(r)?;
    }
    if restricts && !crate::cgroups::can_restrict_devices(req.cgroups) {
        bail!("linux.resources.devices needs the cgroup v1 devices controller (cgroup v2's BPF device filter is not supported by dockling yet)");
    }
    make_cgroups(&plan, req.cgroups)?;
    explain::step(&format!("mkfifo -m 622 {}", req.exec_fifo.display()), "init waits on it until start");
    nix::unistd::mkfifo(req.exec_fifo, Mode::from_bits_truncate(0o622)).context("making the exec fifo")?;
    // (Not the umask's: init may open it as the spec's user, after its switch.)
    std::fs::set_permissions(req.exec_fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .context("making the exec fifo writable by the container's user")?;
    // An O_PATH descriptor: init opens it for writing through /proc/self/fd after
    // pivot_root, when the path no longer resolves.
    let fifo = nix::fcntl::open(req.exec_fifo, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC, Mode::empty())
        .context("opening the exec fifo")?;
    // SAFETY: we own the descriptor just opened.
    let fifo = unsafe { OwnedFd::from_raw_fd(fifo) };
    let console = match req.console_socket {
        Some(path) => Some(OwnedFd::from(
            UnixStream::connect(path)
                .with_context(|| format!("connecting to the console socket {}", path.display()))?,
        )),
        None => None,
    };
    if plan.process.terminal && console.is_none() {
        bail!("process.terminal needs --console-socket");
    }
    let pipes = SyncPipes::new()?;
    let namespaces = plan.namespaces.clone();
    let resources = plan.resources.clone();
    let hooks_plan = (plan.hooks.prestart.clone(), plan.hooks.create_runtime.clone(), plan.annotations.clone());
    // The state the hooks inside read (with init's pid there: 1 in a new pid namespace).
    let inside_state = hooks::state_json(req.id, "created", 1, req.bundle, &plan.annotations);
    let mut init =
        Init { plan, cgroups: req.cgroups.to_vec(), console, fifo, preserve_fds: req.preserve_fds, inside_state };
    let pid = spawn::spawn(&namespaces, &pipes, Box::new(move |go, errors| init.main(go, errors)))?;
    let mut starter = pipes.into_starter();
    let finished = (|| -> Result<()> {
        expect(&mut starter, "ready")?;
        // The device rules once init has made its /dev, as runc (the spec's rules may not
        // allow mknod of the standard nodes), with runc's standard allowlist after them.
        if let Some(r) = &resources {
            crate::cgroups::device_rules(req.cgroups, &super::resources::device_rules_with_defaults(r))?;
        }
        let state = hooks::state_json(req.id, "created", pid.as_raw(), req.bundle, &hooks_plan.2);
        hooks::run("prestart", &hooks_plan.0, &state)?;
        hooks::run("createRuntime", &hooks_plan.1, &state)?;
        starter.release()?;
        expect(&mut starter, "created")
    })();
    if let Err(e) = finished {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(e);
    }
    Ok(pid)
}

/// Reads init's next report: the one expected, or its failure.
fn expect(starter: &mut spawn::Starter, what: &str) -> Result<()> {
    match starter.next_report()? {
        Some(Message::Ready) if what == "ready" => Ok(()),
        Some(Message::Created) if what == "created" => Ok(()),
        Some(Message::Failed(f)) => Err(anyhow!(f.message)),
        Some(other) => bail!("init sent {other:?} where {what} was expected"),
        None => bail!("the container's init exited before it was {what}"),
    }
}

/// The groups, with the spec's limits (the device rules come later, see [`create`]).
fn make_cgroups(plan: &Plan, dirs: &[PathBuf]) -> Result<()> {
    let limits = plan.resources.as_ref().map(super::resources::limits).unwrap_or_default();
    crate::cgroups::create(dirs, &limits, false)
}

/// `start`: opens the fifo for reading, which lets init's open for writing return, and
/// reads the byte init writes before it execs. Fails if init is gone.
pub fn start(exec_fifo: &Path, alive: impl Fn() -> bool) -> Result<()> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::open(exec_fifo, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty())
        .context("opening the exec fifo")?;
    // SAFETY: we own the descriptor just opened.
    let fifo = unsafe { OwnedFd::from_raw_fd(fd) };
    explain::step(&format!("cat {}", exec_fifo.display()), "release the container's init to exec its command");
    loop {
        let mut pfd = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&fifo),
            nix::poll::PollFlags::POLLIN | nix::poll::PollFlags::POLLHUP,
        )];
        let ready = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16)).unwrap_or(0);
        if ready > 0 {
            let mut byte = [0u8; 1];
            match nix::unistd::read(fifo.as_raw_fd(), &mut byte) {
                Ok(1) => break,
                Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
                Err(e) => return Err(e).context("reading the exec fifo"),
            }
        }
        if !alive() {
            bail!("cannot start a container that has stopped");
        }
    }
    let _ = std::fs::remove_file(exec_fifo);
    Ok(())
}

/// What init needs, moved into the clone.
struct Init {
    plan: Plan,
    cgroups: Vec<PathBuf>,
    console: Option<OwnedFd>,
    fifo: OwnedFd,
    preserve_fds: i32,
    inside_state: String,
}

impl Init {
    fn main(&mut self, go: RawFd, errors: RawFd) -> i32 {
        // SAFETY: both are this child's own copies of the pipe ends, used only here.
        let (mut go, mut errors) = unsafe { (File::from_raw_fd(go), File::from_raw_fd(errors)) };
        let failure = match self.setup_and_exec(&mut go, &mut errors) {
            Ok(never) => match never {},
            Err(failure) => failure,
        };
        sync::report_failure(&mut errors, failure)
    }

    fn setup_and_exec(&mut self, go: &mut File, errors: &mut File) -> Result<Never, Failure> {
        let plan = &self.plan;
        nix::unistd::setsid().map_err(Failure::context("setsid"))?;
        plan.namespaces.enter_joined().map_err(Failure::setup)?;
        crate::cgroups::join_self(&self.cgroups).map_err(Failure::setup)?;
        if plan.namespaces.new_cgroup {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                .map_err(Failure::context("unsharing the cgroup namespace"))?;
        }
        let state = &self.inside_state;
        rootfs::prepare(&plan.rootfs, &mut || hooks::run("createContainer", &plan.hooks.create_container, state))
            .map_err(Failure::setup)?;
        if let Some(socket) = self.console.take() {
            let slave = console::become_tty(socket.as_raw_fd()).map_err(Failure::context("allocating the terminal"))?;
            console::bind_dev_console(&slave).map_err(Failure::setup)?;
        }
        if let Some(h) = &plan.hostname {
            explain::step(&format!("hostname {h}"), "the container's own host name (UTS namespace)");
            nix::unistd::sethostname(h).map_err(Failure::context("sethostname"))?;
        }
        if let Some(d) = &plan.domainname {
            explain::step(&format!("domainname {d}"), "the container's own NIS domain name (UTS namespace)");
            // SAFETY: setdomainname reads `len` bytes of a live string.
            if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
                return Err(Failure::context("setdomainname")(std::io::Error::last_os_error()));
            }
        }
        // The command is looked up now, so that a missing one fails `create` (as runc).
        execve::resolve_command(&plan.process.args, &plan.process.env)?;
        sync::send(errors, &Message::Ready).map_err(Failure::context("reporting ready"))?;
        if !matches!(sync::receive(go), Ok(Some(Message::Go))) {
            return Err(Failure::new(RUNTIME_ERROR, "dockling-runc create went away before the container was created"));
        }
        plan.process.apply().map_err(Failure::setup)?;
        sync::send(errors, &Message::Created).map_err(Failure::context("reporting created"))?;
        // Blocks until `start` opens the fifo for reading.
        let path = format!("/proc/self/fd/{}", self.fifo.as_raw_fd());
        let fifo =
            nix::fcntl::open(path.as_str(), nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC, Mode::empty())
                .map_err(Failure::context("opening the exec fifo"))?;
        nix::unistd::write(
            // SAFETY: the descriptor just opened, closed by the exec.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fifo) },
            b"0",
        )
        .map_err(Failure::context("writing the exec fifo"))?;
        let _ = nix::unistd::close(fifo);
        let state = self.inside_state.replace("\"created\"", "\"running\"");
        hooks::run("startContainer", &plan.hooks.start_container, &state).map_err(Failure::setup)?;
        Err(execve::exec_keeping(&plan.process.args, &plan.process.env, &plan.process.cwd, 3 + self.preserve_fds))
    }
}
