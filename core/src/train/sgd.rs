//! PyTorch's SGD update as one pass over each parameter, for burn's [`ModuleOptimizer`].
//!
//! burn's `Sgd` does the same arithmetic as nine whole-tensor operations (two for the decay, three for the velocity,
//! two each for Nesterov and the step), each a pass over the parameter on the calling thread: on ResNet-18's 11 M
//! parameters that was 2–3 % of a training step with the other cores idle. Here, on the CPU backend, the weights
//! and the velocity are updated in place in one pass spread over the threads; elsewhere (GPU backends) the same
//! operations as burn's run on tensors.
//!
//! Both paths do burn's f32 operations in burn's order, element by element, so the numbers are bit for bit those of
//! burn's `Sgd` configured alike (tested), whatever the thread count. The state is recorded under burn's names
//! (`momentum.velocity`), so an optimiser state saved with burn's `Sgd` loads here and the reverse.
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::optim::{Optimizer, RecordState, StateSink, StateSource, join_path};
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

/// The update's constants, as the f32 values burn's operations multiply by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedSgd {
    /// Coupled L2 penalty (`g ← w·wd + g`); `None` skips it.
    pub weight_decay: Option<f32>,
    pub momentum: Option<MomentumRule>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MomentumRule {
    pub momentum: f32,
    /// `1 − dampening`, rounded to f32 as burn rounds it.
    pub keep: f32,
    pub nesterov: bool,
}

impl MomentumRule {
    pub fn new(momentum: f64, dampening: f64, nesterov: bool) -> Self {
        MomentumRule { momentum: momentum as f32, keep: (1.0 - dampening) as f32, nesterov }
    }
}

/// Per-parameter state: the velocity, recorded under the name burn's `SgdState { momentum: MomentumState {
/// velocity } }` gives it (`momentum.velocity`), so that records are interchangeable. burn's derive for states only
/// works inside burn, and `MomentumState` keeps its field private.
#[derive(Clone)]
pub struct SgdState<const D: usize> {
    pub velocity: Option<Tensor<D>>,
}

impl<const D: usize> RecordState for SgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(velocity) = &self.velocity {
            out.push_tensor(&join_path(prefix, "momentum"), "velocity", velocity.clone().into_data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let velocity =
            src.take_tensor(&join_path(prefix, "momentum"), "velocity").map(|v| Tensor::from_data(v, device));
        Some(SgdState { velocity })
    }
}

/// Below this many values a parameter is updated on the calling thread: splitting costs more than it saves.
const PARALLEL_FROM: usize = 1 << 16;
const CHUNK: usize = 1 << 14;

impl FusedSgd {
    /// One element: the decayed gradient, the new velocity, the step direction and the step, as burn computes them.
    #[inline(always)]
    fn one(&self, w: &mut f32, g: f32, v: Option<&mut f32>, first: bool, lr: f32) {
        let g = match self.weight_decay {
            Some(wd) => *w * wd + g,
            None => g,
        };
        let direction = match (self.momentum, v) {
            (Some(m), Some(v)) => {
                *v = if first { g } else { g * m.keep + *v * m.momentum };
                if m.nesterov { *v * m.momentum + g } else { *v }
            }
            _ => g,
        };
        *w -= direction * lr;
    }
}

impl Optimizer for FusedSgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let velocity = state.and_then(|s| s.velocity);
        // The probes convert clones, dropped at once, so the tensors stay the only holders of their storage.
        let on_flex_f32 = |t: &Tensor<D>| t.clone().try_into_primitive::<Flex>().is_ok_and(|p| p.dtype() == DType::F32);
        let on_cpu = on_flex_f32(&tensor) && on_flex_f32(&grad) && velocity.as_ref().is_none_or(on_flex_f32);
        let (tensor, velocity) = if on_cpu {
            self.step_in_place(lr, tensor, grad, velocity)
        } else {
            self.step_on_tensors(lr, tensor, grad, velocity)
        };
        (tensor, Some(SgdState { velocity }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        SgdState { velocity: state.velocity.map(|v| v.to_device(device)) }
    }
}

