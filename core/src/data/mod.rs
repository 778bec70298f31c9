//! Datasets, seed labels, augmentations and batching.
//!
//! [`load`] finds a dataset ([`locate`]), reads it in its shipped format (IDX, CIFAR pickles or binary,
//! miniImageNet lists + images) and shapes it as the experiment asks ([`prepare`]); [`pick_seeds`] chooses the
//! few labelled samples; [`augment`] and [`loader`] turn images into normalised, augmented batches; [`image_batch`]
//! builds the per-step views (weak, strong) a learner seeds itself.

pub mod augment;
mod check;
pub mod cifar;
mod config;
mod image_set;
pub mod loader;
pub mod locate;
pub mod miniimagenet;
pub mod mnist;
pub mod numpy_rng;
pub mod prepare;
mod seeds;
mod views;

/// The dataset file formats, at their old paths.
pub use crate::formats::{idx, pickle};

pub use check::{CheckFound, DatasetCheck, Outcome as CheckOutcome, check};
pub use config::{DatasetConfig, LABELS_SEED_BESIDE_SEEDS};
pub use image_set::{Dataset, ImageSet};
pub use loader::{Batch, BatchIter, LoaderConfig, for_each_batch, sample_rng};
pub use locate::KNOWN_DATASETS;
pub use seeds::{CIFAR10_BUCKETS, pick_seeds};
pub use views::image_batch;

use crate::Result;

/// The experiment's dataset: found, read, limited, channel-adjusted and padded as `cfg` says.
pub fn load(cfg: &DatasetConfig) -> Result<Dataset> {
    let found = locate::locate(&cfg.name, cfg.root.as_deref())?;
    prepare::prepare(found.read()?, cfg)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn cfg(name: &str, root: Option<&Path>) -> DatasetConfig {
        DatasetConfig {
            name: name.into(),
            root: root.map(Path::to_path_buf),
            labels_per_class: Some(2),
            labels_seed: None,
            seeds: None,
            channels: None,
            pad_to: None,
            resize: None,
            train_limit: None,
            test_limit: None,
        }
    }

    #[test]
    fn loads_each_format_through_one_entry_point() {
        let dir = tempfile::tempdir().unwrap();
        mnist::tests::write_tiny(dir.path(), 30, 5, true);
        let d = load(&DatasetConfig {
            channels: Some(3),
            pad_to: Some(4),
            resize: None,
            train_limit: Some(20),
            ..cfg("mnist", Some(dir.path()))
        })
        .unwrap();
        assert_eq!((d.train.len(), d.train.channels, d.train.height, d.train.width), (20, 3, 4, 4));
        let seeds = pick_seeds(&d, &cfg("mnist", None), 1).unwrap();
        assert_eq!(seeds.len(), 20);

        let dir = tempfile::tempdir().unwrap();
        cifar::tests::write_cifar10_python(dir.path(), 2);
        let d = load(&cfg("cifar10", Some(dir.path()))).unwrap();
        assert_eq!((d.train.len(), d.test.len(), d.num_classes), (10, 2, 10));

        let dir = tempfile::tempdir().unwrap();
        miniimagenet::tests::write_tiny(dir.path(), &["a", "b", "c"], 2);
        let d = load(&cfg("miniimagenet", Some(dir.path()))).unwrap();
        assert_eq!((d.train.len(), d.test.len(), d.num_classes), (5, 1, 3));

        let err = load(&cfg("svhn", None)).unwrap_err().to_string();
        assert!(err.contains("fashion-mnist, mnist, cifar10, cifar100, miniimagenet"), "{err}");
    }

    /// The real dataset, when this machine has it (`apt-get install dataset-fashion-mnist`).
    #[test]
    fn loads_the_real_fashion_mnist_padded_to_32() {
        if !Path::new(locate::DEBIAN_FASHION_MNIST).is_dir() {
            eprintln!("skipped: {} is absent (apt-get install dataset-fashion-mnist)", locate::DEBIAN_FASHION_MNIST);
            return;
        }
        let c = DatasetConfig {
            root: Some(locate::DEBIAN_FASHION_MNIST.into()),
            channels: Some(3),
            pad_to: Some(32),
            resize: None,
            labels_per_class: Some(10),
            labels_seed: None,
            ..cfg("fashion-mnist", None)
        };
        let d = load(&c).unwrap();
        assert_eq!((d.train.len(), d.test.len(), d.num_classes), (60_000, 10_000, 10));
        assert_eq!((d.train.channels, d.train.height, d.train.width), (3, 32, 32));
        assert_eq!(d.mean.len(), 3);
        let s = pick_seeds(&d, &c, 1).unwrap();
        assert_eq!(s.len(), 100);
        assert_eq!(s.precision(d.train.labels.as_ref().unwrap()), 1.0);
    }
}
