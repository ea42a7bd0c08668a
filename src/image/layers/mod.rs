//! Unpacked layers, shared by every image and container that uses them.
//!
//! A layer is unpacked once, into `layers/<diff id>/diff`, the first time an image
//! needs it; containers get the `diff` dirs as overlay lower dirs. Unpacking checks
//! both digests on the way: the blob's (compressed bytes) and the diff id's
//! (uncompressed tar), so a corrupt or substituted layer never becomes a tree.
//! It happens in a staging dir that is renamed into place only when all is well.

mod compression;
mod unpack;

pub use compression::{decompress, Compression};

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::digest::{self, HashingReader};
use super::layout::{Layout, Staging};

/// The tree of an unpacked layer (an overlay lower dir).
pub fn tree(layout: &Layout, diff_hex: &str) -> PathBuf {
    layout.layer_dir(diff_hex).join("diff")
}

/// The short name of a layer's tree, `images/l/<20 hex>` -> `../layers/<diff id>/diff`,
/// as Docker's overlay2 keeps: overlay's mount options must fit in a page, and with
/// full paths an image could have only 30 to 40 layers.
pub fn short(layout: &Layout, diff_hex: &str) -> PathBuf {
    layout.dir.join("l").join(&diff_hex[..20])
}

/// Whether the layer is unpacked and its short name leads to it.
pub fn is_ready(layout: &Layout, diff_hex: &str) -> bool {
    is_unpacked(layout, diff_hex) && short(layout, diff_hex).exists()
}

fn link(layout: &Layout, diff_hex: &str) -> Result<()> {
    let path = short(layout, diff_hex);
    if path.exists() {
        return Ok(());
    }
    let _ = fs::remove_file(&path); // dangling
    let target = Path::new("../layers").join(diff_hex).join("diff");
    match std::os::unix::fs::symlink(&target, &path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("linking {}", path.display())),
    }
}

pub fn is_unpacked(layout: &Layout, diff_hex: &str) -> bool {
    layout.layer_dir(diff_hex).join("size").is_file()
}

/// Bytes of file content in an unpacked layer (0 if unknown).
pub fn size(layout: &Layout, diff_hex: &str) -> u64 {
    fs::read_to_string(layout.layer_dir(diff_hex).join("size")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Makes sure the layer `diff_hex` is unpacked from the stored blob `blob_hex`.
pub fn ensure(layout: &Layout, blob_hex: &str, diff_hex: &str) -> Result<()> {
    if is_unpacked(layout, diff_hex) {
        return link(layout, diff_hex);
    }
    let staging = unpack_blob(layout, &layout.blob_path(blob_hex), blob_hex, diff_hex)?;
    commit(layout, staging, diff_hex)
}

/// Unpacks the blob file at `path` into a staging dir, checking that the file's digest
/// is `blob_hex` and its uncompressed tar's is `diff_hex`.
pub fn unpack_blob(layout: &Layout, path: &Path, blob_hex: &str, diff_hex: &str) -> Result<Staging> {
    let short = &blob_hex[..12];
    let file = File::open(path).with_context(|| format!("opening layer blob sha256:{blob_hex}"))?;
    let mut outer = HashingReader::new(file);
    let (got_diff, staging) = {
        let (_, inner) = compression::decompress(BufReader::with_capacity(256 * 1024, &mut outer))?;
        unpack_staged(layout, inner, &format!("layer {short}"))?
    };
    let (got_blob, _) = outer.finish().with_context(|| format!("reading layer blob sha256:{blob_hex}"))?;
    if got_blob != blob_hex {
        return Err(digest::mismatch(&format!("layer blob {short}"), blob_hex, &got_blob));
    }
    if got_diff != diff_hex {
        return Err(digest::mismatch(
            &format!("layer {short} (its uncompressed content vs. the diff id in the image config)"),
            diff_hex,
            &got_diff,
        ));
    }
    Ok(staging)
}

/// Unpacks an uncompressed tar stream into a staging dir; returns its diff id and the
/// staging dir (to [`commit`] once the caller is content).
pub fn unpack_staged(layout: &Layout, tar: impl Read, what: &str) -> Result<(String, Staging)> {
    let staging = layout.staging("layer")?;
    let tree = staging.path.join("diff");
    fs::create_dir_all(&tree).with_context(|| format!("creating {}", tree.display()))?;
    let mut hashed = HashingReader::new(tar);
    let size = unpack::unpack(&mut hashed, &tree).with_context(|| format!("unpacking {what}"))?;
    let (diff_hex, _) = hashed.finish().with_context(|| format!("reading {what}"))?;
    fs::write(staging.path.join("size"), size.to_string()).context("recording the layer size")?;
    Ok((diff_hex, staging))
}

/// Gives a verified staging dir its final name (another process may have won the race:
/// then theirs stays and ours goes).
pub fn commit(layout: &Layout, mut staging: Staging, diff_hex: &str) -> Result<()> {
    let dest = layout.layer_dir(diff_hex);
    if is_unpacked(layout, diff_hex) {
        return link(layout, diff_hex);
    }
    if dest.exists() {
        // A leftover without its size marker (a crash mid-rename cannot make one, but a
        // hand-edited store can): replace it.
        crate::state::remove_tree(&dest)?;
    }
    match fs::rename(&staging.path, &dest) {
        Ok(()) => staging.keep = true,
        Err(_) if is_unpacked(layout, diff_hex) => {}
        Err(e) => return Err(e).with_context(|| format!("storing layer {}", &diff_hex[..12])),
    }
    link(layout, diff_hex)
}
