//! `stage.json`: the record of which inputs produced a stage folder, whether the stage finished, and the digest of
//! every file it wrote.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::component::StageKind;
use crate::formats::atomic;
use crate::formats::digest::Digests;
use crate::{Error, Result};

/// `stage.json` in every stage folder: which inputs produced it and whether it finished. A folder whose record is
/// not `complete` is never reused (only resumed, with `--resume`), and a complete one only while its files match
/// [`StageRecord::files`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage: StageKind,
    /// SHA-256 of [`StageRecord::key`]'s text.
    pub hash: String,
    /// What the stage's result depends on: its resolved parameters, the code that computes it (the plugin's source
    /// hash and relab-core's ABI stamp), the dataset, the seed and the hashes of its inputs.
    #[serde(default)]
    pub key: Value,
    /// The plugin that ran (absent for the host's own features stage and for `from:` inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// The parameters it ran with, every default filled in.
    #[serde(default)]
    pub params: Value,
    pub complete: bool,
    #[serde(default)]
    pub seconds: f64,
    /// Headline numbers the stage reported (merged into the run's `summary.json`).
    #[serde(default)]
    pub summary: Map<String, Value>,
    /// The size and SHA-256 of every file of the finished stage (checkpoints and this record left out), by path
    /// relative to the stage folder.
    #[serde(default)]
    pub files: Digests,
}

pub const RECORD_FILE: &str = "stage.json";

impl StageRecord {
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(RECORD_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map(Some).map_err(|e| Error::format(&path, format!("not a stage record: {e}")))
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        atomic::write_json(&dir.join(RECORD_FILE), self)
    }
}
