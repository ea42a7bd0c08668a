//! The image store: `images/<id>/rootfs` trees, `images/<id>/image.json`, and
//! `images/repositories.json` mapping `name:tag` to image ids.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error;
use crate::state::{remove_tree, FileLock, Store};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub repository: String,
    pub tag: String,
    pub created: DateTime<Utc>,
    pub size: u64,
    /// sha256 of the uncompressed layer tar.
    pub diff_id: String,
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Image {
    /// Lower directories for the overlay, top layer first.
    pub fn layers(&self) -> Vec<PathBuf> {
        vec![self.dir.join("rootfs")]
    }
}

pub struct ImageStore<'a> {
    store: &'a Store,
}

/// Splits `name[:tag]` (a registry port `host:5000/name` is not a tag).
pub fn parse_reference(reference: &str) -> Result<(String, String)> {
    let (name, tag) = match reference.rfind(':') {
        Some(i) if !reference[i + 1..].contains('/') => (&reference[..i], &reference[i + 1..]),
        _ => (reference, "latest"),
    };
    let name_ok = !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && part.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        });
    let tag_ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !tag.starts_with(['.', '-']);
    if !name_ok || !tag_ok {
        return Err(error::user(format!("invalid reference format: {reference:?}")));
    }
    Ok((name.to_string(), tag.to_string()))
}

impl<'a> ImageStore<'a> {
    pub fn new(store: &'a Store) -> Self {
        ImageStore { store }
    }

    fn dir(&self) -> PathBuf {
        self.store.root.join("images")
    }

    fn repositories(&self) -> Result<BTreeMap<String, String>> {
        let path = self.dir().join("repositories.json");
        match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).with_context(|| format!("parsing {}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn save_repositories(&self, repos: &BTreeMap<String, String>) -> Result<()> {
        let tmp = self.dir().join("repositories.json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(repos)?)?;
        fs::rename(&tmp, self.dir().join("repositories.json")).context("saving repositories.json")
    }

    fn load_image(&self, id: &str) -> Result<Image> {
        let dir = self.dir().join(id);
        let data = fs::read(dir.join("image.json")).with_context(|| format!("reading image {id}"))?;
        let mut img: Image = serde_json::from_slice(&data)?;
        img.dir = dir;
        Ok(img)
    }

    /// Every `name:tag` with its image, sorted newest first.
    pub fn list(&self) -> Result<Vec<(String, Image)>> {
        let mut out = Vec::new();
        for (reference, id) in self.repositories()? {
            if let Ok(img) = self.load_image(&id) {
                out.push((reference, img));
            }
        }
        out.sort_by(|a, b| b.1.created.cmp(&a.1.created));
        Ok(out)
    }

    /// Finds an image by `name[:tag]`, full id or unique id prefix.
    pub fn find(&self, reference: &str) -> Result<Image> {
        let repos = self.repositories()?;
        if let Ok((name, tag)) = parse_reference(reference) {
            if let Some(id) = repos.get(&format!("{name}:{tag}")) {
                return self.load_image(id);
            }
        }
        let key = reference.trim_start_matches("sha256:");
        if key.len() >= 4 && key.chars().all(|c| c.is_ascii_hexdigit()) {
            let hits: Vec<&String> = repos.values().filter(|id| id.starts_with(key)).collect();
            if let Some(first) = hits.first() {
                if hits.iter().all(|h| h == first) {
                    return self.load_image(first);
                }
            }
        }
        Err(error::user(format!("Unable to find image '{reference}' locally")))
    }

    fn register(&self, reference: &str, id: &str) -> Result<()> {
        let _lock = FileLock::exclusive(&self.dir().join("lock"))?;
        let mut repos = self.repositories()?;
        repos.insert(reference.to_string(), id.to_string());
        self.save_repositories(&repos)
    }
}

/// `dockling import DIR|TARBALL NAME[:TAG]`, like `docker import`: one layer, no config.
pub fn import(store: &Store, source: &Path, reference: &str) -> Result<Image> {
    let (name, tag) = parse_reference(reference)?;
    let images = ImageStore::new(store);
    let meta = fs::metadata(source).map_err(|e| error::user(format!("cannot import {}: {e}", source.display())))?;
    let staging = images.dir().join(format!("tmp-{}", crate::state::new_id()?));
    let rootfs = staging.join("rootfs");
    fs::create_dir_all(&rootfs)?;
    let result = (|| -> Result<(String, u64)> {
        if meta.is_dir() {
            // Pack the tree into a tar (what a layer is), hashing it, then unpack it.
            let blob = staging.join("layer.tar");
            let mut hasher = HashingWriter { inner: File::create(&blob)?, hash: Sha256::new() };
            {
                let mut builder = tar::Builder::new(&mut hasher);
                builder.follow_symlinks(false);
                builder.mode(tar::HeaderMode::Complete);
                builder.append_dir_all(".", source).with_context(|| format!("packing {}", source.display()))?;
                builder.finish()?;
            }
            let diff_id = format!("{:x}", hasher.hash.finalize());
            let size = unpack(File::open(&blob)?, &rootfs)?;
            fs::remove_file(&blob)?;
            Ok((diff_id, size))
        } else {
            let mut file = BufReader::new(File::open(source)?);
            let mut magic = [0u8; 2];
            file.read_exact(&mut magic).context("reading tarball")?;
            let file = io::Cursor::new(magic).chain(file);
            let (size, diff_id) = if magic == [0x1f, 0x8b] {
                let mut r = HashingReader { inner: flate2::read::GzDecoder::new(file), hash: Sha256::new() };
                let size = unpack(&mut r, &rootfs)?;
                io::copy(&mut r, &mut io::sink())?;
                (size, format!("{:x}", r.hash.finalize()))
            } else {
                let mut r = HashingReader { inner: file, hash: Sha256::new() };
                let size = unpack(&mut r, &rootfs)?;
                io::copy(&mut r, &mut io::sink())?;
                (size, format!("{:x}", r.hash.finalize()))
            };
            Ok((diff_id, size))
        }
    })();
    let (diff_id, size) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = remove_tree(&staging);
            return Err(e);
        }
    };
    let created = Utc::now();
    let config = serde_json::json!({ "diff_id": diff_id, "created": created, "name": name, "tag": tag });
    let id = format!("{:x}", Sha256::digest(serde_json::to_vec(&config)?));
    let image = Image { id: id.clone(), repository: name.clone(), tag: tag.clone(), created, size, diff_id, dir: images.dir().join(&id) };
    fs::write(staging.join("image.json"), serde_json::to_vec_pretty(&image)?)?;
    fs::rename(&staging, &image.dir).context("storing image")?;
    images.register(&format!("{name}:{tag}"), &id)?;
    println!("sha256:{id}");
    Ok(image)
}

/// Unpacks a tar stream safely (no `..`, no escaping links); returns the bytes written.
fn unpack(reader: impl Read, dest: &Path) -> Result<u64> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let mut size = 0;
    for entry in archive.entries().context("reading tar")? {
        let mut entry = entry.context("reading tar entry")?;
        let path = entry.path()?.into_owned();
        if path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            bail!("refusing tar entry with '..': {}", path.display());
        }
        size += entry.header().size().unwrap_or(0);
        entry.unpack_in(dest).with_context(|| format!("unpacking {}", path.display()))?;
    }
    Ok(size)
}

struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}
