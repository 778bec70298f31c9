//! Batches for training and evaluation, made by worker threads while the model works on the previous ones.
//!
//! Batch `k` of an epoch is built by worker `k mod W` and handed over through that worker's own bounded channel,
//! so batches arrive in order without a reorder buffer and at most `prefetch` per worker wait in memory. Each
//! sample's augmentation generator is seeded from (base seed, epoch, position in the epoch's order, image index)
//! alone, so the batches are the same for any number of workers, and an image listed twice in one epoch (an
//! oversampled labelled set) gets two independent augmentations.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::augment::{Image, Pipeline};
use super::image_set::ImageSet;
use crate::{Error, Result};

/// One batch, ready for a tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Training-set (or test-set) index of each sample, in batch order.
    pub indices: Vec<usize>,
    /// `B × C × H × W` values, augmented and normalised.
    pub images: Vec<f32>,
    /// Ground truth of each sample, when the set has it.
    pub labels: Option<Vec<u32>>,
    pub shape: [usize; 4],
}

/// How batches are made.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Applied to each sample before normalisation; `None` for evaluation.
    pub augment: Option<Pipeline>,
    /// Per-channel statistics on the `[0, 1]` scale (the dataset's).
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// The experiment's seed; with `epoch` it fixes every augmentation.
    pub seed: u64,
    pub epoch: u64,
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Batches each worker may have ready ahead of the consumer.
    pub prefetch: usize,
    /// Leave out a last batch smaller than `batch_size`.
    pub drop_last: bool,
}

impl LoaderConfig {
    /// No augmentation, every core but one (at most 8), two batches ahead per worker, the short last batch kept.
    pub fn new(batch_size: usize, mean: &[f32], std: &[f32]) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        LoaderConfig {
            batch_size,
            augment: None,
            mean: mean.to_vec(),
            std: std.to_vec(),
            seed: 0,
            epoch: 0,
            workers: cores.saturating_sub(1).clamp(1, 8),
            prefetch: 2,
            drop_last: false,
        }
    }

    /// The output geometry for `set`, or why this configuration cannot batch it.
    fn check(&self, set: &ImageSet, order: &[usize]) -> Result<[usize; 3]> {
        let err = |m: String| Error::stage("loader", m);
        if self.batch_size == 0 {
            return Err(err("batch size must be at least 1".into()));
        }
        if self.mean.len() != set.channels || self.std.len() != set.channels {
            return Err(err(format!(
                "{} mean and {} std values for {}-channel images",
                self.mean.len(),
                self.std.len(),
                set.channels
            )));
        }
        if let Some(s) = self.std.iter().find(|s| s.is_nan() || **s <= 0.0) {
            return Err(err(format!("std {s} must be positive")));
        }
        if let Some(&i) = order.iter().find(|&&i| i >= set.len()) {
            return Err(err(format!("index {i} is outside the {} images", set.len())));
        }
        let (h, w) = match &self.augment {
            Some(p) => p.output_size(set.height, set.width).map_err(err)?,
            None => (set.height, set.width),
        };
        Ok([set.channels, h, w])
    }

    fn num_batches(&self, n: usize) -> usize {
        if self.drop_last { n / self.batch_size } else { n.div_ceil(self.batch_size) }
    }
}

/// Calls `f` with each batch of `order`, in order, while workers prepare the next ones; stops at the first error
/// `f` returns. The set is borrowed, so this suits a training loop that holds a `&Dataset`.
pub fn for_each_batch<F>(set: &ImageSet, order: &[usize], cfg: &LoaderConfig, mut f: F) -> Result<()>
where
    F: FnMut(Batch) -> Result<()>,
{
    let shape = cfg.check(set, order)?;
    let batches = cfg.num_batches(order.len());
    let workers = cfg.workers.clamp(1, batches.max(1));
    std::thread::scope(|s| {
        let mut receivers = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = mpsc::sync_channel(cfg.prefetch.max(1));
            receivers.push(rx);
            s.spawn(move || produce(set, order, cfg, shape, w, workers, batches, tx));
        }
        for k in 0..batches {
            // A closed channel before its batch means the worker panicked; the scope re-raises that panic.
            let Ok(batch) = receivers[k % workers].recv() else {
                return Ok(());
            };
            // Returning early drops the receivers, so the workers' next send fails and they stop.
            f(batch)?;
        }
        Ok(())
    })
}

