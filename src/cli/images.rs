//! Image commands: `import`, `images`, `pull`, `load`, `save`, `rmi`, `image prune`,
//! `image inspect`.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::{humanize, table};
use crate::image::{self, ImageStore, PullOptions};
use crate::state::Store;

pub fn import(store: &Store, source: &Path, reference: Option<&str>, changes: &[String]) -> Result<()> {
    image::import(store, source, reference, changes).map(|_| ())
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
    let opts = PullOptions { quiet, to_stderr: false, insecure, announce: None };
    image::pull(store, reference, &opts).map(|_| ())
}

pub fn load(store: &Store, input: Option<&Path>, quiet: bool) -> Result<()> {
    image::load(store, input, quiet)
}

pub fn save(store: &Store, images: &[String], output: Option<&Path>) -> Result<()> {
    image::save(store, images, output)
}

pub fn rmi(store: &Store, images: &[String], force: bool) -> Result<i32> {
    image::remove(store, images, force)
}

pub fn prune(store: &Store, all: bool) -> Result<()> {
    image::prune(store, all)
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
