//! Stochastic weight averaging as ReLaB's PL runs it (torchcontrib `SWA` in manual mode, method §5.2 item 8):
//! an equal-weight running average of weight snapshots, then batch-norm statistics recomputed for the averaged
//! weights (`bn_update`).
//!
//! [`Swa`] averages the trainable tensors; batch-norm running statistics are not averaged (torchcontrib keeps
//! buffers out of the average) but taken from the latest snapshot, to be replaced by [`recompute_bn_stats`].
use burn::module::Module;
use burn::tensor::Tensor;

use super::walk::{self, LeafKind};

/// The running average of the snapshots added so far.
#[derive(Debug, Clone)]
pub struct Swa<M: Module> {
    average: Option<M>,
    count: u64,
}

impl<M: Module> Default for Swa<M> {
    fn default() -> Self {
        Swa { average: None, count: 0 }
    }
}

impl<M: Module> Swa<M> {
    pub fn new() -> Self {
        Swa::default()
    }

    /// Continues an average of `count` snapshots saved earlier.
    pub fn resume(average: M, count: u64) -> Self {
        assert!(count > 0, "an SWA average holds at least one snapshot");
        Swa { average: Some(average.valid()), count }
    }

    /// Adds a snapshot: `avg ← avg + (w − avg)/(n+1)` (torchcontrib's update), so every snapshot weighs `1/n`.
    pub fn update(&mut self, model: &M) {
        let Some(average) = self.average.take() else {
            self.average = Some(model.valid());
            self.count = 1;
            return;
        };
        let n = self.count as f64;
        let mut current = walk::collect(model).into_iter();
        self.average = Some(walk::map(average, |leaf, avg| {
            let w = current.next().unwrap_or_else(|| panic!("SWA: the model has no tensor for {}", leaf.path));
            assert_eq!(w.info.path, leaf.path, "SWA: the model's tensors do not match the average's");
            assert_eq!(w.value.dims(), avg.dims(), "SWA: {} changed shape", leaf.path);
            Some(match leaf.kind {
                LeafKind::RunningStat => w.value,
                _ => avg.clone() + (w.value - avg).div_scalar(n + 1.0),
            })
        }));
        assert!(current.next().is_none(), "SWA: the model has more tensors than the average");
        self.count += 1;
    }

    /// Snapshots averaged so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The average (a [`Module::valid`] copy), once a snapshot was added.
    pub fn average(&self) -> Option<&M> {
        self.average.as_ref()
    }

    /// Writes the averaged weights (running statistics included) into `model`, keeping its training state
    /// (`swap_swa_sgd`). Panics without a snapshot.
    pub fn write_into(&self, model: M) -> M {
        let average = self.average.as_ref().expect("SWA: no snapshot was added");
        let mut avg = walk::collect(average).into_iter();
        walk::map(model, |leaf, w| {
            let a = avg.next().unwrap_or_else(|| panic!("SWA: the average has no tensor for {}", leaf.path));
            assert_eq!(a.info.path, leaf.path, "SWA: the model's tensors do not match the average's");
            assert_eq!(a.value.dims(), w.dims(), "SWA: {} changed shape", leaf.path);
            Some(a.value)
        })
    }
}

/// What [`recompute_bn_stats`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BnRecompute {
    pub batches: usize,
    pub samples: usize,
    /// Running-statistic tensors recomputed.
    pub recomputed: usize,
    /// Running-statistic tensors the forward passes did not update (frozen batch norms, momentum 0), left as
    /// they were.
    pub untouched: usize,
}

