//! `dockling pull`: the OCI distribution API through oci-client — Docker Hub names,
//! other registries, tags and digests, bearer-token auth, manifest lists (linux on this
//! architecture), gzip and zstd layers, parallel resumable downloads, a progress bar
//! per layer, and every digest checked.
//!
//! The network part runs on a current-thread tokio runtime that is dropped (its
//! threads joined) before unpacking starts, so `run` can pull and still clone safely.

mod client;
mod download;
mod progress;

use anyhow::{Context, Result};
use futures::StreamExt;
use oci_spec::image::ImageIndex;

use super::digest;
use super::ingest::Ingest;
use super::layout::{read_limited, MAX_JSON_BLOB};
use super::manifest::{layer_pairs, parse_config, parse_manifest};
use super::platform;
use super::reference::ImageRef;
use super::store::{Image, ImageStore};
use crate::error;
use crate::state::Store;
use download::Blob;
pub use progress::{LayerProgress, Progress};

/// Layers downloaded at once.
const PARALLEL: usize = 3;

const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

pub struct PullOptions<'a> {
    /// Where status lines and bars go.
    pub progress: &'a dyn Progress,
    /// `run` pulls (it says "pulling it failed" itself).
    pub for_run: bool,
    /// Plain HTTP for this registry.
    pub insecure: bool,
    /// A line to print once the image is known to exist (run's "Unable to find image").
    pub announce: Option<String>,
}

/// What the network part brought: manifests and config in memory, layers staged.
struct Fetched {
    /// The digest the reference resolved to (a manifest list's, for multi-arch images).
    top_hex: String,
    manifest_raw: Vec<u8>,
    manifest_hex: String,
    config_raw: Vec<u8>,
    config_hex: String,
    layers: Vec<(download::Blob, Option<super::layout::Staging>)>,
    /// (blob hex, its bar).
    bars: Vec<(String, Box<dyn LayerProgress>)>,
    /// Held from the first blob written until the image is named.
    _adding: crate::sys::lock::FileLock,
}

/// What a pull brought.
pub struct Pulled {
    pub image: Image,
    /// The reference in full (`docker.io/library/busybox:latest`), which `pull` prints last.
    pub reference: String,
}

/// Pulls `text` into the store. Status lines and progress bars go through [`Progress`]
/// as the pull goes; the final reference is the caller's to show.
pub fn pull(store: &Store, text: &str, opts: &PullOptions<'_>) -> Result<Pulled> {
    let reference = ImageRef::parse(text)?;
    let images = ImageStore::new(store);
    let progress = opts.progress;
    let fetched = {
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
        let result = rt.block_on(fetch(&images, &reference, opts, progress));
        drop(rt); // joins the runtime's threads (DNS lookups run on its blocking pool)
        result
    };
    let fetched = fetched.map_err(|e| match e.downcast_ref::<error::Exit>() {
        Some(_) => e,
        // `run` says "pulling it failed" itself.
        None if opts.for_run => error::user(super::error_line(&e)),
        None => error::user(format!("pulling {}: {}", reference.familiar(), super::error_line(&e))),
    })?;
    let image = install(&images, &reference, fetched, progress)?;
    Ok(Pulled { image, reference: reference.full() })
}

