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

    fn hex(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn parts() {
        for (input, registry, repository, tag) in [
            ("alpine", "docker.io", "library/alpine", Some("latest")),
            ("alpine:3.19", "docker.io", "library/alpine", Some("3.19")),
            ("user/app:v1", "docker.io", "user/app", Some("v1")),
            ("ghcr.io/org/team/tool:1.0", "ghcr.io", "org/team/tool", Some("1.0")),
            ("localhost:5000/x", "localhost:5000", "x", Some("latest")),
        ] {
            let r = ImageRef::parse(input).unwrap();
            assert_eq!((r.registry(), r.repository(), r.tag()), (registry, repository, tag), "{input}");
            assert_eq!(r.digest_hex(), None, "{input}");
        }
        assert_eq!(ImageRef::parse("user/app").unwrap().familiar_name(), "user/app");
        assert_eq!(ImageRef::parse("ghcr.io/org/tool:1").unwrap().familiar_name(), "ghcr.io/org/tool");
    }

    #[test]
    fn tag_and_digest() {
        let r = ImageRef::parse(&format!("alpine:3@sha256:{}", hex('b'))).unwrap();
        assert_eq!(r.tag(), Some("3"));
        assert_eq!(r.digest_hex(), Some(hex('b').as_str()));
        assert_eq!(r.familiar(), "alpine:3"); // the tag names it in the store
        let r = ImageRef::parse(&format!("ghcr.io/o/x@sha256:{}", hex('c'))).unwrap();
        assert_eq!((r.tag(), r.familiar()), (None, format!("ghcr.io/o/x@sha256:{}", hex('c'))));
        assert_eq!(r.full(), format!("ghcr.io/o/x@sha256:{}", hex('c')));
    }

    #[test]
    fn with_digest_pins_the_same_repository() {
        let r = ImageRef::parse("alpine:3").unwrap().with_digest(&hex('d'));
        assert_eq!((r.registry(), r.repository(), r.tag()), ("docker.io", "library/alpine", None));
        assert_eq!(r.digest_hex(), Some(hex('d').as_str()));
        assert_eq!(r.familiar(), format!("alpine@sha256:{}", hex('d')));
        assert_eq!(r.full(), format!("docker.io/library/alpine@sha256:{}", hex('d')));
        let r = ImageRef::parse("127.0.0.1:5000/t/bb:v1").unwrap().with_digest(&hex('e'));
        assert_eq!(r.familiar(), format!("127.0.0.1:5000/t/bb@sha256:{}", hex('e')));
    }

    #[test]
    fn bad_references_are_user_errors() {
        for bad in ["alpine:", ":tag", "a//b", "-a", "a b", "alpine@sha256:abc", "alpine@", "Alpine:3", "x/Y"] {
            let err = ImageRef::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with(&format!("invalid reference format: {bad:?}")), "{err}");
            assert_eq!(error::code_of(&err), error::RUNTIME_ERROR);
        }
        // A tag may have capitals; only the repository may not.
        assert_eq!(ImageRef::parse("alpine:Latest").unwrap().tag(), Some("Latest"));
    }

    #[test]
    fn split_familiar_columns() {
        let split = |k: &str| split_familiar(k);
        assert_eq!(split("alpine:latest"), ("alpine".into(), "latest".into()));
        assert_eq!(split("user/app:v2"), ("user/app".into(), "v2".into()));
        assert_eq!(split("alpine"), ("alpine".into(), "latest".into()));
        assert_eq!(split("localhost:5000/x"), ("localhost:5000/x".into(), "latest".into()));
        assert_eq!(split("localhost:5000/x:1"), ("localhost:5000/x".into(), "1".into()));
        assert_eq!(split(&format!("r:5000/x@sha256:{}", hex('a'))), ("r:5000/x".into(), "<none>".into()));
    }
}
