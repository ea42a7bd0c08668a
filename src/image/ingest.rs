//! Adding an image all-or-nothing: blobs and unpacked layers are staged and verified
//! first, and get their final names only when every one of them checked out, so a
//! corrupt blob or a wrong digest leaves the store exactly as it was.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use oci_spec::image::{Descriptor, MediaType};

use super::digest;
use super::layers;
use super::layout::{read_limited, Layout, Staging, MAX_JSON_BLOB};
use super::manifest::{self, layer_pairs, parse_config, parse_manifest};
use crate::error;

/// Blobs and layers waiting to be committed.
pub struct Ingest<'a> {
    pub layout: &'a Layout,
    /// Verified blob files (hex -> path), not yet in `blobs/`.
    blobs: HashMap<String, PathBuf>,
    /// Staging files that the ingest owns (removed if it fails).
    owned: Vec<Staging>,
    layers: Vec<(Staging, String)>,
}

impl<'a> Ingest<'a> {
    pub fn new(layout: &'a Layout) -> Self {
        Ingest { layout, blobs: HashMap::new(), owned: Vec::new(), layers: Vec::new() }
    }

    /// A file whose content the caller verified to have digest `hex`.
    pub fn add_file(&mut self, hex: &str, path: PathBuf) {
        self.blobs.entry(hex.to_string()).or_insert(path);
    }

    /// Like [`Ingest::add_file`], handing over the staging guard too.
    pub fn add_staged(&mut self, hex: &str, staging: Staging) {
        self.add_file(hex, staging.path.clone());
        self.owned.push(staging);
    }

    /// Small content (a manifest or config) that must have digest `hex` (when given).
    pub fn add_bytes(&mut self, data: &[u8], expect: Option<&str>, what: &str) -> Result<String> {
        let hex = digest::sha256_hex(data);
        if let Some(want) = expect {
            if want != hex {
                return Err(digest::mismatch(what, want, &hex));
            }
        }
        if !self.has(&hex) {
            let staging = self.layout.staging("blob")?;
            fs::write(&staging.path, data).with_context(|| format!("writing {}", staging.path.display()))?;
            self.add_staged(&hex, staging);
        }
        Ok(hex)
    }

    /// Whether the blob is staged here or already stored.
    pub fn has(&self, hex: &str) -> bool {
        self.blobs.contains_key(hex) || self.layout.has_blob(hex)
    }

    fn path_of(&self, hex: &str) -> Option<PathBuf> {
        match self.blobs.get(hex) {
            Some(p) => Some(p.clone()),
            None => self.layout.has_blob(hex).then(|| self.layout.blob_path(hex)),
        }
    }

    /// Reads a small blob (staged or stored) and checks its digest.
    pub fn read_json_blob(&self, hex: &str, what: &str) -> Result<Vec<u8>> {
        let path = self.path_of(hex).ok_or_else(|| error::user(format!("{what} sha256:{hex} is missing")))?;
        let file = fs::File::open(&path).with_context(|| format!("opening {what}"))?;
        let data = read_limited(file, MAX_JSON_BLOB, what)?;
        let got = digest::sha256_hex(&data);
        if got != hex {
            return Err(digest::mismatch(what, hex, &got));
        }
        Ok(data)
    }

    /// Stages the config and an OCI manifest over `layers` (committed with the rest);
    /// returns the manifest's descriptor. For images that come without a manifest.
    pub fn add_manifest(&mut self, config_json: &[u8], layers: Vec<Descriptor>) -> Result<Descriptor> {
        let config_hex = self.add_bytes(config_json, None, "image config")?;
        let raw = manifest::build(&config_hex, config_json.len(), layers)?;
        let hex = self.add_bytes(&raw, None, "manifest")?;
        manifest::descriptor(MediaType::ImageManifest, &hex, raw.len() as u64)
    }

    /// Checks a manifest, its config and its layers (all blobs must be here by now),
    /// and unpacks the layers not yet unpacked into staging dirs.
    pub fn image(&mut self, manifest_raw: &[u8], manifest_hex: &str) -> Result<Descriptor> {
        let manifest = parse_manifest(manifest_raw, manifest_hex)?;
        let config_hex = digest::parse(manifest.config().digest().as_ref())?;
        let config_raw = self.read_json_blob(&config_hex, "image config")?;
        let config = parse_config(&config_raw, &config_hex)?;
        for (blob_hex, diff_hex) in layer_pairs(&manifest, &config, &config_hex)? {
            self.unpack(&blob_hex, &diff_hex)?;
        }
        let media = manifest.media_type().clone().unwrap_or(MediaType::ImageManifest);
        manifest::descriptor(media, manifest_hex, manifest_raw.len() as u64)
    }

    /// Stages the unpacked tree of a layer (unless it is unpacked already).
    pub fn unpack(&mut self, blob_hex: &str, diff_hex: &str) -> Result<()> {
        if layers::is_unpacked(self.layout, diff_hex) || self.layers.iter().any(|(_, d)| d == diff_hex) {
            if !self.has(blob_hex) {
                return Err(error::user(format!("layer blob sha256:{blob_hex} is missing")));
            }
            return Ok(());
        }
        let path =
            self.path_of(blob_hex).ok_or_else(|| error::user(format!("layer blob sha256:{blob_hex} is missing")))?;
        let staging = layers::unpack_blob(self.layout, &path, blob_hex, diff_hex)?;
        self.layers.push((staging, diff_hex.to_string()));
        Ok(())
    }

    /// Gives every staged blob and layer its final name.
    pub fn commit(mut self) -> Result<()> {
        for (hex, path) in std::mem::take(&mut self.blobs) {
            let dest = self.layout.blob_path(&hex);
            if !dest.exists() {
                fs::rename(&path, &dest).with_context(|| format!("storing blob sha256:{hex}"))?;
            }
        }
        for (staging, diff) in std::mem::take(&mut self.layers) {
            layers::commit(self.layout, staging, &diff)?;
        }
        Ok(())
    }
}