/// The owning form: an iterator over one epoch's batches for callers that cannot borrow the set for the whole
/// loop. Dropping it early stops the workers.
pub struct BatchIter {
    receivers: Vec<Receiver<Batch>>,
    handles: Vec<JoinHandle<()>>,
    next: usize,
    batches: usize,
}

impl BatchIter {
    pub fn new(set: Arc<ImageSet>, order: Vec<usize>, cfg: LoaderConfig) -> Result<Self> {
        let shape = cfg.check(&set, &order)?;
        let batches = cfg.num_batches(order.len());
        let workers = cfg.workers.clamp(1, batches.max(1));
        let order = Arc::new(order);
        let cfg = Arc::new(cfg);
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = mpsc::sync_channel(cfg.prefetch.max(1));
            receivers.push(rx);
            let (set, order, cfg) = (set.clone(), order.clone(), cfg.clone());
            let handle = std::thread::Builder::new()
                .name(format!("relab-loader-{w}"))
                .spawn(move || produce(&set, &order, &cfg, shape, w, workers, batches, tx))
                .map_err(|e| Error::stage("loader", format!("cannot start a worker thread: {e}")))?;
            handles.push(handle);
        }
        Ok(BatchIter { receivers, handles, next: 0, batches })
    }

    /// Batches this epoch yields in all.
    pub fn num_batches(&self) -> usize {
        self.batches
    }
}

