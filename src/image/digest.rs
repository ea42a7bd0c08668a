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

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn parse_sha256_digests() {
        assert_eq!(parse(&format!("sha256:{ABC}")).unwrap(), ABC);
        let unsupported = parse(&format!("sha512:{ABC}")).unwrap_err();
        assert_eq!(unsupported.to_string(), format!("unsupported digest \"sha512:{ABC}\" (only sha256 is supported)"));
        for bad in [
            format!("sha256:{}", &ABC[1..]),
            format!("sha256:{ABC}0"),
            format!("sha256:{}", ABC.to_uppercase()),
            format!("sha256:{}g", &ABC[1..]),
            format!("sha256: {}", &ABC[1..]),
            "sha256:".to_string(),
        ] {
            let err = parse(&bad).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid digest {bad:?}"));
            assert_eq!(error::code_of(&err), error::RUNTIME_ERROR);
        }
        for bad in [ABC.to_string(), format!("SHA256:{ABC}"), String::new()] {
            assert!(parse(&bad).unwrap_err().to_string().starts_with("unsupported digest"), "{bad}");
        }
    }

    #[test]
    fn hex64() {
        assert!(is_hex64(ABC));
        assert!(is_hex64(&"0".repeat(64)));
        assert!(!is_hex64(&"0".repeat(63)));
        assert!(!is_hex64(&"0".repeat(65)));
        assert!(!is_hex64(&"A".repeat(64)));
        assert!(!is_hex64(&format!("{}é", "0".repeat(62))));
        assert!(!is_hex64(""));
    }

    #[test]
    fn hashing_known_values() {
        assert_eq!(sha256_hex(b""), EMPTY);
        assert_eq!(sha256_hex(b"abc"), ABC);
    }

    #[test]
    fn reader_hashes_what_it_reads_and_the_rest() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = HashingReader::new(&data[..]);
        let mut head = [0u8; 1000];
        r.read_exact(&mut head).unwrap();
        assert_eq!(&head[..], &data[..1000]);
        assert_eq!(r.finish().unwrap(), (sha256_hex(&data), 100_000));
        assert_eq!(HashingReader::new(&b""[..]).finish().unwrap(), (EMPTY.to_string(), 0));
    }

    #[test]
    fn writer_and_hasher_agree() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"a").unwrap();
        w.write_all(b"bc").unwrap();
        w.flush().unwrap();
        assert_eq!(w.finish(), (b"abc".to_vec(), ABC.to_string(), 3));
        let mut h = Hasher::default();
        h.update(b"ab");
        h.update(b"");
        h.update(b"c");
        assert_eq!(h.count, 3);
        assert_eq!(h.finish(), ABC);
    }

    #[test]
    fn mismatch_message() {
        let err = mismatch("layer 1234", "aa", "bb");
        assert_eq!(
            err.to_string(),
            "layer 1234: digest mismatch: expected sha256:aa, got sha256:bb (refusing corrupt or tampered content)"
        );
        assert_eq!(error::code_of(&err), error::RUNTIME_ERROR);
    }
}
