//! The typed form of an experiment file, after `extends:` merging, `--set` overrides and sweep expansion.
//! Every struct denies unknown fields; plugin parameters are checked by the plugin's own parameter struct.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::component::StageKind;

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
}

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// burn's pure-Rust CPU backend (flex): the default, and what CI runs.
    #[default]
    Cpu,
    Wgpu,
    Cuda,
    /// cuda, then wgpu, then cpu: the first one compiled in that answers a check.
    Auto,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// `fashion-mnist`, `mnist`, `cifar10`, `cifar100` or `miniimagenet`.
    pub name: String,
    /// Folder holding the dataset's files; else `$RELAB_DATA/<name>`, `~/.cache/relab/<name>` and the Debian path.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Balanced random seed labels: this many per class, drawn under the experiment's seed.
    #[serde(default)]
    pub labels_per_class: Option<usize>,
    /// Seed indices from a file instead (`.npy`, i64, indices into the training set).
    #[serde(default)]
    pub seeds: Option<PathBuf>,
    /// Channels fed to networks: grey datasets can be repeated to 3; colour datasets must stay 3.
    #[serde(default)]
    pub channels: Option<usize>,
    /// Zero-pad images to this square size (Fashion-MNIST to 32 for CIFAR-shaped networks).
    #[serde(default)]
    pub pad_to: Option<usize>,
    /// Resize every image (train and test, bilinear) to this square size once, before any stage sees it: quick CPU
    /// runs train at 16×16 for a quarter of the cost of 32×32.
    #[serde(default)]
    pub resize: Option<usize>,
    /// Use only the first N training images (quick runs and tests); indices then refer to this prefix.
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    #[serde(default)]
    pub test_limit: Option<usize>,
}

impl DatasetConfig {
    /// The counts that must be positive when given, by key.
    pub fn counts(&self) -> [(&'static str, Option<usize>); 6] {
        [
            ("labels_per_class", self.labels_per_class),
            ("channels", self.channels),
            ("pad_to", self.pad_to),
            ("resize", self.resize),
            ("train_limit", self.train_limit),
            ("test_limit", self.test_limit),
        ]
    }
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

/// A stage run by a plugin, or supplied as a file with `from:`. Every key besides `plugin` and `from` is a
/// parameter of the plugin, validated by its own parameter struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PluginStage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// The stage's artifact from elsewhere: a stage folder, an `.npy` file, or an original ReLaB `.npz` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<PathBuf>,
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

/// Which of an encoder's outputs the features stage takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FeatureOutput {
    /// The output the SSL method recorded with the encoder (iMix: the projection head, as the original).
    #[default]
    Default,
    /// The backbone's pooled feature.
    Pooled,
    /// The projection head's (L2-normalised) output.
    Head,
}

impl FeatureOutput {
    pub fn name(self) -> &'static str {
        match self {
            FeatureOutput::Default => "default",
            FeatureOutput::Pooled => "pooled",
            FeatureOutput::Head => "head",
        }
    }
}
