//! A run folder relab owns: the marker file that says relab made the folder, and the lock that keeps a second relab
//! out of it while a run writes there.
//!
//! relab writes into a folder only when it does not exist yet, is empty, or carries the marker: a folder of the
//! user's that `--out` (or `runs/<name>`) happens to name is refused before anything in it is touched.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::lock::{self, FileLock};
use crate::{Error, Result};

/// The marker file relab writes into every folder it creates for a run (or a sweep of runs).
pub const MARKER: &str = ".relab-run";
/// The lock file of a run folder, held by the process that runs into it.
pub const LOCK: &str = ".relab-lock";

const MARKER_TEXT: &str = "This folder was made by relab for a run: relab replaces and removes the files it wrote \
                           here (see docs/run-folders.md), and refuses any folder without this file.\n";

/// A run folder held for one run: relab's, and locked until this value is dropped.
#[derive(Debug)]
pub struct RunFolder {
    pub dir: PathBuf,
    _lock: FileLock,
}

impl RunFolder {
    /// Takes `dir` for a run: [`mark`]s it, then locks it. A second process that claims it meanwhile gets an
    /// error naming this one's pid.
    pub fn claim(dir: &Path) -> Result<RunFolder> {
        mark(dir)?;
        let path = dir.join(LOCK);
        match lock::try_lock(&path)? {
            Ok(lock) => Ok(RunFolder { dir: dir.to_path_buf(), _lock: lock }),
            Err(held) => Err(Error::RunFolder {
                dir: dir.to_path_buf(),
                message: format!(
                    "another relab process ({}) is running into this folder; wait for it to end, stop it, or give \
                     this run another --out",
                    held.holder()
                ),
            }),
        }
    }
}

/// Makes `dir` relab's: creates it with its marker when it does not exist or is empty, accepts it when it carries
/// the marker, and refuses anything else without touching it.
pub fn mark(dir: &Path) -> Result<()> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if dir.join(MARKER).is_file() {
                return Ok(());
            }
            if entries.next().is_some() {
                return Err(Error::RunFolder {
                    dir: dir.to_path_buf(),
                    message: format!(
                        "this folder is not empty and is not a relab run folder (it has no {MARKER} file), so relab \
                         leaves it alone; give --out a new or empty folder (or another experiment name)"
                    ),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        Err(e) => return Err(Error::io(dir, e)),
    }
    let path = dir.join(MARKER);
    // Two runs creating the same folder at once both get here; the first writes the marker, and the lock decides.
    match OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(mut file) => file.write_all(MARKER_TEXT.as_bytes()).map_err(|e| Error::io(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_empty_or_marked_folders_are_taken_and_one_run_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let new = tmp.path().join("a/b");
        let held = RunFolder::claim(&new).unwrap();
        assert!(new.join(MARKER).is_file());
        let err = RunFolder::claim(&new).unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())) && err.contains("a/b"), "{err}");
        drop(held);
        RunFolder::claim(&new).unwrap();

        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        RunFolder::claim(&empty).unwrap();
        assert!(empty.join(MARKER).is_file());

        let mine = tmp.path().join("mine");
        fs::create_dir(&mine).unwrap();
        fs::write(mine.join("notes.txt"), "keep").unwrap();
        let err = RunFolder::claim(&mine).unwrap_err().to_string();
        assert!(err.contains("not a relab run folder"), "{err}");
        let left: Vec<_> = fs::read_dir(&mine).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["notes.txt"], "nothing added, nothing removed");

        let file = tmp.path().join("file");
        fs::write(&file, "x").unwrap();
        assert!(RunFolder::claim(&file).is_err());
    }
}
