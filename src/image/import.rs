//! `dockling import DIR|TARBALL [NAME[:TAG]]`, like `docker import`: one layer, and a
//! config with only what `--change` sets.
//!
//! The layer tar streams once: from the tree (packed on a second thread) or the file,
//! through a tee into the blob and through the unpacker into the layer's tree, so the
//! 50 MB python tree costs one read and two writes, and no temp tar.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{SecondsFormat, Utc};
use oci_spec::image::{Config, MediaType};

use super::digest::HashingWriter;
use super::layers::{self, Compression};
use super::reference::ImageRef;
use super::store::{Image, ImageStore};
use super::{changes, manifest};
use crate::error;
use crate::state::Store;

/// Returns the new image (the command line shows its id).
pub fn import(store: &Store, source: &Path, reference: Option<&str>, change: &[String]) -> Result<Image> {
    let name = reference.map(ImageRef::parse).transpose()?;
    if name.as_ref().is_some_and(|n| n.digest_hex().is_some()) {
        return Err(error::user("refusing to create a reference with a digest: name the import NAME[:TAG]"));
    }
    let mut config = Config::default();
    changes::apply(&mut config, change)?;
    let meta = fs::metadata(source).map_err(|e| error::user(format!("cannot import {}: {e}", source.display())))?;

    let images = ImageStore::new(store);
    let layout = &images.layout;
    layout.ensure()?;
    let _adding = layout.adding()?;
    let blob = layout.staging("import")?;
    let sink = HashingWriter::new(io::BufWriter::with_capacity(
        1 << 20,
        File::create(&blob.path).context("creating the layer blob")?,
    ));
    let mut tee = Tee { inner: None::<Box<dyn Read>>, out: sink };

    let (diff_hex, layer, compression) = if meta.is_dir() {
        let (reader, writer) = io::pipe().context("creating a pipe")?;
        std::thread::scope(|s| -> Result<_> {
            let packer = s.spawn(move || pack(source, writer));
            tee.inner = Some(Box::new(reader));
            let unpacked = layers::unpack_staged(layout, &mut tee, &format!("{}", source.display()));
            tee.inner = None; // closes the pipe, so a packer still writing stops
            let packed = packer.join().map_err(|_| anyhow::anyhow!("the tar packer thread panicked"))?;
            packed.with_context(|| format!("packing {}", source.display()))?;
            let (diff, staging) = unpacked?;
            Ok((diff, staging, Compression::None))
        })?
    } else {
        let file = File::open(source).map_err(|e| error::user(format!("cannot import {}: {e}", source.display())))?;
        tee.inner = Some(Box::new(file));
        let (compression, inner) = layers::decompress(BufReader::with_capacity(256 * 1024, &mut tee))?;
        let (diff, staging) = layers::unpack_staged(layout, inner, &format!("{}", source.display()))?;
        io::copy(&mut tee, &mut io::sink()).context("reading the tarball")?;
        (diff, staging, compression)
    };
    let (mut file, blob_hex, blob_size) = tee.out.finish();
    file.flush().context("writing the layer blob")?;
    drop(file);
    layers::commit(layout, layer, &diff_hex)?;
    layout.commit_blob(blob, &blob_hex)?;

    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    let config_json = serde_json::to_vec(&serde_json::json!({
        "architecture": manifest::arch(),
        "os": "linux",
        "created": now,
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{diff_hex}")] },
        "history": [{ "created": now, "created_by": "dockling import", "comment": format!("Imported from {}", source.display()) }],
    }))
    .context("serialising the image config")?;
    let media = MediaType::from(compression.media_type());
    let desc = manifest::write(layout, &config_json, vec![manifest::descriptor(media, &blob_hex, blob_size)?])?;
    let names: Vec<String> = name.iter().map(|n| n.familiar()).collect();
    images.record(&desc, &names)?;
    images.load(desc.digest().digest())
}

/// Packs a tree as a layer tar: numeric owners, modes, mtimes, symlinks as symlinks.
fn pack(source: &Path, out: impl Write) -> Result<()> {
    let mut builder = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, out));
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    builder.append_dir_all(".", source)?;
    builder.into_inner()?.flush()?;
    Ok(())
}

/// Copies everything read through it into `out` (the blob), hashing it on the way.
struct Tee<R, W: Write> {
    inner: Option<R>,
    out: HashingWriter<W>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else { return Ok(0) };
        let n = inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}
