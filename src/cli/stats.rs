//! `dockling stats`: memory, CPU and processes per running container, read from its cgroups.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{humanize, table};
use crate::cgroups;
use crate::state::{Container, Store};

pub fn stats(store: &Store, keys: &[String], no_stream: bool) -> Result<()> {
    let pick = |store: &Store| -> Result<Vec<Container>> {
        if keys.is_empty() {
            Ok(store.list()?.into_iter().filter(|c| c.is_running()).collect())
        } else {
            keys.iter().map(|k| store.resolve(k)).collect()
        }
    };
    // CPU % needs two samples: take one, wait a moment, take the next.
    let mut last: HashMap<String, (u64, Instant)> = HashMap::new();
    for c in pick(store)? {
        last.insert(c.id.clone(), (cgroups::usage(&c.cgroups).cpu_ns, Instant::now()));
    }
    loop {
        std::thread::sleep(Duration::from_millis(if no_stream { 500 } else { 1000 }));
        let mut rows =
            vec![["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"].map(String::from).to_vec()];
        for c in pick(store)? {
            let u = cgroups::usage(&c.cgroups);
            let now = Instant::now();
            let (prev, then) = last.get(&c.id).copied().unwrap_or((u.cpu_ns, now));
            let elapsed = now.duration_since(then).as_nanos().max(1) as f64;
            let cpu = (u.cpu_ns.saturating_sub(prev)) as f64 / elapsed * 100.0;
            last.insert(c.id.clone(), (u.cpu_ns, now));
            let limit = u.memory_limit.unwrap_or_else(host_memory);
            let running = c.is_running();
            rows.push(vec![
                c.short_id().to_string(),
                c.name.clone(),
                if running { format!("{cpu:.2}%") } else { "--".into() },
                format!("{} / {}", humanize::binary_size(u.memory), humanize::binary_size(limit)),
                format!("{:.2}%", u.memory as f64 / limit.max(1) as f64 * 100.0),
                u.pids.to_string(),
            ]);
        }
        if !no_stream {
            print!("\x1b[2J\x1b[H");
        }
        table::print(&rows);
        let _ = std::io::stdout().flush();
        if no_stream {
            return Ok(());
        }
    }
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix("MemTotal:").map(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            })
        })
        .flatten()
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
