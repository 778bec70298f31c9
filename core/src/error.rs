use std::path::PathBuf;

use crate::experiment::ConfigError;

/// Every error the host and its plugins report. Each variant names the file (or key) it is about and says what was
/// expected, so a researcher can act on the message alone.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// A file exists but its content is not what its format requires (truncated, wrong magic, wrong shape, ...).
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },

    /// A dataset that is not on this machine: `message` says where relab looked and how to get it.
    #[error("dataset `{name}` not found. {message}")]
    DatasetMissing { name: String, message: String },

    /// An experiment file, an override or a plugin's parameters are wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// Plugin lookup and registration: unknown names (with the known ones listed), clashes, slot mismatches.
    #[error("{0}")]
    Plugin(String),

    /// The backend asked for is not compiled in or not usable on this machine.
    #[error("backend: {0}")]
    Backend(String),

    /// A training loss or other quantity that must be finite was not; the last good checkpoint is kept.
    #[error("{stage}: non-finite value ({what}) at {at}; the last good checkpoint was kept in {checkpoint}")]
    NonFinite { stage: String, what: String, at: String, checkpoint: PathBuf },

    /// A run folder relab may not write into: not relab's, or in use by another relab process.
    #[error("{dir}: {message}")]
    RunFolder { dir: PathBuf, message: String },

    /// The run was asked to stop by `signal` (SIGTERM, SIGINT, SIGUSR2); the stage in progress left a checkpoint
    /// that `--resume` continues from, or had not started. The binary exits with 128 + `signal`.
    #[error("stopped by {}; `--resume` continues", crate::interrupt::signal_name(*signal))]
    Interrupted { signal: i32 },

    /// Anything a stage reports that fits none of the above, with its stage named.
    #[error("{stage}: {message}")]
    Stage { stage: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format { path: path.into(), message: message.into() }
    }

    pub fn stage(stage: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Stage { stage: stage.into(), message: message.into() }
    }
}
