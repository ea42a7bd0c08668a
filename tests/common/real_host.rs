//! Queries on the real host (outside any simulated host): its process tree, network namespaces in use, cgroups.

use std::fs;
use std::path::PathBuf;

/// Pids whose parent is `ppid` (from /proc/*/stat).
pub fn children_of(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            // fields after the ")" of comm: state ppid ...
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                if f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(ppid) {
                    out.push(pid);
                }
            }
        }
    }
    out
}

/// Is any process on the real host still in network namespace `ns` ("net:[N]")?
pub fn netns_in_use(ns: &str) -> bool {
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.parse::<u32>().is_err() {
                continue;
            }
            if let Ok(l) = fs::read_link(format!("/proc/{name}/ns/net")) {
                if l.to_string_lossy() == ns {
                    return true;
                }
            }
        }
    }
    false
}

/// Directories under /sys/fs/cgroup (depth <= 6) whose names contain the
/// 12-char prefix of one of `ids`.
pub fn cgroups_named_after(ids: &[String]) -> Vec<String> {
    let shorts: Vec<&str> = ids.iter().filter(|i| i.len() >= 12).map(|i| &i[..12]).collect();
    if shorts.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let n = e.file_name().to_string_lossy().into_owned();
            if shorts.iter().any(|s| n.contains(s)) {
                out.push(e.path().to_string_lossy().into_owned());
            }
            if depth < 6 {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    out
}
