//! Image commands: `import`, `images`, `pull`, `load`, `save`, `rmi`, `image prune`,
//! `image inspect`.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::{humanize, table};
use crate::image::{self, ImageStore, Loaded, Pruned, PullOptions, Removal};
use crate::state::Store;

/// `import`: the new image's id, as `docker import` prints it.
pub fn import(store: &Store, source: &Path, reference: Option<&str>, changes: &[String]) -> Result<()> {
    let image = image::import(store, source, reference, changes)?;
    println!("sha256:{}", image.id);
    Ok(())
}

pub fn list(store: &Store, quiet: bool, no_trunc: bool) -> Result<()> {
    let images = ImageStore::new(store).images()?;
    let id = |i: &image::Image| if no_trunc { format!("sha256:{}", i.id) } else { i.short_id().to_string() };
    if quiet {
        for img in &images {
            println!("{}", id(img));
        }
        return Ok(());
    }
    let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"].map(String::from).to_vec()];
    for img in &images {
        let names: Vec<(String, String)> = if img.names.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            img.names.iter().map(|n| image::split_name(n)).collect()
        };
        for (repo, tag) in names {
            rows.push(vec![
                repo,
                tag,
                id(img),
                format!("{} ago", humanize::since(img.created)),
                humanize::size(img.size),
            ]);
        }
    }
    table::print(&rows);
    Ok(())
}

pub fn pull(store: &Store, reference: &str, insecure: bool, quiet: bool) -> Result<()> {
    let progress = super::progress::Terminal::new(quiet, false);
    let opts = PullOptions { progress: &progress, for_run: false, insecure, announce: None };
    let pulled = image::pull(store, reference, &opts)?;
    // Last, after the status lines (alone with -q), as `docker pull` does.
    println!("{}", pulled.reference);
    Ok(())
}

/// `load`: a line per image as it is added (none with -q).
pub fn load(store: &Store, input: Option<&Path>, quiet: bool) -> Result<()> {
    let mut show = |loaded: Loaded| match loaded {
        Loaded::Unnamed(id) => println!("Loaded image ID: sha256:{id}"),
        Loaded::Named(name) => println!("Loaded image: {name}"),
    };
    image::load(store, input, if quiet { None } else { Some(&mut show) })
}

pub fn save(store: &Store, images: &[String], output: Option<&Path>) -> Result<()> {
    image::save(store, images, output)
}

/// `rmi`: each step on stdout and each failure on stderr, in order; exit 1 if any key
/// could not be removed, as Docker.
pub fn rmi(store: &Store, images: &[String], force: bool) -> Result<i32> {
    let mut failed = false;
    image::remove(store, images, force, &mut |step| match step {
        Removal::Untagged(name) => println!("Untagged: {name}"),
        Removal::Deleted(id) => println!("Deleted: sha256:{id}"),
        Removal::Failed(e) => {
            eprintln!("dockling: {}", image::error_line(e));
            failed = true;
        }
    })?;
    Ok(if failed { 1 } else { 0 })
}

/// `image prune`: what was untagged and deleted, then the space reclaimed.
pub fn prune(store: &Store, all: bool) -> Result<()> {
    let reclaimed = image::prune(store, all, &mut |step| match step {
        Pruned::Untagged(name) => println!("untagged: {name}"),
        Pruned::Deleted([]) => {}
        Pruned::Deleted(ids) => {
            println!("Deleted Images:");
            for id in ids {
                println!("deleted: sha256:{id}");
            }
            println!();
        }
    })?;
    println!("Total reclaimed space: {}", humanize::size(reclaimed));
    Ok(())
}

/// `image inspect`: Docker's fields that mean something here.
pub fn inspect(store: &Store, keys: &[String]) -> Result<i32> {
    let images = ImageStore::new(store);
    let mut out = Vec::new();
    let mut code = 0;
    for key in keys {
        match images.lookup(key) {
            Ok(Some(img)) => {
                let names: Vec<&String> = img.names.iter().filter(|n| !n.contains('@')).collect();
                let digests: Vec<String> = img
                    .names
                    .iter()
                    .map(|n| format!("{}@sha256:{}", image::split_name(n).0, img.manifest_digest))
                    .collect();
                let lowers: Vec<String> = img.layer_trees().iter().map(|p| p.display().to_string()).collect();
                out.push(json!({
                    "Id": format!("sha256:{}", img.id),
                    "RepoTags": names,
                    "RepoDigests": digests,
                    "Created": img.created.to_rfc3339(),
                    "Architecture": img.config.architecture().to_string(),
                    "Os": img.config.os().to_string(),
                    "Size": img.size,
                    "Config": img.config.config(),
                    "RootFS": { "Type": "layers", "Layers": img.config.rootfs().diff_ids() },
                    "Manifest": { "Digest": format!("sha256:{}", img.manifest_digest), "MediaType": img.manifest_media_type },
                    "GraphDriver": { "Name": "overlay", "Data": { "LowerDir": lowers.join(":") } },
                }));
            }
            Ok(None) => {
                eprintln!("dockling: No such image: {key}");
                code = 1;
            }
            Err(e) => {
                eprintln!("dockling: {}", image::error_line(&e));
                code = 1;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&serde_json::Value::Array(out))?);
    Ok(code)
}
