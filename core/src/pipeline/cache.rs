//! The shared stage cache: finished stage folders keyed by their input hash, reused across runs.

use std::fs;
use std::path::{Path, PathBuf};

use super::stage_record::StageRecord;
pub(crate) use crate::formats::atomic::remove_dir;
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

    /// Fills `dest` with the cached folder for `hash`, if the cache holds a complete one.
    pub fn restore(&self, hash: &str, dest: &Path) -> Result<bool> {
        let src = self.entry(hash);
        match StageRecord::read(&src) {
            Ok(Some(record)) if record.complete && record.hash == hash => {}
            _ => return Ok(false),
        }
        remove_dir(dest)?;
        copy_tree(&src, dest)?;
        Ok(true)
    }

    /// Stores a finished stage folder (its checkpoint left out). A failure only costs reuse, so it is logged.
    pub fn store(&self, hash: &str, src: &Path) {
        let dest = self.entry(hash);
        let tmp = self.root.join(format!(".{hash}.{}", std::process::id()));
        let result = (|| {
            remove_dir(&tmp)?;
            copy_tree(src, &tmp)?;
            remove_dir(&tmp.join("checkpoint"))?;
            remove_dir(&dest)?;
            fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))
        })();
        if let Err(e) = result {
            tracing::warn!("could not store stage in the cache {}: {e}", self.root.display());
            let _ = fs::remove_dir_all(&tmp);
        }
    }
}

/// Copies a folder tree, hard-linking files where the file system allows (artifacts are never modified in place:
/// every write replaces the file by rename).
pub(crate) fn copy_tree(src: &Path, dest: &Path) -> Result<()> {
    fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    for entry in fs::read_dir(src).map_err(|e| Error::io(src, e))? {
        let entry = entry.map_err(|e| Error::io(src, e))?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| Error::io(&from, e))?;
        if kind.is_dir() {
            copy_tree(&from, &to)?;
        } else if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to).map_err(|e| Error::io(&from, e))?;
        }
    }
    Ok(())
}
