//! Advisory locks on files (`flock`, through `std::fs::File::lock`) that name their holder: the process that holds
//! one writes its pid into the file, so a second process can say who is in the way.
//!
//! The kernel drops the lock when its holder exits, however it exits (kill -9 included), so a lock file left behind
//! by a dead process is simply locked again by the next one: there is no stale lock to clean up.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    pub path: PathBuf,
}

/// What [`try_lock`] found when another process holds the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The holder's pid, as it wrote it (absent when the file does not name one yet).
    pub pid: Option<u32>,
}

impl Held {
    /// `pid 1234`, or `an unnamed process`.
    pub fn holder(&self) -> String {
        self.pid.map_or_else(|| "a process that has not written its pid yet".into(), |p| format!("pid {p}"))
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(|e| Error::io(path, e))
}

/// Takes the lock on `path` (creating the file) without waiting: `Ok(Err(held))` when another process holds it.
pub fn try_lock(path: &Path) -> Result<Result<FileLock, Held>> {
    let mut file = open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Ok(sign(file, path)?)),
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Ok(Err(Held { pid: text.trim().parse().ok() }))
        }
        Err(TryLockError::Error(e)) => Err(Error::io(path, e)),
    }
}

/// Takes the lock on `path`, waiting for its holder to let go.
pub fn lock(path: &Path) -> Result<FileLock> {
    let file = open(path)?;
    file.lock().map_err(|e| Error::io(path, e))?;
    sign(file, path)
}

/// Writes this process's pid into the lock file it now holds.
fn sign(mut file: File, path: &Path) -> Result<FileLock> {
    let written = file
        .set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{}", std::process::id()))
        .and_then(|_| file.flush());
    written.map_err(|e| Error::io(path, e))?;
    Ok(FileLock { _file: file, path: path.to_path_buf() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_names_its_holder_and_is_free_again_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        // A file left by a process that is gone: its pid is stale, but nobody holds the lock.
        std::fs::write(&path, "4194304\n").unwrap();
        let held = try_lock(&path).unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
        // flock treats two open files of one process as two owners, as it does two processes.
        let refused = try_lock(&path).unwrap().unwrap_err();
        assert_eq!(refused.pid, Some(std::process::id()));
        assert_eq!(refused.holder(), format!("pid {}", std::process::id()));

        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || lock(&path).map(|_| std::time::Instant::now()))
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        let released = std::time::Instant::now();
        drop(held);
        let acquired = waiter.join().unwrap().unwrap();
        assert!(acquired >= released, "the waiter got the lock only once the holder let go");
        assert!(try_lock(&path).unwrap().is_ok());
    }
}
