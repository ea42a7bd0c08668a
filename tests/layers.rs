//! The crate's layers, checked over its source: imports only point down, and no files
//! import each other in a cycle. Runs without root, in a few milliseconds.
//!
//! Every `crate::`, `super::` and `self::` path in `src/` (in `use` trees and inline,
//! comments and `#[cfg(test)]` modules left out) is resolved to the file that defines the
//! module it names (the longest prefix that is a file). Then:
//! - a file in top-level module A may use top-level module B only if B is on a lower
//!   layer than A in [`LAYERS`] (modules on one layer do not use each other);
//! - the file graph has no cycle. A `mod.rs` is its module's face: its edges to its own
//!   descendants (re-exports, calls into its files) are not counted, so a child may use
//!   what its parent defines.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top to bottom. A module may import only modules on later lines.
const LAYERS: &[&[&str]] = &[
    &["main"],
    &["cli", "runc"],
    &["container"],
    &["network", "image", "engine"],
    &["state"],
    &["security", "cgroups"],
    &["types"],
    &["sys", "error", "explain", "timing"],
];

fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&top))
}

/// A source file and the module path it defines (`container::run` for src/container/run.rs).
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    is_mod_rs: bool,
}

fn source_files(src: &Path) -> Vec<SourceFile> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("reading src/").flatten() {
            let path = entry.path();
            if path.is_dir() {
                // src/bin/ holds separate binaries with their own crates.
                if path != src.join("bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src/").with_extension("");
            let mut module: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
            let is_mod_rs = module.last().is_some_and(|m| m == "mod");
            if is_mod_rs || module == ["main"] {
                module.pop();
            }
            out.push(SourceFile { path, module, is_mod_rs });
        }
    }
    out
}

/// The code without comments and without the `#[cfg(test)]` module at its end.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().map(|l| l.find("//").map_or(l, |i| &l[..i])).collect::<Vec<_>>().join("\n")
}

/// Expands a `use` tree (`a::{b, c::{d as e, self}}`) into its paths.
fn expand_use(tree: &str) -> Vec<String> {
    // Without white space and without `as` aliases.
    let tokens: Vec<&str> = tree.split_whitespace().collect();
    let mut tree = String::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "as" && i + 1 < tokens.len() {
            tree.push_str(tokens[i + 1].trim_start_matches(is_ident));
            i += 2;
        } else {
            tree.push_str(tokens[i]);
            i += 1;
        }
    }
    let Some(open) = tree.find('{') else { return vec![tree] };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| {
            expand_use(p).into_iter().map(|sub| {
                if sub == "self" {
                    prefix.trim_end_matches("::").to_string()
                } else {
                    format!("{prefix}{sub}")
                }
            })
        })
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every module path the code names: `use` trees (with `mod` children relative) and
/// inline `crate::`/`super::`/`self::` paths.
fn referenced_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    // `use` declarations, possibly over several lines.
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let after = &rest[i + 4..];
        if rest[..i].chars().last().is_none_or(|c| !is_ident(c)) {
            if let Some(end) = after.find(';') {
                out.extend(expand_use(&after[..end]));
            }
        }
        rest = after;
    }
    // Inline paths, from their first segment (a `crate::` inside a longer path is not one).
    for root in ["crate::", "super::", "self::"] {
        for (start, _) in code.match_indices(root) {
            if code[..start].chars().last().is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            let len = code[start..].find(|c: char| !is_ident(c) && c != ':').unwrap_or(code.len() - start);
            out.push(code[start..start + len].trim_end_matches(':').to_string());
        }
    }
    out
}

/// The absolute module path a path names, from inside `module` (a mod.rs's module is
/// its directory; a file's `super` is its parent).
fn absolute(path: &str, file: &SourceFile, children: &BTreeSet<String>) -> Option<Vec<String>> {
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = file.module.clone();
    match segs.first().copied()? {
        "crate" => {
            base.clear();
            segs.remove(0);
        }
        "self" => {
            segs.remove(0);
        }
        "super" => {
            while segs.first() == Some(&"super") {
                segs.remove(0);
                base.pop()?;
            }
        }
        first if children.contains(first) => {}
        _ => return None, // std, another crate, or a local name
    }
    base.extend(segs.iter().map(|s| s.to_string()));
    Some(base)
}

/// The `mod x;` children a file declares.
fn declared_children(code: &str) -> BTreeSet<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("pub ").trim_start_matches("pub(crate) ");
            l.strip_prefix("mod ")?.strip_suffix(';').map(|m| m.trim().to_string())
        })
        .collect()
}

struct Graph {
    files: Vec<SourceFile>,
    /// (from, to) as indexes into `files`, with whether it counts for cycles.
    edges: BTreeSet<(usize, usize, bool)>,
}

