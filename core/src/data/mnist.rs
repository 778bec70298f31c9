//! MNIST and Fashion-MNIST: 28×28 grey images in four IDX files (`train`/`t10k` × images/labels), gzip or raw.

use std::path::{Path, PathBuf};

use super::image_set::{Dataset, ImageSet};
use crate::formats::idx;
use crate::{Error, Result};

/// Fashion-MNIST statistics on the `[0, 1]` scale, computed once over all 47,040,000 training pixels
/// (mean 0.2860405969887955, population std 0.35302424451492254); `tests::fashion_stats_match_the_real_file`
/// recomputes them when the dataset is installed.
pub const FASHION_MNIST_MEAN: f32 = 0.286_040_6;
pub const FASHION_MNIST_STD: f32 = 0.353_024_24;

/// The usual MNIST statistics (torchvision's examples), recomputable the same way.
pub const MNIST_MEAN: f32 = 0.1307;
pub const MNIST_STD: f32 = 0.3081;

pub const FASHION_MNIST_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Which of the two datasets sharing this format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MnistKind {
    Mnist,
    FashionMnist,
}

impl MnistKind {
    pub fn name(self) -> &'static str {
        match self {
            MnistKind::Mnist => "mnist",
            MnistKind::FashionMnist => "fashion-mnist",
        }
    }

    fn class_names(self) -> Vec<String> {
        match self {
            MnistKind::Mnist => (0..10).map(|d| d.to_string()).collect(),
            MnistKind::FashionMnist => FASHION_MNIST_CLASSES.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn stats(self) -> (f32, f32) {
        match self {
            MnistKind::Mnist => (MNIST_MEAN, MNIST_STD),
            MnistKind::FashionMnist => (FASHION_MNIST_MEAN, FASHION_MNIST_STD),
        }
    }
}

/// The four files of one dataset folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnistFiles {
    pub train_images: PathBuf,
    pub train_labels: PathBuf,
    pub test_images: PathBuf,
    pub test_labels: PathBuf,
}

impl MnistFiles {
    /// Whether any of the four is gzip-named (for reports only; reading looks at the content).
    pub fn gzipped(&self) -> bool {
        self.train_images.extension().is_some_and(|e| e == "gz")
    }
}

/// The four files in `dir`, under the official names (`train-images-idx3-ubyte[.gz]`) or the variant with a dot
/// some mirrors use (`train-images.idx3-ubyte`); `None` unless all four are there.
pub fn find_files(dir: &Path) -> Option<MnistFiles> {
    let find = |split: &str, what: &str, dims: &str| {
        [format!("{split}-{what}-{dims}-ubyte"), format!("{split}-{what}.{dims}-ubyte")]
            .into_iter()
            .flat_map(|stem| [dir.join(format!("{stem}.gz")), dir.join(stem)])
            .find(|p| p.is_file())
    };
    Some(MnistFiles {
        train_images: find("train", "images", "idx3")?,
        train_labels: find("train", "labels", "idx1")?,
        test_images: find("t10k", "images", "idx3")?,
        test_labels: find("t10k", "labels", "idx1")?,
    })
}

/// Reads the dataset from `files`.
pub fn read(kind: MnistKind, files: &MnistFiles) -> Result<Dataset> {
    let train = read_split(&files.train_images, &files.train_labels)?;
    let test = read_split(&files.test_images, &files.test_labels)?;
    if (train.height, train.width) != (test.height, test.width) {
        return Err(Error::format(
            &files.test_images,
            format!(
                "test images are {}×{} but training images are {}×{}",
                test.height, test.width, train.height, train.width
            ),
        ));
    }
    let (mean, std) = kind.stats();
    Ok(Dataset {
        name: kind.name().to_string(),
        train,
        test,
        num_classes: 10,
        class_names: kind.class_names(),
        mean: vec![mean],
        std: vec![std],
    })
}

