//! The few labelled samples the method starts from: a balanced random draw, a file of indices, or for CIFAR-10
//! with one label per class the original's "representative" buckets (docs/method.md §8.4).

use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::DatasetConfig;
use super::config::LABELS_SEED_BESIDE_SEEDS;
use super::image_set::Dataset;
use crate::artifact::{LabeledSet, read_indices};
use crate::{Error, Result};

/// CIFAR-10 training ids of the FixMatch "barely supervised" buckets the original uses with `--seed 1/2/3` and
/// one label per class: bucket 7 (the most representative), bucket 4, and bucket 0 (the least representative).
pub const CIFAR10_BUCKETS: [(u64, [usize; 10]); 3] = [
    (1, [4255, 6446, 8580, 11759, 12598, 29349, 29433, 33759, 35345, 38639]),
    (2, [6695, 14891, 19726, 22715, 23999, 34230, 46511, 47457, 49181, 49397]),
    (3, [7408, 8148, 9850, 10361, 33949, 36506, 37018, 45044, 46443, 47447]),
];

/// The seed set for this experiment, sorted class-major (by label, then index), labels from the ground truth; `seed`
/// is the experiment's, which `dataset.labels_seed` replaces for the draw.
pub fn pick_seeds(dataset: &Dataset, cfg: &DatasetConfig, seed: u64) -> Result<LabeledSet> {
    let err = |m: String| Error::stage("seeds", format!("{}: {m}", dataset.name));
    let truth = dataset
        .train
        .labels
        .as_deref()
        .ok_or_else(|| err("the training set has no ground-truth labels to draw seeds from".into()))?;
    if cfg.seeds.is_some() && cfg.labels_seed.is_some() {
        return Err(err(format!("`dataset.labels_seed` {LABELS_SEED_BESIDE_SEEDS}")));
    }
    let seed = cfg.labels_seed.unwrap_or(seed);
    let indices = match (&cfg.seeds, cfg.labels_per_class) {
        (Some(_), Some(_)) => {
            return Err(err(
                "both `dataset.seeds` and `dataset.labels_per_class` are given; keep one (the file's indices, \
                 or a balanced random draw)"
                    .into(),
            ));
        }
        (None, None) => {
            return Err(err(
                "no seed labels: give `dataset.labels_per_class: N` for N random labelled samples per class \
                 (drawn under the experiment's seed), or `dataset.seeds: file.npy` with training indices (i64)"
                    .into(),
            ));
        }
        (Some(path), None) => read_seed_file(path, truth.len())?,
        (None, Some(0)) => return Err(err("labels_per_class must be at least 1".into())),
        (None, Some(1)) if dataset.name == "cifar10" && (1..=3).contains(&seed) => {
            let ids = CIFAR10_BUCKETS.iter().find(|(s, _)| *s == seed).expect("seeds 1..=3").1;
            if let Some(&bad) = ids.iter().find(|&&i| i >= truth.len()) {
                return Err(err(format!(
                    "seed {seed} with one label per class uses the original's bucket ids, but id {bad} lies \
                     beyond the {} training images kept (drop train_limit, or use another seed)",
                    truth.len()
                )));
            }
            ids.to_vec()
        }
        (None, Some(spc)) => balanced(truth, dataset.num_classes, spc, seed).map_err(err)?,
    };
    let mut pairs: Vec<(u32, usize)> = indices.into_iter().map(|i| (truth[i], i)).collect();
    pairs.sort_unstable();
    Ok(LabeledSet::new(pairs.iter().map(|p| p.1).collect(), pairs.iter().map(|p| p.0).collect()))
}

