//! Test harness for dockling's integration tests.
//!
//! Every test runs dockling inside a *simulated host* (`SimHost`, see `simhost.rs`
//! for what it contains and how it is cleaned up). The harness is split by concern:
//!
//! * `simhost`: the simulated host, the commands a test runs in it, its queries,
//!   snapshots and cleanup checks;
//! * `process`: running commands with captured output and time limits; polling;
//! * `json`: the `Json` view of `inspect` output;
//! * `text`: helpers for rules, addresses, directory listings and sh quoting;
//! * `real_host`: queries on the real host (process tree, netns, cgroups);
//! * `paths`: where the dockling binary, the repository, images and tools are;
//! * `peer_server`: a test HTTP server that reports the client's address;
//! * `engines`: containerd (and dockerd) as peers, inside the simulated host.
//!
//! Each test binary (`mod common; use common::*;`) compiles this module on its
//! own and uses only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

mod engines;
mod json;
mod paths;
mod peer_server;
mod process;
mod real_host;
mod simhost;
mod text;

// Each test binary uses only part of the harness, so some re-exports go unused in each.
#[allow(unused_imports)]
pub use self::{
    engines::{private_run, runc_link, Containerd, Dockerd},
    json::Json,
    paths::{bin, firewall_driver, image_dir, manifest_dir, python},
    peer_server::PEER_SERVER_PY,
    process::{poll, run_cmd, wait_until, Out, Proc, CMD_TIMEOUT, WAIT},
    real_host::{cgroups_named_after, children_of, netns_in_use},
    simhost::{SimHost, Snapshot, BRIDGE, GATEWAY, HOST_IP, INTERNET_IP, SUBNET_PREFIX, WORLD_IP},
    text::{entries, list_dirs, mentions_ip, normalize_rules, rules_mentioning_port, shq, tree_listing},
};
