//! Training-throughput benchmark: forward + backward + SGD step of a backbone at a fixed batch on 32×32×3 inputs,
//! the same measurement as `shared/bench/train_throughput_reference.py` makes in PyTorch.

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::Result;
use crate::device::CheckedDevice;
use crate::nn::{BackboneConfig, BackboneKind};
use crate::train::{Optimiser, SgdSettings};

/// What `relab bench train` prints, as one JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct TrainThroughput {
    pub model: String,
    pub batch: usize,
    pub backend: String,
    pub steps: usize,
    /// `batch` divided by the median time of one timed step.
    pub images_per_second: f64,
    pub median_step_seconds: f64,
    /// The process's peak resident memory (VmHWM) after the run.
    pub peak_rss_mib: Option<f64>,
}

/// Times `steps` training steps after `warmup` untimed ones; the median step gives the figure.
pub fn train_throughput(
    kind: BackboneKind,
    batch: usize,
    steps: usize,
    warmup: usize,
    device: &CheckedDevice,
) -> Result<TrainThroughput> {
    let ad = device.device.clone().autodiff();
    let mut model = crate::nn::seeded(&ad, 0, || BackboneConfig::new(kind, 3, 10).init(&ad));
    // The reference's `torch.optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)`.
    let mut optim = Optimiser::sgd(&SgdSettings { momentum: 0.9, nesterov: true, weight_decay: 5e-4, dampening: 0.0 });
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let pixels: Vec<f32> = (0..batch * 3 * 32 * 32).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    let labels: Vec<i64> = (0..batch).map(|_| rng.random_range(0..10)).collect();
    let x = Tensor::<4>::from_data(TensorData::new(pixels, [batch, 3, 32, 32]), &ad);
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &ad);
    let bar = crate::progress::bar((warmup + steps) as u64, format!("bench {kind}"));
    let mut times = Vec::with_capacity(steps);
    for step in 0..warmup + steps {
        let start = Instant::now();
        let logits = model.forward(x.clone()).logits;
        let loss = loss_fn.forward(logits, y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.1, model, grads);
        // Reading the loss waits for the device, so asynchronous backends are timed whole.
        let value: f32 = loss.into_scalar();
        if !value.is_finite() {
            return Err(crate::Error::stage("bench", format!("non-finite loss {value} at step {step}")));
        }
        if step >= warmup {
            times.push(start.elapsed().as_secs_f64());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    Ok(TrainThroughput {
        model: kind.to_string(),
        batch,
        backend: device.backend.to_string(),
        steps,
        images_per_second: batch as f64 / median,
        median_step_seconds: median,
        peak_rss_mib: peak_rss_mib(),
    })
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
