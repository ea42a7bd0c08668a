//! Images: an OCI image layout under `<root>/images` (blobs by sha256, `index.json`),
//! layers unpacked once each by diff id and shared by every image and container, and
//! the commands that fill it (`import`, `load`, `pull`) or empty it (`rmi`, `prune`).
//!
//! Containers only ask for [`Image::layers`] (overlay lower dirs, top first),
//! [`Image::id`] and [`Image::config`] (what `run` takes from the image).

mod archive;
mod archive_path;
mod changes;
mod config;
mod digest;
mod gc;
mod import;
mod ingest;
mod layers;
mod layout;
mod manifest;
mod platform;
mod reference;
mod registry;
mod store;

pub use archive::{load, save, Loaded};
pub use config::{stop_signal, RunConfig};
pub use gc::{prune, remove, Pruned, Removal};
pub use import::import;
pub use reference::split_familiar as split_name;
pub use registry::{pull, LayerProgress, Progress, PullOptions};
pub use store::{Image, ImageStore};

use anyhow::Result;

use crate::error;
use crate::state::Store;

/// When `run` pulls: `missing` (Docker's default), `always`, or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PullPolicy {
    #[default]
    Missing,
    Always,
    Never,
}

/// The image `run` will use: from the store, or pulled first as `docker run` does.
///
/// Any pull happens here, before `run` creates anything, and its async runtime is
/// gone (threads joined) when this returns, so `run` can still clone safely.
pub fn for_run(store: &Store, text: &str, policy: PullPolicy, progress: &dyn Progress) -> Result<Image> {
    let images = ImageStore::new(store);
    if policy != PullPolicy::Always {
        if let Some(image) = images.lookup(text)? {
            images.ensure_layers(&image)?;
            return Ok(image);
        }
        if policy == PullPolicy::Never {
            return Err(error::user(format!("Unable to find image '{text}' locally")));
        }
    }
    let shown = reference::ImageRef::parse(text).map(|r| r.familiar()).unwrap_or_else(|_| text.to_string());
    let opts = PullOptions {
        progress,
        for_run: true,
        insecure: false,
        announce: (policy == PullPolicy::Missing).then(|| format!("Unable to find image '{shown}' locally")),
    };
    let pulled = pull(store, text, &opts).map_err(|e| {
        let why = error_line(&e);
        if policy == PullPolicy::Missing {
            error::user(format!("Unable to find image '{shown}' locally, and pulling it failed: {why}"))
        } else {
            error::user(why)
        }
    })?;
    registry::wait_single_threaded()?;
    Ok(pulled.image)
}

/// An error (with its causes) as one line, for the one line a user gets on stderr.
pub fn error_line(e: &dyn std::fmt::Display) -> String {
    let text = format!("{e:#}");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
