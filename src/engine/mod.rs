//! The OCI engine: what a container is made of, as the runtime spec describes it
//! (`oci_spec::runtime`), turned into system calls. `dockling run` describes its
//! containers with the spec's types, and `dockling-runc` will hand over the spec an
//! engine wrote; both end here. The engine knows nothing of images, networks or the
//! command line.
//!
//! So far: the mounts ([`mount`]), masked and read-only paths ([`masked`]), the
//! namespaces ([`namespaces`]), and what every
//! container of `dockling run` gets ([`defaults`]).

pub mod console;
pub mod create;
pub mod defaults;
mod detached;
pub mod devices;
pub mod exec;
pub mod execve;
pub mod foreground;
pub mod hooks;
pub mod masked;
pub mod mount;
pub mod namespaces;
pub mod process;
pub mod resources;
pub mod rootfs;
pub mod spawn;
pub mod spec;
pub mod sync;

/// The runtime spec version this engine speaks (state JSON, `--version`).
pub const OCI_VERSION: &str = "1.0.2";
