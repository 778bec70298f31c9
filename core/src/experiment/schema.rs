//! The typed form of an experiment file, after `extends:` merging, `--set` overrides and sweep expansion.
//! Every struct denies unknown fields; plugin parameters are checked by the plugin's own parameter struct.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::component::StageKind;
// Owned by the layers that use them, re-exported here so that `experiment::X` keeps working.
pub use crate::component::FeatureOutput;
pub use crate::data::DatasetConfig;
pub use crate::device::BackendChoice;

/// One resolved experiment: what `relab run` executes and writes back as `config.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// A name for the run (defaults to the file name).
    #[serde(default)]
    pub name: Option<String>,
    /// Seed of every random choice: seed labels, initialisation, augmentation, batch order.
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default)]
    pub backend: BackendChoice,
    /// Index of the GPU for `wgpu`/`cuda`.
    #[serde(default)]
    pub device: usize,
    pub dataset: DatasetConfig,
    #[serde(default)]
    pub stages: Stages,
    /// Plugin libraries to load before the stages are checked (relative to the file that names them; a file that
    /// extends another replaces its list, as with any list).
    #[serde(default)]
    pub plugins: Vec<PathBuf>,
    /// How `relab run` starts a sweep's points (`--launcher` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launcher: Option<Launcher>,
    /// The Slurm launcher's settings (partition, time, cpus, ...), used with `launcher: slurm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmSettings>,
}

/// Where a sweep's points run, each as its own `relab run` process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Launcher {
    /// Child processes on this machine, `--jobs` at once.
    #[default]
    Local,
    /// One Slurm job array per sweep (`sbatch --array`), an aggregation job writing the report after it.
    Slurm,
}

/// What the Slurm launcher passes to `sbatch` for each point's task, and how a task interrupted by its signal
/// comes back. Every field is optional; Slurm's own defaults apply to those left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// Time limit per point, in Slurm's format (`30`, `4:00:00`, `1-00:00:00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Memory per point, in Slurm's format (`8G`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// CPUs per point (`--cpus-per-task`); its thread pools are sized to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<usize>,
    /// Generic resources per point (`gpu:1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gres: Option<String>,
    /// Points running at once (the array's `%P`); unlimited when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<usize>,
    /// Further `#SBATCH` options, one per entry, without the `#SBATCH` (`--constraint=a100`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sbatch: Vec<String>,
    /// Shell lines run before each point (`module load cuda/12.4`, `source venv/bin/activate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<String>,
    /// The signal Slurm sends `grace` seconds ahead of the time limit (`--signal=B:SIGNAL@GRACE`), on which the
    /// point checkpoints and requeues itself. USR2 by default: NCCL takes USR1.
    #[serde(default = "default_slurm_signal")]
    pub signal: String,
    /// Seconds between that signal and the time limit: enough for a step and a checkpoint.
    #[serde(default = "default_slurm_grace")]
    pub grace: u32,
    /// How many times one point requeues itself after reaching its time limit (preemptions requeue without limit).
    #[serde(default = "default_slurm_timeout_requeues")]
    pub timeout_requeues: u32,
}

impl Default for SlurmSettings {
    fn default() -> Self {
        SlurmSettings {
            partition: None,
            account: None,
            qos: None,
            time: None,
            mem: None,
            cpus: None,
            gres: None,
            parallel: None,
            sbatch: Vec::new(),
            setup: Vec::new(),
            signal: default_slurm_signal(),
            grace: default_slurm_grace(),
            timeout_requeues: default_slurm_timeout_requeues(),
        }
    }
}

/// The signals `slurm.signal` may name: ones a batch shell can trap and that Slurm's `--signal` accepts by name.
pub const SLURM_SIGNALS: &[&str] = &["USR1", "USR2", "TERM", "INT", "HUP", "QUIT", "ALRM", "URG"];

fn default_slurm_signal() -> String {
    "USR2".into()
}

fn default_slurm_grace() -> u32 {
    120
}

fn default_slurm_timeout_requeues() -> u32 {
    3
}

fn default_seed() -> u64 {
    1
}

/// The pipeline's stages, run in this order; any may be omitted. One field per [`StageKind`] (a test checks that the
/// keys are [`StageKind::ALL`]'s names, in order); code that goes over the stages goes over [`StageKind::ALL`] or
/// [`StageKind::SLOTS`] with [`Stages::plugin`] rather than naming the fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Stages {
    #[serde(default)]
    pub pretrain: Option<PluginStage>,
    #[serde(default)]
    pub features: Option<FeaturesStage>,
    #[serde(default)]
    pub propagate: Option<PluginStage>,
    #[serde(default)]
    pub select: Option<PluginStage>,
    #[serde(default)]
    pub train: Option<PluginStage>,
}

impl Stages {
    /// The stage of `kind` when a plugin fills it (or it is read with `from:`); `None` when the experiment has no
    /// such stage, and always for the host's own features stage.
    pub fn plugin(&self, kind: StageKind) -> Option<&PluginStage> {
        match kind {
            StageKind::Pretrain => self.pretrain.as_ref(),
            StageKind::Features => None,
            StageKind::Propagate => self.propagate.as_ref(),
            StageKind::Select => self.select.as_ref(),
            StageKind::Train => self.train.as_ref(),
        }
    }

    /// The plugin stages the experiment has, in the order they run.
    pub fn plugin_stages(&self) -> impl Iterator<Item = (StageKind, &PluginStage)> {
        StageKind::SLOTS.into_iter().filter_map(|kind| Some((kind, self.plugin(kind)?)))
    }

    /// Whether the stage of `kind` runs: written in the file, or (features) implied by a propagate stage.
    pub fn has(&self, kind: StageKind) -> bool {
        match kind {
            StageKind::Features => self.features.is_some() || self.propagate.is_some(),
            kind => self.plugin(kind).is_some(),
        }
    }
}

/// A stage run by a plugin, or supplied as a file with `from:`. Every key besides `plugin`, `from` and `resize` is a
/// parameter of the plugin, validated by its own parameter struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PluginStage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// The stage's artifact from elsewhere: a stage folder, an `.npy` file, or an original ReLaB `.npz` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<PathBuf>,
    /// The images this stage sees, resized to `resize`×`resize` from the dataset as read (after `channels` and
    /// `pad_to`) instead of to `dataset.resize`: a learner at full resolution beside iMix and propagation at a
    /// smaller, cheaper size. Only for the stages that read images (`pretrain`, `select`, `train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<usize>,
    #[serde(flatten)]
    pub params: serde_yaml::Mapping,
}

/// The features stage is the host's own: an encoder's output, raw pixels, or a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FeaturesStage {
    #[serde(default)]
    pub source: FeatureSource,
    /// Which output of the encoder (with `source: encoder`).
    #[serde(default)]
    pub output: FeatureOutput,
    /// An `.npy` file (f32 or f64, N × D) to use as features instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<PathBuf>,
    /// Project the features (from any source) on their top `pca` principal components: centred, each axis signed
    /// so that its largest entry is positive. Raw-pixel baselines use 128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pca: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FeatureSource {
    /// The pretrain stage's encoder.
    #[default]
    Encoder,
    /// Raw pixels, normalised with the dataset's statistics and flattened (the no-SSL baseline).
    Pixels,
}
