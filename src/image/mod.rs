//! Images: a root filesystem tree plus a little metadata, kept read-only in the store.
//!
//! This is the seam for the OCI store (layers by diff id, pulls): containers only ask
//! for [`Image::layers`], the lower directories of their overlay, top layer first.

mod store;

pub use store::{import, ImageStore};
