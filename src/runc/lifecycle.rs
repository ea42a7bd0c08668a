//! runc's lifecycle commands over the engine: create, start, state, kill, delete, ps,
//! pause, resume, list. Errors are plain texts: the caller logs them as the shim expects,
//! with the words it classifies by ("does not exist", "container not running").

use std::path::Path;

use nix::sys::signal::Signal;

use super::state::{Record, Root, Status};
use crate::engine;

type Res<T> = Result<T, String>;

fn text(e: anyhow::Error) -> String {
    format!("{e:#}")
}

/// The record of an existing container, or runc's "does not exist".
fn existing(root: &Root, id: &str) -> Res<Record> {
    root.load(id).map_err(text)?.ok_or_else(|| format!("container {id} does not exist"))
}

pub struct CreateArgs<'a> {
    pub id: &'a str,
    pub bundle: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub preserve_fds: i32,
}

/// `create`: the container exists, init waits for `start`; the pid file names it.
/// Returns init's pid (our child until we exit).
pub fn create(root: &Root, a: &CreateArgs) -> Res<i32> {
    seal()?;
    let cwd = std::env::current_dir().map_err(|e| format!("reading the working directory: {e}"))?;
    // Our own paths are the caller's, before we enter the bundle.
    let pid_file = a.pid_file.map(|p| cwd.join(p));
    let console_socket = a.console_socket.map(|p| cwd.join(p));
    let bundle = a.bundle.map(|b| cwd.join(b)).unwrap_or(cwd);
    let bundle = bundle.canonicalize().map_err(|e| format!("bundle {}: {e}", bundle.display()))?;
    // Relative paths of the spec (root.path, bind sources) are the bundle's, as for runc.
    std::env::set_current_dir(&bundle).map_err(|e| format!("entering the bundle {}: {e}", bundle.display()))?;
    let spec = engine::spec::load(&bundle).map_err(text)?;
    let plan = engine::spec::read(&spec, &bundle).map_err(text)?;
    root.claim(a.id).map_err(text)?;
    let cgroups = engine::create::cgroups_for(&plan, a.id);
    let mut record = Record {
        id: a.id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs: plan.rootfs.root.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        cgroups: cgroups.clone(),
        annotations: plan.annotations.clone(),
        poststart: plan.hooks.poststart.clone(),
        poststop: plan.hooks.poststop.clone(),
    };
    let made = root.save(&record).and_then(|_| {
        let req = engine::create::Request {
            id: a.id,
            bundle: &bundle,
            exec_fifo: &root.exec_fifo(a.id),
            cgroups: &cgroups,
            console_socket: console_socket.as_deref(),
            preserve_fds: a.preserve_fds,
        };
        let pid = engine::create::create(plan, &req)?;
        record.pid = pid.as_raw();
        // (Read while init is our unreaped child: it cannot be another process.)
        record.pid_start = crate::sys::process::start_time(pid.as_raw())
            .ok_or_else(|| anyhow::anyhow!("reading the start time of the container's init"))?;
        root.save(&record)?;
        if let Some(path) = &pid_file {
            write_pid_file(path, pid.as_raw())?;
        }
        Ok(())
    });
    if let Err(e) = made {
        if record.pid > 0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(record.pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(record.pid), None);
        }
        let _ = remove(root, &record);
        // The prestart hooks may have run (Docker's network): their undoing, as delete's.
        let _ = engine::hooks::run("poststop", &record.poststop, &state_of(root, &record).to_string());
        return Err(text(e));
    }
    Ok(record.pid)
}

/// `run`: create, start, wait for the container (our child) and delete it; its exit
/// code is ours (128+N for a signal), as `runc run`.
pub fn run(root: &Root, a: &CreateArgs) -> Res<i32> {
    let pid = create(root, a)?;
    let pid = nix::unistd::Pid::from_raw(pid);
    // The usual signals reach the container while we wait, as `runc run`'s do.
    engine::foreground::forward_signals(pid);
    let started = start(root, a.id);
    if started.is_err() {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    }
    let code = engine::foreground::wait_child(pid).unwrap_or(1);
    let deleted = delete(root, a.id, true);
    started?;
    deleted?;
    Ok(code)
}

/// The pid as bare digits, no newline, whole (by rename), as the shim reads it.
fn write_pid_file(path: &Path, pid: i32) -> anyhow::Result<()> {
    use anyhow::Context;
    let tmp = path.with_file_name(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("pid")));
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

pub struct ExecArgs<'a> {
    pub id: &'a str,
    pub process: Option<&'a Path>,
    pub detach: bool,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub tty: bool,
    pub cwd: Option<&'a str>,
    pub env: &'a [String],
    pub user: Option<&'a str>,
    pub command: &'a [String],
}

