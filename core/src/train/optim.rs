//! The method's optimisers with PyTorch's / TensorFlow's exact update rules, built on burn's.
//!
//! * **SGD** (iMix, phase 2b, PL): momentum, optional Nesterov, *coupled* L2 weight decay on every parameter, as
//!   PyTorch's `torch.optim.SGD`: `g ← g + wd·w; b ← m·b + (1−damp)·g` (`b ← g` on the first step);
//!   `g ← g + m·b` (Nesterov) or `g ← b`; `w ← w − lr·g`. burn's `Sgd` does exactly this once its momentum
//!   dampening is set: burn defaults it to 0.1, PyTorch to 0. [`SgdSettings`] always sets it (default 0). The
//!   update runs as [`FusedSgd`]: burn's `Sgd` arithmetic bit for bit, in one threaded pass per parameter.
//! * **Adam** (ReMixMatch, method §6.2): Adam, then *decoupled* weight decay of the conv/linear kernels only
//!   (not biases, not batch-norm parameters): after the Adam step, `w ← w·(1 − wd·lr)`. burn's `AdamW` decays every
//!   parameter and before the update (`w·(1−lr·wd) − lr·u`), so the decay is applied here instead.
//!   The ε placement is selectable: TensorFlow's `tf.train.AdamOptimizer` (used by ReMixMatch) adds ε to `√v`
//!   before bias correction, `w −= lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε)`; PyTorch adds it after,
//!   `w −= lr · m̂/(√v̂ + ε)` — burn's `Adam`, with ε set (burn defaults it to 1e-5, both frameworks to 1e-8).
//!
//! Parameters without a gradient in a step (frozen, unused) are left alone by both, as in PyTorch.
//! [`Optimiser::step`] takes the learning rate of each step; [`Scheduled`] takes it from an [`LrSchedule`].
use std::path::Path;

use burn::module::Module;
use burn::optim::{AdamConfig, AdaptiveMomentumState, GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::schedule::LrSchedule;
use super::sgd::{FusedSgd, MomentumRule};
use super::walk::{self, LeafKind};
use crate::{Error, Result};

/// PyTorch `torch.optim.SGD` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgdSettings {
    pub momentum: f64,
    pub nesterov: bool,
    /// Coupled L2 penalty, added to every parameter's gradient.
    pub weight_decay: f64,
    pub dampening: f64,
}

impl From<&SgdSettings> for FusedSgd {
    fn from(s: &SgdSettings) -> Self {
        FusedSgd {
            weight_decay: (s.weight_decay > 0.0).then_some(s.weight_decay as f32),
            momentum: (s.momentum > 0.0).then(|| MomentumRule::new(s.momentum, s.dampening, s.nesterov)),
        }
    }
}

impl Default for SgdSettings {
    /// iMix's: momentum 0.9, Nesterov, weight decay 1e-4.
    fn default() -> Self {
        SgdSettings { momentum: 0.9, nesterov: true, weight_decay: 1e-4, dampening: 0.0 }
    }
}

/// Where Adam adds ε.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpsilonStyle {
    /// `m/(√v + ε)` scaled by `√(1−β₂ᵗ)/(1−β₁ᵗ)`: `tf.train.AdamOptimizer`, what ReMixMatch ran.
    #[default]
    Tensorflow,
    /// `m̂/(√v̂ + ε)`: `torch.optim.Adam`.
    Pytorch,
}

/// Adam with decoupled weight decay on conv/linear kernels (ReMixMatch's optimiser).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamSettings {
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub epsilon_style: EpsilonStyle,
    /// After each step every kernel that trains is multiplied by `1 − weight_decay·lr`.
    pub weight_decay: f64,
    /// Module paths (prefixes, e.g. `rotation_head`) whose kernels are not decayed.
    pub no_decay: Vec<String>,
}

impl Default for AdamSettings {
    /// ReMixMatch's: TensorFlow's Adam (β 0.9 / 0.999, ε 1e-8) and weight decay 0.02.
    fn default() -> Self {
        AdamSettings {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            epsilon_style: EpsilonStyle::Tensorflow,
            weight_decay: 0.02,
            no_decay: Vec::new(),
        }
    }
}

