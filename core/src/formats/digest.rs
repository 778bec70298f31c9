//! Content digests of files: the SHA-256 and size written beside an artifact when it is made, and checked before
//! the artifact is used again (a stage folder reused from a run folder or the stage cache, a checkpoint resumed).
//!
//! A file that was truncated, flipped or rewritten in place since then fails the check with a message that names it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{Error, Result};

/// What a file held when it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
}

/// Files by their path relative to a folder, `/`-separated.
pub type Digests = BTreeMap<String, FileDigest>;

/// The size and SHA-256 of `path`, read in 1 MiB blocks.
pub fn digest_file(path: &Path) -> Result<FileDigest> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok(FileDigest { size, sha256: hex(&hasher.finalize()) })
}

/// The digest of every file under `dir`, sub-folders included, except the top-level entries `skip` refuses.
pub fn digest_tree(dir: &Path, skip: impl Fn(&str) -> bool) -> Result<Digests> {
    let mut out = Digests::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let folder = dir.join(&relative);
        for entry in std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, e))? {
            let entry = entry.map_err(|e| Error::io(&folder, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if relative.as_os_str().is_empty() && skip(&name) {
                continue;
            }
            let path = relative.join(&name);
            let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
            if kind.is_dir() {
                stack.push(path);
            } else {
                out.insert(key(&path), digest_file(&entry.path())?);
            }
        }
    }
    Ok(out)
}

fn key(relative: &Path) -> String {
    relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// How a recorded file differs from what is on disk now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub path: PathBuf,
    pub what: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

/// Checks every recorded file under `dir` against its digest: the first one missing, of another size or of another
/// content. Files that are not recorded are not looked at.
pub fn verify(dir: &Path, recorded: &Digests) -> Result<(), Mismatch> {
    for (name, expected) in recorded {
        let path = dir.join(name);
        let mismatch = |what: String| Mismatch { path: path.clone(), what };
        let size = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => return Err(mismatch("not a file".into())),
            Err(e) => return Err(mismatch(format!("cannot be read ({e})"))),
        };
        if size != expected.size {
            return Err(mismatch(format!("{size} bytes, but {} were written", expected.size)));
        }
        let actual = digest_file(&path).map_err(|e| mismatch(format!("cannot be read ({e})")))?;
        if actual.sha256 != expected.sha256 {
            return Err(mismatch("its content changed since it was written (SHA-256 differs)".into()));
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_and_size_and_changes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a.txt"), b"abc").unwrap();
        std::fs::write(dir.path().join("sub/b.bin"), b"").unwrap();
        std::fs::write(dir.path().join("skipped"), b"x").unwrap();
        let digests = digest_tree(dir.path(), |n| n == "skipped").unwrap();
        assert_eq!(digests.keys().collect::<Vec<_>>(), ["a.txt", "sub/b.bin"]);
        // FIPS 180-2's example, and the digest of nothing.
        assert_eq!(digests["a.txt"].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(digests["a.txt"].size, 3);
        assert_eq!(digests["sub/b.bin"].sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(verify(dir.path(), &digests), Ok(()));

        std::fs::write(dir.path().join("a.txt"), b"abd").unwrap();
        let err = verify(dir.path(), &digests).unwrap_err();
        assert!(
            err.to_string().ends_with("a.txt: its content changed since it was written (SHA-256 differs)"),
            "{err}"
        );
        std::fs::write(dir.path().join("a.txt"), b"ab").unwrap();
        assert_eq!(verify(dir.path(), &digests).unwrap_err().what, "2 bytes, but 3 were written");
        std::fs::remove_file(dir.path().join("a.txt")).unwrap();
        assert!(verify(dir.path(), &digests).unwrap_err().what.starts_with("cannot be read"));
    }
}
