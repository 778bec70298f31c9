//! `manifest.json`, written last into every checkpoint folder: the size and SHA-256 of each of its files and how many
//! records the stage's `metrics.jsonl` held. A checkpoint is resumed only when its files match; the metrics file is
//! cut back to those records, so epochs logged after the checkpoint are not logged twice when they run again.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::formats::atomic::write_json;
use crate::formats::digest::{self, Digests};

pub(crate) const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    /// Records in the stage's `metrics.jsonl` when the checkpoint was written (a count, not bytes: records hold
    /// timings, and a checkpoint must be the same bits run after run).
    pub metrics_records: u64,
    pub files: Digests,
}

/// Digests every file of the checkpoint folder `dir` and writes the manifest beside them.
pub(crate) fn write(dir: &Path, metrics_records: u64) -> Result<()> {
    let files = digest::digest_tree(dir, |name| name == MANIFEST_FILE)?;
    write_json(&dir.join(MANIFEST_FILE), &Manifest { metrics_records, files })
}

/// The manifest of the checkpoint folder `dir` when every file it lists matches; otherwise why not.
pub(crate) fn verify(dir: &Path) -> std::result::Result<Manifest, String> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (a checkpoint written in full has one)", path.display()))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| format!("{}: not a checkpoint manifest: {e}", path.display()))?;
    if manifest.files.is_empty() {
        return Err(format!("{}: lists no files", path.display()));
    }
    digest::verify(dir, &manifest.files).map_err(|m| m.to_string())?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_trusted_only_while_its_files_match() {
        let dir = tempfile::tempdir().unwrap();
        assert!(verify(dir.path()).unwrap_err().contains("manifest.json"));
        std::fs::write(dir.path().join("state.json"), "{\"epoch\": 2}").unwrap();
        std::fs::write(dir.path().join("model.bin"), [1u8, 2, 3]).unwrap();
        write(dir.path(), 42).unwrap();
        let manifest = verify(dir.path()).unwrap();
        assert_eq!(manifest.metrics_records, 42);
        assert_eq!(manifest.files.keys().collect::<Vec<_>>(), ["model.bin", "state.json"]);
        std::fs::write(dir.path().join("state.json"), "{\"epoch\": 9}").unwrap();
        let why = verify(dir.path()).unwrap_err();
        assert!(why.contains("state.json") && why.contains("SHA-256"), "{why}");
    }
}