impl Iterator for BatchIter {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.batches {
            return None;
        }
        let w = self.next % self.receivers.len();
        match self.receivers[w].recv() {
            Ok(b) => {
                self.next += 1;
                Some(b)
            }
            Err(_) => {
                // The worker is gone before its batch: it panicked. Surface that panic here.
                let handle = self.handles.remove(w);
                match handle.join() {
                    Err(panic) => std::panic::resume_unwind(panic),
                    Ok(()) => unreachable!("a loader worker ended before sending its batches"),
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batches - self.next;
        (left, Some(left))
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        // Closing the channels first makes every blocked worker's send fail, so joining cannot hang.
        self.receivers.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Worker `w` of `workers`: builds batches `w, w + workers, ...` and sends them until done or the receiver is
/// gone.
#[allow(clippy::too_many_arguments)]
fn produce(
    set: &ImageSet,
    order: &[usize],
    cfg: &LoaderConfig,
    shape: [usize; 3],
    w: usize,
    workers: usize,
    batches: usize,
    tx: SyncSender<Batch>,
) {
    for k in (w..batches).step_by(workers) {
        let start = k * cfg.batch_size;
        let end = (start + cfg.batch_size).min(order.len());
        if tx.send(make_batch(set, order, start..end, cfg, shape)).is_err() {
            return;
        }
    }
}

fn make_batch(
    set: &ImageSet,
    order: &[usize],
    positions: std::ops::Range<usize>,
    cfg: &LoaderConfig,
    [c, h, w]: [usize; 3],
) -> Batch {
    let indices: Vec<usize> = order[positions.clone()].to_vec();
    let mut images = Vec::with_capacity(indices.len() * c * h * w);
    for (pos, &i) in positions.zip(&indices) {
        let mut img = Image::from_u8(set.channels, set.height, set.width, set.image(i));
        if let Some(p) = &cfg.augment {
            img = p.apply(img, &mut sample_rng(cfg.seed, cfg.epoch, pos, i));
        }
        img.normalise(&cfg.mean, &cfg.std);
        debug_assert_eq!((img.c, img.h, img.w), (c, h, w), "pipeline output size is fixed by its input size");
        images.extend_from_slice(&img.data);
    }
    let labels = set.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect());
    Batch { shape: [indices.len(), c, h, w], indices, images, labels }
}

/// The generator of one sample's augmentation: the four numbers are the whole 256-bit seed, so distinct
/// (seed, epoch, position, index) never share a stream.
pub fn sample_rng(seed: u64, epoch: u64, position: usize, index: usize) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (chunk, v) in key.chunks_exact_mut(8).zip([seed, epoch, position as u64, index as u64]) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::augment::PadMode;

    fn set(n: usize) -> ImageSet {
        ImageSet {
            channels: 3,
            height: 6,
            width: 5,
            pixels: (0..n * 90).map(|i| (i * 37 % 256) as u8).collect(),
            labels: Some((0..n as u32).map(|i| i % 4).collect()),
        }
    }

    fn cfg(workers: usize) -> LoaderConfig {
        let mut c = LoaderConfig::new(4, &[0.5, 0.4, 0.3], &[0.2, 0.25, 0.5]);
        c.augment = Some(Pipeline::crop_flip(2, PadMode::Reflect));
        c.augment.as_mut().unwrap().0.extend(Pipeline::contrastive_views(4).0);
        c.workers = workers;
        c.seed = 11;
        c.epoch = 3;
        c
    }

    fn collect(set: &ImageSet, order: &[usize], cfg: &LoaderConfig) -> Vec<Batch> {
        let mut out = Vec::new();
        for_each_batch(set, order, cfg, |b| {
            out.push(b);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn same_batches_for_one_or_three_workers_in_order() {
        let s = set(23);
        let order: Vec<usize> = (0..23).rev().chain([5, 5]).collect();
        let one = collect(&s, &order, &cfg(1));
        let three = collect(&s, &order, &cfg(3));
        assert_eq!(one, three);
        assert_eq!(one.len(), 7);
        assert_eq!(one[0].indices, vec![22, 21, 20, 19]);
        assert_eq!(one[6].shape, [1, 3, 4, 4]);
        assert_eq!(one.iter().flat_map(|b| b.indices.clone()).collect::<Vec<_>>(), order);
        let owned: Vec<Batch> = BatchIter::new(Arc::new(s.clone()), order.clone(), cfg(3)).unwrap().collect();
        assert_eq!(owned, one);
        // The duplicate image 5 at two positions gets two different augmentations.
        let last = &one[6];
        let before = &one[5];
        assert_eq!((before.indices[3], last.indices[0]), (5, 5));
        assert_ne!(before.images[3 * 48..], last.images[..]);
        // Another epoch or seed changes the augmentations.
        let mut other = cfg(2);
        other.epoch = 4;
        assert_ne!(collect(&s, &order, &other)[0].images, one[0].images);
    }

    #[test]
    fn without_augmentation_images_are_just_normalised() {
        let s = set(3);
        let mut c = LoaderConfig::new(2, &[0.5, 0.5, 0.5], &[0.5, 0.5, 0.5]);
        c.drop_last = true;
        let b = collect(&s, &[2, 0, 1], &c);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].shape, [2, 3, 6, 5]);
        assert_eq!(b[0].labels, Some(vec![2, 0]));
        let want: Vec<f32> = s.image(2).iter().chain(s.image(0)).map(|&p| (p as f32 / 255.0 - 0.5) / 0.5).collect();
        assert!(b[0].images.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6));
    }

    #[test]
    fn bad_configurations_are_errors() {
        let s = set(3);
        let c = LoaderConfig::new(2, &[0.5], &[0.5]);
        assert!(for_each_batch(&s, &[0], &c, |_| Ok(())).unwrap_err().to_string().contains("1 mean"));
        let c = LoaderConfig::new(2, &[0.5; 3], &[0.5; 3]);
        assert!(for_each_batch(&s, &[3], &c, |_| Ok(())).unwrap_err().to_string().contains("index 3"));
        assert!(BatchIter::new(Arc::new(s), vec![], LoaderConfig::new(0, &[0.5; 3], &[0.5; 3])).is_err());
    }

    #[test]
    fn stopping_early_ends_the_workers() {
        let s = set(40);
        let order: Vec<usize> = (0..40).collect();
        let mut c = cfg(3);
        c.batch_size = 1;
        let mut seen = 0;
        let r = for_each_batch(&s, &order, &c, |_| {
            seen += 1;
            if seen == 2 { Err(Error::stage("test", "stop")) } else { Ok(()) }
        });
        assert!(r.is_err() && seen == 2);
        let mut it = BatchIter::new(Arc::new(s), order, c).unwrap();
        assert_eq!(it.next().unwrap().indices, vec![0]);
        drop(it); // must not hang
    }
}
