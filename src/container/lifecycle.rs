//! stop, rm, and the single teardown path that the monitor, `run`, `stop` and `rm` share.
//!
//! Teardown is idempotent and works from the record alone, so whoever sees a container
//! dead first (its monitor, a later `stop`, `rm -f` after a crash) can finish the job.

use std::time::Duration;

use anyhow::Result;
use chrono::Utc;

use crate::error;
use crate::network;
use crate::state::{Status, Store};
use crate::sys::process;

/// How long to wait for a monitor to finish recording and cleaning up.
const MONITOR_GRACE: Duration = Duration::from_secs(10);

/// Records the exit (if nobody did), undoes host changes, and honours `--rm`.
/// One record write at most: the exit and the teardown are saved together (a `--rm`
/// container's record is removed instead). If this dies half-way, the record still says
/// "not cleaned" and `rm -f`, `ps` or the next `run` finish the job.
pub fn finish(store: &Store, id: &str, code: Option<i32>) -> Result<()> {
    let lock = store.lock_container(id)?;
    let mut c = store.load(id)?;
    if c.status != Status::Exited {
        c.status = Status::Exited;
        c.exit_code = code;
        c.finished_at = Some(Utc::now());
        c.oom_killed = code == Some(137) && crate::cgroups::oom_killed(&c.cgroups);
    }
    if c.stopper_elsewhere() {
        return store.save(&c); // the stop/rm that asked will tear down (and explain) itself
    }
    let undone = if c.cleaned { Ok(()) } else { undo(store, &mut c) };
    if c.auto_remove && undone.is_ok() {
        drop(lock);
        let _names = store.lock_names()?;
        return store.remove_dir(id, &c.name);
    }
    store.save(&c)?;
    undone
}

/// Undoes everything `run` recorded on the host for this container (idempotent).
pub fn cleanup(store: &Store, id: &str) -> Result<()> {
    let _lock = store.lock_container(id)?;
    let mut c = store.load(id)?;
    if c.cleaned {
        return Ok(());
    }
    let undone = undo(store, &mut c);
    store.save(&c)?;
    undone
}

/// The teardown itself, on a loaded record (the caller holds its lock and saves it).
fn undo(store: &Store, c: &mut crate::state::Container) -> Result<()> {
    crate::timing::mark("cleanup: start");
    network::teardown(store, c)?;
    crate::timing::mark("cleanup: network");
    crate::cgroups::remove(&c.cgroups)?;
    crate::timing::mark("cleanup: cgroups");
    c.cgroups.clear();
    c.cleaned = true;
    Ok(())
}

/// A container whose `run` is still making its cgroups, directories and process is
/// left to it until the process is recorded (bounded): tearing it down meanwhile would
/// race with what `run` is still creating.
fn wait_until_started(store: &Store, mut c: crate::state::Container) -> crate::state::Container {
    let deadline = std::time::Instant::now() + MONITOR_GRACE;
    while c.starting() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        match store.load(&c.id) {
            Ok(fresh) => c = fresh,
            Err(_) => break,
        }
    }
    c
}

/// Waits (bounded) for the process that watches the container to finish its work.
pub fn wait_for_monitor(store: &Store, id: &str) {
    let Ok(c) = store.load(id) else { return };
    if let (Some(pid), Some(start)) = (c.monitor_pid, c.monitor_start) {
        if pid == std::process::id() as i32 {
            return;
        }
        if let Some(fd) = process::pidfd(pid, start) {
            process::wait_exit(&fd, MONITOR_GRACE);
        }
    }
}

/// `dockling stop` of one container: its stop signal, wait `timeout`, then SIGKILL.
/// Returns when it is stopped and cleaned up. (The command line reports each key.)
pub fn stop(store: &Store, key: &str, timeout: Duration) -> Result<()> {
    let c = wait_until_started(store, store.resolve(key)?);
    if let Some(me) = process::this_process() {
        store.update(&c.id, |c| {
            c.stopper = Some(me);
            Ok(())
        })?;
    }
    let mut sent = None;
    if let (Some(pid), Some(start)) = (c.pid, c.pid_start) {
        if let Some(fd) = process::pidfd(pid, start) {
            // The image's StopSignal (e.g. SIGQUIT for nginx), else SIGTERM, as Docker.
            let first = crate::image::stop_signal(store, &c.image_id).unwrap_or(libc::SIGTERM);
            sent = Some(first);
            process::signal(&fd, first);
            if !process::wait_exit(&fd, timeout) {
                sent = Some(libc::SIGKILL);
                process::signal(&fd, libc::SIGKILL);
                process::wait_exit(&fd, Duration::from_secs(10));
            }
        }
    }
    settle(store, &c.id, sent.map(|s| 128 + s))
}