/// `exec`: a new process in the running container; with --detach the pid file names it
/// and it is left to the caller, else its exit code is ours.
pub fn exec(root: &Root, a: &ExecArgs) -> Res<i32> {
    seal()?;
    let r = existing(root, a.id)?;
    match root.status(&r) {
        Status::Running | Status::Created => {}
        Status::Stopped => return Err("cannot exec in a stopped container: container not running".into()),
        other => return Err(format!("cannot exec in a {} container", other.as_str())),
    }
    let spec = engine::spec::load(&r.bundle).map_err(text)?;
    let process = match a.process {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            serde_json::from_slice::<oci_spec::runtime::Process>(&bytes)
                .map_err(|e| format!("parsing {}: {e}", path.display()))?
        }
        None => process_from_args(spec.process().clone().unwrap_or_default(), a)?,
    };
    let seccomp = engine::spec::seccomp(&spec).map_err(text)?;
    let plan = engine::process::plan(&process).map_err(text)?.with_seccomp(seccomp);
    let target = engine::exec::Target { pid: r.pid, pid_start: r.pid_start, cgroups: &r.cgroups };
    let pid = engine::exec::exec(&target, &plan, a.console_socket).map_err(text)?;
    if let Some(path) = a.pid_file {
        write_pid_file(path, pid.as_raw()).map_err(text)?;
    }
    if a.detach {
        return Ok(0);
    }
    engine::foreground::forward_signals(pid);
    Ok(engine::foreground::wait_child(pid).unwrap_or(1))
}

/// runc's args form of `exec`: the container's own process with the command, and what
/// -t, --cwd, --env and --user change.
fn process_from_args(mut p: oci_spec::runtime::Process, a: &ExecArgs) -> Res<oci_spec::runtime::Process> {
    if a.command.is_empty() {
        return Err("exec needs a command (or --process)".into());
    }
    p.set_args(Some(a.command.to_vec()));
    p.set_terminal(Some(a.tty));
    if let Some(cwd) = a.cwd {
        p.set_cwd(cwd.into());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in a.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(user) = a.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let uid = uid.parse::<u32>().map_err(|_| format!("--user {user:?}: give uid[:gid] as numbers"))?;
        let gid = gid.parse::<u32>().map_err(|_| format!("--user {user:?}: give uid[:gid] as numbers"))?;
        let mut u = p.user().clone();
        u.set_uid(uid);
        u.set_gid(gid);
        p.set_user(u);
    }
    Ok(p)
}

/// Before anything of ours enters a container (create's init, exec's child): run from a
/// read-only view of our binary (the CVE-2019-5736 class), as `dockling exec` does.
fn seal() -> Res<()> {
    if !crate::sys::sealed_exe::running_sealed().map_err(text)? {
        match crate::sys::sealed_exe::reexec_sealed().map_err(text)? {}
    }
    Ok(())
}

/// `start`: lets a created container exec its command.
pub fn start(root: &Root, id: &str) -> Res<()> {
    let r = existing(root, id)?;
    match root.status(&r) {
        Status::Created => {}
        Status::Stopped => return Err("cannot start a container that has stopped".into()),
        other => return Err(format!("cannot start an already {} container", other.as_str())),
    }
    engine::create::start(&root.exec_fifo(id), || Root::alive(&r)).map_err(text)?;
    // The spec: a failing poststart hook is logged, not fatal.
    let _ = engine::hooks::run("poststart", &r.poststart, &state_of(root, &r).to_string());
    Ok(())
}

/// The state JSON of the spec (as runc prints it).
fn state_of(root: &Root, r: &Record) -> serde_json::Value {
    let status = root.status(r);
    serde_json::json!({
        "ociVersion": engine::OCI_VERSION,
        "id": r.id,
        "pid": if status == Status::Stopped { 0 } else { r.pid },
        "status": status.as_str(),
        "bundle": r.bundle,
        "rootfs": r.rootfs,
        "created": r.created,
        "owner": "",
        "annotations": r.annotations,
    })
}

