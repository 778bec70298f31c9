//! The shared stage cache: finished stage folders keyed by their input hash, reused across runs.
//!
//! An entry is a copy, never a hard link, of a run folder's files, and its files are made read-only: a user who
//! rewrites a run folder's `features.npy` in place changes that run folder only. An entry is used only when every
//! file matches the digest its `stage.json` recorded; one that does not is dropped with a warning. Each entry has a
//! lock file (`<hash>.lock`), held by the run that looks the entry up, computes the stage and stores it, so two runs
//! never write one entry at once (the second waits, then reuses the first's result).

use std::fs;
use std::path::{Path, PathBuf};

use super::lock::{self, FileLock};
use super::stage_record::StageRecord;
use crate::component::is_checkpoint_entry;
pub(crate) use crate::formats::atomic::remove_dir;
use crate::formats::digest;
use crate::{Error, Result};

/// A store of finished stage folders keyed by their input hash, shared by every run of this user, so an ablation
/// that changes only a late stage reuses the early ones even in a new run folder.
#[derive(Debug, Clone)]
pub struct StageCache {
    root: PathBuf,
}

/// `$RELAB_CACHE`, else `~/.cache/relab/stages`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RELAB_CACHE") {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/relab/stages"))
}

impl StageCache {
    pub fn new(root: PathBuf) -> Self {
        StageCache { root }
    }

    fn entry(&self, hash: &str) -> PathBuf {
        self.root.join(hash)
    }

    /// Locks the entry for `hash`, waiting (and saying so) while another process holds it.
    pub fn lock(&self, hash: &str) -> Result<FileLock> {
        fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let path = self.root.join(format!("{hash}.lock"));
        match lock::try_lock(&path)? {
            Ok(lock) => Ok(lock),
            Err(held) => {
                tracing::info!(
                    "the stage cache entry {hash} is in use by another relab process ({}); waiting for it",
                    held.holder()
                );
                lock::lock(&path)
            }
        }
    }

    /// Fills `dest` with the cached folder for `hash`, if the cache holds a complete one whose files match their
    /// digests. An entry that does not match is removed, with a warning, and `dest` is left empty.
    pub fn restore(&self, hash: &str, dest: &Path) -> Result<bool> {
        let src = self.entry(hash);
        let record = match StageRecord::read(&src) {
            Ok(Some(record)) if record.complete && record.hash == hash && !record.files.is_empty() => record,
            _ => return Ok(false),
        };
        remove_dir(dest)?;
        copy_tree(&src, dest, |_| false)?;
        set_read_only(dest, false)?;
        if let Err(mismatch) = digest::verify(dest, &record.files) {
            tracing::warn!(
                "{}: the stage cache entry {} does not match what was stored ({}); dropping the entry and computing \
                 the stage again",
                record.stage,
                src.display(),
                in_entry(&mismatch, &src, dest)
            );
            remove_dir(dest)?;
            set_read_only(&src, false)?;
            remove_dir(&src)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Stores a finished stage folder (its checkpoints left out), its files read-only. A failure only costs reuse,
    /// so it is logged.
    pub fn store(&self, hash: &str, src: &Path) {
        let dest = self.entry(hash);
        let tmp = self.root.join(format!(".{hash}.{}", std::process::id()));
        let result = (|| {
            remove_dir(&tmp)?;
            copy_tree(src, &tmp, is_checkpoint_entry)?;
            set_read_only(&tmp, true)?;
            if dest.exists() {
                set_read_only(&dest, false)?;
                remove_dir(&dest)?;
            }
            fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))
        })();
        if let Err(e) = result {
            tracing::warn!("could not store stage in the cache {}: {e}", self.root.display());
            let _ = set_read_only(&tmp, false);
            let _ = fs::remove_dir_all(&tmp);
        }
    }
}

/// The mismatch of a copy in `dest`, naming the cache entry's file in `src` instead.
fn in_entry(mismatch: &digest::Mismatch, src: &Path, dest: &Path) -> String {
    let path = mismatch.path.strip_prefix(dest).map_or_else(|_| mismatch.path.clone(), |p| src.join(p));
    format!("{}: {}", path.display(), mismatch.what)
}

