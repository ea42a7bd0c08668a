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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for name in ["a", "Z", "0", "web", "web_1.prod-2", "1abc", "a..b", "a-", "a_", "x.", &"a".repeat(128)] {
            assert!(validate(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn invalid_names() {
        for name in [
            "",
            "_a",
            ".a",
            "-a",
            "..",
            "../../etc",
            "a/b",
            "/a",
            "a b",
            " a",
            "a\n",
            "a:b",
            "a@b",
            "é",
            "aé",
            "a\0",
            &"a".repeat(129),
        ] {
            let err = validate(name).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("Invalid container name ({name:?}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            );
            assert_eq!(error::code_of(&err), error::RUNTIME_ERROR);
        }
    }

    #[test]
    fn generate_is_deterministic_per_id_and_attempt() {
        let zero = "0".repeat(64);
        let ones = format!("ffffffff{}", "0".repeat(56));
        assert_eq!(
            (0..5).map(|a| generate(&zero, a)).collect::<Vec<_>>(),
            ["brave_hopper", "cool_pike", "bold_babbage", "zen_dijkstra3", "witty_ritchie4"]
        );
        assert_eq!(
            (0..5).map(|a| generate(&ones, a)).collect::<Vec<_>>(),
            ["vivid_thompson", "tender_hopper", "sharp_cerf", "quirky_curie3", "nifty_liskov4"]
        );
        // Only the first 8 hex digits count.
        assert_eq!(generate(&format!("ffffffff{}", "a".repeat(56)), 1), "tender_hopper");
        // Not hex: as if 0.
        assert_eq!(generate(&"z".repeat(64), 0), "brave_hopper");
        assert_eq!(generate(&"z".repeat(64), 12), "keen_babbage12");
    }

    #[test]
    fn generated_names_are_valid_and_differ_between_attempts() {
        for id in ["00000000", "3f2a9c01", "deadbeef", "ffffffff", "12345678"] {
            let names: Vec<String> = (0..10).map(|a| generate(&format!("{id}{}", "0".repeat(56)), a)).collect();
            for (a, name) in names.iter().enumerate() {
                validate(name).unwrap();
                let (left, right) = name.split_once('_').unwrap();
                assert!(LEFT.contains(&left), "{name}");
                let suffix = if a < 3 { String::new() } else { a.to_string() };
                let scientist = right.strip_suffix(&suffix).unwrap();
                assert!(RIGHT.contains(&scientist), "{name}");
            }
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{names:?}");
        }
    }
}