/// After the process is gone: let its monitor finish, or finish for it if it died too.
fn settle(store: &Store, id: &str, guessed_code: Option<i32>) -> Result<()> {
    wait_for_monitor(store, id);
    let Ok(c) = store.load(id) else {
        return Ok(()); // --rm already removed it
    };
    if c.status == Status::Exited && c.cleaned {
        return Ok(());
    }
    if c.monitor_alive() && c.monitor_pid != Some(std::process::id() as i32) && c.status != Status::Exited {
        return Err(anyhow::anyhow!("container {} is still being torn down by its monitor", c.short_id()));
    }
    finish(store, id, guessed_code)
}

/// `dockling rm [-f]` of one container: refused while it runs (unless `force`, which
/// kills it first), then its teardown is finished and its directory removed.
pub fn remove(store: &Store, key: &str, force: bool) -> Result<()> {
    let c = wait_until_started(store, store.resolve(key)?);
    // (A container whose process is gone but whose monitor is still recording the
    // exit is not refused: `settle` waits for the monitor.)
    if c.process_alive() {
        if !force {
            return Err(error::exit(
                1,
                format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    c.name
                ),
            ));
        }
        stop(store, &c.id, Duration::ZERO)?;
    } else {
        settle(store, &c.id, None)?;
    }
    crate::timing::mark("rm: settled");
    let _names = store.lock_names()?;
    store.remove_dir(&c.id, &c.name)?;
    crate::timing::mark("rm: removed");
    Ok(())
}

/// `rm -f` of several containers, as fast as one: every running one is killed first, so
/// they die together rather than one after another; then their published ports and port
/// filters go in one batch each (one `iptables-restore` or nf_tables transaction, where
/// one per container costs ~10 ms each); then each is removed as [`remove`] does, with
/// little left to undo. One result per key, in order.
pub fn remove_many(store: &Store, keys: &[String], force: bool) -> Vec<Result<()>> {
    if keys.len() < 2 || !force {
        return keys.iter().map(|k| remove(store, k, force)).collect();
    }
    let me = process::this_process();
    let mut killed = Vec::new();
    for key in keys {
        let Ok(c) = store.resolve(key).map(|c| wait_until_started(store, c)) else { continue };
        let (Some(pid), Some(start)) = (c.pid, c.pid_start) else { continue };
        let Some(fd) = process::pidfd(pid, start) else { continue };
        let claimed = store.update(&c.id, |c| {
            c.stopper = me;
            Ok(())
        });
        if claimed.is_ok() && process::signal(&fd, libc::SIGKILL) {
            killed.push((c.id.clone(), fd));
        }
    }
    crate::timing::mark("rm: killed");
    for (_, fd) in &killed {
        process::wait_exit(fd, Duration::from_secs(10));
    }
    crate::timing::mark("rm: exited");
    let ids: Vec<String> = killed.into_iter().map(|(id, _)| id).collect();
    // Best effort: what is not removed here stays in the records, for each teardown.
    let _ = network::release_many(store, &ids);
    crate::timing::mark("rm: released");
    keys.iter().map(|k| remove(store, k, force)).collect()
}

/// [`reconcile`] for every container: commands that depend on the host's network state
/// (`run`, `network ls`/`prune`, `inspect`) call it first.
pub fn reconcile_all(store: &Store) -> usize {
    store.list().map(|all| all.iter().filter(|c| reconcile(store, c)).count()).unwrap_or(0)
}

/// Runs `f`; if it fails on a conflict (a name, port or netns name still held) and
/// finishing orphaned teardowns freed something, runs it once more. Keeps that scan off
/// `run`'s usual path.
pub fn retry_after_reconcile<T>(store: &Store, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    match f() {
        Err(e) if error::kind_of(&e) == error::Kind::Conflict && reconcile_all(store) > 0 => f(),
        other => other,
    }
}

/// Finishes the teardown of a container that ended while nobody could do it (its monitor
/// and any stop that claimed it died). Called by `ps`, so the host is never left with
/// rules of a dead container for long.
pub fn reconcile(store: &Store, c: &crate::state::Container) -> bool {
    let dead = matches!(c.liveness(), crate::state::Liveness::Exited(_));
    dead && !c.cleaned && !c.monitor_alive() && !c.stopper_elsewhere() && finish(store, &c.id, None).is_ok()
}
