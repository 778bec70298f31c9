//! miniImageNet in the original's layout: `train.csv`, `val.csv`, `test.csv` (header `filename,label`) and an
//! `images/` folder of pre-resized 84×84 JPEG/PNG files.
//!
//! As in the original, the three lists are concatenated (100 classes), class ids follow the sorted label strings,
//! and the images are shuffled once with numpy's `np.random.seed(42); np.random.permutation(n)`: the first 5/6
//! form the training set and the rest the test set. For the real 60,000 images that is exactly the original's
//! 50,000 / 10,000; smaller folders (tests, subsets) follow the same rule with `n` their own size.

use std::path::{Path, PathBuf};

use super::image_set::{Dataset, ImageSet};
use super::numpy_rng;
use crate::{Error, Result};

pub const MINIIMAGENET_MEAN: [f32; 3] = [0.4728, 0.4487, 0.4031];
pub const MINIIMAGENET_STD: [f32; 3] = [0.2744, 0.2663, 0.2806];

/// The seed of the original's shuffle.
const SPLIT_SEED: u32 = 42;
const LISTS: [&str; 3] = ["train.csv", "val.csv", "test.csv"];

/// One image as listed: its file under `images/` and its label string (a WordNet id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub filename: String,
    pub label: String,
}

/// A folder with the three lists and `images/`.
pub fn find_dir(root: &Path) -> Option<PathBuf> {
    let ok = LISTS.iter().all(|f| root.join(f).is_file()) && root.join("images").is_dir();
    ok.then(|| root.to_path_buf())
}

/// The concatenated lists, in the original's order (train, val, test).
pub fn read_entries(dir: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for name in LISTS {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let header = lines.next().map(|(_, l)| l.trim_start_matches('\u{feff}').trim());
        if header != Some("filename,label") {
            return Err(Error::format(&path, format!("header is {header:?}, expected \"filename,label\"")));
        }
        for (i, line) in lines {
            let fields: Vec<&str> = line.trim().split(',').map(str::trim).collect();
            match fields.as_slice() {
                [f, l] if !f.is_empty() && !l.is_empty() => {
                    out.push(Entry { filename: f.to_string(), label: l.to_string() })
                }
                _ => {
                    return Err(Error::format(&path, format!("line {}: {line:?} is not `filename,label`", i + 1)));
                }
            }
        }
    }
    Ok(out)
}

/// Indices into the concatenated lists: (training set, test set), by the original's seeded shuffle.
pub fn split(n: usize) -> (Vec<usize>, Vec<usize>) {
    let mut perm = numpy_rng::permutation(SPLIT_SEED, n);
    let test = perm.split_off(n * 5 / 6);
    (perm, test)
}

pub fn read(dir: &Path) -> Result<Dataset> {
    let entries = read_entries(dir)?;
    if entries.is_empty() {
        return Err(Error::format(dir, "the three lists name no images"));
    }
    let mut class_names: Vec<String> = entries.iter().map(|e| e.label.clone()).collect();
    class_names.sort();
    class_names.dedup();
    let class_of = |label: &str| class_names.binary_search_by(|c| c.as_str().cmp(label)).expect("listed") as u32;

    let (train_ids, test_ids) = split(entries.len());
    let order: Vec<usize> = train_ids.iter().chain(&test_ids).copied().collect();
    let images = dir.join("images");
    let first = decode(&images.join(&entries[order[0]].filename))?;
    let (h, w) = (first.height() as usize, first.width() as usize);
    let mut pixels = vec![0u8; entries.len() * 3 * h * w];
    decode_all(&images, &entries, &order, (h, w), &mut pixels)?;

    let test_pixels = pixels.split_off(train_ids.len() * 3 * h * w);
    let labels = |ids: &[usize]| Some(ids.iter().map(|&i| class_of(&entries[i].label)).collect());
    Ok(Dataset {
        name: "miniimagenet".into(),
        train: ImageSet { channels: 3, height: h, width: w, pixels, labels: labels(&train_ids) },
        test: ImageSet { channels: 3, height: h, width: w, pixels: test_pixels, labels: labels(&test_ids) },
        num_classes: class_names.len(),
        class_names,
        mean: MINIIMAGENET_MEAN.to_vec(),
        std: MINIIMAGENET_STD.to_vec(),
    })
}

fn decode(path: &Path) -> Result<image::RgbImage> {
    let reader = image::ImageReader::open(path).map_err(|e| Error::io(path, e))?;
    let reader = reader.with_guessed_format().map_err(|e| Error::io(path, e))?;
    let img = reader.decode().map_err(|e| Error::format(path, format!("cannot decode image: {e}")))?;
    Ok(img.to_rgb8())
}

