//! Downloading one blob, resumably: bytes go to `tmp/<hex>.partial`, which an
//! interrupted pull leaves behind and the next one continues with an HTTP range
//! request; network errors retry from where they stopped. The file counts only once
//! its sha256 matches; a mismatch deletes it and fails the pull.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use oci_client::client::{BlobResponse, LayerDescriptor, SizedStream};
use oci_client::Client;

use super::progress::LayerProgress;
use crate::error;
use crate::image::digest::{self, Hasher};
use crate::image::layout::{Layout, Staging};
use crate::image::reference::ImageRef;

/// How often a broken transfer is resumed before the pull gives up.
const RETRIES: u32 = 3;

pub struct Blob {
    pub hex: String,
    pub size: u64,
    pub urls: Option<Vec<String>>,
}

/// Fetches `blob` into a verified staging file (None if it reached the store meanwhile).
pub async fn fetch(
    client: &Client,
    reference: &ImageRef,
    layout: &Layout,
    blob: &Blob,
    bar: &dyn LayerProgress,
) -> Result<Option<Staging>> {
    let partial = layout.tmp_dir().join(format!("{}.partial", blob.hex));
    let mut file = open_locked(&partial).await?;
    if layout.has_blob(&blob.hex) {
        return Ok(None);
    }
    let short = &blob.hex[..12];
    let mut resumed = false;
    let mut attempt = 0;
    loop {
        let mut offset = file.metadata().context("inspecting the partial download")?.len();
        if offset > blob.size {
            file.set_len(0).context("truncating the partial download")?;
            offset = 0;
        }
        resumed |= offset > 0;
        if offset < blob.size {
            bar.state(if offset > 0 { "Resuming" } else { "Downloading" });
            bar.set_position(offset);
            let result = transfer(client, reference, blob, &mut file, offset, bar).await;
            let now = file.metadata().map(|m| m.len()).unwrap_or(0);
            if let Err(e) = result {
                if now < blob.size && attempt < RETRIES {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                    continue;
                }
                if now < blob.size {
                    return Err(e.context(format!(
                        "downloading layer {short} (kept {now} of {} bytes for the next pull)",
                        blob.size
                    )));
                }
            }
        }
        bar.state("Verifying");
        let got = hash_file(&mut file)?;
        if got == blob.hex {
            break;
        }
        file.set_len(0).context("truncating the partial download")?;
        if resumed {
            // Maybe the part kept from before was bad: one clean try from the start.
            resumed = false;
            attempt = RETRIES;
            continue;
        }
        let _ = fs::remove_file(&partial);
        return Err(digest::mismatch(&format!("layer {short} from the registry"), &blob.hex, &got));
    }
    // Verified: move it to a name this pull owns, so the lock can go.
    let staging = layout.staging("blob")?;
    fs::rename(&partial, &staging.path).context("staging the downloaded layer")?;
    bar.note("Download complete");
    Ok(Some(staging))
}

/// One request: the rest of the blob from `offset` (or all of it, if the registry
/// ignores ranges), appended to `file`.
async fn transfer(
    client: &Client,
    reference: &ImageRef,
    blob: &Blob,
    file: &mut File,
    offset: u64,
    bar: &dyn LayerProgress,
) -> Result<()> {
    let digest = format!("sha256:{}", blob.hex);
    let desc = LayerDescriptor { digest: &digest, urls: &blob.urls };
    let (mut stream, mut pos): (SizedStream, u64) = if offset == 0 {
        (client.pull_blob_stream(reference.oci(), &desc).await?, 0)
    } else {
        match client.pull_blob_stream_partial(reference.oci(), &desc, offset, None).await? {
            BlobResponse::Partial(s) => (s, offset),
            BlobResponse::Full(s) => (s, 0),
        }
    };
    file.set_len(pos).context("preparing the partial download")?;
    file.seek(SeekFrom::Start(pos)).context("preparing the partial download")?;
    bar.set_position(pos);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        pos += chunk.len() as u64;
        if pos > blob.size {
            return Err(error::user(format!(
                "layer {}: the registry sent more than the {} bytes the manifest promised",
                &blob.hex[..12],
                blob.size
            )));
        }
        file.write_all(&chunk).context("writing the download")?;
        bar.inc(chunk.len() as u64);
    }
    file.flush().context("writing the download")?;
    Ok(())
}

fn hash_file(file: &mut File) -> Result<String> {
    file.seek(SeekFrom::Start(0)).context("reading the download")?;
    let mut h = Hasher::default();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the download"),
        };
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

/// Opens (creating) the partial file under an exclusive flock, so two pulls into the
/// same root never write one file; re-opens if another pull renamed it meanwhile.
async fn open_locked(path: &Path) -> Result<File> {
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        // Not a blocking flock: this runs on the download's async task.
        let Ok(locked) = crate::sys::lock::FileLock::try_exclusive(file) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        // The lock lives as long as the file is open.
        let file = locked.into_file();
        let same = match (file.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if same {
            return Ok(file);
        }
    }
}
