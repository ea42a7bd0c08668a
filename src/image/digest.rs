//! sha256 digests: parsing `sha256:<hex>` and hashing while data streams through.
//!
//! Everything in the store is addressed by sha256, and every byte that enters it is
//! hashed on the way in, so nothing is trusted because of where it came from.

use std::io::{self, Read, Write};

use anyhow::Result;
use sha2::{Digest as _, Sha256};

use crate::error;

/// The hex part of a `sha256:<64 hex>` digest (the only algorithm images use in practice).
pub fn parse(digest: &str) -> Result<String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| error::user(format!("unsupported digest {digest:?} (only sha256 is supported)")))?;
    if !is_hex64(hex) {
        return Err(error::user(format!("invalid digest {digest:?}")));
    }
    Ok(hex.to_string())
}

/// 64 lowercase hex characters.
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn sha256_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// Hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hash: Sha256::new(), count: 0 }
    }

    /// Reads whatever is left (tar streams end before their padding does), then returns
    /// the hex digest and byte count of the whole stream.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((format!("{:x}", self.hash.finalize()), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hash: Sha256::new(), count: 0 }
    }

    pub fn finish(self) -> (W, String, u64) {
        (self.inner, format!("{:x}", self.hash.finalize()), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Incremental hashing for async downloads (the bytes arrive in chunks).
#[derive(Default)]
pub struct Hasher {
    hash: Sha256,
    pub count: u64,
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.hash.update(data);
        self.count += data.len() as u64;
    }

    pub fn finish(self) -> String {
        format!("{:x}", self.hash.finalize())
    }
}

/// A digest that did not match: one line saying what was expected and what came.
pub fn mismatch(what: &str, expected: &str, got: &str) -> anyhow::Error {
    error::user(format!(
        "{what}: digest mismatch: expected sha256:{expected}, got sha256:{got} (refusing corrupt or tampered content)"
    ))
}
