//! CIFAR-10 and CIFAR-100, from the python pickles (what the original ReLaB reads, so their order defines its
//! indices) or the binary records. Both store each 32×32 image channel-planar (1,024 R, then G, then B bytes),
//! which is already [`ImageSet`]'s layout.

use std::path::{Path, PathBuf};

use super::image_set::{Dataset, ImageSet};
use crate::formats::pickle;
use crate::{Error, Result};

pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
pub const CIFAR10_STD: [f32; 3] = [0.2023, 0.1994, 0.2010];
pub const CIFAR100_MEAN: [f32; 3] = [0.5071, 0.4867, 0.4408];
pub const CIFAR100_STD: [f32; 3] = [0.2675, 0.2565, 0.2761];

const IMAGE_BYTES: usize = 3 * 32 * 32;

/// Used when the archive's own names file is absent (names are cosmetic; indices are what matter).
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// CIFAR-100's fine labels are numbered in alphabetical order of these names.
pub const CIFAR100_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    Cifar10,
    Cifar100,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarFormat {
    Python,
    Binary,
}

/// Where one CIFAR archive was found, and in which format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarFiles {
    pub kind: CifarKind,
    pub format: CifarFormat,
    /// The folder holding the batch files (e.g. `<root>/cifar-10-batches-py`).
    pub dir: PathBuf,
}

