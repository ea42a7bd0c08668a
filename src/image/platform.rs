//! Choosing from a manifest list (multi-platform index): linux on this machine's
//! architecture, as `docker pull` does.

use anyhow::Result;
use oci_spec::image::{Arch, Descriptor, ImageIndex, MediaType, Os};

use crate::error;

/// Whether a descriptor points at an index rather than an image manifest.
pub fn is_index(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex)
        || media_type.to_string() == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// Whether raw manifest JSON is an index (by its mediaType, or by having `manifests`).
pub fn raw_is_index(raw: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(raw) {
        Ok(p) => match p.media_type {
            Some(m) => is_index(&MediaType::from(m.as_str())),
            None => p.manifests.is_some(),
        },
        Err(_) => false,
    }
}

/// The entry for linux on this architecture (arm64 prefers variant v8, as Docker does).
pub fn pick(index: &ImageIndex) -> Result<Descriptor> {
    let want_arch = Arch::default();
    let mut best: Option<&Descriptor> = None;
    for d in index.manifests() {
        let Some(p) = d.platform() else { continue };
        if *p.os() == Os::Linux && *p.architecture() == want_arch {
            let preferred = p.variant().as_deref().is_none_or(|v| v == "v8");
            if best.is_none() || preferred {
                best = Some(d);
                if preferred {
                    break;
                }
            }
        }
    }
    if let Some(d) = best {
        return Ok(d.clone());
    }
    // An index without platforms (as some archives have) with one image: that one.
    let plain: Vec<&Descriptor> = index.manifests().iter().filter(|d| d.platform().is_none()).collect();
    if plain.len() == 1 && index.manifests().len() == 1 {
        return Ok(plain[0].clone());
    }
    let available: Vec<String> = index
        .manifests()
        .iter()
        .filter_map(|d| d.platform().as_ref().map(|p| format!("{}/{}", p.os(), p.architecture())))
        .collect();
    Err(error::user(format!(
        "no matching manifest for linux/{} in the manifest list entries (available: {})",
        super::manifest::arch(),
        if available.is_empty() { "none".to_string() } else { available.join(", ") }
    )))
}
