//! `--network`: which network a container gets.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    Bridge,
    None,
    Host,
    /// `--network container:X`: X's network namespace, joined.
    Container,
}

impl NetworkMode {
    pub fn parse(s: &str) -> Result<NetworkMode> {
        match s {
            "bridge" | "default" => Ok(NetworkMode::Bridge),
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            s if s.starts_with("container:") && s.len() > "container:".len() => Ok(NetworkMode::Container),
            other => Err(error::user(format!("network {other} not found (use bridge, none, host or container:NAME)"))),
        }
    }

    /// The container `--network container:X` names.
    pub fn container_of(s: &str) -> Option<&str> {
        s.strip_prefix("container:").filter(|x| !x.is_empty())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Bridge => "bridge",
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
            NetworkMode::Container => "container",
        }
    }
}
