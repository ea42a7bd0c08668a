//! An image's manifest and config: parsing and checking them (every image read from the
//! store or added to it goes through here), and writing a manifest for images dockling
//! assembles itself (`import`, and `load` of a legacy `docker save` tarball, which has
//! a config and layers but no manifest).

use std::str::FromStr;

use anyhow::{Context, Result};
use oci_spec::image::{Descriptor, Digest, ImageConfiguration, ImageManifest, ImageManifestBuilder, MediaType};

use super::digest;
use super::layout::Layout;
use crate::error;

/// A blob descriptor.
pub fn descriptor(media_type: MediaType, hex: &str, size: u64) -> Result<Descriptor> {
    let digest = Digest::from_str(&format!("sha256:{hex}")).context("building a digest")?;
    Ok(Descriptor::new(media_type, size, digest))
}

/// Stores the config and an OCI manifest over `layers`; returns the manifest's
/// descriptor (for `index.json`).
pub fn write(layout: &Layout, config_json: &[u8], layers: Vec<Descriptor>) -> Result<Descriptor> {
    let config_hex = layout.put_blob(config_json)?;
    let raw = build(&config_hex, config_json.len(), layers)?;
    let hex = layout.put_blob(&raw)?;
    descriptor(MediaType::ImageManifest, &hex, raw.len() as u64)
}

/// The JSON of an OCI manifest over a config blob and `layers` (see [`write`], and
/// `Ingest::add_manifest` for the staged kind).
pub fn build(config_hex: &str, config_size: usize, layers: Vec<Descriptor>) -> Result<Vec<u8>> {
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, config_hex, config_size as u64)?)
        .layers(layers)
        .build()
        .context("building the image manifest")?;
    serde_json::to_vec(&manifest).context("serialising the manifest")
}

/// A manifest blob's JSON as an image manifest (an index or garbage is a user error).
pub fn parse_manifest(raw: &[u8], hex: &str) -> Result<ImageManifest> {
    ImageManifest::from_reader(raw)
        .map_err(|e| error::user(format!("manifest sha256:{hex} is not an image manifest: {}", super::error_line(&e))))
}

/// (blob hex, diff id hex) of each layer, bottom first; the manifest and the config
/// must agree on how many there are.
pub fn layer_pairs(
    manifest: &ImageManifest,
    config: &ImageConfiguration,
    config_hex: &str,
) -> Result<Vec<(String, String)>> {
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(error::user(format!(
            "image sha256:{config_hex}: its manifest has {} layers but its config {} diff ids",
            manifest.layers().len(),
            diff_ids.len()
        )));
    }
    manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff)| Ok((digest::parse(layer.digest().as_ref())?, digest::parse(diff)?)))
        .collect()
}

/// A config blob's JSON as an image config.
pub fn parse_config(raw: &[u8], hex: &str) -> Result<ImageConfiguration> {
    ImageConfiguration::from_reader(raw)
        .map_err(|e| error::user(format!("image config sha256:{hex} is invalid: {}", super::error_line(&e))))
}

/// Docker's and OCI's name for this machine's CPU architecture.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}
