//! The OCI image layout under `<root>/images`: `oci-layout`, `index.json` and
//! `blobs/sha256/<hex>`, plus dockling's own `layers/<diff id>/` (unpacked trees),
//! `l/` (their short names, for overlay's mount options) and `tmp/` (staging, so
//! nothing half-written ever has a final name).
//!
//! Blobs are immutable and content-addressed; they only appear by `rename` after their
//! digest was checked. `index.json` is the one mutable file: it is changed under
//! `index.lock` and replaced atomically. Commands that add content hold `gc.lock`
//! shared, and garbage collection holds it exclusively, so a collection never deletes
//! a blob that a concurrent pull wrote but has not yet named in the index.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oci_spec::image::ImageIndex;

use super::digest;
use crate::state::{remove_tree, Store};
use crate::sys::lock::{FileLock, Mode};

/// Annotation naming an image in `index.json` (the familiar `name:tag`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Largest manifest or config accepted (Docker's limit is 4 MiB too); see [`read_limited`].
pub const MAX_JSON_BLOB: u64 = 4 << 20;

pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(store: &Store) -> Layout {
        Layout { dir: store.root.join("images") }
    }

    pub fn blob_path(&self, hex: &str) -> PathBuf {
        self.dir.join("blobs/sha256").join(hex)
    }

    pub fn has_blob(&self, hex: &str) -> bool {
        self.blob_path(hex).is_file()
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.dir.join("layers")
    }

    /// The unpacked layer with this diff id: `diff/` is the tree, `size` its byte count.
    pub fn layer_dir(&self, diff_hex: &str) -> PathBuf {
        self.layers_dir().join(diff_hex)
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Creates the layout's directories (only commands that add content call this, so a
    /// failed `run` of an unknown image creates nothing).
    pub fn ensure(&self) -> Result<()> {
        for d in [self.dir.join("blobs/sha256"), self.layers_dir(), self.dir.join("l"), self.tmp_dir()] {
            fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        let marker = self.dir.join("oci-layout");
        if !marker.exists() {
            write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(())
    }

    /// A fresh staging path under `tmp/`, removed when dropped unless kept.
    pub fn staging(&self, what: &str) -> Result<Staging> {
        let id = crate::state::new_id()?;
        Ok(Staging { path: self.tmp_dir().join(format!("{what}-{}", &id[..16])), keep: false })
    }

    /// Reads a (small) blob and checks its digest.
    pub fn read_blob(&self, hex: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(hex);
        let data = fs::read(&path).with_context(|| format!("reading blob sha256:{hex}"))?;
        let got = digest::sha256_hex(&data);
        if got != hex {
            return Err(digest::mismatch(&format!("blob {}", path.display()), hex, &got));
        }
        Ok(data)
    }

    /// Stores bytes as a blob; returns its hex digest.
    pub fn put_blob(&self, data: &[u8]) -> Result<String> {
        let hex = digest::sha256_hex(data);
        if !self.has_blob(&hex) {
            let tmp = self.staging("blob")?;
            fs::write(&tmp.path, data).with_context(|| format!("writing {}", tmp.path.display()))?;
            self.commit_blob(tmp, &hex)?;
        }
        Ok(hex)
    }

    /// Moves a staged file whose digest the caller has checked into `blobs/`.
    pub fn commit_blob(&self, mut tmp: Staging, hex: &str) -> Result<()> {
        let dest = self.blob_path(hex);
        if dest.is_file() {
            return Ok(()); // same content already there; the staging file goes on drop
        }
        fs::rename(&tmp.path, &dest).with_context(|| format!("storing blob sha256:{hex}"))?;
        tmp.keep = true;
        Ok(())
    }

    /// `index.json`, or an empty index before the first image.
    pub fn read_index(&self) -> Result<ImageIndex> {
        let path = self.dir.join("index.json");
        match File::open(&path) {
            Ok(f) => {
                ImageIndex::from_reader(io::BufReader::new(f)).with_context(|| format!("parsing {}", path.display()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ImageIndex::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Replaces `index.json` atomically (call with [`Layout::lock_index`] held).
    pub fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let data = serde_json::to_vec_pretty(index).context("serialising index.json")?;
        write_atomic(&self.dir.join("index.json"), &data)
    }

    /// Serialises changes to `index.json`.
    pub fn lock_index(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.dir.join("index.lock"))
    }

    /// Held by commands that add blobs, so garbage collection waits for them.
    pub fn adding(&self) -> Result<FileLock> {
        FileLock::on_file(&self.dir.join("gc.lock"), Mode::Shared)
    }

    /// Held by garbage collection: no pull, load or import is half-way through.
    pub fn collecting(&self) -> Result<FileLock> {
        FileLock::on_file(&self.dir.join("gc.lock"), Mode::Exclusive)
    }
}

/// A path under `tmp/` that is removed on drop (success paths `keep` it by renaming).
pub struct Staging {
    pub path: PathBuf,
    pub keep: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            match fs::symlink_metadata(&self.path) {
                Ok(m) if m.is_dir() => {
                    let _ = remove_tree(&self.path);
                }
                Ok(_) => {
                    let _ = fs::remove_file(&self.path);
                }
                Err(_) => {}
            }
        }
    }
}

/// Writes a file through a temp name and a rename, so readers see old or new, never half.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Reads at most `limit` bytes (manifests and configs are small; a huge one is hostile).
pub fn read_limited(mut r: impl Read, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    (&mut r).take(limit + 1).read_to_end(&mut data).with_context(|| format!("reading {what}"))?;
    if data.len() as u64 > limit {
        return Err(crate::error::user(format!("{what} is larger than {limit} bytes")));
    }
    Ok(data)
}
