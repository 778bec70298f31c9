//! Two independently augmented views of every image of a batch, from one pass of the core loader.
//!
//! Each batch's images are listed twice in a row in the loader's order, and the loader batches twice the batch
//! size: the first half of a loaded batch is view 1, the second half view 2. The loader seeds each sample's
//! augmentation from its position in the order, so the two copies of an image get independent augmentations, and
//! the views are the same for any number of loader threads.
use rand::Rng;
use rand::seq::SliceRandom;
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::data::Batch;

/// The images of one epoch, in training order: a fresh permutation of `0..n`, cut to `per_epoch` images. A last
/// batch of a single image is left out (N-pairs needs another image for a negative, and batch norm a second
/// sample).
pub fn epoch_order(rng: &mut impl Rng, n: usize, per_epoch: Option<usize>, batch_size: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    order.truncate(per_epoch.unwrap_or(n).min(n));
    if order.len() % batch_size == 1 {
        order.pop();
    }
    order
}

/// The loader's order for batches of `2 × batch_size`: each batch of `order` followed by itself.
pub fn paired_order(order: &[usize], batch_size: usize) -> Vec<usize> {
    order.chunks(batch_size).flat_map(|chunk| chunk.iter().chain(chunk)).copied().collect()
}

/// The two views of a batch loaded from a [`paired_order`], as `[B, C, H, W]` tensors on `device`.
pub fn split_views(batch: Batch, device: &Device) -> (Tensor<4>, Tensor<4>) {
    let [n, c, h, w] = batch.shape;
    assert!(n % 2 == 0, "a paired batch holds each image twice, got {n} samples");
    let b = n / 2;
    debug_assert_eq!(batch.indices[..b], batch.indices[b..], "both halves of a paired batch are the same images");
    let mut first = batch.images;
    let second = first.split_off(b * c * h * w);
    let view = |values: Vec<f32>| Tensor::<4>::from_data(TensorData::new(values, [b, c, h, w]), device);
    (view(first), view(second))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use relab_core::data::augment::{Augment, Flip, Pipeline, RandomResizedCrop};
    use relab_core::data::{ImageSet, LoaderConfig, for_each_batch};

    #[test]
    fn epoch_order_is_a_seeded_draw_without_repeats() {
        let draw = |seed, per| epoch_order(&mut ChaCha8Rng::seed_from_u64(seed), 10, per, 4);
        let all = draw(1, None);
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_eq!(draw(1, None), all);
        assert_ne!(draw(2, None), all);
        assert_eq!(draw(1, Some(6)), all[..6]);
        assert_eq!(draw(1, Some(100)).len(), 10);
        // 9 = 4 + 4 + 1: the lone last image is dropped; 10 = 4 + 4 + 2 keeps its pair.
        assert_eq!(draw(1, Some(9)), all[..8]);
    }

    #[test]
    fn paired_order_repeats_each_batch() {
        assert_eq!(paired_order(&[5, 1, 7, 2, 9], 2), vec![5, 1, 5, 1, 7, 2, 7, 2, 9, 9]);
        assert_eq!(paired_order(&[], 3), Vec::<usize>::new());
    }

    /// Four 1 × 2 × 3 grey images whose rows read 0..6 (+ 10·i): asymmetric, so a flip shows.
    fn set() -> ImageSet {
        ImageSet {
            channels: 1,
            height: 2,
            width: 3,
            pixels: (0..4u8).flat_map(|i| (0..6u8).map(move |p| 10 * i + p)).collect(),
            labels: None,
        }
    }

    fn views(set: &ImageSet, pipeline: Pipeline, batch: usize, seed: u64) -> Vec<(Vec<usize>, Vec<f32>, Vec<f32>)> {
        let order: Vec<usize> = (0..set.len()).collect();
        let mut cfg = LoaderConfig::new(2 * batch, &[0.0], &[1.0 / 255.0]);
        cfg.augment = Some(pipeline);
        cfg.seed = seed;
        let mut out = Vec::new();
        for_each_batch(set, &paired_order(&order, batch), &cfg, |b| {
            let half = b.shape[0] / 2;
            let indices = b.indices[..half].to_vec();
            let (v1, v2) = split_views(b, &Device::flex());
            // Rounded: normalising with std 1/255 gives the bytes back up to float error.
            let values =
                |t: Tensor<4>| t.into_data().try_into_vec_as::<f32>().unwrap().into_iter().map(f32::round).collect();
            out.push((indices, values(v1), values(v2)));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn views_are_the_same_images_augmented_independently() {
        let s = set();
        let flip = |p| Pipeline::new(vec![Augment::Flip(Flip { p })]);
        // No augmentation that fires: both views are the images themselves (normalised back to 0..255 here).
        let same = views(&s, flip(0.0), 2, 1);
        assert_eq!(same.len(), 2);
        assert_eq!(same[1].0, vec![2, 3]);
        let image = |i: usize| s.image(i).iter().map(|&p| p as f32).collect::<Vec<f32>>();
        assert_eq!(same[1].1, [image(2), image(3)].concat());
        assert_eq!(same[1].2, same[1].1);
        // Flips with p = 1/2: each view of each image is the image or its mirror, drawn separately per view.
        let flipped = |i: usize| {
            let v = image(i);
            [v[2], v[1], v[0], v[5], v[4], v[3]].to_vec()
        };
        let (mut agree, mut differ) = (0, 0);
        for seed in 0..40 {
            for (indices, v1, v2) in views(&s, flip(0.5), 2, seed) {
                for (k, &i) in indices.iter().enumerate() {
                    let (a, b) = (&v1[6 * k..6 * k + 6], &v2[6 * k..6 * k + 6]);
                    assert!(a == image(i) || a == flipped(i), "view 1 of image {i}: {a:?}");
                    assert!(b == image(i) || b == flipped(i), "view 2 of image {i}: {b:?}");
                    if a == b { agree += 1 } else { differ += 1 }
                }
            }
        }
        // 160 pairs with independent fair coins: about half agree.
        assert!((50..110).contains(&agree) && differ == 160 - agree, "{agree} agree, {differ} differ");
    }

    #[test]
    fn resized_crop_views_are_windows_of_the_image() {
        // A quarter-area square window of a 4 × 4 image resized to 2 × 2 is the window itself: every view is one
        // of the nine 2 × 2 windows, and over many draws each window turns up.
        let image: Vec<u8> = (0..16).collect();
        let s = ImageSet { channels: 1, height: 4, width: 4, pixels: image.repeat(8), labels: None };
        let crop = RandomResizedCrop { size: Some(2), scale: [0.25, 0.25], ratio: [1.0, 1.0] };
        let pipeline = Pipeline::new(vec![Augment::ResizedCrop(crop)]);
        let windows: Vec<Vec<f32>> = (0..3)
            .flat_map(|t| (0..3).map(move |l| (t, l)))
            .map(|(t, l)| [4 * t + l, 4 * t + l + 1, 4 * t + l + 4, 4 * t + l + 5].map(|p| p as f32).to_vec())
            .collect();
        let mut seen = vec![0; 9];
        for seed in 0..10 {
            for (_, v1, v2) in views(&s, pipeline.clone(), 4, seed) {
                for view in v1.chunks(4).chain(v2.chunks(4)) {
                    let w = windows.iter().position(|w| w == view);
                    seen[w.unwrap_or_else(|| panic!("{view:?} is not a 2 × 2 window"))] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
    }
}