impl FusedSgd {
    /// burn's operations, on any backend.
    fn step_on_tensors<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        mut grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> (Tensor<D>, Option<Tensor<D>>) {
        if let Some(wd) = self.weight_decay {
            grad = tensor.clone().mul_scalar(wd).add(grad);
        }
        let mut new_velocity = None;
        if let Some(m) = self.momentum {
            let v = match velocity {
                Some(v) => grad.clone().mul_scalar(m.keep).add(v.mul_scalar(m.momentum)),
                None => grad.clone(),
            };
            grad = if m.nesterov { v.clone().mul_scalar(m.momentum).add(grad) } else { v.clone() };
            new_velocity = Some(v);
        }
        (tensor - grad.mul_scalar(lr as f32), new_velocity)
    }

    /// The same arithmetic in one pass, writing the weights and the velocity in place when nothing else holds them.
    fn step_in_place<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> (Tensor<D>, Option<Tensor<D>>) {
        let flex = |t: Tensor<D>| owned(t.try_into_primitive::<Flex>().expect("checked to live on flex"));
        let shape = tensor.shape();
        let mut w = flex(tensor);
        let g = flex(grad);
        let first = velocity.is_none();
        let mut v = match (self.momentum, velocity) {
            (None, _) => None,
            (Some(_), Some(v)) => Some(flex(v)),
            // The first velocity is the decayed gradient, written over these zeros.
            (Some(_), None) => Some(FlexTensor::zeros(shape, DType::F32)),
        };
        let lr = lr as f32;
        {
            let gs = g.storage::<f32>();
            let ws = w.storage_mut::<f32>();
            let rule = *self;
            let apply = |ws: &mut [f32], gs: &[f32], vs: Option<&mut [f32]>| match vs {
                Some(vs) => ws.iter_mut().zip(gs).zip(vs).for_each(|((w, &g), v)| rule.one(w, g, Some(v), first, lr)),
                None => ws.iter_mut().zip(gs).for_each(|(w, &g)| rule.one(w, g, None, first, lr)),
            };
            let vs = v.as_mut().map(|v| v.storage_mut::<f32>());
            if ws.len() < PARALLEL_FROM {
                apply(ws, gs, vs);
            } else {
                match vs {
                    Some(vs) => ws
                        .par_chunks_mut(CHUNK)
                        .zip(gs.par_chunks(CHUNK))
                        .zip(vs.par_chunks_mut(CHUNK))
                        .for_each(|((w, g), v)| apply(w, g, Some(v))),
                    None => ws.par_chunks_mut(CHUNK).zip(gs.par_chunks(CHUNK)).for_each(|(w, g)| apply(w, g, None)),
                }
            }
        }
        let back = |t: FlexTensor| Tensor::<D>::from_primitive::<Flex>(t);
        (back(w), v.map(back))
    }
}

