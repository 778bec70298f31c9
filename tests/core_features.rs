//! relab-core must be compiled the same way whichever packages cargo builds. It is a Rust dylib, and
//! `target/<profile>/deps/librelab_core.so` carries no build hash in its name: if building one plugin alone
//! (`cargo build -p PLUGIN`, `cargo build` in the plugin's folder, `cargo test -p PLUGIN`) resolved relab-core's
//! dependencies with other features than the whole workspace does, cargo would write a differently compiled
//! relab-core over the binary's, and `target/<profile>/relab` would stop at start-up with `undefined symbol`.
//!
//! Cargo unifies a crate's features over the packages it builds, so this test asks `cargo tree` (which resolves
//! without compiling) for every package in relab-core's dependency graph and its features, once per way of
//! building, and requires them all to equal the whole workspace's. The fix for a failure is in core/Cargo.toml:
//! declare the crate it names there with the features the workspace gives it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One way of building: how to call cargo and what to say about it.
struct Selection {
    what: String,
    dir: PathBuf,
    args: Vec<String>,
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo tree` over normal and build dependencies, plus dev-dependencies (which cargo unifies into the build of
/// a package whose tests it builds) when `dev` holds; one `depth name vX.Y.Z features` line per node.
fn tree(dir: &Path, args: &[String], dev: bool) -> String {
    let edges = if dev { "normal,build,dev" } else { "normal,build" };
    let out = Command::new(cargo())
        .args(["tree", "--locked", "--prefix", "depth", "--format", "{p} {f}", "--edges", edges])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree {} in {} failed:\n{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every node (`name vX.Y.Z (path) features`) reachable from relab-core in a `cargo tree --prefix depth` output.
/// cargo prints a node's dependencies once, at its first appearance, and marks the later ones `(*)`, so the whole
/// graph is read first and then walked from relab-core.
fn core_graph(tree: &str) -> BTreeSet<String> {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack: Vec<String> = Vec::new();
    for line in tree.lines().filter(|l| !l.trim().is_empty()) {
        let digits = line.find(|c: char| !c.is_ascii_digit()).unwrap_or(line.len());
        let depth: usize = line[..digits].parse().unwrap_or_else(|_| panic!("unexpected cargo tree line {line:?}"));
        let node = line[digits..].trim_end().trim_end_matches("(*)").trim_end().to_string();
        stack.truncate(depth);
        if let Some(parent) = stack.last() {
            deps.get_mut(parent).unwrap().insert(node.clone());
        }
        deps.entry(node.clone()).or_default();
        stack.push(node);
    }
    let mut todo: Vec<&String> = deps.keys().filter(|n| n.starts_with("relab-core v")).collect();
    assert!(!todo.is_empty(), "relab-core is not in this cargo tree:\n{tree}");
    let mut seen = BTreeSet::new();
    while let Some(node) = todo.pop() {
        if seen.insert(node.clone()) {
            todo.extend(&deps[node]);
        }
    }
    seen
}

/// `name vX.Y.Z` → the feature lists it is built with (two where it is also built for a build script or a
/// proc-macro with other features).
fn by_package(graph: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in graph {
        let mut words = node.splitn(3, ' ');
        let package = format!("{} {}", words.next().unwrap(), words.next().unwrap_or(""));
        let features = words.next().unwrap_or("").rsplit(' ').next().unwrap_or("");
        let features = if features.starts_with('(') || features.is_empty() { "(none)" } else { features };
        map.entry(package).or_default().insert(features.to_string());
    }
    map
}

fn difference(reference: &BTreeSet<String>, other: &BTreeSet<String>) -> String {
    let (reference, other) = (by_package(reference), by_package(other));
    let none = BTreeSet::new();
    let mut text = String::new();
    for package in reference.keys().chain(other.keys()).collect::<BTreeSet<_>>() {
        let (r, o) = (reference.get(package).unwrap_or(&none), other.get(package).unwrap_or(&none));
        if r != o {
            let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(" | ");
            text += &format!("    {package}\n        workspace: {}\n        here:      {}\n", list(r), list(o));
        }
    }
    text
}

/// Each workspace member's package name, from `cargo tree --workspace --depth 0`.
fn members() -> Vec<String> {
    let out = tree(root(), &["--workspace".into(), "--depth".into(), "0".into()], false);
    out.lines()
        .filter_map(|l| l.trim_start_matches(|c: char| c.is_ascii_digit()).split(' ').next())
        .filter(|n| !n.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn relab_core_is_built_with_the_same_dependency_features_whoever_builds_it() {
    let members = members();
    assert!(members.iter().any(|m| m == "relab-core"), "relab-core is not a workspace member: {members:?}");
    let mut selections = vec![
        Selection { what: "cargo build --workspace".into(), dir: root().into(), args: vec!["--workspace".into()] },
        Selection { what: "cargo build (default members)".into(), dir: root().into(), args: vec![] },
    ];
    for member in &members {
        selections.push(Selection {
            what: format!("cargo build -p {member}"),
            dir: root().into(),
            args: vec!["-p".into(), member.clone()],
        });
    }
    for folder in ["plugins/examples/rotation-ssl", "plugins/supervised"] {
        selections.push(Selection {
            what: format!("cargo build in {folder}/"),
            dir: root().join(folder),
            args: vec![],
        });
    }

    let reference = core_graph(&tree(root(), &["--workspace".into()], false));
    // The difference → the builds that give it, so that each difference is printed once.
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    std::thread::scope(|scope| {
        let runs: Vec<_> = selections
            .iter()
            .flat_map(|s| [false, true].map(|dev| (s, dev)))
            .map(|(s, dev)| (s, dev, scope.spawn(move || tree(&s.dir, &s.args, dev))))
            .collect();
        for (selection, dev, run) in runs {
            let tree = run.join().unwrap();
            // A member that does not link relab-core (its proc-macro crate, say) cannot build it differently.
            if !tree.lines().any(|l| l.trim_start_matches(|c: char| c.is_ascii_digit()).starts_with("relab-core v")) {
                continue;
            }
            let diff = difference(&reference, &core_graph(&tree));
            if !diff.is_empty() {
                let what =
                    if dev { selection.what.replacen("cargo build", "cargo test", 1) } else { selection.what.clone() };
                failures.entry(diff).or_default().push(format!("`{what}`"));
            }
        }
    });
    let report: String = failures.iter().map(|(diff, builds)| format!("  {}:\n{diff}", builds.join(", "))).collect();
    assert!(
        failures.is_empty(),
        "these builds give relab-core's dependencies other features than `cargo build --workspace` does, so each \
         would write an incompatible librelab_core.so over the binary's (pin the features in core/Cargo.toml):\n\
         {report}"
    );
}