/// Either optimiser, as an experiment names it: `{kind: sgd, momentum: 0.9, ...}` or `{kind: adam, ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimiserSettings {
    Sgd(SgdSettings),
    Adam(AdamSettings),
}

impl OptimiserSettings {
    /// Why these settings are unusable, if they are.
    pub fn check(&self) -> std::result::Result<(), String> {
        let finite_nonneg = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be a finite number ≥ 0, found {v}"))
            }
        };
        match self {
            OptimiserSettings::Sgd(s) => {
                finite_nonneg("momentum", s.momentum)?;
                finite_nonneg("weight_decay", s.weight_decay)?;
                finite_nonneg("dampening", s.dampening)?;
                if s.nesterov && (s.momentum <= 0.0 || s.dampening != 0.0) {
                    return Err("nesterov needs momentum > 0 and dampening 0 (as in PyTorch)".into());
                }
            }
            OptimiserSettings::Adam(s) => {
                for (name, b) in [("beta1", s.beta1), ("beta2", s.beta2)] {
                    if !(0.0..1.0).contains(&b) {
                        return Err(format!("{name} must be in [0, 1), found {b}"));
                    }
                }
                if !(s.epsilon.is_finite() && s.epsilon > 0.0) {
                    return Err(format!("epsilon must be a finite number > 0, found {}", s.epsilon));
                }
                finite_nonneg("weight_decay", s.weight_decay)?;
            }
        }
        Ok(())
    }
}

/// A whole-module optimiser: burn's [`ModuleOptimizer`] (whose state is what a checkpoint saves) plus, for Adam,
/// the decoupled kernel decay that follows each step.
#[derive(Clone)]
pub struct Optimiser {
    inner: ModuleOptimizer,
    kernel_decay: Option<KernelDecay>,
}

#[derive(Debug, Clone)]
struct KernelDecay {
    weight_decay: f64,
    no_decay: Vec<String>,
}

impl Optimiser {
    pub fn new(settings: &OptimiserSettings) -> Self {
        match settings {
            OptimiserSettings::Sgd(s) => Self::sgd(s),
            OptimiserSettings::Adam(s) => Self::adam(s),
        }
    }

    /// PyTorch's SGD: burn's `Sgd` arithmetic, fused into one pass per parameter ([`FusedSgd`]).
    pub fn sgd(s: &SgdSettings) -> Self {
        let inner = ModuleOptimizer::from(FusedSgd::from(s));
        Optimiser { inner, kernel_decay: None }
    }

    /// Adam (TensorFlow's or PyTorch's ε) followed by decoupled kernel decay.
    pub fn adam(s: &AdamSettings) -> Self {
        let inner = match s.epsilon_style {
            EpsilonStyle::Pytorch => AdamConfig::new()
                .with_beta_1(s.beta1 as f32)
                .with_beta_2(s.beta2 as f32)
                .with_epsilon(s.epsilon as f32)
                .init(),
            EpsilonStyle::Tensorflow => {
                ModuleOptimizer::from(TfAdam { beta1: s.beta1, beta2: s.beta2, epsilon: s.epsilon as f32 })
            }
        };
        let kernel_decay =
            (s.weight_decay > 0.0).then(|| KernelDecay { weight_decay: s.weight_decay, no_decay: s.no_decay.clone() });
        Optimiser { inner, kernel_decay }
    }

