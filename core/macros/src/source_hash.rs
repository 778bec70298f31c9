//! `crate_source_hash!()`: a hash of the sources of the crate being compiled, computed when the macro expands (a
//! crate is compiled again, and the macro expanded again, whenever one of its source files changes).
//!
//! The stage cache keys a plugin's results by it, so an edited plugin (its code or a default) never reuses a
//! result computed by the code before the edit.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// `Cargo.toml`, `build.rs` and every file under `src/` of the crate in `CARGO_MANIFEST_DIR`, by relative path and
/// content, hashed as hex; empty when cargo did not say which crate is being compiled.
pub fn of_calling_crate() -> String {
    let Some(root) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
        return String::new();
    };
    let mut files: Vec<PathBuf> =
        ["Cargo.toml", "build.rs"].iter().map(PathBuf::from).filter(|f| root.join(f).is_file()).collect();
    collect(&root, Path::new("src"), &mut files);
    files.sort();
    // SipHash with fixed keys: the same sources give the same hash in every build by this compiler.
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.to_string_lossy().hash(&mut hasher);
        std::fs::read(root.join(&file)).unwrap_or_default().hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else { return };
    for entry in entries.flatten() {
        let relative = dir.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect(root, &relative, files);
        } else {
            files.push(relative);
        }
    }
}