/// Decodes `entries[order[k]]` into slot `k` of `out` (channel-planar), on all cores; JPEG decoding dominates.
fn decode_all(images: &Path, entries: &[Entry], order: &[usize], (h, w): (usize, usize), out: &mut [u8]) -> Result<()> {
    let img_len = 3 * h * w;
    let threads = std::thread::available_parallelism().map_or(4, |n| n.get()).min(order.len());
    let per_thread = order.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = out
            .chunks_mut(per_thread * img_len)
            .zip(order.chunks(per_thread))
            .map(|(dst, ids)| {
                s.spawn(move || -> Result<()> {
                    for (slot, &i) in dst.chunks_exact_mut(img_len).zip(ids) {
                        let path = images.join(&entries[i].filename);
                        let img = decode(&path)?;
                        if (img.height() as usize, img.width() as usize) != (h, w) {
                            return Err(Error::format(
                                &path,
                                format!("image is {}×{}, the others are {h}×{w}", img.height(), img.width()),
                            ));
                        }
                        for (p, rgb) in img.pixels().enumerate() {
                            for c in 0..3 {
                                slot[c * h * w + p] = rgb[c];
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().expect("decoder thread panicked"))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes `per_class` 3×2 PNGs for each of `classes` across the three lists; image `k` (in list order) has
    /// red = k, green = 100 + class, blue = 7.
    pub(crate) fn write_tiny(dir: &Path, classes: &[&str], per_class: usize) -> Vec<(u8, String)> {
        std::fs::create_dir_all(dir.join("images")).unwrap();
        let mut made = Vec::new();
        let mut k = 0u8;
        for (li, list) in LISTS.iter().enumerate() {
            let mut csv = String::from("filename,label\n");
            for (ci, c) in classes.iter().enumerate().filter(|(ci, _)| ci % 3 == li) {
                for j in 0..per_class {
                    let name = format!("{c}{j:08}.png");
                    let img = image::RgbImage::from_pixel(3, 2, image::Rgb([k, 100 + ci as u8, 7]));
                    img.save(dir.join("images").join(&name)).unwrap();
                    csv.push_str(&format!("{name},{c}\n"));
                    made.push((k, c.to_string()));
                    k += 1;
                }
            }
            std::fs::write(dir.join(list), csv).unwrap();
        }
        made
    }

    #[test]
    fn reads_concatenates_sorts_classes_and_splits_like_the_original() {
        let dir = tempfile::tempdir().unwrap();
        // Not in sorted order on purpose: ids must follow the sorted label strings.
        let classes = ["n03", "n01", "n02"];
        let made = write_tiny(dir.path(), &classes, 4);
        assert!(find_dir(dir.path()).is_some());
        let d = read(dir.path()).unwrap();
        assert_eq!(d.class_names, vec!["n01", "n02", "n03"]);
        assert_eq!((d.train.len(), d.test.len()), (10, 2));
        assert_eq!((d.train.channels, d.train.height, d.train.width), (3, 2, 3));
        let (train_ids, test_ids) = split(12);
        assert_eq!(train_ids, numpy_rng::permutation(42, 12)[..10].to_vec());
        for (set, ids) in [(&d.train, &train_ids), (&d.test, &test_ids)] {
            for (slot, &i) in ids.iter().enumerate() {
                let (k, label) = &made[i];
                let img = set.image(slot);
                assert_eq!(&img[..6], &[*k; 6], "red plane of list entry {i}");
                assert_eq!(img[12], 7);
                let class = d.class_names.iter().position(|c| c == label).unwrap() as u32;
                assert_eq!(set.labels.as_ref().unwrap()[slot], class);
                let original_class = classes.iter().position(|c| c == label).unwrap() as u8;
                assert_eq!(img[6], 100 + original_class);
            }
        }
    }

    #[test]
    fn the_full_size_split_is_50000_and_10000() {
        let (train, test) = split(60_000);
        assert_eq!((train.len(), test.len()), (50_000, 10_000));
        assert_eq!(&train[..3], &[12628, 37730, 39991]);
        assert_eq!(&test[..3], &[3675, 15450, 20608]);
    }

    #[test]
    fn bad_lists_and_images_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny(dir.path(), &["a", "b", "c"], 1);
        std::fs::write(dir.path().join("val.csv"), "file,label\nx.png,b\n").unwrap();
        assert!(read(dir.path()).unwrap_err().to_string().contains("header"));
        std::fs::write(dir.path().join("val.csv"), "filename,label\nx.png\n").unwrap();
        assert!(read(dir.path()).unwrap_err().to_string().contains("line 2"));
        std::fs::write(dir.path().join("val.csv"), "filename,label\nb00000000.png,b\n").unwrap();
        assert!(read(dir.path()).is_ok());
        std::fs::write(dir.path().join("images/b00000000.png"), b"not a png").unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Format { .. }) && err.to_string().contains("b00000000.png"), "{err}");
        image::RgbImage::new(5, 5).save(dir.path().join("images/b00000000.png")).unwrap();
        assert!(read(dir.path()).unwrap_err().to_string().contains("5×5"));
        std::fs::remove_file(dir.path().join("images/b00000000.png")).unwrap();
        assert!(matches!(read(dir.path()).unwrap_err(), Error::Io { .. }));
    }
}