pub fn state(root: &Root, id: &str) -> Res<()> {
    let r = existing(root, id)?;
    let text = serde_json::to_string_pretty(&state_of(root, &r)).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

/// A signal by name (`SIGKILL`, `KILL`) or number.
pub fn parse_signal(s: &str) -> Res<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("invalid signal {s:?}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<Signal>().map_err(|_| format!("invalid signal {s:?}"))
}

/// `kill [--all] ID SIGNAL`.
pub fn kill(root: &Root, id: &str, signal: &str, all: bool) -> Res<()> {
    let sig = parse_signal(signal)?;
    let r = existing(root, id)?;
    // --all reaches what is left in the groups even after init is gone (a shared pid
    // namespace's processes), as the shim relies on.
    let left = if all { crate::cgroups::pids_recursive(&r.cgroups) } else { Vec::new() };
    if matches!(root.status(&r), Status::Stopped | Status::Creating) && left.is_empty() {
        return Err("container not running".into());
    }
    if all {
        for pid in left {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
        return Ok(());
    }
    // By pidfd: the signal reaches the process we made, never a reused pid.
    match crate::sys::process::pidfd(r.pid, r.pid_start) {
        Some(fd) if crate::sys::process::signal(&fd, sig as i32) => Ok(()),
        _ => Err("container not running: no such process".into()),
    }
}

/// `delete [--force]`: a stopped (or created) container goes; `--force` kills a running
/// one first, and succeeds when there is nothing to delete.
pub fn delete(root: &Root, id: &str, force: bool) -> Res<()> {
    let Some(r) = root.load(id).map_err(text)? else {
        // A directory without a record is what a crashed create leaves.
        if root.container_dir(id).exists() {
            let _ = std::fs::remove_dir_all(root.container_dir(id));
            return Ok(());
        }
        return if force { Ok(()) } else { Err(format!("container {id} does not exist")) };
    };
    let status = root.status(&r);
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(format!("cannot delete container {id} that is not stopped: {}", status.as_str()));
    }
    remove(root, &r).map_err(text)?;
    if status != Status::Creating {
        let _ = engine::hooks::run("poststop", &r.poststop, &state_of(root, &r).to_string());
    }
    Ok(())
}

/// Kills what is left of the container (frozen first, so nothing forks away meanwhile,
/// sub-groups included), waits for it, removes its groups and state. Fails, keeping the
/// state, if the groups cannot be removed.
fn remove(root: &Root, r: &Record) -> anyhow::Result<()> {
    if r.pid == 0 {
        // create stopped before init existed: the groups hold nothing of ours (a
        // create refused for a group in use must not touch its processes).
        if crate::cgroups::pids_recursive(&r.cgroups).is_empty() {
            crate::cgroups::remove(&r.cgroups)?;
        }
        let _ = std::fs::remove_dir_all(root.container_dir(&r.id));
        return Ok(());
    }
    let froze = crate::cgroups::set_frozen(&r.cgroups, true).is_ok();
    let init = crate::sys::process::pidfd(r.pid, r.pid_start);
    for pid in crate::cgroups::pids_recursive(&r.cgroups) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
    if let Some(fd) = &init {
        crate::sys::process::signal(fd, libc::SIGKILL);
    }
    if froze {
        let _ = crate::cgroups::set_frozen(&r.cgroups, false);
    }
    for _ in 0..1000 {
        let pids = crate::cgroups::pids_recursive(&r.cgroups);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    if let Some(fd) = &init {
        crate::sys::process::wait_exit(fd, std::time::Duration::from_secs(5));
    }
    crate::cgroups::remove(&r.cgroups)?;
    let _ = std::fs::remove_dir_all(root.container_dir(&r.id));
    Ok(())
}

/// `ps --format json ID`: the host pids of the container's processes.
pub fn ps(root: &Root, id: &str, format: &str) -> Res<()> {
    let r = existing(root, id)?;
    let pids = crate::cgroups::pids(&r.cgroups);
    if format == "json" {
        println!("{}", serde_json::to_string(&pids).map_err(|e| e.to_string())?);
    } else {
        println!("PID");
        for p in pids {
            println!("{p}");
        }
    }
    Ok(())
}

/// `update`: new limits for a container's groups.
pub fn update(root: &Root, id: &str, resources: Option<&Path>, memory: Option<&str>, pids: Option<i64>) -> Res<()> {
    let r = existing(root, id)?;
    if root.status(&r) == Status::Stopped {
        return Err("container not running".into());
    }
    let mut limits = match resources {
        Some(path) => {
            let text = if path == Path::new("-") {
                std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading stdin: {e}"))?
            } else {
                std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?
            };
            let res: oci_spec::runtime::LinuxResources =
                serde_json::from_str(&text).map_err(|e| format!("parsing the resources: {e}"))?;
            engine::resources::limits(&res)
        }
        None => crate::cgroups::Limits::default(),
    };
    if let Some(m) = memory {
        limits.memory = Some(crate::cgroups::parse_bytes(m).map_err(text)?);
    }
    if let Some(p) = pids {
        limits.pids = Some(p);
    }
    crate::cgroups::update(&r.cgroups, &limits).map_err(text)
}

/// `pause` / `resume`: the freezer.
pub fn pause(root: &Root, id: &str, freeze: bool) -> Res<()> {
    let r = existing(root, id)?;
    match (root.status(&r), freeze) {
        (Status::Running | Status::Created, true) | (Status::Paused, false) => {}
        (Status::Paused, true) => return Err(format!("container {id} is already paused")),
        (_, true) => return Err("container not running".into()),
        (_, false) => return Err("container not paused".into()),
    }
    crate::cgroups::set_frozen(&r.cgroups, freeze).map_err(text)
}

/// `list [--format json] [-q]`.
pub fn list(root: &Root, format: &str, quiet: bool) -> Res<()> {
    let records: Vec<Record> = root.ids().iter().filter_map(|id| root.load(id).ok().flatten()).collect();
    if format == "json" {
        let all: Vec<serde_json::Value> = records.iter().map(|r| state_of(root, r)).collect();
        println!("{}", serde_json::to_string(&all).map_err(|e| e.to_string())?);
        return Ok(());
    }
    if quiet {
        records.iter().for_each(|r| println!("{}", r.id));
        return Ok(());
    }
    println!("{:<12}{:<12}{:<12}{:<40}{:<32}OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
    for r in &records {
        let s = state_of(root, r);
        println!(
            "{:<12}{:<12}{:<12}{:<40}{:<32}root",
            r.id,
            s["pid"],
            s["status"].as_str().unwrap_or(""),
            r.bundle.display(),
            r.created
        );
    }
    Ok(())
}
