//! Docker's human durations: "Less than a second", "2 minutes", "About an hour".

use chrono::{DateTime, Utc};

pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if d < 14 => format!("{d} days"),
        _ if d < 60 => format!("{} weeks", d / 7),
        _ if d < 730 => format!("{} months", d / 30),
        _ => format!("{} years", d / 365),
    }
}

pub fn since(t: DateTime<Utc>) -> String {
    duration((Utc::now() - t).num_seconds())
}

/// Scales `bytes` by `base` until it is below it; returns the value and the unit index.
fn scale(bytes: u64, base: f64, units: usize) -> (f64, usize) {
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= base && i < units - 1 {
        v /= base;
        i += 1;
    }
    (v, i)
}

/// Sizes as Docker prints them: 1.23MB, 50.2MB (decimal units).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    match scale(bytes, 1000.0, UNITS.len()) {
        (_, 0) => format!("{bytes}B"),
        (v, i) => format!("{v:.3}").chars().take(4).collect::<String>().trim_end_matches('.').to_string() + UNITS[i],
    }
}

/// Sizes in binary units, as `docker stats` prints them: 1.5MiB / 64MiB.
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    match scale(bytes, 1024.0, UNITS.len()) {
        (_, 0) => format!("{bytes}B"),
        (v, i) => format!("{v:.2}{}", UNITS[i]),
    }
}