/// torchcontrib's `bn_update`: resets every batch-norm running statistic and sets it to the average of the batch
/// statistics over `batches`, each batch weighted by its size, as seen by forward passes of `model` in training
/// mode. `forward` runs one batch through the model (it must be on an autodiff device and in training mode, or
/// burn's batch norm does not update its statistics) and returns the batch size.
///
/// burn's batch norm keeps an exponential average with a fixed momentum `m` that a generic caller cannot change,
/// so each batch is run from statistics set to zero, which leaves `m·s_k`, and `m` is measured once per tensor by
/// running the first batch again from other statistics: batches must be `Clone` for that one extra pass.
/// Batch norms switched off (`Module::freeze`) keep their statistics and are never touched, since their outputs
/// depend on them. With no batches the model is returned unchanged.
pub fn recompute_bn_stats<M, B, I, F>(model: M, batches: I, mut forward: F) -> (M, BnRecompute)
where
    M: Module,
    B: Clone,
    I: IntoIterator<Item = B>,
    F: FnMut(&M, B) -> usize,
{
    let inactive = walk::inactive_batch_norms(&model);
    let stats: Vec<walk::Leaf> =
        walk::collect(&model).into_iter().filter(|l| l.info.kind == LeafKind::RunningStat).collect();
    let live: Vec<bool> = stats.iter().map(|l| !inactive.contains(walk::PathStack::parent(&l.info.path))).collect();
    let running = |model: &M| -> Vec<Tensor<1>> {
        walk::collect(model).into_iter().filter(|l| l.info.kind == LeafKind::RunningStat).map(|l| l.value).collect()
    };
    // Sets the statistics of the live batch norms, in visiting order, to `values`.
    let set_live = |model: M, values: &[Tensor<1>]| {
        let mut k = 0;
        walk::map(model, |leaf, _| {
            if leaf.kind != LeafKind::RunningStat {
                return None;
            }
            k += 1;
            live[k - 1].then(|| values[k - 1].clone())
        })
    };
    let zeros: Vec<Tensor<1>> = stats.iter().map(|l| l.value.zeros_like()).collect();
    let mut report = BnRecompute { batches: 0, samples: 0, recomputed: 0, untouched: 0 };
    let mut model = model;
    let mut sums: Vec<Tensor<1>> = Vec::new();
    let mut momenta: Vec<f64> = Vec::new();
    for batch in batches {
        let first = report.batches == 0;
        let again = first.then(|| batch.clone());
        model = set_live(model, &zeros);
        let b = forward(&model, batch);
        // From 0 each statistic became m·s.
        let batch_stats = running(&model);
        if let Some(again) = again {
            // From c (large, so that rounding does not blur the difference) it becomes (1−m)·c + m·s.
            let c: Vec<Tensor<1>> =
                batch_stats.iter().map(|s| s.clone().abs().clamp_min(1.0).mul_scalar(1000.0)).collect();
            model = set_live(model, &c);
            forward(&model, again);
            momenta = running(&model)
                .into_iter()
                .zip(&batch_stats)
                .zip(&c)
                .map(|((from_c, from_0), c)| {
                    1.0 - ((from_c - from_0.clone()) / c.clone()).mean().into_scalar::<f32>() as f64
                })
                .collect();
            sums = batch_stats.into_iter().map(|s| s.mul_scalar(b as f64)).collect();
        } else {
            sums = sums.into_iter().zip(batch_stats).map(|(acc, s)| acc + s.mul_scalar(b as f64)).collect();
        }
        report.batches += 1;
        report.samples += b;
    }
    let originals = stats.into_iter().map(|l| l.value);
    if report.batches == 0 {
        return (fill_from(model, originals.collect()), report);
    }
    let n = report.samples as f64;
    let mut values = Vec::with_capacity(sums.len());
    for (((sum, m), before), is_live) in sums.into_iter().zip(&momenta).zip(originals).zip(&live) {
        if *is_live && *m > 1e-6 && report.samples > 0 {
            report.recomputed += 1;
            values.push(sum.div_scalar(n * m));
        } else {
            report.untouched += 1;
            values.push(before);
        }
    }
    if report.recomputed == 0 && report.untouched > 0 {
        tracing::warn!("batch-norm recompute: no running statistic changed; was the model in training mode?");
    }
    (fill_from(model, values), report)
}

