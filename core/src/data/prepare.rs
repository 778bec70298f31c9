//! What an experiment asks of a dataset beyond reading it: a prefix of it for quick runs, a channel count its
//! networks accept, and a square size they were built for.

use super::DatasetConfig;
use super::augment::{Image, resize_bilinear};
use super::image_set::{Dataset, ImageSet};
use crate::{Error, Result};

/// Applies `train_limit`/`test_limit`, `channels`, `pad_to` and `resize`, in that order.
pub fn prepare(mut d: Dataset, cfg: &DatasetConfig) -> Result<Dataset> {
    let err = |m: String| Error::stage("dataset", format!("{}: {m}", d.name));
    if let Some(n) = cfg.train_limit {
        if n == 0 {
            return Err(err("train_limit must be at least 1".into()));
        }
        d.train = truncate(&d.train, n);
    }
    if let Some(n) = cfg.test_limit {
        if n == 0 {
            return Err(err("test_limit must be at least 1".into()));
        }
        d.test = truncate(&d.test, n);
    }
    if let Some(c) = cfg.channels {
        let have = d.train.channels;
        match (have, c) {
            (h, c) if h == c => {}
            (1, 3) => {
                d.train = repeat_channels(&d.train, 3);
                d.test = repeat_channels(&d.test, 3);
                d.mean = vec![d.mean[0]; 3];
                d.std = vec![d.std[0]; 3];
            }
            (3, 1) => {
                return Err(err("is a colour dataset; `channels: 1` would throw colour away (use 3)".into()));
            }
            (h, c) => {
                return Err(err(format!("has {h} channel(s); `channels: {c}` is not possible (use 1 or 3)")));
            }
        }
    }
    if let Some(size) = cfg.pad_to {
        let (h, w) = (d.train.height, d.train.width);
        if size < h || size < w {
            return Err(err(format!("pad_to: {size} is smaller than the {h}×{w} images; padding cannot shrink")));
        }
        d.train = pad_to(&d.train, size);
        d.test = pad_to(&d.test, size);
    }
    if let Some(size) = cfg.resize {
        if size == 0 {
            return Err(err("resize must be at least 1".into()));
        }
        d.train = resize(&d.train, size);
        d.test = resize(&d.test, size);
    }
    Ok(d)
}

/// The dataset with every image, train and test, resized to `size`×`size`: what [`prepare`]'s last step does, for a
/// stage that asks for another size than the experiment's `dataset.resize`.
pub fn resized(d: &Dataset, size: usize) -> Dataset {
    Dataset {
        name: d.name.clone(),
        train: resize(&d.train, size),
        test: resize(&d.test, size),
        num_classes: d.num_classes,
        class_names: d.class_names.clone(),
        mean: d.mean.clone(),
        std: d.std.clone(),
    }
}

/// Every image resized (bilinear, as the `resize` augmentation and Pillow) to `size`×`size`, rounded back to bytes.
/// The dataset's normalisation statistics are kept: resizing averages neighbouring pixels, which leaves the mean
/// as it was and the standard deviation close to it.
pub fn resize(set: &ImageSet, size: usize) -> ImageSet {
    if (set.height, set.width) == (size, size) {
        return set.clone();
    }
    let mut pixels = Vec::with_capacity(set.len() * set.channels * size * size);
    for i in 0..set.len() {
        let img = Image::from_u8(set.channels, set.height, set.width, set.image(i));
        let out = resize_bilinear(&img, size, size);
        pixels.extend(out.data.iter().map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8));
    }
    ImageSet { channels: set.channels, height: size, width: size, pixels, labels: set.labels.clone() }
}

/// The first `n` images (all of them when there are fewer), so indices keep their meaning.
pub fn truncate(set: &ImageSet, n: usize) -> ImageSet {
    let n = n.min(set.len());
    ImageSet {
        pixels: set.pixels[..n * set.image_len()].to_vec(),
        labels: set.labels.as_ref().map(|l| l[..n].to_vec()),
        ..*set
    }
}

/// A grey set as `c` identical channels.
pub fn repeat_channels(set: &ImageSet, c: usize) -> ImageSet {
    let plane = set.height * set.width;
    let mut pixels = Vec::with_capacity(set.pixels.len() * c);
    for img in set.pixels.chunks_exact(plane.max(1)) {
        for _ in 0..c {
            pixels.extend_from_slice(img);
        }
    }
    ImageSet { channels: c, pixels, labels: set.labels.clone(), ..*set }
}

