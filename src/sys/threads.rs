//! How many threads this process has: cloning or forking is only safe with one.

use anyhow::{Context, Result};

/// The `Threads:` count of /proc/self/status.
pub fn count() -> Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .context("no thread count in /proc/self/status")
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_a_new_thread() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv());
        assert!(super::count().unwrap() >= 2);
        drop(tx);
        let _ = t.join();
    }
}
