//! Views of chosen images built inside a training step: the weak and strong views of an unlabelled batch (FixMatch,
//! ReMixMatch), where the loader's one-pipeline-per-epoch model does not fit because each view has its own
//! augmentation and the caller seeds it.
//!
//! [`image_batch`] loads each image exactly as the loader does (`u8` → `[0, 1]`), hands it to the caller's function,
//! normalises the result and packs a [`Batch`]. The work is split over scoped threads in contiguous runs of
//! positions and concatenated in position order, so the batch is the same for any number of threads as long as `f`
//! depends on its arguments alone (seed each image's generator with [`sample_rng`](super::sample_rng)`(seed,
//! epoch, position, index)`, never from a shared one).

use super::augment::Image;
use super::image_set::ImageSet;
use super::loader::Batch;
use crate::{Error, Result};

/// The batch of `set`'s images at `indices`, each passed through `f(position in indices, image index, image)` and
/// then normalised by `mean`/`std` (one value per channel of `f`'s output). Every output of `f` must have the same
/// size. Labels come from the set when it has them.
pub fn image_batch<F>(set: &ImageSet, indices: &[usize], mean: &[f32], std: &[f32], f: F) -> Result<Batch>
where
    F: Fn(usize, usize, Image) -> Image + Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    image_batch_on(set, indices, mean, std, &f, threads)
}