async fn fetch(
    images: &ImageStore<'_>,
    reference: &ImageRef,
    opts: &PullOptions<'_>,
    progress: &dyn Progress,
) -> Result<Fetched> {
    let client = client::build(reference, opts.insecure);
    let auth = client::auth(reference);
    let (raw, _) = client.pull_manifest_raw(reference.oci(), &auth, ACCEPT).await?;
    let raw = raw.to_vec();
    let top_hex = digest::sha256_hex(&raw);
    if let Some(want) = reference.digest_hex() {
        if want != top_hex {
            return Err(digest::mismatch(&format!("manifest of {}", reference.familiar()), want, &top_hex));
        }
    }
    let (manifest_raw, manifest_hex) = if platform::raw_is_index(&raw) {
        let index = ImageIndex::from_reader(&raw[..]).map_err(|e| {
            error::user(format!("manifest list of {}: {}", reference.familiar(), super::error_line(&e)))
        })?;
        let entry = platform::pick(&index)?;
        let hex = digest::parse(entry.digest().as_ref())?;
        let child = reference.with_digest(&hex);
        let (raw, _) = client.pull_manifest_raw(child.oci(), &auth, ACCEPT).await?;
        let got = digest::sha256_hex(&raw);
        if got != hex {
            return Err(digest::mismatch(&format!("manifest of {}", reference.familiar()), &hex, &got));
        }
        (raw.to_vec(), hex)
    } else {
        (raw, top_hex.clone())
    };
    let manifest = parse_manifest(&manifest_raw, &manifest_hex)?;
    if let Some(line) = &opts.announce {
        progress.line(line);
    }
    let what = match (reference.tag(), reference.digest_hex()) {
        (Some(t), _) => t.to_string(),
        (None, Some(d)) => format!("sha256:{d}"),
        _ => "latest".to_string(),
    };
    progress.line(&format!("{what}: Pulling from {}", reference.repository()));

    let config_desc = manifest.config();
    let config_hex = digest::parse(config_desc.digest().as_ref())?;
    let config_raw = if images.layout.has_blob(&config_hex) {
        images.layout.read_blob(&config_hex)?
    } else {
        let mut buf: Vec<u8> = Vec::new();
        let digest_str = format!("sha256:{config_hex}");
        let desc = oci_client::client::LayerDescriptor { digest: &digest_str, urls: &None };
        client.pull_blob(reference.oci(), &desc, &mut buf).await.context("fetching the image config")?;
        read_limited(&buf[..], MAX_JSON_BLOB, "image config")?
    };
    let got = digest::sha256_hex(&config_raw);
    if got != config_hex {
        return Err(digest::mismatch("image config", &config_hex, &got));
    }

    // Content goes in from here on: create the layout, and keep collection away.
    images.layout.ensure()?;
    let adding = images.layout.adding()?;
    let mut blobs = Vec::new();
    for l in manifest.layers() {
        let hex = digest::parse(l.digest().as_ref())?;
        if !blobs.iter().any(|b: &Blob| b.hex == hex) {
            blobs.push(Blob { hex, size: l.size(), urls: l.urls().clone() });
        }
    }
    let bars: Vec<Box<dyn LayerProgress>> = blobs.iter().map(|b| progress.layer(&b.hex[..12], b.size)).collect();
    let mut staged: Vec<Option<super::layout::Staging>> = (0..blobs.len()).map(|_| None).collect();
    {
        let jobs = blobs.iter().zip(&bars).enumerate().map(|(i, (blob, bar))| {
            let client = &client;
            async move {
                if images.layout.has_blob(&blob.hex) {
                    bar.finish("Already exists");
                    return Ok((i, None));
                }
                download::fetch(client, reference, &images.layout, blob, bar.as_ref()).await.map(|s| (i, s))
            }
        });
        let mut running = futures::stream::iter(jobs).buffer_unordered(PARALLEL);
        while let Some(done) = running.next().await {
            let (i, s) = done?;
            staged[i] = s;
        }
    }
    let bars = blobs.iter().map(|b| b.hex.clone()).zip(bars).collect();
    let layers = blobs.into_iter().zip(staged).collect();
    Ok(Fetched { top_hex, manifest_raw, manifest_hex, config_raw, config_hex, layers, bars, _adding: adding })
}

/// Unpacks (verifying diff ids) and commits what [`fetch`] brought, then names it.
fn install(images: &ImageStore, reference: &ImageRef, fetched: Fetched, progress: &dyn Progress) -> Result<Image> {
    let layout = &images.layout;
    let name = reference.familiar();
    let before = images.lookup(&name).ok().flatten().map(|i| i.manifest_digest);
    let mut ingest = Ingest::new(layout);
    ingest.add_bytes(&fetched.manifest_raw, Some(&fetched.manifest_hex), "manifest")?;
    ingest.add_bytes(&fetched.config_raw, Some(&fetched.config_hex), "image config")?;
    let manifest = parse_manifest(&fetched.manifest_raw, &fetched.manifest_hex)?;
    let config = parse_config(&fetched.config_raw, &fetched.config_hex)?;
    let fresh: Vec<String> = fetched.layers.iter().filter(|(_, s)| s.is_some()).map(|(b, _)| b.hex.clone()).collect();
    for (blob, staging) in fetched.layers {
        if let Some(s) = staging {
            ingest.add_staged(&blob.hex, s);
        }
    }
    for (hex, diff_hex) in layer_pairs(&manifest, &config, &fetched.config_hex)? {
        let bar = fetched.bars.iter().find(|(h, _)| *h == hex).map(|(_, b)| b);
        if let Some(b) = bar {
            if fresh.contains(&hex) {
                b.state("Extracting");
            }
        }
        ingest.unpack(&hex, &diff_hex)?;
        if let Some(b) = bar {
            if fresh.contains(&hex) {
                b.finish("Pull complete");
            }
        }
    }
    let desc = ingest.image(&fetched.manifest_raw, &fetched.manifest_hex)?;
    ingest.commit()?;
    images.record(&desc, std::slice::from_ref(&name))?;
    let image = images.load(&fetched.manifest_hex)?;
    progress.line(&format!("Digest: sha256:{}", fetched.top_hex));
    if before.as_deref() == Some(fetched.manifest_hex.as_str()) {
        progress.line(&format!("Status: Image is up to date for {name}"));
    } else {
        progress.line(&format!("Status: Downloaded newer image for {name}"));
    }
    progress.succeeded();
    Ok(image)
}

/// Waits (briefly) until this process has one thread again: `run` is about to clone,
/// which is only safe single-threaded. The runtime joined its threads on drop, so this
/// is a guard against surprises, not a delay.
pub fn wait_single_threaded() -> Result<()> {
    for _ in 0..200 {
        if crate::sys::threads::count()? <= 1 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(anyhow::anyhow!("threads of the pull are still running; refusing to start the container"))
}
