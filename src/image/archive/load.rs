//! Reading a `docker save` tarball or an OCI archive into the store.
//!
//! The tarball streams once into a staging dir (each file hashed on the way; files
//! under `blobs/sha256/` must match their names), then the images in it are checked
//! and their layers unpacked in staging, and only then committed (see `ingest`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oci_spec::image::{Descriptor, ImageIndex, MediaType};
use serde::Deserialize;

use super::CONTAINERD_NAME;
use crate::error;
use crate::image::digest::{self, HashingWriter};
use crate::image::ingest::Ingest;
use crate::image::layers::Compression;
use crate::image::layout::{read_limited, MAX_JSON_BLOB, REF_NAME};
use crate::image::manifest::{self, parse_config, parse_manifest};
use crate::image::reference::ImageRef;
use crate::image::store::ImageStore;
use crate::image::{error_line, platform};
use crate::state::Store;

/// A file of the archive, staged on disk.
struct Member {
    path: PathBuf,
    hex: String,
}

/// One entry of `docker save`'s manifest.json.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// An image `load` added, reported as soon as it is named in the store.
pub enum Loaded<'a> {
    /// The archive gave the image no name: its id.
    Unnamed(&'a str),
    /// One name the archive gave an image.
    Named(&'a str),
}

/// `dockling load [-i FILE]`. With `report` (not for `-q`), each image is reported
/// once it is recorded, so a later failure still leaves the earlier ones shown.
pub fn load(store: &Store, input: Option<&Path>, mut report: Option<&mut dyn FnMut(Loaded)>) -> Result<()> {
    let reader: Box<dyn Read> = match input {
        Some(p) => Box::new(File::open(p).map_err(|e| error::user(format!("cannot open {}: {e}", p.display())))?),
        None => {
            if io::stdin().is_terminal() {
                return Err(error::user(
                    "requested load from stdin, but stdin is a terminal: use -i FILE or a redirect",
                ));
            }
            Box::new(io::stdin().lock())
        }
    };
    let images = ImageStore::new(store);
    let layout = &images.layout;
    layout.ensure()?;
    let _adding = layout.adding()?;
    let staging = layout.staging("load")?;
    std::fs::create_dir_all(&staging.path).context("creating the load staging dir")?;
    let members = unpack_archive(reader, &staging.path)?;

    let mut ingest = Ingest::new(layout);
    for m in members.values() {
        ingest.add_file(&m.hex, m.path.clone());
    }
    let json = |name: &str| -> Result<Option<Vec<u8>>> {
        match members.get(Path::new(name)) {
            Some(m) => Ok(Some(read_limited(File::open(&m.path)?, MAX_JSON_BLOB, name)?)),
            None => Ok(None),
        }
    };
    let docker: Option<Vec<DockerEntry>> = match json("manifest.json")? {
        Some(raw) => Some(serde_json::from_slice(&raw).map_err(|e| error::user(format!("manifest.json: {e}")))?),
        None => None,
    };
    let index: Option<ImageIndex> = match json("index.json")? {
        Some(raw) => Some(
            ImageIndex::from_reader(&raw[..]).map_err(|e| error::user(format!("index.json: {}", error_line(&e))))?,
        ),
        None => None,
    };

    // (manifest descriptor, names) per image; all checked before anything is recorded.
    let mut found: Vec<(Descriptor, Vec<String>)> = Vec::new();
    match (index, docker) {
        (Some(index), docker) if !index.manifests().is_empty() => {
            // Tags that only manifest.json knows, by config digest.
            let mut tags_by_config: HashMap<String, Vec<String>> = HashMap::new();
            for e in docker.iter().flatten() {
                if let (Some(m), Some(tags)) = (member(&members, &e.config), &e.repo_tags) {
                    tags_by_config.entry(m.hex.clone()).or_default().extend(tags.iter().cloned());
                }
            }
            for d in index.manifests() {
                let (raw, hex) = resolve(&mut ingest, d)?;
                let desc_out = ingest.image(&raw, &hex)?;
                let mut names = names_of(d)?;
                if names.is_empty() {
                    let manifest = parse_manifest(&raw, &hex)?;
                    let config_hex = digest::parse(manifest.config().digest().as_ref())?;
                    for t in tags_by_config.get(&config_hex).into_iter().flatten() {
                        names.push(ImageRef::parse(t)?.familiar());
                    }
                }
                merge(&mut found, desc_out, names);
            }
        }
        (_, Some(docker)) => {
            for e in &docker {
                let (desc, names) = docker_image(&mut ingest, &members, e)?;
                merge(&mut found, desc, names);
            }
        }
        _ => {
            return Err(error::user(
                "not an image archive: it has neither manifest.json (docker save) nor index.json (OCI)",
            ))
        }
    }
    if found.is_empty() {
        return Err(error::user("the archive holds no image"));
    }
    ingest.commit()?;
    for (desc, names) in &found {
        images.record(desc, names)?;
        if let Some(report) = report.as_mut() {
            if names.is_empty() {
                let image = images.load(desc.digest().digest())?;
                report(Loaded::Unnamed(&image.id));
            }
            for n in names {
                report(Loaded::Named(n));
            }
        }
    }
    Ok(())
}

/// Streams the tarball into `dir` as files `0`, `1`, ...: archive path -> member.
/// Symlinks and hard links (old `docker save` shares layers that way) become aliases.
fn unpack_archive(reader: impl Read, dir: &Path) -> Result<HashMap<PathBuf, Member>> {
    let mut archive = tar::Archive::new(reader);
    let mut members: HashMap<PathBuf, Member> = HashMap::new();
    let mut aliases: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (n, entry) in archive.entries().context("reading the archive (not a tar file?)")?.enumerate() {
        let mut entry = entry.context("reading the archive")?;
        let Some(path) = clean(&entry.path().context("reading an archive path")?)? else { continue };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let file = dir.join(n.to_string());
                let mut out = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, File::create(&file)?));
                io::copy(&mut entry, &mut out)
                    .with_context(|| format!("reading {} from the archive", path.display()))?;
                let (w, hex, _) = out.finish();
                w.into_inner().map_err(|e| e.into_error()).context("writing the staging file")?;
                if let Some(claimed) = blob_name(&path) {
                    if claimed != hex {
                        return Err(digest::mismatch(&format!("archive blob {}", path.display()), &claimed, &hex));
                    }
                }
                members.insert(path, Member { path: file, hex });
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let Some(target) = entry.link_name()? else { continue };
                let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                    path.parent().map(Path::to_path_buf).unwrap_or_default().join(&target)
                } else {
                    target.into_owned()
                };
                if let Some(t) = clean(&base)? {
                    aliases.push((path, t));
                }
            }
            _ => {}
        }
    }
    for (alias, target) in aliases {
        if let Some(m) = members.get(&target) {
            let m = Member { path: m.path.clone(), hex: m.hex.clone() };
            members.insert(alias, m);
        }
    }
    Ok(members)
}