/// [`image_batch`] on exactly `threads` threads (at least 1), so tests can compare thread counts.
fn image_batch_on<F>(
    set: &ImageSet,
    indices: &[usize],
    mean: &[f32],
    std: &[f32],
    f: &F,
    threads: usize,
) -> Result<Batch>
where
    F: Fn(usize, usize, Image) -> Image + Sync,
{
    let err = |m: String| Error::stage("views", m);
    if let Some(&i) = indices.iter().find(|&&i| i >= set.len()) {
        return Err(err(format!("index {i} is outside the {} images", set.len())));
    }
    if mean.len() != std.len() {
        return Err(err(format!("{} mean and {} std values", mean.len(), std.len())));
    }
    if let Some(s) = std.iter().find(|s| s.is_nan() || **s <= 0.0) {
        return Err(err(format!("std {s} must be positive")));
    }
    let make = |pos: usize| {
        let i = indices[pos];
        let mut img = f(pos, i, Image::from_u8(set.channels, set.height, set.width, set.image(i)));
        if img.c != mean.len() {
            return Err(err(format!("{} mean and std values for a {}-channel view", mean.len(), img.c)));
        }
        img.normalise(mean, std);
        Ok(img)
    };
    let threads = threads.clamp(1, indices.len().max(1));
    let per = indices.len().div_ceil(threads);
    let runs: Vec<Result<Vec<Image>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * per).min(indices.len())..((t + 1) * per).min(indices.len());
                s.spawn(move || range.map(make).collect::<Result<Vec<Image>>>())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let mut shape = [indices.len(), set.channels, set.height, set.width];
    let mut images = Vec::new();
    let mut first = true;
    for img in runs.into_iter().collect::<Result<Vec<_>>>()?.into_iter().flatten() {
        if first {
            shape[1..].copy_from_slice(&[img.c, img.h, img.w]);
            images.reserve(indices.len() * img.data.len());
            first = false;
        } else if [img.c, img.h, img.w] != shape[1..] {
            return Err(err(format!(
                "views of one batch must share a size: {}×{}×{} after {}×{}×{}",
                img.c, img.h, img.w, shape[1], shape[2], shape[3]
            )));
        }
        images.extend_from_slice(&img.data);
    }
    let labels = set.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect());
    Ok(Batch { indices: indices.to_vec(), images, labels, shape })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::augment::{Pipeline, RandomCrop};
    use crate::data::loader::{LoaderConfig, for_each_batch, sample_rng};

    fn set(n: usize) -> ImageSet {
        ImageSet {
            channels: 3,
            height: 6,
            width: 5,
            pixels: (0..n * 90).map(|i| (i * 37 % 256) as u8).collect(),
            labels: Some((0..n as u32).map(|i| i % 4).collect()),
        }
    }

    const MEAN: [f32; 3] = [0.5, 0.4, 0.3];
    const STD: [f32; 3] = [0.2, 0.25, 0.5];

    #[test]
    fn identity_views_equal_the_loaders_batch() {
        let s = set(9);
        let indices = [4, 0, 8, 4, 2];
        let b = image_batch(&s, &indices, &MEAN, &STD, |_, _, img| img).unwrap();
        let mut cfg = LoaderConfig::new(5, &MEAN, &STD);
        cfg.workers = 1;
        let mut from_loader = None;
        for_each_batch(&s, &indices, &cfg, |lb| {
            from_loader = Some(lb);
            Ok(())
        })
        .unwrap();
        assert_eq!(Some(b.clone()), from_loader);
        assert_eq!(b.shape, [5, 3, 6, 5]);
        assert_eq!(b.labels, Some(vec![0, 0, 0, 0, 2]));
        // Pixel 7 of channel 1 of image 8, by hand.
        let byte = s.image(8)[30 + 7] as f32;
        assert_eq!(b.images[2 * 90 + 30 + 7], (byte / 255.0 - 0.4) * (1.0 / 0.25));
    }

    #[test]
    fn seeded_views_are_the_same_on_any_number_of_threads() {
        let s = set(13);
        let indices: Vec<usize> = (0..13).rev().chain([3, 3]).collect();
        let crop = Pipeline::new(vec![crate::data::augment::Augment::Crop(RandomCrop {
            size: Some(4),
            padding: 1,
            mode: crate::data::augment::PadMode::Reflect,
        })]);
        let f = |pos: usize, i: usize, img: Image| crop.apply(img, &mut sample_rng(7, 2, pos, i));
        let one = image_batch_on(&s, &indices, &MEAN, &STD, &f, 1).unwrap();
        for threads in [2, 4, 15, 64] {
            assert_eq!(image_batch_on(&s, &indices, &MEAN, &STD, &f, threads).unwrap(), one, "{threads} threads");
        }
        assert_eq!(one.shape, [15, 3, 4, 4]);
        assert_eq!(one.indices, indices);
        // The two copies of image 3 get independent crops, the caller having seeded them by position.
        assert_ne!(one.images[13 * 48..14 * 48], one.images[14 * 48..]);
        // And the function sees each position with its image.
        let seen = image_batch_on(
            &s,
            &indices,
            &[0.0],
            &[1.0],
            &|pos, i, _| Image::new(1, 1, 2, vec![pos as f32, i as f32]),
            3,
        )
        .unwrap();
        let want: Vec<f32> = indices.iter().enumerate().flat_map(|(p, &i)| [p as f32, i as f32]).collect();
        assert_eq!(seen.images, want);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let s = set(3);
        let id = |_: usize, _: usize, img: Image| img;
        assert!(image_batch(&s, &[3], &MEAN, &STD, id).unwrap_err().to_string().contains("index 3"));
        assert!(image_batch(&s, &[0], &[0.5], &[0.5], id).unwrap_err().to_string().contains("1 mean"));
        assert!(image_batch(&s, &[0], &MEAN, &[0.2, 0.0, 1.0], id).unwrap_err().to_string().contains("positive"));
        let ragged = |pos: usize, _: usize, img: Image| if pos == 1 { img.crop(0, 0, 2, 2) } else { img };
        assert!(image_batch(&s, &[0, 1], &MEAN, &STD, ragged).unwrap_err().to_string().contains("share a size"));
        let empty = image_batch(&s, &[], &MEAN, &STD, id).unwrap();
        assert_eq!((empty.shape, empty.images.len()), ([0, 3, 6, 5], 0));
    }
}
