//! `dockling-runc features`: what this runtime honours, in runc's JSON shape, read from
//! the engine's own tables, so the answer cannot drift from what `create` does.

use crate::engine;

pub const OCI_VERSION_MIN: &str = "1.0.0";
pub const OCI_VERSION_MAX: &str = "1.0.2";

pub fn json() -> String {
    let value = serde_json::json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "mountOptions": engine::mount::option_names(),
        "linux": {
            "namespaces": engine::namespaces::supported(),
            "capabilities": capabilities(),
            "cgroup": { "v1": true, "v2": true, "systemd": false },
            "seccomp": { "enabled": true },
        },
        "annotations": { "org.dockling.runtime": "dockling" },
    });
    serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into())
}

/// Every capability the kernel and the caps crate know, by name, sorted.
fn capabilities() -> Vec<String> {
    let mut all: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    all.sort();
    all
}