/// Every image zero-padded to `size`×`size`, centred (an odd excess puts the extra row/column at the bottom/right,
/// as torchvision's `CenterCrop` does when it pads).
pub fn pad_to(set: &ImageSet, size: usize) -> ImageSet {
    let (h, w) = (set.height, set.width);
    let (top, left) = ((size - h) / 2, (size - w) / 2);
    let mut pixels = vec![0u8; set.len() * set.channels * size * size];
    for (src, dst) in set.pixels.chunks_exact(h * w).zip(pixels.chunks_exact_mut(size * size)) {
        for y in 0..h {
            let row = (top + y) * size + left;
            dst[row..row + w].copy_from_slice(&src[y * w..(y + 1) * w]);
        }
    }
    ImageSet { channels: set.channels, height: size, width: size, pixels, labels: set.labels.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DatasetConfig {
        DatasetConfig {
            name: "fashion-mnist".into(),
            root: None,
            labels_per_class: None,
            labels_seed: None,
            seeds: None,
            channels: None,
            pad_to: None,
            resize: None,
            train_limit: None,
            test_limit: None,
        }
    }

    fn grey(n: usize) -> Dataset {
        let set = ImageSet {
            channels: 1,
            height: 2,
            width: 2,
            pixels: (0..n * 4).map(|i| i as u8 + 1).collect(),
            labels: Some((0..n as u32).collect()),
        };
        Dataset {
            name: "fashion-mnist".into(),
            train: set.clone(),
            test: set,
            num_classes: 10,
            class_names: vec![],
            mean: vec![0.5],
            std: vec![0.25],
        }
    }

    #[test]
    fn limits_keep_the_first_images() {
        let d = prepare(grey(5), &DatasetConfig { train_limit: Some(3), test_limit: Some(9), ..cfg() }).unwrap();
        assert_eq!((d.train.len(), d.test.len()), (3, 5));
        assert_eq!(d.train.labels.unwrap(), vec![0, 1, 2]);
        assert_eq!(d.train.pixels, (1..=12).collect::<Vec<u8>>());
        assert!(prepare(grey(5), &DatasetConfig { train_limit: Some(0), ..cfg() }).is_err());
    }

    #[test]
    fn grey_to_three_channels_repeats_pixels_and_stats() {
        let d = prepare(grey(2), &DatasetConfig { channels: Some(3), ..cfg() }).unwrap();
        assert_eq!(d.train.channels, 3);
        assert_eq!(d.train.image(1), &[5, 6, 7, 8, 5, 6, 7, 8, 5, 6, 7, 8]);
        assert_eq!((d.mean, d.std), (vec![0.5; 3], vec![0.25; 3]));
        assert!(prepare(grey(2), &DatasetConfig { channels: Some(1), ..cfg() }).is_ok());
        assert!(prepare(grey(2), &DatasetConfig { channels: Some(2), ..cfg() }).is_err());
    }

    #[test]
    fn colour_to_one_channel_is_an_error() {
        let mut d = grey(1);
        d.train = repeat_channels(&d.train, 3);
        d.test = repeat_channels(&d.test, 3);
        let err = prepare(d, &DatasetConfig { channels: Some(1), ..cfg() }).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn resizing_averages_pixels_and_keeps_labels() {
        let mut d = grey(2);
        d.train.pixels = vec![10, 20, 30, 40, 0, 0, 254, 254];
        d.test.pixels = vec![0, 0, 0, 4, 8, 8, 8, 8];
        let out = prepare(d, &DatasetConfig { resize: Some(1), ..cfg() }).unwrap();
        assert_eq!((out.train.height, out.train.width), (1, 1));
        // Halving both sides averages each 2×2 block, as Pillow's antialiased bilinear does.
        assert_eq!(out.train.pixels, vec![25, 127]);
        assert_eq!(out.train.labels, Some(vec![0, 1]));
        assert_eq!(out.test.pixels, vec![1, 8], "test images are resized too");
        let up = resize(&out.train, 3);
        assert_eq!(up.pixels[..9], [25; 9], "a flat image stays flat");
        assert_eq!(resize(&up, 3), up, "the same size is the identity");
        // Resizing comes after padding: 2×2 padded to 4×4 then halved keeps the image in the centre.
        let padded = prepare(grey(1), &DatasetConfig { pad_to: Some(4), resize: Some(2), ..cfg() }).unwrap();
        assert_eq!(padded.train.pixels.len(), 4);
        assert!(prepare(grey(1), &DatasetConfig { resize: Some(0), ..cfg() }).is_err());
    }

    #[test]
    fn padding_centres_with_zeros() {
        let d = prepare(grey(1), &DatasetConfig { pad_to: Some(4), channels: Some(3), ..cfg() }).unwrap();
        assert_eq!((d.train.height, d.train.width, d.train.channels), (4, 4, 3));
        #[rustfmt::skip]
        let plane = [
            0, 0, 0, 0,
            0, 1, 2, 0,
            0, 3, 4, 0,
            0, 0, 0, 0,
        ];
        assert_eq!(d.train.image(0), [plane, plane, plane].concat().as_slice());
        #[rustfmt::skip]
        let odd = [
            0, 0, 0, 0, 0,
            0, 1, 2, 0, 0,
            0, 3, 4, 0, 0,
            0, 0, 0, 0, 0,
            0, 0, 0, 0, 0,
        ];
        assert_eq!(pad_to(&grey(1).train, 5).pixels, odd);
        assert!(prepare(grey(1), &DatasetConfig { pad_to: Some(1), ..cfg() }).is_err());
    }
}