fn read_split(images: &Path, labels: &Path) -> Result<ImageSet> {
    let img = idx::read_images(images)?;
    let lab = idx::read_labels(labels)?;
    if img.dims[0] != lab.dims[0] {
        return Err(Error::format(
            labels,
            format!("{} labels for the {} images of {}", lab.dims[0], img.dims[0], images.display()),
        ));
    }
    if let Some(pos) = lab.data.iter().position(|&l| l >= 10) {
        return Err(Error::format(labels, format!("label {} at position {pos} is not a class 0..9", lab.data[pos])));
    }
    Ok(ImageSet {
        channels: 1,
        height: img.dims[1],
        width: img.dims[2],
        pixels: img.data,
        labels: Some(lab.data.into_iter().map(u32::from).collect()),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::formats::idx::{encode, gzip};

    /// Writes a tiny dataset of `n_train`/`n_test` 2×3 images (pixel value = image index, label = index mod 10).
    pub(crate) fn write_tiny(dir: &Path, n_train: usize, n_test: usize, gz: bool) {
        for (split, n) in [("train", n_train), ("t10k", n_test)] {
            let pixels: Vec<u8> = (0..n).flat_map(|i| [i as u8; 6]).collect();
            let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
            let mut files = [
                (format!("{split}-images-idx3-ubyte"), encode(&[n, 2, 3], &pixels)),
                (format!("{split}-labels-idx1-ubyte"), encode(&[n], &labels)),
            ];
            for (name, bytes) in files.iter_mut() {
                if gz {
                    *bytes = gzip(bytes);
                    name.push_str(".gz");
                }
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }

    #[test]
    fn reads_a_tiny_dataset_gz_and_raw() {
        for gz in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            write_tiny(dir.path(), 12, 5, gz);
            let files = find_files(dir.path()).unwrap();
            assert_eq!(files.gzipped(), gz);
            let d = read(MnistKind::FashionMnist, &files).unwrap();
            assert_eq!((d.train.len(), d.test.len()), (12, 5));
            assert_eq!((d.train.channels, d.train.height, d.train.width), (1, 2, 3));
            assert_eq!(d.train.image(11), &[11; 6]);
            assert_eq!(d.train.labels.as_ref().unwrap()[11], 1);
            assert_eq!(d.class_names[9], "Ankle boot");
            assert_eq!(d.mean, vec![FASHION_MNIST_MEAN]);
        }
    }

    #[test]
    fn incomplete_folder_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny(dir.path(), 3, 3, true);
        std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
        assert!(find_files(dir.path()).is_none());
    }

    #[test]
    fn label_count_mismatch_and_bad_labels_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny(dir.path(), 4, 2, false);
        std::fs::write(dir.path().join("train-labels-idx1-ubyte"), encode(&[3], &[0, 1, 2])).unwrap();
        let files = find_files(dir.path()).unwrap();
        assert!(read(MnistKind::Mnist, &files).unwrap_err().to_string().contains("3 labels for the 4 images"));
        std::fs::write(dir.path().join("train-labels-idx1-ubyte"), encode(&[4], &[0, 1, 12, 2])).unwrap();
        assert!(read(MnistKind::Mnist, &files).unwrap_err().to_string().contains("label 12"));
    }

    pub(crate) const REAL_FASHION: &str = "/usr/share/datasets/fashion-mnist";

    #[test]
    fn fashion_stats_match_the_real_file() {
        let Some(files) = find_files(Path::new(REAL_FASHION)) else {
            eprintln!(
                "skipped: Fashion-MNIST is not installed at {REAL_FASHION} (apt-get install dataset-fashion-mnist)"
            );
            return;
        };
        let d = read(MnistKind::FashionMnist, &files).unwrap();
        assert_eq!((d.train.len(), d.test.len()), (60_000, 10_000));
        assert_eq!((d.train.height, d.train.width), (28, 28));
        let n = d.train.pixels.len() as f64;
        let mean = d.train.pixels.iter().map(|&p| p as f64 / 255.0).sum::<f64>() / n;
        let var = d.train.pixels.iter().map(|&p| (p as f64 / 255.0 - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - FASHION_MNIST_MEAN as f64).abs() < 1e-6, "mean {mean}");
        assert!((var.sqrt() - FASHION_MNIST_STD as f64).abs() < 1e-6, "std {}", var.sqrt());
        // Known first labels and per-class counts of the official files.
        let labels = d.train.labels.as_ref().unwrap();
        assert_eq!(&labels[..10], &[9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
        let mut counts = [0usize; 10];
        labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [6000; 10]);
        assert_eq!(d.train.image(0).iter().map(|&p| p as u64).sum::<u64>(), 76_247);
    }
}
