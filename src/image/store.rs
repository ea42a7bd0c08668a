//! Finding, naming and listing images in the OCI layout.
//!
//! An image is a manifest in `index.json`; its id is its config's digest, as Docker's
//! is. Each name (`busybox:latest`) is one index entry annotated with that name; an
//! image that lost its last name while a container still uses it stays as an unnamed
//! ("dangling") entry, so its layers outlive the tag, as in Docker.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use oci_spec::image::{Descriptor, ImageConfiguration, MediaType};

use super::digest;
use super::layers;
use super::layout::{Layout, REF_NAME};
use super::manifest::{layer_pairs, parse_config, parse_manifest};
use super::reference::{split_familiar, ImageRef};
use crate::error;
use crate::state::Store;

/// One image: its manifest, its config, and where its unpacked layers are.
#[derive(Debug, Clone)]
pub struct Image {
    /// Hex of the config digest (Docker's image id).
    pub id: String,
    /// Hex of the manifest digest (what a registry calls the image).
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub manifest_size: u64,
    /// Every name this image goes by (`name:tag` or `name@sha256:...`).
    pub names: Vec<String>,
    pub created: DateTime<Utc>,
    /// Bytes of file content in its layers, uncompressed.
    pub size: u64,
    pub config: ImageConfiguration,
    /// (blob hex, diff id hex) per layer, bottom first.
    pub layer_ids: Vec<(String, String)>,
    layer_trees: Vec<PathBuf>,
    layer_links: Vec<PathBuf>,
}

impl Image {
    /// Lower directories for the overlay (their short names), top layer first. A layer
    /// that appears twice (overlayfs refuses a lower dir twice) is kept where it is
    /// topmost: the copy above shadows all the one below could show, so the merged tree
    /// is the same.
    pub fn layers(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for link in self.layer_links.iter().rev() {
            if !out.contains(link) {
                out.push(link.clone());
            }
        }
        out
    }

    /// The unpacked layer trees (full paths), top layer first.
    pub fn layer_trees(&self) -> Vec<PathBuf> {
        self.layer_trees.iter().rev().cloned().collect()
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

pub struct ImageStore<'a> {
    pub store: &'a Store,
    pub layout: Layout,
}

/// The name an index entry carries, if any.
pub fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(|s| s.as_str())
}

impl<'a> ImageStore<'a> {
    pub fn new(store: &'a Store) -> Self {
        ImageStore { store, layout: Layout::new(store) }
    }

    /// Reads an image from its manifest digest (checking every digest on the way).
    pub fn load(&self, manifest_hex: &str) -> Result<Image> {
        let index = self.layout.read_index()?;
        self.load_from(&index_names(&index), manifest_hex)
    }

