//! The names index: `<root>/names/<name>` is a hard link to the first version of the
//! record of the container holding the name, so `run` claims a name with one `link`
//! instead of reading every record (with 50 containers that reading took 1.5 ms of each
//! `run`). A hard link, not a file or symlink of its own: making an inode on this ext4
//! (no journal) can take a millisecond after many deletions, a link takes none.
//!
//! Callers hold the names lock. The records stay the truth: a link whose container is
//! gone, or whose current record carries another name, is stale and is taken over. A root
//! made before the index existed gets it built from its records on first use (`.built`
//! marks it complete).

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::Store;

fn dir(store: &Store) -> PathBuf {
    store.root.join("names") // made by Store::open
}

/// Claims `name` for container `id`, whose record is saved already: `Ok(None)` when it
/// is ours now, `Ok(Some(other))` when container `other` holds it.
pub fn claim(store: &Store, name: &str, id: &str) -> Result<Option<String>> {
    ensure_built(store)?;
    let link = dir(store).join(name);
    for _ in 0..2 {
        match fs::hard_link(store.container_dir(id).join("config.json"), &link) {
            Ok(()) => return Ok(None),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("recording the name {name:?}")),
        }
        let holder = holder(&link).unwrap_or_default();
        if holder == id {
            return Ok(None);
        }
        if !holder.is_empty() && store.load(&holder).map(|c| c.name == name).unwrap_or(false) {
            return Ok(Some(holder));
        }
        fs::remove_file(&link).or_else(ignore_missing).with_context(|| format!("replacing the stale name {name:?}"))?;
    }
    Err(anyhow::anyhow!("the name {name:?} is being claimed concurrently"))
}

/// The container holding `name`, if any (checked before a record is made, so a taken name
/// is refused without creating anything).
pub fn holder_of(store: &Store, name: &str) -> Result<Option<String>> {
    ensure_built(store)?;
    Ok(holder(&dir(store).join(name)).filter(|h| store.load(h).map(|c| c.name == name).unwrap_or(false)))
}

/// The id `name` links to, read without the names lock (a hint: the caller checks the
/// record carries that name).
pub fn lookup(store: &Store, name: &str) -> Option<String> {
    holder(&dir(store).join(name))
}

/// Is the index complete (every name of every record in it)?
pub fn is_built(store: &Store) -> bool {
    dir(store).join(".built").exists()
}

/// Gives `name` up if container `id` holds it.
pub fn release(store: &Store, name: &str, id: &str) -> Result<()> {
    let link = dir(store).join(name);
    match holder(&link) {
        Some(holder) if holder == id => {
            fs::remove_file(&link).or_else(ignore_missing).with_context(|| format!("releasing the name {name:?}"))
        }
        _ => Ok(()),
    }
}

/// The id in the record a name links to.
fn holder(link: &std::path::Path) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    let text = fs::read(link).ok()?;
    serde_json::from_slice::<Id>(&text).ok().map(|r| r.id)
}

/// Builds the index from the records if this root has none yet.
fn ensure_built(store: &Store) -> Result<()> {
    let names = dir(store);
    let marker = names.join(".built");
    if marker.exists() {
        return Ok(());
    }
    fs::create_dir_all(&names).with_context(|| format!("creating {}", names.display()))?;
    // (Holding the names lock: no record is created or removed meanwhile.)
    for c in store.list()? {
        match fs::hard_link(store.container_dir(&c.id).join("config.json"), names.join(&c.name)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("indexing the name {:?}", c.name)),
        }
    }
    fs::write(&marker, b"").with_context(|| format!("writing {}", marker.display()))
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}
