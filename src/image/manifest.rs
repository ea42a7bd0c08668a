//! Writing an OCI image manifest for images dockling assembles itself (`import`, and
//! `load` of a legacy `docker save` tarball, which has a config and layers but no
//! manifest).

use std::str::FromStr;

use anyhow::{Context, Result};
use oci_spec::image::{Descriptor, Digest, ImageManifestBuilder, MediaType};

use super::ingest::Ingest;
use super::layout::Layout;

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

/// Like [`write`], staging the blobs in an ingest (committed with the rest of it).
pub fn write_staged(ingest: &mut Ingest, config_json: &[u8], layers: Vec<Descriptor>) -> Result<Descriptor> {
    let config_hex = ingest.add_bytes(config_json, None, "image config")?;
    let raw = build(&config_hex, config_json.len(), layers)?;
    let hex = ingest.add_bytes(&raw, None, "manifest")?;
    descriptor(MediaType::ImageManifest, &hex, raw.len() as u64)
}

fn build(config_hex: &str, config_size: usize, layers: Vec<Descriptor>) -> Result<Vec<u8>> {
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, config_hex, config_size as u64)?)
        .layers(layers)
        .build()
        .context("building the image manifest")?;
    serde_json::to_vec(&manifest).context("serialising the manifest")
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
