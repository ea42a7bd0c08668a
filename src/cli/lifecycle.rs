//! `stop` and `rm`: one container at a time, each key echoed on stdout once done and each
//! failure on its own stderr line, in order, as Docker does; the others still go on.

use std::time::Duration;

use anyhow::Result;

use crate::container;
use crate::state::Store;

pub fn stop(store: &Store, keys: &[String], timeout_secs: u64) -> i32 {
    each(keys, |key| container::stop(store, key, Duration::from_secs(timeout_secs)))
}

pub fn rm(store: &Store, keys: &[String], force: bool) -> i32 {
    let mut results = container::remove_many(store, keys, force).into_iter();
    each(keys, |_| results.next().unwrap_or(Ok(())))
}

/// Runs `f` for every key, printing the key when it succeeded and the error when not;
/// the exit code is 1 if any failed.
fn each(keys: &[String], mut f: impl FnMut(&str) -> Result<()>) -> i32 {
    let mut failed = false;
    for key in keys {
        match f(key) {
            Ok(()) => println!("{key}"),
            Err(e) => {
                eprintln!("dockling: {e:#}");
                failed = true;
            }
        }
    }
    if failed {
        1
    } else {
        0
    }
}