    fn load_from(&self, names: &HashMap<String, Vec<String>>, manifest_hex: &str) -> Result<Image> {
        let raw = self.layout.read_blob(manifest_hex)?;
        let manifest = parse_manifest(&raw, manifest_hex)?;
        let config_hex = digest::parse(manifest.config().digest().as_ref())?;
        let config = parse_config(&self.layout.read_blob(&config_hex)?, &config_hex)?;
        let layer_ids = layer_pairs(&manifest, &config, &config_hex)?;
        let layer_trees = layer_ids.iter().map(|(_, d)| layers::tree(&self.layout, d)).collect();
        let layer_links = layer_ids.iter().map(|(_, d)| layers::short(&self.layout, d)).collect();
        let size = layer_ids.iter().map(|(_, d)| layers::size(&self.layout, d)).sum();
        let created = config
            .created()
            .as_deref()
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|c| c.with_timezone(&Utc))
            .or_else(|| {
                let m = std::fs::metadata(self.layout.blob_path(&config_hex)).ok()?.modified().ok()?;
                Some(DateTime::<Utc>::from(m))
            })
            .unwrap_or_default();
        let media_type = match manifest.media_type() {
            Some(m) => m.to_string(),
            None => MediaType::ImageManifest.to_string(),
        };
        Ok(Image {
            id: config_hex,
            manifest_digest: manifest_hex.to_string(),
            manifest_media_type: media_type,
            manifest_size: raw.len() as u64,
            names: names.get(manifest_hex).cloned().unwrap_or_default(),
            created,
            size,
            config,
            layer_ids,
            layer_trees,
            layer_links,
        })
    }

    /// Unpacks any layer of the image that is not (or no longer) unpacked.
    pub fn ensure_layers(&self, image: &Image) -> Result<()> {
        if image.layer_ids.iter().all(|(_, d)| layers::is_ready(&self.layout, d)) {
            return Ok(());
        }
        self.layout.ensure()?;
        let _adding = self.layout.adding()?;
        for (blob, diff) in &image.layer_ids {
            layers::ensure(&self.layout, blob, diff)?;
        }
        Ok(())
    }

    /// Every image, once each, newest first.
    pub fn images(&self) -> Result<Vec<Image>> {
        let index = self.layout.read_index()?;
        let names = index_names(&index);
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for d in index.manifests() {
            let hex = digest::parse(d.digest().as_ref())?;
            if seen.insert(hex.clone()) {
                out.push(self.load_from(&names, &hex)?);
            }
        }
        out.sort_by_key(|i| std::cmp::Reverse(i.created));
        Ok(out)
    }

    /// Finds an image by `name[:tag]`, `name@sha256:...`, full id or unique id prefix.
    pub fn lookup(&self, text: &str) -> Result<Option<Image>> {
        let index = self.layout.read_index()?;
        let names = index_names(&index);
        // Fast path for the common `busybox`, `python:3`, `host:5000/app:v1`: the name is
        // already in its familiar form. Parsing a reference compiles a large regex
        // (~10 MB, tens of ms), which every `run` would pay and every monitor inherit.
        if let Some(key) = plain_familiar(text) {
            if let Some(d) = index.manifests().iter().find(|d| ref_name(d) == Some(key.as_str())) {
                let hex = digest::parse(d.digest().as_ref())?;
                return self.load_from(&names, &hex).map(Some);
            }
        }
        if let Ok(r) = ImageRef::parse(text) {
            let key = r.familiar();
            for d in index.manifests() {
                if ref_name(d) == Some(key.as_str()) {
                    let hex = digest::parse(d.digest().as_ref())?;
                    if r.digest_hex().is_some_and(|want| want != hex) {
                        continue;
                    }
                    return self.load_from(&names, &hex).map(Some);
                }
            }
            if let Some(want) = r.digest_hex() {
                // `name@sha256:...`: the image with that manifest digest, under that name.
                let name = r.familiar_name();
                let hit = index
                    .manifests()
                    .iter()
                    .any(|d| d.digest().digest() == want && ref_name(d).is_some_and(|n| split_familiar(n).0 == name));
                if hit {
                    return self.load_from(&names, want).map(Some);
                }
            }
        }
        let key = text.strip_prefix("sha256:").unwrap_or(text);
        if !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let key = key.to_ascii_lowercase();
            let mut hits: Vec<Image> = Vec::new();
            for img in self.images()? {
                if img.id.starts_with(&key) && !hits.iter().any(|h| h.id == img.id) {
                    hits.push(img);
                }
            }
            match hits.len() {
                0 => {}
                1 => return Ok(hits.pop()),
                _ => {
                    return Err(error::user(format!(
                        "image id prefix {text:?} is ambiguous: {} images match",
                        hits.len()
                    )))
                }
            }
        }
        Ok(None)
    }

    /// Like [`ImageStore::lookup`], with Docker's error when nothing matches; makes sure
    /// the layers are unpacked, so the result is ready to run (never pulls: see
    /// [`super::for_run`] for that).
    pub fn find(&self, text: &str) -> Result<Image> {
        let image = self.lookup(text)?.ok_or_else(|| error::user(format!("Unable to find image '{text}' locally")))?;
        self.ensure_layers(&image)?;
        Ok(image)
    }

    /// Names an image (already in the blobs) in `index.json`. A name that pointed at
    /// another image moves; that image stays as a dangling entry (for `image prune`).
    /// With no names, the image is recorded as dangling.
    pub fn record(&self, manifest: &Descriptor, names: &[String]) -> Result<()> {
        let _lock = self.layout.lock_index()?;
        let mut index = self.layout.read_index()?;
        let hex = manifest.digest().digest().to_string();
        let mut entries: Vec<Descriptor> = Vec::new();
        let mut orphaned: Vec<Descriptor> = Vec::new();
        for d in index.manifests() {
            match ref_name(d) {
                Some(n) if names.iter().any(|want| want == n) => {
                    if d.digest().digest() != hex {
                        orphaned.push(d.clone());
                    }
                }
                None if d.digest().digest() == hex => {} // about to be named (or re-added)
                _ => entries.push(d.clone()),
            }
        }
        for d in orphaned {
            let still_named = entries.iter().any(|e| e.digest() == d.digest());
            if !still_named {
                entries.push(unnamed(&d));
            }
        }
        if names.is_empty() {
            if !entries.iter().any(|e| e.digest().digest() == hex) {
                entries.push(unnamed(manifest));
            }
        } else {
            for n in names {
                let mut d = unnamed(manifest);
                d.set_annotations(Some(HashMap::from([(REF_NAME.to_string(), n.clone())])));
                entries.push(d);
            }
        }
        index.set_manifests(entries);
        self.layout.write_index(&index)
    }

    /// Removes index entries (by name, or the unnamed one of `manifest_hex` when `name` is
    /// None). Returns whether anything still names that manifest.
    pub fn unrecord(&self, manifest_hex: &str, name: Option<&str>, keep_unnamed: bool) -> Result<bool> {
        let _lock = self.layout.lock_index()?;
        let mut index = self.layout.read_index()?;
        let mut entries: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| {
                let same = d.digest().digest() == manifest_hex;
                match name {
                    Some(n) => ref_name(d) != Some(n),
                    None => !same,
                }
            })
            .cloned()
            .collect();
        let remains = entries.iter().any(|d| d.digest().digest() == manifest_hex);
        if !remains && keep_unnamed {
            if let Some(d) = index.manifests().iter().find(|d| d.digest().digest() == manifest_hex) {
                entries.push(unnamed(d));
            }
        }
        index.set_manifests(entries);
        self.layout.write_index(&index)?;
        Ok(remains)
    }

    /// Ids of the images that containers (running or not) were made from.
    pub fn in_use(&self) -> Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        for c in self.store.list().context("listing containers")? {
            out.entry(c.image_id.clone()).or_insert(c.id.clone());
        }
        Ok(out)
    }
}

/// A copy of an index entry without its name.
pub fn unnamed(d: &Descriptor) -> Descriptor {
    let mut d = d.clone();
    d.set_annotations(None);
    d
}

/// `name` -> `name:latest`, `name:tag` as is; None for anything that needs real parsing
/// (digests, upper case, `docker.io/library/...` spellings).
fn plain_familiar(text: &str) -> Option<String> {
    let ok = !text.is_empty()
        && !text.contains('@')
        && !text.starts_with("docker.io/")
        && !text.starts_with("index.docker.io/")
        && !text.starts_with("library/")
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b));
    if !ok {
        return None;
    }
    let last = text.rsplit('/').next().unwrap_or(text);
    Some(if last.contains(':') { text.to_string() } else { format!("{text}:latest") })
}

/// Manifest digest hex -> the names it goes by, in index order.
fn index_names(index: &oci_spec::image::ImageIndex) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for d in index.manifests() {
        let entry = out.entry(d.digest().digest().to_string()).or_default();
        if let Some(n) = ref_name(d) {
            entry.push(n.to_string());
        }
    }
    out
}