/// `spc` samples of every class: the first of each class met along a seeded permutation of all indices (the
/// original's rule, with relab's generator: draws differ from PyTorch's `randperm`, see docs/method.md §8.4).
pub fn balanced(truth: &[u32], num_classes: usize, spc: usize, seed: u64) -> std::result::Result<Vec<usize>, String> {
    let mut perm: Vec<usize> = (0..truth.len()).collect();
    perm.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut taken = vec![0usize; num_classes];
    let mut out = Vec::with_capacity(spc * num_classes);
    for i in perm {
        let c = truth[i] as usize;
        if c < num_classes && taken[c] < spc {
            taken[c] += 1;
            out.push(i);
        }
    }
    let short: Vec<String> =
        taken.iter().enumerate().filter(|&(_, &n)| n < spc).map(|(c, n)| format!("class {c} has {n}")).collect();
    if !short.is_empty() {
        return Err(format!("{spc} labels per class asked, but {}", short.join(", ")));
    }
    Ok(out)
}

/// The file's indices (1-D, each inside the training set, as the artifact reader checks), none listed twice.
fn read_seed_file(path: &Path, len: usize) -> Result<Vec<usize>> {
    let indices = read_indices(path, len)?;
    let mut seen = vec![false; len];
    for &i in &indices {
        if std::mem::replace(&mut seen[i], true) {
            return Err(Error::format(path, format!("index {i} is listed twice")));
        }
    }
    Ok(indices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageSet;
    use crate::formats::npy;

    fn dataset(name: &str, labels: Vec<u32>, num_classes: usize) -> Dataset {
        let set = ImageSet { channels: 1, height: 1, width: 1, pixels: vec![0; labels.len()], labels: Some(labels) };
        Dataset {
            name: name.into(),
            train: set.clone(),
            test: set,
            num_classes,
            class_names: vec![],
            mean: vec![0.0],
            std: vec![1.0],
        }
    }

    fn cfg(spc: Option<usize>, seeds: Option<&Path>) -> DatasetConfig {
        DatasetConfig {
            name: "x".into(),
            root: None,
            labels_per_class: spc,
            labels_seed: None,
            seeds: seeds.map(Path::to_path_buf),
            channels: None,
            pad_to: None,
            resize: None,
            train_limit: None,
            test_limit: None,
        }
    }

    #[test]
    fn balanced_draws_are_balanced_sorted_and_deterministic_per_seed() {
        let d = dataset("fashion-mnist", (0..1000).map(|i| (i * 7 % 10) as u32).collect(), 10);
        let a = pick_seeds(&d, &cfg(Some(4), None), 1).unwrap();
        assert_eq!(a.len(), 40);
        for c in 0..10u32 {
            assert_eq!(a.labels.iter().filter(|&&l| l == c).count(), 4);
        }
        let truth = d.train.labels.as_ref().unwrap();
        assert!(a.indices.iter().zip(&a.labels).all(|(&i, &l)| truth[i] == l));
        let keys: Vec<(u32, usize)> = a.labels.iter().copied().zip(a.indices.iter().copied()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "class-major, then by index");
        assert_eq!(pick_seeds(&d, &cfg(Some(4), None), 1).unwrap(), a);
        assert_ne!(pick_seeds(&d, &cfg(Some(4), None), 2).unwrap(), a);
    }

    #[test]
    fn labels_seed_replaces_the_experiments_seed_in_the_draw_alone() {
        let d = dataset("fashion-mnist", (0..1000).map(|i| (i * 7 % 10) as u32).collect(), 10);
        let drawn_under =
            |labels_seed, seed| pick_seeds(&d, &DatasetConfig { labels_seed, ..cfg(Some(4), None) }, seed).unwrap();
        // Seed 2's draw taken under experiment seed 5 is seed 2's draw, whatever the experiment's seed.
        assert_eq!(drawn_under(Some(2), 5), drawn_under(None, 2));
        assert_eq!(drawn_under(Some(2), 1), drawn_under(Some(2), 5));
        assert_ne!(drawn_under(Some(3), 5), drawn_under(None, 5));
        // The buckets of CIFAR-10 with one label per class follow it too.
        let cifar = dataset("cifar10", (0..50_000).map(|i| (i % 10) as u32).collect(), 10);
        let s = pick_seeds(&cifar, &DatasetConfig { labels_seed: Some(1), ..cfg(Some(1), None) }, 9).unwrap();
        let mut ids = s.indices.clone();
        ids.sort_unstable();
        assert_eq!(ids, CIFAR10_BUCKETS[0].1.to_vec());
        // A seed file lists the labelled images itself: a labels seed beside it is refused.
        let both =
            DatasetConfig { labels_seed: Some(1), labels_per_class: None, ..cfg(None, Some(Path::new("s.npy"))) };
        let msg = pick_seeds(&d, &both, 1).unwrap_err().to_string();
        assert!(msg.contains("labels_seed") && msg.contains("dataset.seeds"), "{msg}");
    }

    #[test]
    fn too_few_samples_in_a_class_is_an_error() {
        let d = dataset("mnist", vec![0, 0, 0, 1, 2, 2], 3);
        let msg = pick_seeds(&d, &cfg(Some(2), None), 1).unwrap_err().to_string();
        assert!(msg.contains("class 1 has 1"), "{msg}");
    }

    #[test]
    fn neither_or_both_sources_is_an_error_explaining_the_options() {
        let d = dataset("mnist", vec![0, 1], 2);
        let msg = pick_seeds(&d, &cfg(None, None), 1).unwrap_err().to_string();
        assert!(msg.contains("labels_per_class") && msg.contains("seeds"), "{msg}");
        assert!(pick_seeds(&d, &cfg(Some(1), Some(Path::new("x.npy"))), 1).is_err());
    }

    #[test]
    fn cifar10_one_per_class_uses_the_buckets_for_seeds_1_to_3() {
        let d = dataset("cifar10", (0..50_000).map(|i| (i % 10) as u32).collect(), 10);
        let s = pick_seeds(&d, &cfg(Some(1), None), 1).unwrap();
        let mut ids = s.indices.clone();
        ids.sort_unstable();
        assert_eq!(ids, CIFAR10_BUCKETS[0].1.to_vec());
        let s3 = pick_seeds(&d, &cfg(Some(1), None), 3).unwrap();
        assert!(s3.indices.contains(&7408) && s3.indices.contains(&47447));
        // Other seeds, other datasets and other counts draw at random.
        let s4 = pick_seeds(&d, &cfg(Some(1), None), 4).unwrap();
        assert_eq!(s4.len(), 10);
        assert!(s4.labels.iter().enumerate().all(|(c, &l)| l == c as u32));
        let short = dataset("cifar10", (0..1000).map(|i| (i % 10) as u32).collect(), 10);
        assert!(pick_seeds(&short, &cfg(Some(1), None), 1).unwrap_err().to_string().contains("bucket"));
    }

    #[test]
    fn seed_files_are_range_checked_and_labelled_from_the_truth() {
        let dir = tempfile::tempdir().unwrap();
        let d = dataset("mnist", vec![3, 1, 2, 1, 0], 4);
        let p = dir.path().join("seeds.npy");
        npy::write_i64(&p, &[3], &[4, 0, 1]).unwrap();
        let s = pick_seeds(&d, &cfg(None, Some(&p)), 1).unwrap();
        assert_eq!((s.indices, s.labels), (vec![4, 1, 0], vec![0, 1, 3]));
        npy::write_i64(&p, &[2], &[1, 5]).unwrap();
        assert!(pick_seeds(&d, &cfg(None, Some(&p)), 1).unwrap_err().to_string().contains("index 5"));
        npy::write_i64(&p, &[2], &[-1, 0]).unwrap();
        assert!(pick_seeds(&d, &cfg(None, Some(&p)), 1).is_err());
        npy::write_i64(&p, &[2], &[2, 2]).unwrap();
        assert!(pick_seeds(&d, &cfg(None, Some(&p)), 1).unwrap_err().to_string().contains("twice"));
        npy::write_i64(&p, &[1, 2], &[0, 1]).unwrap();
        assert!(pick_seeds(&d, &cfg(None, Some(&p)), 1).unwrap_err().to_string().contains("1-D"));
    }
}
