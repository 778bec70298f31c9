//! Atomic file writes: write a hidden temporary file next to the target, fsync it, rename it over the target.
//!
//! A reader (or a resumed run) therefore sees either the old file or the complete new one, never a half-written file
//! that looks whole. The temporary file (`.<name>.<pid>.<n>.tmp`) is removed when writing fails or panics.
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::{Error, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Removes the temporary file when dropped, unless it was renamed into place.
struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The directory `path` lives in (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically, creating parent directories.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |w| w.write_all(bytes))
}

/// Writes `text` to `path` atomically, creating parent directories.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_bytes(path, text.as_bytes())
}

/// Writes `value` as pretty-printed JSON (with a final newline) to `path` atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::format(path, format!("cannot serialise this value as JSON: {e}")))?;
    bytes.push(b'\n');
    write_bytes(path, &bytes)
}

/// Writes whatever `f` writes (through a buffer) to `path` atomically, creating parent directories. When `f` fails,
/// the target is left as it was and the temporary file is removed.
pub fn write_with(path: &Path, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let Some(name) = path.file_name() else {
        return Err(Error::io(path, io::Error::new(io::ErrorKind::InvalidInput, "not a file path")));
    };
    let dir = parent_of(path);
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;

    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{}.{n}.tmp", name.to_string_lossy(), std::process::id()));
    let file = OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut guard = TempGuard { path: tmp, armed: true };

    let written = (|| -> io::Result<File> {
        let mut w = BufWriter::with_capacity(1 << 16, file);
        f(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(file)
    })();
    let file = written.map_err(|e| Error::io(path, e))?;
    drop(file);

    fs::rename(&guard.path, path).map_err(|e| Error::io(path, e))?;
    guard.armed = false;
    sync_dir(dir);
    Ok(())
}

/// Makes the rename durable where the platform allows it; failure here is not an error (the data is already synced).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Removes a folder tree; a folder that is already gone is not an error.
pub fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn writes_and_replaces_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/out.txt");
        write_text(&target, "first").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "first");
        write_bytes(&target, b"second").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "second");
        assert_eq!(entries(target.parent().unwrap()), vec!["out.txt"]);
    }

    #[test]
    fn failing_writer_leaves_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        write_bytes(&target, b"old content").unwrap();
        let err = write_with(&target, |w| {
            w.write_all(&[0u8; 200_000])?; // more than the buffer: part of it reached the temporary file
            Err(io::Error::other("boom"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"old content");
        assert_eq!(entries(dir.path()), vec!["out.bin"]);

        // A failing first write never creates the target at all.
        let fresh = dir.path().join("fresh.bin");
        assert!(write_with(&fresh, |_| Err(io::Error::other("nope"))).is_err());
        assert!(!fresh.exists());
        assert_eq!(entries(dir.path()), vec!["out.bin"]);
    }

    #[test]
    fn panicking_writer_removes_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("p.txt");
        let r = std::panic::catch_unwind(|| {
            let _ = write_with(&target, |w| {
                w.write_all(b"partial")?;
                panic!("writer panicked");
            });
        });
        assert!(r.is_err());
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn json_is_pretty_with_newline() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.json");
        write_json(&target, &serde_json::json!({"a": 1, "b": [1, 2]})).unwrap();
        let text = fs::read_to_string(&target).unwrap();
        assert!(text.contains("\n  \"a\": 1"), "{text}");
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn bare_file_name_and_missing_name() {
        assert!(write_bytes(Path::new("/"), b"x").is_err());
        assert!(write_bytes(Path::new(""), b"x").is_err());
    }
}