impl CifarKind {
    pub fn name(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar10",
            CifarKind::Cifar100 => "cifar100",
        }
    }

    fn num_classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100 => 100,
        }
    }

    /// The archive's folder name for each format, as the official tarballs unpack.
    fn folder(self, format: CifarFormat) -> &'static str {
        match (self, format) {
            (CifarKind::Cifar10, CifarFormat::Python) => "cifar-10-batches-py",
            (CifarKind::Cifar10, CifarFormat::Binary) => "cifar-10-batches-bin",
            (CifarKind::Cifar100, CifarFormat::Python) => "cifar-100-python",
            (CifarKind::Cifar100, CifarFormat::Binary) => "cifar-100-binary",
        }
    }

    /// (training files in order, test file) for each format.
    fn files(self, format: CifarFormat) -> (Vec<String>, String) {
        let ext = if format == CifarFormat::Binary { ".bin" } else { "" };
        match self {
            CifarKind::Cifar10 => {
                ((1..=5).map(|i| format!("data_batch_{i}{ext}")).collect(), format!("test_batch{ext}"))
            }
            CifarKind::Cifar100 => (vec![format!("train{ext}")], format!("test{ext}")),
        }
    }

    /// Python pickles key the labels by this name; relab uses CIFAR-100's fine labels.
    fn label_key(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "labels",
            CifarKind::Cifar100 => "fine_labels",
        }
    }

    /// Names file per format, and (for pickles) the key inside it.
    fn meta(self, format: CifarFormat) -> (&'static str, &'static str) {
        match (self, format) {
            (CifarKind::Cifar10, CifarFormat::Python) => ("batches.meta", "label_names"),
            (CifarKind::Cifar10, CifarFormat::Binary) => ("batches.meta.txt", ""),
            (CifarKind::Cifar100, CifarFormat::Python) => ("meta", "fine_label_names"),
            (CifarKind::Cifar100, CifarFormat::Binary) => ("fine_label_names.txt", ""),
        }
    }

    /// One binary record: label byte(s), then the pixels.
    fn record_len(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1 + IMAGE_BYTES,
            CifarKind::Cifar100 => 2 + IMAGE_BYTES,
        }
    }

    fn stats(self) -> ([f32; 3], [f32; 3]) {
        match self {
            CifarKind::Cifar10 => (CIFAR10_MEAN, CIFAR10_STD),
            CifarKind::Cifar100 => (CIFAR100_MEAN, CIFAR100_STD),
        }
    }

    fn builtin_names(self) -> Vec<String> {
        match self {
            CifarKind::Cifar10 => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
            CifarKind::Cifar100 => CIFAR100_CLASSES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The archive under `root` (in its official sub-folder, or unpacked straight into `root`), python format first.
pub fn find_files(root: &Path, kind: CifarKind) -> Option<CifarFiles> {
    [CifarFormat::Python, CifarFormat::Binary].into_iter().find_map(|format| {
        let (train, test) = kind.files(format);
        [root.join(kind.folder(format)), root.to_path_buf()]
            .into_iter()
            .find(|dir| train.iter().chain([&test]).all(|f| dir.join(f).is_file()))
            .map(|dir| CifarFiles { kind, format, dir })
    })
}

pub fn read(files: &CifarFiles) -> Result<Dataset> {
    let kind = files.kind;
    let (train_names, test_name) = kind.files(files.format);
    let read_one = |name: &str| {
        let path = files.dir.join(name);
        match files.format {
            CifarFormat::Python => read_pickle(&path, kind),
            CifarFormat::Binary => read_binary(&path, kind),
        }
    };
    let mut train = ImageSet { channels: 3, height: 32, width: 32, pixels: Vec::new(), labels: Some(Vec::new()) };
    for name in &train_names {
        let part = read_one(name)?;
        train.pixels.extend_from_slice(&part.pixels);
        train.labels.as_mut().expect("labelled").extend(part.labels.expect("labelled"));
    }
    let test = read_one(&test_name)?;
    let (mean, std) = kind.stats();
    Ok(Dataset {
        name: kind.name().to_string(),
        train,
        test,
        num_classes: kind.num_classes(),
        class_names: read_names(files)?,
        mean: mean.to_vec(),
        std: std.to_vec(),
    })
}

fn read_pickle(path: &Path, kind: CifarKind) -> Result<ImageSet> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let fmt = |m: String| Error::format(path, m);
    let root = pickle::parse(&bytes).map_err(|m| fmt(format!("not a readable pickle: {m}")))?;
    let data = root.get("data").ok_or_else(|| fmt("pickle has no `data` entry".into()))?;
    let array = data.as_ndarray().map_err(|m| fmt(format!("`data`: {m}")))?;
    if !array.dtype.ends_with("u1") {
        return Err(fmt(format!("`data` has dtype {}, expected uint8", array.dtype)));
    }
    let n = array.shape.first().copied().unwrap_or(0);
    let per_image: usize = array.shape.iter().skip(1).product();
    if array.shape.len() < 2 || per_image != IMAGE_BYTES || array.fortran_order {
        return Err(fmt(format!(
            "`data` has shape {:?}{}, expected N×3072 in C order",
            array.shape,
            if array.fortran_order { " (Fortran order)" } else { "" }
        )));
    }
    let key = kind.label_key();
    let labels = root
        .get(key)
        .ok_or_else(|| fmt(format!("pickle has no `{key}` entry")))?
        .as_int_vec()
        .ok_or_else(|| fmt(format!("`{key}` is not a list of integers")))?;
    let labels = check_labels(path, labels, n, kind.num_classes())?;
    drop(root);
    let pixels = std::rc::Rc::try_unwrap(array.data).unwrap_or_else(|rc| (*rc).clone());
    Ok(ImageSet { channels: 3, height: 32, width: 32, pixels, labels: Some(labels) })
}

fn read_binary(path: &Path, kind: CifarKind) -> Result<ImageSet> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let rec = kind.record_len();
    if bytes.is_empty() || bytes.len() % rec != 0 {
        return Err(Error::format(
            path,
            format!("{} bytes is not a whole number of {rec}-byte records (truncated or not CIFAR)", bytes.len()),
        ));
    }
    let n = bytes.len() / rec;
    let label_at = rec - IMAGE_BYTES - 1; // CIFAR-100 puts the coarse label first, the fine one second
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for r in bytes.chunks_exact(rec) {
        labels.push(r[label_at] as i64);
        pixels.extend_from_slice(&r[rec - IMAGE_BYTES..]);
    }
    let labels = check_labels(path, labels, n, kind.num_classes())?;
    Ok(ImageSet { channels: 3, height: 32, width: 32, pixels, labels: Some(labels) })
}

fn check_labels(path: &Path, labels: Vec<i64>, n: usize, classes: usize) -> Result<Vec<u32>> {
    if labels.len() != n {
        return Err(Error::format(path, format!("{} labels for {n} images", labels.len())));
    }
    labels
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            u32::try_from(l)
                .ok()
                .filter(|&l| (l as usize) < classes)
                .ok_or_else(|| Error::format(path, format!("label {l} of image {i} is not a class 0..{}", classes - 1)))
        })
        .collect()
}