    /// One update of `module` with `grads` at learning rate `lr`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        let module = self.inner.step(lr, module, grads);
        match &self.kernel_decay {
            None => module,
            Some(d) => {
                let factor = 1.0 - d.weight_decay * lr;
                walk::map(module, |leaf, w| {
                    let decays = leaf.kind == LeafKind::Kernel
                        && leaf.require_grad
                        && !d.no_decay.iter().any(|p| under(&leaf.path, p));
                    decays.then(|| w.mul_scalar(factor))
                })
            }
        }
    }

    /// burn's optimiser, e.g. for its record.
    pub fn inner(&self) -> &ModuleOptimizer {
        &self.inner
    }

    /// The per-parameter state (momentum buffers, Adam moments and step counts), keyed by parameter id.
    pub fn to_record(&self) -> OptimizerRecord {
        self.inner.to_record()
    }

    pub fn load_record(mut self, record: OptimizerRecord) -> Self {
        self.inner = self.inner.load_record(record);
        self
    }

    /// Writes the state as a burnpack file (burn's optimiser record format).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.inner.save(path).map_err(|e| Error::format(path, format!("cannot write the optimiser state: {e}")))
    }

    /// Reads the state [`save`](Self::save) wrote. The module it continues must carry the same parameter ids
    /// (see `checkpoint::load_module`).
    pub fn load(self, path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)));
        }
        let kernel_decay = self.kernel_decay;
        let inner = self
            .inner
            .load(path)
            .map_err(|e| Error::format(path, format!("not an optimiser state burn can read: {e}")))?;
        Ok(Optimiser { inner, kernel_decay })
    }
}

/// Whether `path` is `prefix` or inside it (`head` covers `head.weight`, not `header.weight`).
fn under(path: &str, prefix: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.'))
}

/// An optimiser that takes its learning rate from a schedule.
#[derive(Clone)]
pub struct Scheduled {
    pub optimiser: Optimiser,
    pub schedule: LrSchedule,
}

impl Scheduled {
    pub fn new(optimiser: Optimiser, schedule: LrSchedule) -> Self {
        Scheduled { optimiser, schedule }
    }

    /// One update at the schedule's rate for (`epoch`, `step`); returns the module and the rate used.
    pub fn step<M: Module>(&mut self, epoch: u64, step: u64, module: M, grads: GradientsParams) -> (M, f64) {
        let lr = self.schedule.lr(epoch, step);
        (self.optimiser.step(lr, module, grads), lr)
    }
}

/// `tf.train.AdamOptimizer`'s update, as a burn per-tensor optimiser. Its state is burn's Adam state, so it is
/// recorded and restored like burn's.
#[derive(Clone)]
struct TfAdam {
    beta1: f64,
    beta2: f64,
    epsilon: f32,
}

