//! Container names: validation and Docker-style generated names.

use anyhow::Result;

use crate::error;

/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, as Docker; short enough to be a netns file name.
pub fn validate(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !first_ok || !rest_ok || name.len() > 128 {
        return Err(error::user(format!(
            "Invalid container name ({name:?}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(())
}

const LEFT: &[&str] = &[
    "brave", "calm", "clever", "eager", "festive", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty",
    "quirky", "sharp", "tender", "vivid", "witty", "zen", "bold", "cool",
];
const RIGHT: &[&str] = &[
    "hopper",
    "turing",
    "lovelace",
    "ritchie",
    "thompson",
    "torvalds",
    "knuth",
    "dijkstra",
    "liskov",
    "hamilton",
    "shannon",
    "babbage",
    "curie",
    "noether",
    "kernighan",
    "pike",
    "cerf",
    "lamport",
    "wirth",
    "backus",
];

/// A Docker-like `adjective_scientist` name derived from random id bytes.
pub fn generate(id: &str, attempt: usize) -> String {
    let n = usize::from_str_radix(&id[..8], 16).unwrap_or(0).wrapping_add(attempt * 7919);
    let base = format!("{}_{}", LEFT[n % LEFT.len()], RIGHT[(n / LEFT.len()) % RIGHT.len()]);
    if attempt < 3 {
        base
    } else {
        format!("{base}{attempt}")
    }
}
