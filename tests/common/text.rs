//! Text and directory helpers for assertions: addresses and ports in iptables rules, directory listings, sh quoting.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// Single-quote a string for sh.
pub fn shq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Does `text` mention IPv4 address `ip` (not as a prefix of a longer address)?
pub fn mentions_ip(text: &str, ip: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find(ip) {
        let s = from + pos;
        let e = s + ip.len();
        let before_ok = s == 0 || !(b[s - 1].is_ascii_digit() || b[s - 1] == b'.');
        let after_ok =
            e >= b.len() || !(b[e].is_ascii_digit() || (b[e] == b'.' && e + 1 < b.len() && b[e + 1].is_ascii_digit()));
        if before_ok && after_ok {
            return true;
        }
        from = s + 1;
    }
    false
}

/// Lines of `iptables-save` (or `nft list`) output that mention a port number as a port
/// (`--dport N`, `--sport N`, `dport N`, `:N` at the end of an address, `--to-ports N`).
pub fn rules_mentioning_port(rules: &str, port: u16) -> Vec<String> {
    let p = port.to_string();
    rules
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let toks: Vec<&str> = l.split_whitespace().collect();
            toks.iter().enumerate().any(|(i, t)| {
                let prev = if i > 0 { toks[i - 1] } else { "" };
                (matches!(prev, "--dport" | "--sport" | "--to-ports" | "--dports" | "--sports" | "dport" | "sport")
                    && t.split([',', '-', ':']).any(|x| x == p))
                    || t.rsplit_once(':').map(|(a, b)| !a.is_empty() && b == p).unwrap_or(false)
            })
        })
        .map(|s| s.to_string())
        .collect()
}

/// `iptables-save` output without comments and without packet counters.
pub fn normalize_rules(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            if l.starts_with(':') {
                match l.find('[') {
                    Some(i) => l[..i].trim_end().to_string(),
                    None => l.to_string(),
                }
            } else {
                l.to_string()
            }
        })
        .collect()
}

/// The names in a directory (none if it is missing).
pub fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Recursively list directories (relative paths) under `root`, not following symlinks.
pub fn list_dirs(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                let p = e.path();
                out.insert(p.strip_prefix(root).unwrap_or(&p).to_string_lossy().into_owned());
                stack.push(p);
            }
        }
    }
    out
}

/// Recursive listing "path kind size mode [symlink target]" for comparing trees.
pub fn tree_listing(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = fs::symlink_metadata(&p) else { continue };
            let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().into_owned();
            let ft = md.file_type();
            if ft.is_symlink() {
                let t = fs::read_link(&p).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                out.push(format!("{rel} link -> {t}"));
            } else if ft.is_dir() {
                out.push(format!("{rel} dir {:o}", md.mode()));
                stack.push(p);
            } else {
                out.push(format!("{rel} file {} {:o}", md.len(), md.mode()));
            }
        }
    }
    out.sort();
    out
}
