//! A new container's record: made under the names lock, so two runs never share a name.

use std::fs;

use anyhow::{Context, Result};
use chrono::Utc;

use super::naming;
use super::options::RunOptions;
use crate::error;
use crate::state::{self, Container, NetworkRecord, Status, Store};
use crate::sys::process;

fn name_conflict(name: &str, other: &str) -> anyhow::Error {
    error::conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

pub fn create(
    store: &Store,
    opts: &RunOptions,
    image_id: &str,
    env: Vec<String>,
    workdir: String,
) -> Result<Container> {
    let _names = store.lock_names()?;
    let id = state::new_id()?;
    if let Some(name) = &opts.name {
        if let Some(other) = state::name_index::holder_of(store, name)? {
            return Err(name_conflict(name, &other));
        }
    }
    let mut env = env;
    let hostname = opts.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    env.insert(0, format!("HOSTNAME={hostname}"));
    let mut c = Container {
        id: id.clone(),
        name: opts.name.clone().unwrap_or_else(|| naming::generate(&id, 0)),
        image: opts.image.clone(),
        image_id: image_id.to_string(),
        command: opts.command.clone(),
        env,
        workdir,
        hostname,
        created: Utc::now(),
        detached: opts.detach,
        auto_remove: opts.auto_remove,
        network_mode: opts.network,
        ports: Vec::new(),
        status: Status::Created,
        pid: None,
        pid_start: None,
        monitor_pid: None,
        monitor_start: None,
        exit_code: None,
        started_at: None,
        finished_at: None,
        network: NetworkRecord::default(),
        security: opts.security.clone(),
        limits: opts.limits.clone(),
        mounts: opts.mounts.clone(),
        // Recorded with the container, created before the clone; init moves itself in
        // first thing (see `cgroups::join_self`).
        cgroups: crate::cgroups::plan(&id),
        oom_killed: false,
        stopper: None,
        cleaned: false,
        creator: process::this_process(),
    };
    fs::create_dir(store.container_dir(&id)).context("creating the container directory")?;
    if let Err(e) = save_and_claim_name(store, &mut c, opts.name.is_none()) {
        let _ = state::remove_tree(&store.container_dir(&id));
        return Err(e);
    }
    Ok(c)
}

/// Saves the new record and claims its name in the names index (one link, not a read of
/// every record). A generated name that is taken gives way to the next candidate.
fn save_and_claim_name(store: &Store, c: &mut Container, generated: bool) -> Result<()> {
    let fallback = c.id[..12].to_string();
    let mut candidates = (1..100).map(|i| naming::generate(&c.id, i)).chain([fallback]);
    loop {
        store.save(c)?;
        let Some(other) = state::name_index::claim(store, &c.name, &c.id)? else { return Ok(()) };
        match candidates.next() {
            Some(next) if generated => c.name = next,
            _ => return Err(name_conflict(&c.name, &other)),
        }
    }
}
