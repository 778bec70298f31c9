//! Plugins from shared libraries, loaded with `libloading`.
//!
//! A plugin library is a Rust `dylib` crate that links the host's `librelab_core.so` (see [`crate::abi`]) and ends
//! with [`crate::export_plugins!`], which exports three symbols:
//! * `relab_plugin_stamp` (C ABI): the [`crate::abi::STAMP`] the library was compiled against. Read first; any
//!   difference from the host's stamp refuses the library before anything else of it is called.
//! * `relab_plugin_core_anchor` (C ABI): [`crate::abi::anchor`] as the library sees it, equal to the host's only when
//!   the library is bound to the host's copy of relab-core (one burn, one autodiff graph).
//! * `relab_plugin_entries` (Rust ABI, called only once both checks pass): the crate's name and its
//!   [`PluginEntry`]s, the same plain data the compiled-in plugins submit.
//!
//! Libraries are never unloaded: entries point into them, and what they build may run until the process ends.

use std::collections::BTreeMap;
use std::ffi::{CStr, OsStr, c_char};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::entry::PluginEntry;
use crate::{Error, Result, abi};

/// The symbol that returns a library's ABI stamp.
pub const STAMP_SYMBOL: &str = "relab_plugin_stamp";
/// The symbol that returns the address [`crate::abi::anchor`] has in the library.
pub const ANCHOR_SYMBOL: &str = "relab_plugin_core_anchor";
/// The symbol that returns the library's [`DynamicPlugins`].
pub const ENTRIES_SYMBOL: &str = "relab_plugin_entries";
/// The environment variable with more plugin libraries: `:`-separated files or folders.
pub const PLUGIN_PATH_VAR: &str = "RELAB_PLUGIN_PATH";

/// What a library registers.
pub struct DynamicPlugins {
    /// The crate that defines the plugins (`env!("CARGO_PKG_NAME")`), shown by `plugins list`.
    pub crate_name: &'static str,
    pub entries: Vec<PluginEntry>,
}

/// A library that passed every check, and its entries.
#[derive(Debug, Clone)]
pub struct PluginLibrary {
    /// The library's canonical path.
    pub path: PathBuf,
    pub crate_name: &'static str,
    pub entries: Vec<PluginEntry>,
}

/// Libraries loaded by this process, by canonical path: a second request for one returns the first load.
static LOADED: Mutex<BTreeMap<PathBuf, PluginLibrary>> = Mutex::new(BTreeMap::new());

/// Loads the plugin library at `path` (once per process) and returns its entries.
pub fn load(path: &Path) -> Result<PluginLibrary> {
    let canonical = path.canonicalize().map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound { "no such file".to_string() } else { e.to_string() };
        Error::Plugin(format!("plugin library {}: {why}", path.display()))
    })?;
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(library) = loaded.get(&canonical) {
        return Ok(library.clone());
    }
    let library = open(&canonical)?;
    loaded.insert(canonical, library.clone());
    Ok(library)
}

fn open(path: &Path) -> Result<PluginLibrary> {
    let fail = |why: String| Error::Plugin(format!("plugin library {}: {why}", path.display()));
    if let Some(why) = super::library_file::check(path) {
        return Err(fail(why));
    }
    // SAFETY: loading a library runs its initialisers; a relab plugin's are those of any Rust dylib. What is not a
    // relab plugin is refused below before any of its functions is called.
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| fail(cannot_load(&e.to_string())))?;
    // Never unloaded (see the module's documentation); a refused library stays mapped too, which costs nothing.
    let library: &'static libloading::Library = Box::leak(Box::new(library));

    // SAFETY: a relab plugin defines this symbol as `extern "C" fn() -> *const c_char` (export_plugins!).
    let stamp = unsafe { library.get::<extern "C" fn() -> *const c_char>(STAMP_SYMBOL.as_bytes()) }.map_err(|_| {
        fail(format!(
            "not a relab plugin: it exports no `{STAMP_SYMBOL}` (a plugin crate is a `dylib` that ends with \
             `relab_core::export_plugins! {{ ... }}`; see CONTRIBUTING.md)"
        ))
    })?;
    let pointer = stamp();
    if pointer.is_null() {
        return Err(fail(format!("not a relab plugin: its `{STAMP_SYMBOL}` returns a null pointer")));
    }
    // SAFETY: a non-null pointer from the stamp function points at the NUL-terminated stamp compiled into it.
    let theirs = unsafe { CStr::from_ptr(pointer) }.to_string_lossy().into_owned();
    if theirs != abi::STAMP {
        return Err(fail(format!(
            "built against another relab-core, so its code cannot run in this relab:\n  library stamp: {theirs}\n  \
             relab stamp:   {}\nrebuild the library against this relab: from relab's workspace, `cargo build \
             --release` (a plugin under plugins/examples/) or `cargo build --release --manifest-path \
             PLUGIN/Cargo.toml --target-dir RELAB/target` (a crate elsewhere; see CONTRIBUTING.md)",
            abi::STAMP
        )));
    }

    // SAFETY: the stamps match, so the library was compiled from this very relab-core and the symbols below have
    // the signatures export_plugins! gives them.
    let anchor = unsafe { library.get::<extern "C" fn() -> usize>(ANCHOR_SYMBOL.as_bytes()) }
        .map_err(|_| fail(format!("its stamp matches but it exports no `{ANCHOR_SYMBOL}`")))?;
    if anchor() != abi::anchor() {
        return Err(fail(
            "its stamp matches, but it is bound to a second copy of librelab_core, not the one this relab runs \
             (its tensors and autodiff graph would not be relab's): build it into the target directory relab \
             was built in (`--target-dir RELAB/target`)"
                .into(),
        ));
    }
    // SAFETY: as above.
    let entries = unsafe { library.get::<fn() -> DynamicPlugins>(ENTRIES_SYMBOL.as_bytes()) }
        .map_err(|_| fail(format!("its stamp matches but it exports no `{ENTRIES_SYMBOL}`")))?;
    let plugins = std::panic::catch_unwind(std::panic::AssertUnwindSafe(*entries))
        .map_err(|panic| fail(format!("its registration panicked: {}", panic_message(&*panic))))?;
    if plugins.entries.is_empty() {
        return Err(fail(format!("its registration ({}) returned no plugins", plugins.crate_name)));
    }
    Ok(PluginLibrary { path: path.to_path_buf(), crate_name: plugins.crate_name, entries: plugins.entries })
}

