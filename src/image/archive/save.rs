//! Writing images as one tarball that is both a `docker save` archive
//! (`manifest.json`) and an OCI image layout (`oci-layout`, `index.json`, `blobs/`),
//! the way Docker 25 and later write theirs. Blobs go in byte for byte, so digests
//! survive a save/load round trip.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use super::CONTAINERD_NAME;
use crate::error;
use crate::image::layout::REF_NAME;
use crate::image::reference::ImageRef;
use crate::image::store::{Image, ImageStore};

/// `dockling save [-o FILE] IMAGE...` (stdout when not a terminal, as Docker).
pub fn save(store: &crate::state::Store, keys: &[String], output: Option<&Path>) -> Result<()> {
    let images = ImageStore::new(store);
    // (image, names to give it) in the order asked for, each image once.
    let mut chosen: Vec<(Image, Vec<String>)> = Vec::new();
    for key in keys {
        let image = images.lookup(key)?.ok_or_else(|| error::user(format!("No such image: {key}")))?;
        let by_name = ImageRef::parse(key).ok().map(|r| r.familiar()).filter(|n| image.names.contains(n));
        let names: Vec<String> = match by_name {
            Some(n) => vec![n],
            None => image.names.clone(),
        };
        let names: Vec<String> = names.into_iter().filter(|n| !n.contains('@')).collect();
        match chosen.iter_mut().find(|(i, _)| i.manifest_digest == image.manifest_digest) {
            Some((_, existing)) => {
                for n in names {
                    if !existing.contains(&n) {
                        existing.push(n);
                    }
                }
            }
            None => chosen.push((image, names)),
        }
    }
    match output {
        Some(path) => {
            let tmp = path.with_file_name(format!(
                ".{}.dockling-{}",
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                std::process::id()
            ));
            let result = File::create(&tmp)
                .map_err(|e| error::user(format!("cannot create {}: {e}", path.display())))
                .and_then(|f| {
                    let mut w = io::BufWriter::with_capacity(1 << 20, f);
                    write_archive(&images, &chosen, &mut w)?;
                    let f = w.into_inner().map_err(|e| e.into_error()).context("writing the archive")?;
                    f.sync_all().context("writing the archive")?;
                    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
                });
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result
        }
        None => {
            if io::stdout().is_terminal() {
                return Err(error::user("cowardly refusing to save to a terminal: use the -o flag or redirect"));
            }
            let mut out = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
            write_archive(&images, &chosen, &mut out)?;
            out.flush().context("writing the archive")
        }
    }
}

fn write_archive(images: &ImageStore, chosen: &[(Image, Vec<String>)], out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    dir(&mut tar, "blobs/")?;
    dir(&mut tar, "blobs/sha256/")?;
    let mut written = std::collections::HashSet::new();
    let mut index_entries = Vec::new();
    let mut docker_entries = Vec::new();
    for (image, names) in chosen {
        let config_hex = &image.id;
        let mut blobs = vec![image.manifest_digest.clone(), config_hex.clone()];
        blobs.extend(image.layer_ids.iter().map(|(b, _)| b.clone()));
        for hex in blobs {
            if written.insert(hex.clone()) {
                let path = images.layout.blob_path(&hex);
                let mut f = File::open(&path).with_context(|| format!("opening blob sha256:{hex}"))?;
                let size = f.metadata()?.len();
                let mut h = header(size, 0o644);
                tar.append_data(&mut h, format!("blobs/sha256/{hex}"), &mut f)
                    .with_context(|| format!("writing blob sha256:{hex}"))?;
            }
        }
        let base = json!({
            "mediaType": image.manifest_media_type,
            "digest": format!("sha256:{}", image.manifest_digest),
            "size": image.manifest_size,
        });
        if names.is_empty() {
            index_entries.push(base.clone());
        }
        for n in names {
            let r = ImageRef::parse(n)?;
            let mut e = base.clone();
            let mut annotations = HashMap::new();
            annotations.insert(CONTAINERD_NAME, r.full());
            annotations.insert(REF_NAME, r.tag().unwrap_or("latest").to_string());
            e["annotations"] = json!(annotations);
            index_entries.push(e);
        }
        docker_entries.push(json!({
            "Config": format!("blobs/sha256/{config_hex}"),
            "RepoTags": if names.is_empty() { serde_json::Value::Null } else { json!(names) },
            "Layers": image.layer_ids.iter().map(|(b, _)| format!("blobs/sha256/{b}")).collect::<Vec<_>>(),
        }));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": index_entries,
    });
    file(&mut tar, "index.json", &serde_json::to_vec(&index)?)?;
    file(&mut tar, "manifest.json", &serde_json::to_vec(&docker_entries)?)?;
    file(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    tar.into_inner().context("finishing the archive")?;
    Ok(())
}

fn header(size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn file<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> Result<()> {
    let mut h = header(data.len() as u64, 0o644);
    tar.append_data(&mut h, name, data).with_context(|| format!("writing {name}"))
}

fn dir<W: Write>(tar: &mut tar::Builder<W>, name: &str) -> Result<()> {
    let mut h = header(0, 0o755);
    h.set_entry_type(tar::EntryType::Directory);
    tar.append_data(&mut h, name, io::empty()).with_context(|| format!("writing {name}"))
}
