//! `dockling load` and `dockling save`: image tarballs in both formats in use.
//!
//! - `docker save` (`manifest.json` with `Config`, `RepoTags` and `Layers` paths, plus,
//!   since Docker 25, an OCI layout in the same tarball);
//! - OCI image archives (`oci-layout`, `index.json`, `blobs/sha256/...`), as
//!   `podman save --format oci-archive` or `skopeo copy ... oci-archive:` write.
//!
//! `save` writes both at once (as Docker 25 does), so `docker load`, `podman load` and
//! OCI tools all read it, and `load` of it gives back the very same digests.

mod load;
mod save;

pub use load::{load, Loaded};
pub use save::save;

/// Docker's and containerd's annotation for an image's full name in an OCI index.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
