//! The experiment's `dataset:` key: which dataset, where, and how it is shaped.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The experiment's `dataset:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// `fashion-mnist`, `mnist`, `cifar10`, `cifar100` or `miniimagenet`.
    pub name: String,
    /// Folder holding the dataset's files; else `$RELAB_DATA/<name>`, `~/.cache/relab/<name>` and the Debian path.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Balanced random seed labels: this many per class, drawn under the experiment's seed (or `labels_seed`).
    #[serde(default)]
    pub labels_per_class: Option<usize>,
    /// Draw the `labels_per_class` labelled images under this seed instead of the experiment's, which then seeds
    /// only the training: sweep it over a fixed `seed` to see how much the draw of the labels alone moves a result.
    #[serde(default)]
    pub labels_seed: Option<u64>,
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

/// Why `dataset.labels_seed` cannot stand beside `dataset.seeds` (said by `relab validate` at the key, and by the run).
pub const LABELS_SEED_BESIDE_SEEDS: &str =
    "seeds the balanced draw of `labels_per_class`, but `dataset.seeds` lists the labelled images itself; drop one";

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