/// `t` as a dense tensor whose storage is exactly its values, so its storage can be zipped with another's.
fn owned(t: FlexTensor) -> FlexTensor {
    match t.layout().contiguous_offsets() {
        Some((0, end)) if end == t.storage::<f32>().len() => t,
        _ => t.to_contiguous(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, Param};
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
    use burn::tensor::TensorData;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A big parameter (the threaded pass) and a small one (the calling thread's).
    #[derive(Module, Debug)]
    struct Net {
        big: Param<Tensor<2>>,
        small: Param<Tensor<1>>,
    }

    const BIG: [usize; 2] = [300, 700];

    fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
    }

    fn net(device: &Device) -> Net {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let big = Tensor::from_data(TensorData::new(random(&mut rng, BIG[0] * BIG[1]), BIG), device);
        let small = Tensor::from_data(TensorData::new(random(&mut rng, 37), [37]), device);
        Net { big: Param::from_tensor(big), small: Param::from_tensor(small) }
    }

    /// The gradient of `Σ c·w` with random `c` drawn for `step`.
    fn grads(net: &Net, step: u64) -> GradientsParams {
        let device = net.big.val().device();
        let mut rng = ChaCha8Rng::seed_from_u64(100 + step);
        let cb = Tensor::<2>::from_data(TensorData::new(random(&mut rng, BIG[0] * BIG[1]), BIG), &device);
        let cs = Tensor::<1>::from_data(TensorData::new(random(&mut rng, 37), [37]), &device);
        let loss = (net.big.val() * cb).sum() + (net.small.val() * cs).sum();
        GradientsParams::from_grads(loss.backward(), net)
    }

    fn bits(net: &Net) -> Vec<u32> {
        let mut out: Vec<u32> =
            net.big.val().into_data().try_to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect();
        out.extend(net.small.val().into_data().try_to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()));
        out
    }

    fn run(mut optim: ModuleOptimizer, steps: std::ops::Range<u64>, mut net: Net) -> (Net, ModuleOptimizer) {
        for step in steps {
            let g = grads(&net, step);
            net = optim.step(0.05 * (step + 1) as f64, net, g);
        }
        (net, optim)
    }

    /// (momentum, dampening, Nesterov) where momentum is on.
    type Momentum = Option<(f64, f64, bool)>;

    fn burns(momentum: Momentum, weight_decay: Option<f32>) -> ModuleOptimizer {
        SgdConfig::new()
            .with_momentum(
                momentum.map(|(m, d, n)| MomentumConfig::new().with_momentum(m).with_dampening(d).with_nesterov(n)),
            )
            .with_weight_decay(weight_decay.map(WeightDecayConfig::new))
            .init()
    }

    fn fused(momentum: Momentum, weight_decay: Option<f32>) -> ModuleOptimizer {
        ModuleOptimizer::from(FusedSgd { weight_decay, momentum: momentum.map(|(m, d, n)| MomentumRule::new(m, d, n)) })
    }

    const RULES: [(Momentum, Option<f32>); 4] = [
        (Some((0.9, 0.0, true)), Some(5e-4)),
        (Some((0.9, 0.1, false)), Some(1e-4)),
        (Some((0.8, 0.0, false)), None),
        (None, Some(1e-3)),
    ];

    #[test]
    fn the_fused_update_gives_burns_sgd_bit_for_bit() {
        let device = Device::flex().autodiff();
        for (momentum, wd) in RULES {
            let (want, _) = run(burns(momentum, wd), 0..4, net(&device));
            let (got, _) = run(fused(momentum, wd), 0..4, net(&device));
            assert_eq!(bits(&got), bits(&want), "momentum {momentum:?}, weight decay {wd:?}");
            assert!(got.big.val().is_require_grad());
        }
        // One thread or several: the same bits.
        let (momentum, wd) = RULES[0];
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let (single, _) = one.install(|| run(fused(momentum, wd), 0..4, net(&device)));
        let (many, _) = run(fused(momentum, wd), 0..4, net(&device));
        assert_eq!(bits(&single), bits(&many));
    }

    #[test]
    fn states_saved_by_burns_sgd_continue_here_and_the_reverse() {
        let device = Device::flex().autodiff();
        let (momentum, wd) = RULES[0];
        let (whole, _) = run(burns(momentum, wd), 0..5, net(&device));
        let (half, burn_optim) = run(burns(momentum, wd), 0..3, net(&device));
        let (continued, fused_optim) = run(fused(momentum, wd).load_record(burn_optim.to_record()), 3..4, half);
        let (back, _) = run(burns(momentum, wd).load_record(fused_optim.to_record()), 4..5, continued);
        assert_eq!(bits(&back), bits(&whole));
    }

    #[test]
    fn the_tensor_path_for_other_backends_gives_the_same_bits() {
        let device = Device::flex();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let t = |rng: &mut ChaCha8Rng| Tensor::<1>::from_data(TensorData::new(random(rng, 1000), [1000]), &device);
        let (w, g, v) = (t(&mut rng), t(&mut rng), t(&mut rng));
        let to_bits =
            |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (momentum, wd) in RULES {
            let rule = FusedSgd { weight_decay: wd, momentum: momentum.map(|(m, d, n)| MomentumRule::new(m, d, n)) };
            for velocity in [None, Some(v.clone())] {
                let (tw, tv) = rule.step_on_tensors(0.1, w.clone(), g.clone(), velocity.clone());
                let (fw, fv) = rule.step_in_place(0.1, w.clone(), g.clone(), velocity);
                assert_eq!(to_bits(fw), to_bits(tw));
                assert_eq!(fv.map(to_bits), tv.map(to_bits));
            }
        }
        // In place means in place only for what nothing else holds: the callers' `w` is untouched.
        let rule = FusedSgd { weight_decay: None, momentum: None };
        let before = to_bits(w.clone());
        let _ = rule.step_in_place(0.1, w.clone(), g, None);
        assert_eq!(to_bits(w), before);
    }
}