/// An archive path, normalised lexically (`a/../b` is `b`, as old `docker save` links
/// layers); one that climbs out of the archive is refused.
fn clean(path: &Path) -> Result<Option<PathBuf>> {
    crate::image::archive_path::normalize(path, true).map_err(|_| {
        error::user(format!("refusing archive entry {:?}: its path leaves the archive", path.display().to_string()))
    })
}

/// `blobs/sha256/<hex>` -> hex.
fn blob_name(path: &Path) -> Option<String> {
    let rest = path.strip_prefix("blobs/sha256").ok()?;
    let name = rest.to_str()?;
    digest::is_hex64(name).then(|| name.to_string())
}

fn member<'m>(members: &'m HashMap<PathBuf, Member>, path: &str) -> Option<&'m Member> {
    clean(Path::new(path)).ok().flatten().and_then(|p| members.get(&p))
}

/// Follows a top-level index entry to an image manifest (through a manifest list).
fn resolve(ingest: &mut Ingest, d: &Descriptor) -> Result<(Vec<u8>, String)> {
    let mut d = d.clone();
    for _ in 0..4 {
        let hex = digest::parse(d.digest().as_ref())?;
        let raw = ingest.read_json_blob(&hex, "manifest")?;
        if platform::is_index(d.media_type()) || platform::raw_is_index(&raw) {
            let index = ImageIndex::from_reader(&raw[..])
                .map_err(|e| error::user(format!("index sha256:{hex}: {}", error_line(&e))))?;
            d = platform::pick(&index)?;
            continue;
        }
        return Ok((raw, hex));
    }
    Err(error::user("manifest lists nested too deep"))
}

/// The names an OCI index entry gives its image (Docker's and containerd's annotation,
/// or a ref.name that is a whole reference; a bare tag names nothing by itself).
fn names_of(d: &Descriptor) -> Result<Vec<String>> {
    let a = d.annotations().clone().unwrap_or_default();
    if let Some(full) = a.get(CONTAINERD_NAME) {
        return Ok(vec![ImageRef::parse(full)?.familiar()]);
    }
    match a.get(REF_NAME) {
        Some(r) if r.contains(':') || r.contains('/') => Ok(vec![ImageRef::parse(r)?.familiar()]),
        _ => Ok(Vec::new()),
    }
}

/// One `docker save` manifest.json entry: config and layer files; makes an OCI manifest.
fn docker_image(
    ingest: &mut Ingest,
    members: &HashMap<PathBuf, Member>,
    e: &DockerEntry,
) -> Result<(Descriptor, Vec<String>)> {
    let missing = |p: &str| error::user(format!("manifest.json names {p:?}, which the archive lacks"));
    let config = member(members, &e.config).ok_or_else(|| missing(&e.config))?;
    let config_raw = ingest.read_json_blob(&config.hex, "image config")?;
    let parsed = parse_config(&config_raw, &config.hex)?;
    let diff_ids = parsed.rootfs().diff_ids().clone();
    if diff_ids.len() != e.layers.len() {
        return Err(error::user(format!(
            "manifest.json lists {} layers but the image config {} diff ids",
            e.layers.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (path, diff) in e.layers.iter().zip(&diff_ids) {
        let m = member(members, path).ok_or_else(|| missing(path))?;
        let mut head = [0u8; 4];
        let n = File::open(&m.path)?.read(&mut head)?;
        let compression = Compression::detect(&head[..n]);
        ingest.unpack(&m.hex, &digest::parse(diff)?)?;
        let size = std::fs::metadata(&m.path)?.len();
        layers.push(manifest::descriptor(MediaType::from(compression.media_type()), &m.hex, size)?);
    }
    let desc = ingest.add_manifest(&config_raw, layers)?;
    let mut names = Vec::new();
    for t in e.repo_tags.iter().flatten() {
        names.push(ImageRef::parse(t)?.familiar());
    }
    Ok((desc, names))
}

fn merge(found: &mut Vec<(Descriptor, Vec<String>)>, desc: Descriptor, names: Vec<String>) {
    match found.iter_mut().find(|(d, _)| d.digest() == desc.digest()) {
        Some((_, existing)) => {
            for n in names {
                if !existing.contains(&n) {
                    existing.push(n);
                }
            }
        }
        None => found.push((desc, names)),
    }
}
