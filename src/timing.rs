//! `DOCKLING_TIMINGS=1`: prints how long each phase of a command took (to stderr), so a
//! speed regression can be found without a profiler. Costs one env lookup when off.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Option<Instant>> = OnceLock::new();

/// Called first thing in `main`.
pub fn init() {
    let _ = START.set(std::env::var_os("DOCKLING_TIMINGS").map(|_| Instant::now()));
}

/// `t+  3.21 ms  label` on stderr when timings are on.
pub fn mark(label: &str) {
    if let Some(Some(start)) = START.get() {
        eprintln!("t+{:7.2} ms [{}] {label}", start.elapsed().as_secs_f64() * 1000.0, std::process::id());
    }
}
