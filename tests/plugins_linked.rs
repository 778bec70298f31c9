//! Every plugin crate under `plugins/` must be a dependency of the `relab` package: `build.rs` turns those
//! dependencies into `use` lines, so a plugin that is a dependency can never be dropped by the linker.

use std::fs;
use std::path::Path;

fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(rest) = line.strip_prefix("name") {
            return Some(rest.trim_start().trim_start_matches('=').trim().trim_matches('"').to_string());
        }
    }
    None
}

fn plugin_crates(dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let manifest = entry.path().join("Cargo.toml");
        // plugins/examples/ has no manifest of its own: its crates are plugin libraries, loaded at run time.
        if let Ok(text) = fs::read_to_string(&manifest) {
            found.push(package_name(&text).unwrap_or_else(|| panic!("{} has no package name", manifest.display())));
        }
    }
}

#[test]
fn every_plugin_crate_is_linked_into_the_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut crates = Vec::new();
    plugin_crates(&root.join("plugins"), &mut crates);
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap().split("\n[").next().unwrap();
    for name in &crates {
        assert!(name.starts_with("relab-plugin-"), "plugin crate `{name}` must be named relab-plugin-*");
        assert!(
            deps.lines()
                .any(|l| l.trim_start().starts_with(&format!("{name} "))
                    || l.trim_start().starts_with(&format!("{name}."))),
            "plugin crate `{name}` is not a [dependencies] entry of the relab package, so its plugins would be missing"
        );
    }
}
