//! Computes relab-core's ABI stamp (`RELAB_ABI_STAMP`, read by `src/abi.rs`): everything that must be equal between
//! the relab binary and a plugin library for the library's code to run against this crate's types. A Rust dylib has
//! no stable ABI, so the stamp is strict: the crate version and a hash of its source, the compiler (version and
//! commit), burn's exact version, the target, the cargo features and whether debug assertions are on.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=build.rs");
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let features: Vec<&str> = ["wgpu", "wgpu-untuned", "cuda"]
        .into_iter()
        .filter(|f| std::env::var_os(format!("CARGO_FEATURE_{}", f.to_uppercase().replace('-', "_"))).is_some())
        .collect();
    wgpu_backend_cfg();
    let stamp = format!(
        "relab-core {} (source {}); rustc {}; burn {}; target {}; features [{}]; debug-assertions {}",
        env("CARGO_PKG_VERSION"),
        source_hash(),
        rustc_version(),
        burn_version(),
        env("TARGET"),
        features.join(","),
        if env("CARGO_CFG_DEBUG_ASSERTIONS").is_empty() { "off" } else { "on" },
    );
    println!("cargo:rustc-env=RELAB_ABI_STAMP={stamp}");
}

/// `cfg(wgpu_backend)`: whether this build has the wgpu backend at all, tuned (`wgpu`) or not (`wgpu-untuned`,
/// which `wgpu` includes).
fn wgpu_backend_cfg() {
    println!("cargo::rustc-check-cfg=cfg(wgpu_backend)");
    if std::env::var_os("CARGO_FEATURE_WGPU_UNTUNED").is_some() {
        println!("cargo::rustc-cfg=wgpu_backend");
    }
}

/// `1.95.0 (59807616e 2026-04-10)`: `rustc -V` without the program name.
fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-V").output().expect("rustc -V");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    text.strip_prefix("rustc ").unwrap_or(&text).to_string()
}

/// burn's version from this crate's exact pin (`burn = { version = "=X.Y.Z", ... }`): an exact pin is what makes the
/// requirement the version itself, so anything else stops the build.
fn burn_version() -> String {
    let manifest = std::fs::read_to_string("Cargo.toml").expect("relab-core's Cargo.toml");
    let line = manifest.lines().find(|l| l.trim_start().starts_with("burn =")).expect("a `burn =` line");
    let version = line.split("version = \"").nth(1).and_then(|rest| rest.split('"').next()).expect("burn's version");
    version
        .strip_prefix('=')
        .unwrap_or_else(|| panic!("burn must be pinned exactly (\"=X.Y.Z\"), not {version:?}"))
        .to_string()
}

/// A hash of every file under `src/` and of the manifest, by relative path and content: a plugin built before an
/// edit of relab-core carries another hash, even at the same version.
fn source_hash() -> String {
    let mut files = vec![PathBuf::from("Cargo.toml")];
    collect(Path::new("src"), &mut files);
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.to_string_lossy().hash(&mut hasher);
        std::fs::read(&file).expect("a source file").hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
