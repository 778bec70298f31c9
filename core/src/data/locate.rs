//! Where datasets are found without being told: `dataset.root` when the experiment gives one, else
//! `$RELAB_DATA/<name>`, else `~/.cache/relab/<name>`, and for Fashion-MNIST also the Debian package's folder.

use std::path::{Path, PathBuf};

use super::cifar::{self, CifarFiles, CifarFormat, CifarKind};
use super::image_set::Dataset;
use super::miniimagenet;
use super::mnist::{self, MnistFiles, MnistKind};
use crate::{Error, Result};

/// Every dataset name relab reads.
pub const KNOWN_DATASETS: [&str; 5] = ["fashion-mnist", "mnist", "cifar10", "cifar100", "miniimagenet"];

/// Where `apt-get install dataset-fashion-mnist` puts the files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// A dataset's files, found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Mnist(MnistKind, MnistFiles),
    Cifar(CifarFiles),
    MiniImageNet(PathBuf),
}

impl Found {
    /// The folder the files are in.
    pub fn dir(&self) -> &Path {
        match self {
            Found::Mnist(_, f) => f.train_images.parent().unwrap_or(Path::new(".")),
            Found::Cifar(f) => &f.dir,
            Found::MiniImageNet(d) => d,
        }
    }

    /// The format, in words, for reports.
    pub fn format(&self) -> &'static str {
        match self {
            Found::Mnist(_, f) if f.gzipped() => "gzipped IDX files",
            Found::Mnist(..) => "IDX files",
            Found::Cifar(f) if f.format == CifarFormat::Python => "CIFAR python pickles",
            Found::Cifar(_) => "CIFAR binary records",
            Found::MiniImageNet(_) => "miniImageNet CSV lists + images",
        }
    }

    /// Reads the whole dataset, as shipped (no limits, channel changes or padding).
    pub fn read(&self) -> Result<Dataset> {
        match self {
            Found::Mnist(kind, files) => mnist::read(*kind, files),
            Found::Cifar(files) => cifar::read(files),
            Found::MiniImageNet(dir) => miniimagenet::read(dir),
        }
    }
}