/// Class names from the archive's meta file when it is there, else the built-in list.
fn read_names(files: &CifarFiles) -> Result<Vec<String>> {
    let (file, key) = files.kind.meta(files.format);
    let path = files.dir.join(file);
    if !path.is_file() {
        return Ok(files.kind.builtin_names());
    }
    let names: Vec<String> = match files.format {
        CifarFormat::Binary => std::fs::read_to_string(&path)
            .map_err(|e| Error::io(&path, e))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        CifarFormat::Python => {
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let meta =
                pickle::parse(&bytes).map_err(|m| Error::format(&path, format!("not a readable pickle: {m}")))?;
            meta.get(key)
                .and_then(|v| v.as_items())
                .and_then(|items| items.iter().map(|n| n.as_text()).collect::<Option<Vec<_>>>())
                .ok_or_else(|| Error::format(&path, format!("no `{key}` list of names")))?
        }
    };
    if names.len() != files.kind.num_classes() {
        return Err(Error::format(
            &path,
            format!("{} class names, expected {}", names.len(), files.kind.num_classes()),
        ));
    }
    Ok(names)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::formats::pickle::{py2_cifar_pickle, py2_names_pickle};

    /// A recognisable image: every byte is `seed`, except the first R, G and B bytes mark the channel.
    pub(crate) fn image(seed: u8) -> Vec<u8> {
        let mut im = vec![seed; IMAGE_BYTES];
        im[0] = 1;
        im[1024] = 2;
        im[2048] = 3;
        im
    }

    /// Writes a CIFAR-10 python archive with `per_batch` images in each of the six files; image `g` (global
    /// training index) has pixel value `g` and label `g % 10`; test images have value 200 + i.
    pub(crate) fn write_cifar10_python(root: &Path, per_batch: usize) {
        let dir = root.join("cifar-10-batches-py");
        std::fs::create_dir_all(&dir).unwrap();
        for b in 0..6 {
            let ids: Vec<usize> = (0..per_batch).map(|i| if b < 5 { b * per_batch + i } else { i }).collect();
            let data: Vec<u8> = ids.iter().flat_map(|&g| image(if b < 5 { g as u8 } else { 200 + g as u8 })).collect();
            let labels: Vec<u8> = ids.iter().map(|&g| (g % 10) as u8).collect();
            let name = if b < 5 { format!("data_batch_{}", b + 1) } else { "test_batch".into() };
            std::fs::write(dir.join(name), py2_cifar_pickle(&data, per_batch, "labels", &labels)).unwrap();
        }
    }

    fn write_cifar10_binary(root: &Path, per_batch: usize) {
        let dir = root.join("cifar-10-batches-bin");
        std::fs::create_dir_all(&dir).unwrap();
        for b in 0..6 {
            let mut bytes = Vec::new();
            for i in 0..per_batch {
                let g = if b < 5 { b * per_batch + i } else { i };
                bytes.push((g % 10) as u8);
                bytes.extend(image(if b < 5 { g as u8 } else { 200 + g as u8 }));
            }
            let name = if b < 5 { format!("data_batch_{}.bin", b + 1) } else { "test_batch.bin".into() };
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        std::fs::write(dir.join("batches.meta.txt"), CIFAR10_CLASSES.join("\n") + "\n\n").unwrap();
    }

    fn check_cifar10(d: &Dataset, per_batch: usize) {
        assert_eq!(d.name, "cifar10");
        assert_eq!((d.train.len(), d.test.len()), (5 * per_batch, per_batch));
        let labels = d.train.labels.as_ref().unwrap();
        for (g, &label) in labels.iter().enumerate() {
            assert_eq!(d.train.image(g), image(g as u8).as_slice(), "train image {g}");
            assert_eq!(label, (g % 10) as u32);
        }
        assert_eq!(d.test.image(1), image(201).as_slice());
        assert_eq!(d.class_names[0], "airplane");
        assert_eq!(d.mean, CIFAR10_MEAN.to_vec());
    }

    #[test]
    fn reads_cifar10_python_and_binary_the_same() {
        let dir = tempfile::tempdir().unwrap();
        write_cifar10_python(dir.path(), 3);
        let files = find_files(dir.path(), CifarKind::Cifar10).unwrap();
        assert_eq!(files.format, CifarFormat::Python);
        check_cifar10(&read(&files).unwrap(), 3);

        let dir = tempfile::tempdir().unwrap();
        write_cifar10_binary(dir.path(), 3);
        let files = find_files(dir.path(), CifarKind::Cifar10).unwrap();
        assert_eq!(files.format, CifarFormat::Binary);
        check_cifar10(&read(&files).unwrap(), 3);
    }

    #[test]
    fn python_is_preferred_when_both_are_present() {
        let dir = tempfile::tempdir().unwrap();
        write_cifar10_binary(dir.path(), 2);
        write_cifar10_python(dir.path(), 2);
        assert_eq!(find_files(dir.path(), CifarKind::Cifar10).unwrap().format, CifarFormat::Python);
    }

    #[test]
    fn class_names_from_the_python_meta() {
        let dir = tempfile::tempdir().unwrap();
        write_cifar10_python(dir.path(), 1);
        let names: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        std::fs::write(dir.path().join("cifar-10-batches-py/batches.meta"), py2_names_pickle("label_names", &refs))
            .unwrap();
        let d = read(&find_files(dir.path(), CifarKind::Cifar10).unwrap()).unwrap();
        assert_eq!(d.class_names, names);
    }

    #[test]
    fn reads_cifar100_binary_fine_labels_and_python() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("cifar-100-binary");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, n) in [("train.bin", 4u8), ("test.bin", 2)] {
            let mut bytes = Vec::new();
            for i in 0..n {
                bytes.extend([19, 90 + i]); // coarse, fine
                bytes.extend(image(i));
            }
            std::fs::write(bin.join(name), bytes).unwrap();
        }
        let d = read(&find_files(dir.path(), CifarKind::Cifar100).unwrap()).unwrap();
        assert_eq!(d.train.labels.as_ref().unwrap(), &vec![90, 91, 92, 93]);
        assert_eq!((d.num_classes, d.class_names.len(), d.class_names[99].as_str()), (100, 100, "worm"));

        let py = dir.path().join("cifar-100-python");
        std::fs::create_dir_all(&py).unwrap();
        let data: Vec<u8> = (0..3).flat_map(image).collect();
        std::fs::write(py.join("train"), py2_cifar_pickle(&data, 3, "fine_labels", &[5, 99, 0])).unwrap();
        std::fs::write(py.join("test"), py2_cifar_pickle(&data[..IMAGE_BYTES], 1, "fine_labels", &[7])).unwrap();
        let files = find_files(dir.path(), CifarKind::Cifar100).unwrap();
        assert_eq!(files.format, CifarFormat::Python);
        let d = read(&files).unwrap();
        assert_eq!(d.train.labels.as_ref().unwrap(), &vec![5, 99, 0]);
        assert_eq!(d.train.image(2), image(2).as_slice());
        assert_eq!(d.mean, CIFAR100_MEAN.to_vec());
    }

    #[test]
    fn truncated_and_corrupt_files_are_format_errors() {
        let dir = tempfile::tempdir().unwrap();
        write_cifar10_binary(dir.path(), 2);
        let f = dir.path().join("cifar-10-batches-bin/data_batch_3.bin");
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, &bytes[..bytes.len() - 1]).unwrap();
        let err = read(&find_files(dir.path(), CifarKind::Cifar10).unwrap()).unwrap_err();
        assert!(matches!(err, Error::Format { .. }) && err.to_string().contains("data_batch_3.bin"), "{err}");

        let mut bad = bytes.clone();
        bad[0] = 10;
        std::fs::write(&f, &bad).unwrap();
        let err = read(&find_files(dir.path(), CifarKind::Cifar10).unwrap()).unwrap_err();
        assert!(err.to_string().contains("label 10"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        write_cifar10_python(dir.path(), 2);
        let f = dir.path().join("cifar-10-batches-py/data_batch_2");
        let bytes = std::fs::read(&f).unwrap();
        for cut in [1, 10, 100, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&f, &bytes[..cut]).unwrap();
            let err = read(&find_files(dir.path(), CifarKind::Cifar10).unwrap()).unwrap_err();
            assert!(matches!(err, Error::Format { .. }) && err.to_string().contains("data_batch_2"), "{err}");
        }
    }

    #[test]
    fn missing_batch_means_not_found() {
        let dir = tempfile::tempdir().unwrap();
        write_cifar10_python(dir.path(), 1);
        std::fs::remove_file(dir.path().join("cifar-10-batches-py/data_batch_4")).unwrap();
        assert!(find_files(dir.path(), CifarKind::Cifar10).is_none());
    }
}
