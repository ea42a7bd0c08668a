//! Where the tests find things: the dockling binary, the repository, prebuilt images, Python and host tools.

use std::path::{Path, PathBuf};

const SEARCH_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The dockling binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_dockling")
}

/// The repository's root (where Cargo.toml is).
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The host's Python 3 (used for test servers and clients in the world and sim host).
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Directory of a prebuilt image tree (rootfs/out/NAME).
pub fn image_dir(name: &str) -> PathBuf {
    manifest_dir().join("rootfs").join("out").join(name)
}

/// PATH for commands run in the simulated host: the test's own PATH, then the usual system directories.
pub(super) fn search_path() -> String {
    match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{p}:{SEARCH_PATH}"),
        _ => SEARCH_PATH.to_string(),
    }
}

/// The firewall driver the tests run dockling with (`DOCKLING_FIREWALL_DRIVER`, which
/// every dockling command inherits; tests/run.sh runs the network tests with both).
pub fn firewall_driver() -> &'static str {
    match std::env::var("DOCKLING_FIREWALL_DRIVER").as_deref() {
        Ok("nftables") | Ok("nft") => "nftables",
        _ => "iptables",
    }
}