/// The folders searched for `name`, in order.
pub fn search_paths(name: &str, root: Option<&Path>) -> Vec<PathBuf> {
    if let Some(root) = root {
        return vec![root.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os("RELAB_DATA").filter(|v| !v.is_empty()) {
        out.push(PathBuf::from(dir).join(name));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        out.push(PathBuf::from(home).join(".cache/relab").join(name));
    }
    if name == "fashion-mnist" {
        out.push(PathBuf::from(DEBIAN_FASHION_MNIST));
    }
    out
}

/// The dataset's files in `dir`, if they are all there.
pub fn probe(name: &str, dir: &Path) -> Option<Found> {
    match name {
        "fashion-mnist" => mnist::find_files(dir).map(|f| Found::Mnist(MnistKind::FashionMnist, f)),
        "mnist" => mnist::find_files(dir).map(|f| Found::Mnist(MnistKind::Mnist, f)),
        "cifar10" => cifar::find_files(dir, CifarKind::Cifar10).map(Found::Cifar),
        "cifar100" => cifar::find_files(dir, CifarKind::Cifar100).map(Found::Cifar),
        "miniimagenet" => miniimagenet::find_dir(dir).map(Found::MiniImageNet),
        _ => None,
    }
}

/// Finds `name`'s files, or says where it looked and how to get them.
pub fn locate(name: &str, root: Option<&Path>) -> Result<Found> {
    check_known(name)?;
    let paths = search_paths(name, root);
    if let Some(found) = paths.iter().find_map(|p| probe(name, p)) {
        return Ok(found);
    }
    let looked: Vec<String> = paths.iter().map(|p| format!("  {}", p.display())).collect();
    Err(Error::DatasetMissing {
        name: name.to_string(),
        message: format!(
            "relab looked in:\n{}\n{}\nPut the files in one of these folders, set $RELAB_DATA (relab reads \
             $RELAB_DATA/{name}) or give `dataset.root` in the experiment.",
            looked.join("\n"),
            how_to_get(name)
        ),
    })
}

/// An error for names relab does not know, naming the ones it does (and the closest, for typos).
pub fn check_known(name: &str) -> Result<()> {
    if KNOWN_DATASETS.contains(&name) {
        return Ok(());
    }
    let closest = KNOWN_DATASETS
        .iter()
        .map(|k| (strsim::normalized_damerau_levenshtein(name, k), k))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score > 0.5)
        .map(|(_, k)| format!(" Did you mean `{k}`?"))
        .unwrap_or_default();
    Err(Error::DatasetMissing {
        name: name.to_string(),
        message: format!("relab knows no dataset of that name; it reads {}.{closest}", KNOWN_DATASETS.join(", ")),
    })
}

/// What a user without the files should do.
pub fn how_to_get(name: &str) -> String {
    match name {
        "fashion-mnist" => "Get it with `apt-get install dataset-fashion-mnist` (Debian 12; files land in \
             /usr/share/datasets/fashion-mnist), or download the four files train-images-idx3-ubyte.gz, \
             train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz from \
             http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ (see github.com/zalandoresearch/fashion-mnist)."
            .into(),
        "mnist" => "Download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and \
             t10k-labels-idx1-ubyte.gz from http://yann.lecun.com/exdb/mnist/ (mirror: \
             https://ossci-datasets.s3.amazonaws.com/mnist/)."
            .into(),
        "cifar10" => "Download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and unpack it in the folder \
             (it creates cifar-10-batches-py/); the binary version cifar-10-binary.tar.gz also works."
            .into(),
        "cifar100" => "Download https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz and unpack it in the folder \
             (it creates cifar-100-python/); the binary version cifar-100-binary.tar.gz also works."
            .into(),
        "miniimagenet" => "miniImageNet has no official download: build the Ravi & Larochelle split (train.csv, \
             val.csv, test.csv with header `filename,label`, and images/ resized to 84×84) from ImageNet, e.g. with \
             the scripts of github.com/gitabcworld/FewShotLearning."
            .into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_root_is_the_only_place_looked() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(search_paths("cifar10", Some(dir.path())), vec![dir.path().to_path_buf()]);
        super::super::mnist::tests::write_tiny(dir.path(), 3, 2, true);
        let found = locate("mnist", Some(dir.path())).unwrap();
        assert_eq!(found.dir(), dir.path());
        assert_eq!(found.format(), "gzipped IDX files");
        assert_eq!(found.read().unwrap().train.len(), 3);
    }

    #[test]
    fn default_places_include_the_debian_folder_for_fashion_mnist_only() {
        let fashion = search_paths("fashion-mnist", None);
        assert_eq!(fashion.last().unwrap(), Path::new(DEBIAN_FASHION_MNIST));
        assert!(!search_paths("cifar10", None).iter().any(|p| p == Path::new(DEBIAN_FASHION_MNIST)));
        if let Some(home) = std::env::var_os("HOME") {
            assert!(search_paths("cifar10", None).contains(&PathBuf::from(home).join(".cache/relab/cifar10")));
        }
    }

    #[test]
    fn missing_dataset_says_where_and_how() {
        let dir = tempfile::tempdir().unwrap();
        let err = locate("cifar10", Some(dir.path())).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::DatasetMissing { .. }));
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(msg.contains("cifar-10-python.tar.gz"), "{msg}");
        let msg = locate("fashion-mnist", Some(dir.path())).unwrap_err().to_string();
        assert!(msg.contains("apt-get install dataset-fashion-mnist"), "{msg}");
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let msg = locate("cifar-10", None).unwrap_err().to_string();
        assert!(msg.contains("fashion-mnist, mnist, cifar10, cifar100, miniimagenet"), "{msg}");
        assert!(msg.contains("Did you mean `cifar10`?"), "{msg}");
    }
}
