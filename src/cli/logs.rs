//! `dockling logs [-f] [--tail N]`: replays the JSON-lines log to stdout and stderr.

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::container::logfile::Entry;
use crate::error;
use crate::state::Store;

pub fn logs(store: &Store, key: &str, follow: bool, tail: &str) -> Result<()> {
    let c = store.resolve(key)?;
    let tail: Option<usize> = match tail {
        "all" | "-1" => None,
        n => Some(n.parse().map_err(|_| error::user(format!("invalid value for --tail: {n:?}")))?),
    };
    let path = store.container_dir(&c.id).join("container.log");
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(_) if !c.detached => return Ok(()), // attached runs print straight to the terminal
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let lines: Vec<String> = BufReader::new(&file).lines().collect::<Result<_, _>>()?;
    let skip = tail.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
    for line in &lines[skip..] {
        emit(line);
    }
    if !follow {
        return Ok(());
    }
    // Follow: keep reading appended lines until the container is no longer running.
    let mut pos = file.seek(SeekFrom::End(0))?;
    let mut pending = String::new();
    loop {
        let running = store.load(&c.id).map(|c| c.is_running()).unwrap_or(false);
        file.seek(SeekFrom::Start(pos))?;
        let mut reader = BufReader::new(&file);
        loop {
            let mut buf = String::new();
            let n = reader.read_line(&mut buf)?;
            if n == 0 {
                break;
            }
            pos += n as u64;
            pending.push_str(&buf);
            if pending.ends_with('\n') {
                emit(pending.trim_end_matches('\n'));
                pending.clear();
            }
        }
        if !running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn emit(line: &str) {
    let Ok(entry) = serde_json::from_str::<Entry>(line) else { return };
    if entry.stream == "stderr" {
        let _ = std::io::stderr().write_all(entry.log.as_bytes());
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(entry.log.as_bytes());
        let _ = out.flush();
    }
}
