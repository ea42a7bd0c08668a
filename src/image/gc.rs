//! `rmi`, `image prune`, and the garbage collection behind both: whatever no index
//! entry reaches (manifests, configs, layer blobs, unpacked layers) is deleted.
//!
//! An image a container was made from is never deleted: `rmi` refuses it (unless
//! `-f`, which only takes its names away), and its layers stay while the container
//! exists, since they are the container's overlay lower dirs.

use std::collections::HashSet;
use std::fs;

use anyhow::{Context, Result};
use oci_spec::image::ImageManifest;

use super::digest;
use super::layers;
use super::reference::ImageRef;
use super::store::{ref_name, ImageStore};
use crate::error;
use crate::state::Store;

/// One step of `rmi`, reported as it happens, so the caller shows the steps (and the
/// failures among them) in the order they happened.
pub enum Removal<'a> {
    /// A name was taken away.
    Untagged(&'a str),
    /// The image with this id is gone from the index.
    Deleted(&'a str),
    /// This key could not be removed; the next ones still are.
    Failed(&'a anyhow::Error),
}

/// `dockling rmi [-f] IMAGE...`: each key in turn (a failure does not stop the others),
/// then whatever no image reaches any more is collected.
pub fn remove(store: &Store, keys: &[String], force: bool, report: &mut impl FnMut(Removal)) -> Result<()> {
    let images = ImageStore::new(store);
    for key in keys {
        if let Err(e) = remove_one(&images, key, force, report) {
            report(Removal::Failed(&e));
        }
    }
    collect(&images, false)?;
    Ok(())
}

fn remove_one(images: &ImageStore, key: &str, force: bool, report: &mut impl FnMut(Removal)) -> Result<()> {
    let image = images.lookup(key)?.ok_or_else(|| error::exit(1, format!("No such image: {key}")))?;
    // By name: take that name away, and the image too if it was its last one.
    let by_name = ImageRef::parse(key).ok().map(|r| r.familiar()).filter(|n| image.names.contains(n));
    let users = images.in_use()?;
    let used_by = users.get(&image.id);
    let names: Vec<String> = match &by_name {
        Some(n) => vec![n.clone()],
        None => {
            if image.names.len() > 1 && !force {
                return Err(error::exit(
                    1,
                    format!(
                        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        image.short_id()
                    ),
                ));
            }
            image.names.clone()
        }
    };
    let last = names.len() >= image.names.len();
    if last && !force {
        if let Some(c) = used_by {
            return Err(error::exit(
                1,
                format!(
                    "conflict: unable to remove repository reference \"{key}\" (must force) - container {} is using its referenced image {}",
                    &c[..12],
                    image.short_id()
                ),
            ));
        }
    }
    for n in &names {
        images.unrecord(&image.manifest_digest, Some(n), used_by.is_some())?;
        report(Removal::Untagged(n));
    }
    if last && used_by.is_none() {
        images.unrecord(&image.manifest_digest, None, false)?;
        report(Removal::Deleted(&image.id));
    }
    Ok(())
}

/// One step of `image prune`, reported as it happens (see [`Removal`]).
pub enum Pruned<'a> {
    /// A name was taken away.
    Untagged(&'a str),
    /// The ids of the images deleted from the index (called once, even with none),
    /// before the space they held is collected.
    Deleted(&'a [String]),
}

/// `dockling image prune [-a]`: unnamed images (with `-a`: all images) that no
/// container uses, then everything unreachable, including unfinished downloads.
/// Returns the bytes reclaimed.
pub fn prune(store: &Store, all: bool, report: &mut impl FnMut(Pruned)) -> Result<u64> {
    let images = ImageStore::new(store);
    let used = images.in_use()?;
    let mut deleted = Vec::new();
    if images.layout.dir.join("index.json").exists() {
        for image in images.images()? {
            if used.contains_key(&image.id) || (!all && !image.names.is_empty()) {
                continue;
            }
            for n in &image.names {
                images.unrecord(&image.manifest_digest, Some(n), false)?;
                report(Pruned::Untagged(n));
            }
            images.unrecord(&image.manifest_digest, None, false)?;
            deleted.push(image.id.clone());
        }
    }
    report(Pruned::Deleted(&deleted));
    collect(&images, true)
}

/// Deletes blobs and unpacked layers that no index entry reaches, and staging leftovers
/// (with `partials`, unfinished downloads too). Returns the bytes freed.
fn collect(images: &ImageStore, partials: bool) -> Result<u64> {
    let layout = &images.layout;
    if !layout.dir.join("blobs").exists() {
        return Ok(0);
    }
    let _exclusive = layout.collecting()?;
    let _index = layout.lock_index()?;
    let index = layout.read_index()?;
    let mut blobs = HashSet::new();
    let mut diffs = HashSet::new();
    for d in index.manifests() {
        let hex = digest::parse(d.digest().as_ref())?;
        // Anything unreadable stops the collection: better keep garbage than lose data.
        let raw = layout
            .read_blob(&hex)
            .with_context(|| format!("reading manifest of {}", ref_name(d).unwrap_or("an unnamed image")))?;
        let manifest =
            ImageManifest::from_reader(&raw[..]).with_context(|| format!("parsing manifest sha256:{hex}"))?;
        let config_hex = digest::parse(manifest.config().digest().as_ref())?;
        let config = oci_spec::image::ImageConfiguration::from_reader(&layout.read_blob(&config_hex)?[..])
            .with_context(|| format!("parsing config sha256:{config_hex}"))?;
        blobs.insert(hex);
        blobs.insert(config_hex);
        for l in manifest.layers() {
            blobs.insert(digest::parse(l.digest().as_ref())?);
        }
        for id in config.rootfs().diff_ids() {
            diffs.insert(digest::parse(id)?);
        }
    }
    let mut freed = 0;
    for entry in fs::read_dir(layout.dir.join("blobs/sha256")).context("listing blobs")? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !blobs.contains(&name) {
            freed += entry.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(entry.path()).with_context(|| format!("removing blob {name}"))?;
        }
    }
    for entry in fs::read_dir(layout.layers_dir()).context("listing layers")? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !diffs.contains(&name) {
            freed += layers::size(layout, &name);
            crate::state::remove_tree(&entry.path())?;
        }
    }
    let links = layout.dir.join("l");
    if links.is_dir() {
        for entry in fs::read_dir(&links).context("listing layer links")? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !diffs.iter().any(|d| d.starts_with(&name)) || !entry.path().exists() {
                fs::remove_file(entry.path()).with_context(|| format!("removing layer link {name}"))?;
            }
        }
    }
    // Nobody is adding content (we hold the exclusive lock): staging is all leftovers.
    for entry in fs::read_dir(layout.tmp_dir()).context("listing tmp")? {
        let entry = entry?;
        let partial = entry.file_name().to_string_lossy().ends_with(".partial");
        if partial && !partials {
            continue;
        }
        freed += entry.metadata().map(|m| if m.is_file() { m.len() } else { 0 }).unwrap_or(0);
        let path = entry.path();
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            crate::state::remove_tree(&path)?;
        } else {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(freed)
}