/// Sets the running statistics, in visiting order, to `values`.
fn fill_from<M: Module>(model: M, values: Vec<Tensor<1>>) -> M {
    let mut values = values.into_iter();
    walk::map(model, |leaf, _| (leaf.kind == LeafKind::RunningStat).then(|| values.next().expect("one per statistic")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
    use burn::tensor::{Device, TensorData};

    #[derive(Module, Debug)]
    struct Net {
        lin: Linear,
        bn: BatchNorm,
        frozen: BatchNorm,
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    fn with_weight(mut net: Net, w: [f32; 4]) -> Net {
        net.lin.weight = net.lin.weight.map(|t| {
            let plain = Tensor::from_data(TensorData::new(w.to_vec(), [2, 2]), &t.device().without_autodiff());
            walk::restore_autodiff(&t, plain)
        });
        net
    }

    fn net(device: &Device) -> Net {
        let frozen = BatchNormConfig::new(2).init(device);
        Net {
            lin: LinearConfig::new(2, 2).init(device),
            bn: BatchNormConfig::new(2).with_momentum(0.3).init(device),
            frozen: BatchNorm { training: Param::from_bool(false), ..frozen },
        }
    }

    #[test]
    fn averages_snapshots_with_equal_weights() {
        let device = Device::flex().autodiff();
        let mut swa = Swa::new();
        let mut model = net(&device);
        for w in [[1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 0.0, 4.0], [5.0, 5.0, 0.0, -2.0]] {
            model = with_weight(model, w);
            swa.update(&model);
        }
        assert_eq!(swa.count(), 3);
        let avg = values(swa.average().unwrap().lin.weight.val());
        assert!(avg.iter().zip([3.0, 3.0, 1.0, 2.0]).all(|(a, b)| (a - b).abs() < 1e-6), "{avg:?}");

        let model = swa.write_into(model);
        assert!(model.lin.weight.val().is_require_grad());
        let w = values(model.lin.weight.val());
        assert!(w.iter().zip([3.0, 3.0, 1.0, 2.0]).all(|(a, b)| (a - b).abs() < 1e-6), "{w:?}");

        // Resuming continues the same average: a fourth snapshot of zeros gives 3/4 of it.
        let mut resumed = Swa::resume(swa.average().unwrap().clone(), swa.count());
        resumed.update(&with_weight(model, [0.0; 4]));
        let avg = values(resumed.average().unwrap().lin.weight.val());
        assert!(avg.iter().zip([2.25, 2.25, 0.75, 1.5]).all(|(a, b)| (a - b).abs() < 1e-6), "{avg:?}");
    }

    #[test]
    fn recomputes_batch_norm_statistics_as_a_size_weighted_average() {
        let device = Device::flex().autodiff();
        let model = net(&device);
        let frozen_before = values(model.frozen.running_var.value());
        // Three batches of two features; the statistics seen by `bn` are those of the input itself.
        let batches: Vec<Vec<f32>> =
            vec![vec![1.0, 2.0, 3.0, 6.0], vec![0.0, 0.0, 4.0, 1.0, 8.0, 2.0], vec![5.0, -1.0]];
        let forward = |m: &Net, rows: Vec<f32>| {
            let b = rows.len() / 2;
            let x = Tensor::<2>::from_data(TensorData::new(rows, [b, 2]), &device);
            let _ = m.frozen.forward(m.bn.forward(x));
            b
        };
        let (model, report) = recompute_bn_stats(model, batches.clone(), forward);
        assert_eq!(report, BnRecompute { batches: 3, samples: 6, recomputed: 2, untouched: 2 });
        // Per batch (mean; biased variance) of feature 0: (2; 1), (4; 32/3), (5; 0); feature 1: (4; 4), (1; 2/3),
        // (−1; 0). Weighted by sizes 2, 3, 1 over 6 samples.
        let mean = values(model.bn.running_mean.value());
        let var = values(model.bn.running_var.value());
        let want_mean = [(2.0 * 2.0 + 3.0 * 4.0 + 5.0) / 6.0, (2.0 * 4.0 + 3.0 * 1.0 - 1.0) / 6.0];
        let want_var = [(2.0 * 1.0 + 3.0 * 32.0 / 3.0) / 6.0, (2.0 * 4.0 + 3.0 * 2.0 / 3.0) / 6.0];
        assert!(mean.iter().zip(want_mean).all(|(a, b)| (a - b).abs() < 1e-5), "{mean:?} vs {want_mean:?}");
        assert!(var.iter().zip(want_var).all(|(a, b)| (a - b).abs() < 1e-5), "{var:?} vs {want_var:?}");
        assert_eq!(values(model.frozen.running_var.value()), frozen_before);

        let (_, report) = recompute_bn_stats(model, Vec::<Vec<f32>>::new(), forward);
        assert_eq!(report.batches, 0);
    }
}