impl burn::optim::Optimizer for TfAdam {
    type State<const D: usize> = AdaptiveMomentumState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (b1, b2) = (self.beta1, self.beta2);
        let (time, m, v) = match state {
            Some(s) => (
                s.time + 1,
                s.moment_1.mul_scalar(b1) + grad.clone().mul_scalar(1.0 - b1),
                s.moment_2.mul_scalar(b2) + grad.square().mul_scalar(1.0 - b2),
            ),
            None => (1, grad.clone().mul_scalar(1.0 - b1), grad.square().mul_scalar(1.0 - b2)),
        };
        let t = time as i32;
        let lr_t = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
        let delta = m.clone().div(v.clone().sqrt().add_scalar(self.epsilon)).mul_scalar(lr_t);
        (tensor - delta, Some(AdaptiveMomentumState::new(time, m, v)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.to_device(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
    use burn::tensor::TensorData;

    #[derive(Module, Debug)]
    struct Two {
        w: Param<Tensor<1>>,
    }

    /// Loss `Σ c·w` (gradient `c`) for the current weights.
    fn grads_of(model: &Two, c: &[f32]) -> GradientsParams {
        let c = Tensor::<1>::from_data(TensorData::new(c.to_vec(), [c.len()]), &model.w.val().device());
        GradientsParams::from_grads((model.w.val() * c).sum().backward(), model)
    }

    fn two(w: [f32; 2]) -> Two {
        let device = Device::flex().autodiff();
        Two { w: Param::from_tensor(Tensor::from_data(TensorData::new(w.to_vec(), [2]), &device)) }
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().try_into_vec_as::<f32>().unwrap().into_iter().map(f64::from).collect()
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64) {
        assert!(got.iter().zip(want).all(|(a, b)| (a - b).abs() <= tol), "got {got:?}, want {want:?}");
    }

    /// PyTorch's SGD, in f64, for a constant gradient `c`.
    fn torch_sgd(w0: [f64; 2], c: [f64; 2], lr: f64, s: &SgdSettings, steps: usize) -> Vec<f64> {
        let mut w = w0.to_vec();
        let mut buf: Option<Vec<f64>> = None;
        for _ in 0..steps {
            let g: Vec<f64> = (0..2).map(|i| c[i] + s.weight_decay * w[i]).collect();
            let b: Vec<f64> = match &buf {
                None => g.clone(),
                Some(b) => (0..2).map(|i| s.momentum * b[i] + (1.0 - s.dampening) * g[i]).collect(),
            };
            let d: Vec<f64> = if s.nesterov { (0..2).map(|i| g[i] + s.momentum * b[i]).collect() } else { b.clone() };
            buf = Some(b);
            w = (0..2).map(|i| w[i] - lr * d[i]).collect();
        }
        w
    }

    #[test]
    fn sgd_matches_pytorch_for_nesterov_and_plain_momentum() {
        let c = [0.5f32, 3.0];
        for s in [
            SgdSettings::default(),
            SgdSettings { nesterov: false, weight_decay: 5e-4, ..SgdSettings::default() },
            SgdSettings { momentum: 0.0, nesterov: false, weight_decay: 0.0, dampening: 0.0 },
        ] {
            let mut model = two([1.0, -2.0]);
            let mut opt = Optimiser::sgd(&s);
            for _ in 0..3 {
                let g = grads_of(&model, &c);
                model = opt.step(0.1, model, g);
            }
            let want = torch_sgd([1.0, -2.0], [0.5, 3.0], 0.1, &s, 3);
            assert_close(&values(model.w.val()), &want, 1e-6);
            assert!(model.w.val().is_require_grad());
        }
        // One step by hand (Nesterov, wd 1e-4, lr 0.1): g = c + 1e-4·w, w − 0.1·1.9·g.
        let mut model = two([1.0, -2.0]);
        let g = grads_of(&model, &c);
        model = Optimiser::sgd(&SgdSettings::default()).step(0.1, model, g);
        assert_close(&values(model.w.val()), &[1.0 - 0.19 * 0.5001, -2.0 - 0.19 * (3.0 - 0.0002)], 1e-6);
    }

    /// Adam in f64 for a constant gradient `c`, TensorFlow's or PyTorch's ε.
    fn reference_adam(w0: [f64; 2], c: [f64; 2], lr: f64, eps: f64, tf: bool, steps: i32) -> Vec<f64> {
        let (b1, b2) = (0.9f64, 0.999f64);
        let (mut w, mut m, mut v) = (w0.to_vec(), vec![0.0; 2], vec![0.0; 2]);
        for t in 1..=steps {
            for i in 0..2 {
                m[i] = b1 * m[i] + (1.0 - b1) * c[i];
                v[i] = b2 * v[i] + (1.0 - b2) * c[i] * c[i];
                let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
                w[i] -= if tf {
                    lr * bc2.sqrt() / bc1 * m[i] / (v[i].sqrt() + eps)
                } else {
                    lr * (m[i] / bc1) / ((v[i] / bc2).sqrt() + eps)
                };
            }
        }
        w
    }

    #[test]
    fn adam_matches_tensorflow_and_pytorch_formulas() {
        // A tiny gradient and a large ε make the two ε placements differ visibly.
        let c = [1e-3f32, -2.0];
        for (style, tf) in [(EpsilonStyle::Tensorflow, true), (EpsilonStyle::Pytorch, false)] {
            let s = AdamSettings { epsilon: 1e-3, epsilon_style: style, weight_decay: 0.0, ..AdamSettings::default() };
            let mut model = two([1.0, -2.0]);
            let mut opt = Optimiser::adam(&s);
            for _ in 0..3 {
                let g = grads_of(&model, &c);
                model = opt.step(0.01, model, g);
            }
            let want = reference_adam([1.0, -2.0], [1e-3, -2.0], 0.01, 1e-3, tf, 3);
            assert_close(&values(model.w.val()), &want, 2e-7);
        }
        let tf = reference_adam([1.0, -2.0], [1e-3, -2.0], 0.01, 1e-3, true, 3);
        let pt = reference_adam([1.0, -2.0], [1e-3, -2.0], 0.01, 1e-3, false, 3);
        assert!((tf[0] - pt[0]).abs() > 1e-4, "the test must tell the two ε placements apart");
    }

    #[derive(Module, Debug)]
    struct Net {
        lin: Linear,
        bn: BatchNorm,
        head: Linear,
    }

    #[test]
    fn adam_decays_only_kernels_after_the_step() {
        let device = Device::flex().autodiff();
        let net = Net {
            lin: LinearConfig::new(2, 2).init(&device),
            bn: BatchNormConfig::new(2).init(&device),
            head: LinearConfig::new(2, 1).init(&device),
        };
        let s = AdamSettings { weight_decay: 0.02, no_decay: vec!["head".into()], ..AdamSettings::default() };
        let forward = |n: &Net| {
            let x = Tensor::<2>::from_data(TensorData::new(vec![1f32, 2., -1., 0.5, 0.3, 0.2], [3, 2]), &device);
            n.head.forward(n.bn.forward(n.lin.forward(x))).sum()
        };
        let lr = 0.002;
        let g = GradientsParams::from_grads(forward(&net).backward(), &net);
        let with_decay = Optimiser::adam(&s).step(lr, net.clone(), g);
        let g = GradientsParams::from_grads(forward(&net).backward(), &net);
        let without = Optimiser::adam(&AdamSettings { weight_decay: 0.0, ..s.clone() }).step(lr, net.clone(), g);
        let factor = 1.0 - 0.02 * lr;
        let decayed: Vec<f64> = values(without.lin.weight.val()).iter().map(|w| w * factor).collect();
        assert_close(&values(with_decay.lin.weight.val()), &decayed, 1e-7);
        for (a, b) in [
            (with_decay.lin.bias.unwrap().val(), without.lin.bias.unwrap().val()),
            (with_decay.bn.gamma.val(), without.bn.gamma.val()),
            (with_decay.bn.beta.val(), without.bn.beta.val()),
            (with_decay.head.bias.unwrap().val(), without.head.bias.unwrap().val()),
        ] {
            a.into_data().assert_eq(&b.into_data(), true);
        }
        with_decay.head.weight.val().into_data().assert_eq(&without.head.weight.val().into_data(), true);
        assert!(with_decay.lin.weight.val().is_require_grad());
    }

    #[test]
    fn settings_parse_and_are_checked() {
        let s: OptimiserSettings = serde_yaml::from_str("kind: sgd\nmomentum: 0.9\nweight_decay: 5.0e-4").unwrap();
        assert_eq!(s, OptimiserSettings::Sgd(SgdSettings { weight_decay: 5e-4, ..SgdSettings::default() }));
        let s: OptimiserSettings = serde_yaml::from_str("kind: adam\nepsilon_style: pytorch").unwrap();
        assert!(matches!(s, OptimiserSettings::Adam(AdamSettings { epsilon_style: EpsilonStyle::Pytorch, .. })));
        assert!(serde_yaml::from_str::<OptimiserSettings>("kind: sgd\nmomentun: 0.9").is_err());
        let bad = OptimiserSettings::Sgd(SgdSettings { momentum: 0.0, ..SgdSettings::default() });
        assert!(bad.check().unwrap_err().contains("nesterov"));
        assert!(OptimiserSettings::Adam(AdamSettings { beta2: 1.0, ..AdamSettings::default() }).check().is_err());
        assert!(OptimiserSettings::Adam(AdamSettings::default()).check().is_ok());
        assert!(under("head.weight", "head") && under("head", "head") && !under("header.weight", "head"));
    }

    #[test]
    fn scheduled_steps_at_the_schedule_rate() {
        let mut model = two([1.0, -2.0]);
        let plain = SgdSettings { momentum: 0.0, nesterov: false, weight_decay: 0.0, dampening: 0.0 };
        let mut opt = Scheduled::new(Optimiser::sgd(&plain), LrSchedule::multi_step(0.1, &[1], 0.5));
        let g = grads_of(&model, &[1.0, 1.0]);
        let (m, lr) = opt.step(1, 0, model, g);
        model = m;
        assert_eq!(lr, 0.05);
        assert_close(&values(model.w.val()), &[0.95, -2.05], 1e-7);
    }
}
