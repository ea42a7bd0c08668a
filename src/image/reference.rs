//! Image references as Docker reads them: `alpine` is `docker.io/library/alpine:latest`.
//!
//! The store keys images by the *familiar* form Docker prints (`alpine:latest`,
//! `registry:5000/team/app:v1`), so `run alpine` and `run docker.io/library/alpine`
//! find the same image, and `images` shows what the user typed.

use anyhow::Result;
use oci_spec::distribution::Reference;

use crate::error;

const HUB: &str = "docker.io";
const HUB_LIBRARY: &str = "library/";

/// A parsed, normalised reference: registry, repository, and a tag and/or digest.
#[derive(Debug, Clone)]
pub struct ImageRef {
    inner: Reference,
}

impl ImageRef {
    /// Parses `name[:tag][@digest]`; bad input is a one-line user error.
    pub fn parse(text: &str) -> Result<ImageRef> {
        let inner: Reference =
            text.parse().map_err(|e| error::user(format!("invalid reference format: {text:?} ({e})")))?;
        if inner.repository().bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(error::user(format!("invalid reference format: {text:?} (repository name must be lowercase)")));
        }
        Ok(ImageRef { inner })
    }

    /// The registry host as written (`docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The hex of the `@sha256:` digest, if the reference pins one.
    pub fn digest_hex(&self) -> Option<&str> {
        self.inner.digest().and_then(|d| d.strip_prefix("sha256:"))
    }

    /// `alpine`, `user/app`, `127.0.0.1:5000/test/bb`: the name without tag or digest.
    pub fn familiar_name(&self) -> String {
        if self.registry() == HUB {
            self.repository().strip_prefix(HUB_LIBRARY).unwrap_or(self.repository()).to_string()
        } else {
            format!("{}/{}", self.registry(), self.repository())
        }
    }

    /// The key the store files the image under: `name:tag`, or `name@sha256:...` when
    /// only a digest was given.
    pub fn familiar(&self) -> String {
        match (self.tag(), self.inner.digest()) {
            (Some(tag), _) => format!("{}:{tag}", self.familiar_name()),
            (None, Some(digest)) => format!("{}@{digest}", self.familiar_name()),
            (None, None) => format!("{}:latest", self.familiar_name()),
        }
    }

    /// `docker.io/library/alpine:latest`: what `pull` prints last, as Docker does.
    pub fn full(&self) -> String {
        self.inner.whole()
    }

    /// The same repository pinned to a manifest digest.
    pub fn with_digest(&self, hex: &str) -> ImageRef {
        ImageRef {
            inner: Reference::with_digest(
                self.registry().to_string(),
                self.repository().to_string(),
                format!("sha256:{hex}"),
            ),
        }
    }

    pub fn oci(&self) -> &Reference {
        &self.inner
    }
}

/// Splits a familiar key (`name:tag` or `name@sha256:...`) into repository and tag
/// columns for `images` (`<none>` for a digest-only key).
pub fn split_familiar(key: &str) -> (String, String) {
    if let Some((name, _)) = key.split_once('@') {
        return (name.to_string(), "<none>".to_string());
    }
    match key.rfind(':') {
        Some(i) if !key[i + 1..].contains('/') => (key[..i].to_string(), key[i + 1..].to_string()),
        _ => (key.to_string(), "latest".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_names_are_familiar() {
        for (input, familiar, full) in [
            ("alpine", "alpine:latest", "docker.io/library/alpine:latest"),
            ("docker.io/library/alpine:3", "alpine:3", "docker.io/library/alpine:3"),
            ("index.docker.io/user/app", "user/app:latest", "docker.io/user/app:latest"),
            ("127.0.0.1:5000/test/bb:v1", "127.0.0.1:5000/test/bb:v1", "127.0.0.1:5000/test/bb:v1"),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
        ] {
            let r = ImageRef::parse(input).unwrap();
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(r.full(), full, "{input}");
        }
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.familiar(), format!("busybox@{d}"));
        assert_eq!(r.digest_hex(), Some("a".repeat(64).as_str()));
        assert!(ImageRef::parse("Upper").is_err());
        assert!(ImageRef::parse("UPPER/x").is_err());
        assert!(ImageRef::parse("registry:5000/Team/x").is_err());
        assert!(ImageRef::parse("a b").is_err());
        assert!(ImageRef::parse("").is_err());
        assert_eq!(split_familiar("127.0.0.1:5000/x:v1"), ("127.0.0.1:5000/x".into(), "v1".into()));
        assert_eq!(split_familiar(&format!("x@{d}")), ("x".into(), "<none>".into()));
    }
}
