//! The house reads top-down: a test that no two files of this crate import each other and that the lower layers
//! (`data`, `nn`, `kernels`, `formats`, `linalg`, `artifact`) import none of the upper ones (`component`,
//! `pipeline`, `experiment`, `report`, `registry`). It reads the sources: every `crate::`, `super::` and `self::`
//! path outside comments and test modules, resolved to the file of the longest module prefix that exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every source file of `src`, by module path (`a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` is the root).
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<Module, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut module = prefix.to_vec();
        if path.is_dir() {
            module.push(name);
            modules(&path, &module, out);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if !matches!(stem, "mod" | "lib") {
                module.push(stem.to_string());
            }
            out.insert(module, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The code of a file without comments and without what follows its first `#[cfg(test)]`.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The paths a `use` tree names: `a::{b, c::{d, e}}` gives `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        out.push(tree.split(" as ").next().unwrap_or("").trim().to_string());
        return;
    };
    let prefix = tree[..open].trim();
    let body = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start) = (0, 0);
    let mut items = Vec::new();
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&body[start..]);
    for item in items.into_iter().map(str::trim).filter(|i| !i.is_empty()) {
        if item == "self" {
            out.push(prefix.trim_end_matches("::").to_string());
        } else {
            expand(&format!("{prefix}{item}"), out);
        }
    }
}

/// Every `crate::`, `super::` or `self::` path in `code`: those of `use` items expanded, and inline ones.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for statement in code.split(';') {
        if let Some(at) = statement.find("use ") {
            let tree = statement[at + 4..].split_whitespace().collect::<Vec<_>>().join(" ");
            if ["crate::", "super::", "self::"].iter().any(|p| tree.starts_with(p)) {
                expand(&tree, &mut out);
            }
        }
    }
    let bytes = code.as_bytes();
    for root in ["crate::", "super::"] {
        for (at, _) in code.match_indices(root) {
            let before = at.checked_sub(1).map(|i| bytes[i] as char);
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let end = code[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| at + e);
            out.push(code[at..end].trim_end_matches(':').to_string());
        }
    }
    out
}

/// The file `path`, written in `module`, refers to: the longest module prefix that is a file.
fn resolve(module: &Module, path: &str, files: &BTreeMap<Module, String>) -> Option<Module> {
    let mut segments = path.split("::").filter(|s| !s.is_empty()).peekable();
    let mut full: Module = match segments.peek().copied() {
        Some("crate") => {
            segments.next();
            Vec::new()
        }
        Some("super") => {
            let mut base = module.clone();
            while segments.peek() == Some(&"super") {
                segments.next();
                base.pop();
            }
            base
        }
        Some("self") => {
            segments.next();
            module.clone()
        }
        _ => return None,
    };
    full.extend(segments.map(str::to_string));
    (0..=full.len()).rev().map(|n| full[..n].to_vec()).find(|m| files.contains_key(m))
}

fn edges() -> (BTreeMap<Module, String>, BTreeMap<Module, BTreeSet<Module>>) {
    let mut files = BTreeMap::new();
    modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &[], &mut files);
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, text) in &files {
        for path in paths(&code(text)) {
            if let Some(to) = resolve(module, &path, &files).filter(|to| to != module) {
                edges.entry(module.clone()).or_default().insert(to);
            }
        }
    }
    (files, edges)
}

#[test]
fn no_two_files_import_each_other() {
    let (_, edges) = edges();
    let circles: Vec<String> = edges
        .iter()
        .flat_map(|(a, tos)| tos.iter().map(move |b| (a, b)))
        .filter(|(a, b)| a < b && edges.get(*b).is_some_and(|back| back.contains(*a)))
        .map(|(a, b)| format!("{} <-> {}", a.join("::"), b.join("::")))
        .collect();
    assert!(circles.is_empty(), "files that import each other: {circles:?}");
    assert!(edges.len() > 50, "the scan found too few imports to be trusted: {}", edges.len());
}

#[test]
fn lower_layers_import_no_upper_one() {
    const LOWER: &[&str] = &["data", "nn", "kernels", "formats", "linalg", "artifact"];
    const UPPER: &[&str] = &["component", "pipeline", "experiment", "report", "registry"];
    let (_, edges) = edges();
    let wrong: Vec<String> = edges
        .iter()
        .filter(|(from, _)| from.first().is_some_and(|top| LOWER.contains(&top.as_str())))
        .flat_map(|(from, tos)| tos.iter().map(move |to| (from, to)))
        .filter(|(_, to)| to.first().is_some_and(|top| UPPER.contains(&top.as_str())))
        .map(|(from, to)| format!("{} -> {}", from.join("::"), to.join("::")))
        .collect();
    assert!(wrong.is_empty(), "lower layers importing upper ones: {wrong:?}");
}