/// Copies a folder tree file by file (a copy, never a link: `fs::copy` may share extents copy-on-write where the
/// file system reflinks, which no in-place write can reach), leaving out the top-level entries `skip` names.
pub(crate) fn copy_tree(src: &Path, dest: &Path, skip: fn(&str) -> bool) -> Result<()> {
    fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    for entry in fs::read_dir(src).map_err(|e| Error::io(src, e))? {
        let entry = entry.map_err(|e| Error::io(src, e))?;
        if skip(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| Error::io(&from, e))?;
        if kind.is_dir() {
            copy_tree(&from, &to, |_| false)?;
        } else {
            fs::copy(&from, &to).map_err(|e| Error::io(&from, e))?;
        }
    }
    Ok(())
}

/// Makes every file under `dir` read-only (or writable again); folders stay writable so the tree can be removed.
fn set_read_only(dir: &Path, read_only: bool) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_dir() {
            set_read_only(&path, read_only)?;
        } else if kind.is_file() {
            let mut permissions = entry.metadata().map_err(|e| Error::io(&path, e))?.permissions();
            if permissions.readonly() != read_only {
                #[allow(clippy::permissions_set_readonly_false)] // a copy of ours, made writable for its owner
                permissions.set_readonly(read_only);
                fs::set_permissions(&path, permissions).map_err(|e| Error::io(&path, e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::StageKind;
    use serde_json::Map;

    fn stage(dir: &Path, hash: &str, content: &[u8]) {
        fs::create_dir_all(dir.join("checkpoint")).unwrap();
        fs::write(dir.join("features.npy"), content).unwrap();
        fs::write(dir.join("checkpoint/state.json"), "{}").unwrap();
        let record = StageRecord {
            stage: StageKind::Features,
            hash: hash.into(),
            key: serde_json::Value::Null,
            plugin: None,
            params: serde_json::Value::Null,
            complete: true,
            seconds: 1.0,
            summary: Map::new(),
            files: digest::digest_tree(dir, |n| n == "stage.json" || is_checkpoint_entry(n)).unwrap(),
        };
        record.write(dir).unwrap();
    }

    #[test]
    fn entries_are_read_only_copies_checked_before_use() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let cache = StageCache::new(tmp.path().join("cache"));
        let run = tmp.path().join("run/features");
        stage(&run, "h1", b"features");
        cache.store("h1", &run);
        let entry = tmp.path().join("cache/h1");
        assert!(!entry.join("checkpoint").exists(), "checkpoints stay in the run folder");
        let stored = fs::metadata(entry.join("features.npy")).unwrap();
        assert!(stored.permissions().readonly());
        assert_ne!(stored.ino(), fs::metadata(run.join("features.npy")).unwrap().ino(), "no shared inode");

        let copy = tmp.path().join("other/features");
        assert!(cache.restore("h1", &copy).unwrap());
        assert_eq!(fs::read(copy.join("features.npy")).unwrap(), b"features");
        assert!(!fs::metadata(copy.join("features.npy")).unwrap().permissions().readonly());
        assert!(!cache.restore("h2", &copy).unwrap(), "no entry for another hash");

        // An entry whose file changed is dropped.
        set_read_only(&entry, false).unwrap();
        fs::write(entry.join("features.npy"), b"feature5").unwrap();
        assert!(!cache.restore("h1", &copy).unwrap());
        assert!(!entry.exists() && !copy.exists());
    }

    #[test]
    fn a_second_process_waits_for_the_entry_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = StageCache::new(tmp.path().to_path_buf());
        let held = cache.lock("h").unwrap();
        let waiter = {
            let cache = cache.clone();
            std::thread::spawn(move || cache.lock("h").map(|_| std::time::Instant::now()))
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        let released = std::time::Instant::now();
        drop(held);
        assert!(waiter.join().unwrap().unwrap() >= released);
    }
}