/// The loader's message, with what to do when the library needs a relab-core or std that is not found.
fn cannot_load(message: &str) -> String {
    if message.contains("librelab_core") || message.contains("libstd-") {
        format!(
            "cannot load it: {message}\n(the library links relab-core and std dynamically; run it from a relab built \
             in the same target directory, whose run path finds both)"
        )
    } else {
        format!("cannot load it: {message}")
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// The libraries a plugin path names (`RELAB_PLUGIN_PATH`'s syntax: `:`-separated files or folders; a folder
/// contributes every shared library in it, by name). A name that does not exist is an error.
pub fn libraries_on_path(value: &OsStr) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for item in std::env::split_paths(value).filter(|p| !p.as_os_str().is_empty()) {
        if item.is_dir() {
            let read = std::fs::read_dir(&item).map_err(|e| Error::io(&item, e))?;
            let mut libraries: Vec<PathBuf> = read
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension() == Some(OsStr::new(std::env::consts::DLL_EXTENSION)))
                .collect();
            libraries.sort();
            found.extend(libraries);
        } else if item.is_file() {
            found.push(item);
        } else {
            return Err(Error::Plugin(format!("{PLUGIN_PATH_VAR} names {}, which does not exist", item.display())));
        }
    }
    Ok(found)
}

/// The libraries `RELAB_PLUGIN_PATH` names (none when it is unset).
pub fn libraries_from_env() -> Result<Vec<PathBuf>> {
    std::env::var_os(PLUGIN_PATH_VAR).map_or(Ok(Vec::new()), |v| libraries_on_path(&v))
}

/// Makes this crate a plugin library: `relab_core::export_plugins! { pretrain: RotationPrediction }` (one
/// `slot: Type` per plugin, the slots as in [`crate::submit_plugin!`]). The crate's `Cargo.toml` needs
/// `crate-type = ["dylib"]`; see CONTRIBUTING.md.
#[macro_export]
macro_rules! export_plugins {
    ($($slot:ident : $ty:ty),+ $(,)?) => {
        /// The relab-core ABI stamp this library was compiled against (the bytes are this library's own).
        #[unsafe(no_mangle)]
        pub extern "C" fn relab_plugin_stamp() -> *const ::std::ffi::c_char {
            $crate::abi::STAMP_C.as_ptr()
        }

        /// Where the relab-core this library is bound to keeps its anchor.
        #[unsafe(no_mangle)]
        pub extern "C" fn relab_plugin_core_anchor() -> usize {
            $crate::abi::anchor()
        }

        /// This library's plugins.
        #[unsafe(no_mangle)]
        pub fn relab_plugin_entries() -> $crate::registry::DynamicPlugins {
            $crate::registry::DynamicPlugins {
                crate_name: env!("CARGO_PKG_NAME"),
                entries: vec![$(
                    $crate::registry::PluginEntry::$slot::<$ty>(env!("CARGO_PKG_VERSION"))
                        .with_source($crate::crate_source_hash!())
                ),+],
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named() {
        let msg = load(Path::new("/nonexistent/libnothing.so")).unwrap_err().to_string();
        assert!(msg.contains("/nonexistent/libnothing.so") && msg.contains("no such file"), "{msg}");
    }

    #[test]
    fn a_file_that_is_no_library_is_refused_by_the_loader() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("libfake.so");
        std::fs::write(&fake, b"not an ELF file").unwrap();
        let msg = load(&fake).unwrap_err().to_string();
        assert!(msg.contains("libfake.so") && msg.contains("not a shared library (no ELF header)"), "{msg}");
    }

    #[test]
    fn a_plugin_path_lists_files_and_the_libraries_of_folders() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("plugins");
        std::fs::create_dir(&folder).unwrap();
        let ext = std::env::consts::DLL_EXTENSION;
        for name in [format!("libb.{ext}"), format!("liba.{ext}"), "notes.txt".into()] {
            std::fs::write(folder.join(name), b"").unwrap();
        }
        let single = dir.path().join(format!("libc.{ext}"));
        std::fs::write(&single, b"").unwrap();
        let value = std::env::join_paths([single.clone(), folder.clone()]).unwrap();
        let found = libraries_on_path(&value).unwrap();
        assert_eq!(found, vec![single, folder.join(format!("liba.{ext}")), folder.join(format!("libb.{ext}"))]);
        let missing = std::env::join_paths([dir.path().join("gone")]).unwrap();
        let msg = libraries_on_path(&missing).unwrap_err().to_string();
        assert!(msg.contains("RELAB_PLUGIN_PATH") && msg.contains("gone"), "{msg}");
    }
}