fn build() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = source_files(&src);
    let by_module: BTreeMap<Vec<String>, usize> =
        files.iter().enumerate().map(|(i, f)| (f.module.clone(), i)).collect();
    let mut edges = BTreeSet::new();
    for (from, file) in files.iter().enumerate() {
        let code = code_of(&fs::read_to_string(&file.path).expect("reading a source file"));
        let children = declared_children(&code);
        for path in referenced_paths(&code) {
            let Some(abs) = absolute(&path, file, &children) else { continue };
            let target = (1..=abs.len()).rev().find_map(|n| by_module.get(&abs[..n]).copied());
            let Some(to) = target.filter(|&to| to != from) else { continue };
            let into_own_subtree = file.is_mod_rs && files[to].module.starts_with(&file.module);
            edges.insert((from, to, !into_own_subtree));
        }
    }
    Graph { files, edges }
}

fn name(f: &SourceFile) -> String {
    f.path.to_string_lossy().rsplit_once("/src/").map(|(_, p)| format!("src/{p}")).unwrap_or_default()
}

fn top(f: &SourceFile) -> String {
    f.module.first().cloned().unwrap_or_else(|| "main".to_string())
}

#[test]
fn every_module_is_on_a_layer() {
    let g = build();
    let missing: BTreeSet<String> = g.files.iter().map(top).filter(|t| layer_of(t).is_none()).collect();
    assert!(missing.is_empty(), "top-level modules missing from LAYERS in tests/layers.rs: {missing:?}");
}

#[test]
fn imports_only_point_down() {
    let g = build();
    let mut wrong = Vec::new();
    for &(from, to, _) in &g.edges {
        let (a, b) = (top(&g.files[from]), top(&g.files[to]));
        if a == b {
            continue;
        }
        let (Some(la), Some(lb)) = (layer_of(&a), layer_of(&b)) else { continue };
        if lb <= la {
            wrong.push(format!("{} uses {} ({a} may not use {b})", name(&g.files[from]), name(&g.files[to])));
        }
    }
    assert!(wrong.is_empty(), "imports that do not point down:\n{}", wrong.join("\n"));
}

#[test]
fn no_import_cycles() {
    let g = build();
    let n = g.files.len();
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(from, to, counts) in &g.edges {
        if counts {
            next[from].push(to);
        }
    }
    let cycles = strongly_connected(&next).into_iter().filter(|c| c.len() > 1);
    let shown: Vec<String> =
        cycles.map(|c| c.iter().map(|&i| name(&g.files[i])).collect::<Vec<_>>().join(" <-> ")).collect();
    assert!(shown.is_empty(), "files that import each other in a cycle:\n{}", shown.join("\n"));
}

/// Domain modules return reports; only the command lines (`cli/`, `runc/`, `main.rs`)
/// write to the terminal. (src/bin/ holds separate programs.)
#[test]
fn only_cli_prints() {
    let g = build();
    let mut found = Vec::new();
    for f in g.files.iter().filter(|f| !matches!(top(f).as_str(), "cli" | "runc" | "main")) {
        let code = code_of(&fs::read_to_string(&f.path).expect("reading a source file"));
        for (n, line) in code.lines().enumerate() {
            if ["println!", "eprintln!", "print!", "eprint!"].iter().any(|m| line.contains(m)) {
                found.push(format!("{}:{}: {}", name(f), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "prints outside cli/:\n{}", found.join("\n"));
}

/// The checker itself must see what it is meant to see.
#[test]
fn the_checker_sees_imports() {
    let paths = referenced_paths(
        "use crate::{error, state::{self, Store}};\nuse super::sync::{Failure, Message};\nfn f() { crate::sys::fd::close_from(3); }",
    );
    for want in
        ["crate::error", "crate::state", "crate::state::Store", "super::sync::Failure", "crate::sys::fd::close_from"]
    {
        assert!(paths.iter().any(|p| p == want), "{want} not in {paths:?}");
    }
    assert!(!code_of("// use crate::cli;\nfn x() {}").contains("crate::cli"));
    let g = build();
    assert!(g.files.len() > 40, "only {} source files found", g.files.len());
    let run = g.files.iter().position(|f| f.module == ["container", "run"]).expect("src/container/run.rs");
    let state = g.files.iter().position(|f| f.module == ["state"]).expect("src/state/mod.rs");
    assert!(g.edges.iter().any(|&(a, b, _)| a == run && b == state), "container/run.rs -> state/mod.rs not seen");
}

/// Tarjan's algorithm: the strongly connected components of a graph.
fn strongly_connected(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct Walk<'a> {
        next: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        counter: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(w: &mut Walk, v: usize) {
        w.index[v] = Some(w.counter);
        w.low[v] = w.counter;
        w.counter += 1;
        w.stack.push(v);
        w.on_stack[v] = true;
        for &u in &w.next[v] {
            match w.index[u] {
                None => {
                    visit(w, u);
                    w.low[v] = w.low[v].min(w.low[u]);
                }
                Some(iu) if w.on_stack[u] => w.low[v] = w.low[v].min(iu),
                _ => {}
            }
        }
        if Some(w.low[v]) == w.index[v] {
            let mut comp = Vec::new();
            while let Some(u) = w.stack.pop() {
                w.on_stack[u] = false;
                comp.push(u);
                if u == v {
                    break;
                }
            }
            w.out.push(comp);
        }
    }
    let n = next.len();
    let mut w = Walk {
        next,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        counter: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if w.index[v].is_none() {
            visit(&mut w, v);
        }
    }
    w.out
}
