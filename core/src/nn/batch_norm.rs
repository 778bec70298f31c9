//! The batch norm every relab network calls: [`forward`] runs a training-mode `BatchNorm` through relab's fused
//! kernels ([`crate::kernels::batch_norm_cpu`]) when the tensors live on burn's CPU backend (flex) in f32, and through burn's
//! own `BatchNorm::forward` everywhere else (evaluation, frozen layers, GPU backends).
//!
//! On the CPU the kernels run as one custom autodiff operation (burn's `extension` API), as the convolution does:
//! burn's batch norm reduces over transposed copies of the activation and differentiates through a chain of
//! broadcast operations, about a fifth of a WRN training step. The running statistics are updated exactly as burn
//! updates them, from the batch's mean and biased variance.
//!
//! [`forward_activated`] fuses the (leaky) ReLU that follows the batch norm into the same operation, bit for bit
//! what the two give apart; [`forward_onto`] the residual sum before it too (a post-activation ResNet block's
//! `relu(bn(x) + shortcut)`, whose add, ReLU and their gradients otherwise took 2 % of a ResNet-18 step as single
//! threaded burn operations).

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, CheckpointStrategy, NoCheckpointing};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::{DispatchKindConversion, DispatchTensor, TensorMetadata};
use burn::nn::BatchNorm;
use burn::tensor::{DType, Tensor, TensorData};

use super::flex_values::{flex_tensor, with_values};
use super::ops::leaky_relu;
pub use crate::kernels::batch_norm_cpu::Activation;
use crate::kernels::batch_norm_cpu::{self, NormLayout};

/// `bn.forward(x)`, on relab's CPU kernels where they apply.
pub fn forward<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    forward_activated(bn, x, Activation::Identity)
}

/// `act(bn.forward(x))`, as one operation on relab's CPU kernels where they apply.
pub fn forward_activated<const D: usize>(bn: &BatchNorm, x: Tensor<D>, act: Activation) -> Tensor<D> {
    normalised(bn, x, None, act)
}

/// `act(bn.forward(x) + residual)`, as one operation on relab's CPU kernels where they apply.
pub fn forward_onto<const D: usize>(bn: &BatchNorm, x: Tensor<D>, residual: Tensor<D>, act: Activation) -> Tensor<D> {
    normalised(bn, x, Some(residual), act)
}

fn normalised<const D: usize>(bn: &BatchNorm, x: Tensor<D>, residual: Option<Tensor<D>>, act: Activation) -> Tensor<D> {
    // burn's own condition for the training path: an autodiff device and a layer not frozen out of training.
    let training = x.device().is_autodiff() && bn.training.is_enabled();
    let layout = NormLayout::of(&x.dims());
    let channels = bn.gamma.dims()[0];
    let fits = |r: &Tensor<D>| r.dims() == x.dims() && r.dtype() == DType::F32;
    let Some(layout) = layout.filter(|l| {
        training && x.dtype() == DType::F32 && l.channels == channels && residual.as_ref().is_none_or(fits)
    }) else {
        return apart(bn, x, residual, act);
    };
    let device = x.device();
    let (gamma, beta) = (bn.gamma.val(), bn.beta.val());
    let r = residual.as_ref();
    let Some((y, mean, variance)) = on_cpu::<NoCheckpointing, D>(&x, r, &gamma, &beta, bn.epsilon, layout, act)
        .or_else(|| on_cpu::<BalancedCheckpointing, D>(&x, r, &gamma, &beta, bn.epsilon, layout, act))
    else {
        return apart(bn, x, residual, act);
    };
    let statistic = |values: Vec<f32>| Tensor::<1>::from_data(TensorData::new(values, [channels]), &device);
    let update = |running: Tensor<1>, batch: Vec<f32>| {
        running.to_device(&device).mul_scalar(1.0 - bn.momentum).add(statistic(batch).mul_scalar(bn.momentum))
    };
    bn.running_mean.update(update(bn.running_mean.value_sync(), mean).detach());
    bn.running_var.update(update(bn.running_var.value_sync(), variance).detach());
    y
}

/// burn's batch norm, the residual and burn's activation: evaluation, frozen layers and the GPU backends.
fn apart<const D: usize>(bn: &BatchNorm, x: Tensor<D>, residual: Option<Tensor<D>>, act: Activation) -> Tensor<D> {
    let y = bn.forward(x);
    let y = match residual {
        Some(r) => y + r,
        None => y,
    };
    match act {
        Activation::Identity => y,
        Activation::Relu => burn::tensor::activation::relu(y),
        Activation::LeakyRelu(slope) => leaky_relu(y, slope),
    }
}

/// The batch norm and `act` as a tracked operation on `Autodiff<Flex, C>`, with the batch's mean and variance;
/// `None` when the tensors live elsewhere.
fn on_cpu<C: CheckpointStrategy, const D: usize>(
    x: &Tensor<D>,
    residual: Option<&Tensor<D>>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    epsilon: f64,
    layout: NormLayout,
    act: Activation,
) -> Option<(Tensor<D>, Vec<f32>, Vec<f32>)>
where
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let x = x.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
    let gamma = gamma.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
    let beta = beta.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
    let residual = match residual {
        Some(r) => Some(r.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?),
        None => None,
    };
    let gamma_values = with_values(gamma.primitive(), <[f32]>::to_vec);
    let normalised = with_values(x.primitive(), |x| {
        with_values(beta.primitive(), |beta| match &residual {
            Some(r) => with_values(r.primitive(), |r| {
                batch_norm_cpu::forward_onto(x, Some(r), &gamma_values, beta, epsilon, layout, act)
            }),
            None => batch_norm_cpu::forward(x, &gamma_values, beta, epsilon, layout, act),
        })
    });
    let y = flex_tensor(normalised.output, x.primitive().shape());
    let saved = Saved {
        gamma: gamma_values,
        mean: normalised.mean.clone(),
        variance: normalised.variance.clone(),
        epsilon,
        layout,
        act,
        scale: normalised.scale,
        shift: normalised.shift,
    };
    let y = match residual {
        None => {
            match BatchNormBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
                OpsKind::Tracked(mut prep) => {
                    let x_state = prep.checkpoint(&x);
                    prep.finish((x_state, saved), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(y),
            }
        }
        Some(r) => {
            let parents = [x.node(), gamma.node(), beta.node(), r.node()];
            match ResidualBatchNormBackward.prepare::<C>(parents).compute_bound().stateful() {
                OpsKind::Tracked(mut prep) => {
                    let states = (prep.checkpoint(&x), prep.checkpoint(&r));
                    prep.finish((states, saved), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(y),
            }
        }
    };
    Some((Tensor::from_primitive::<Autodiff<Flex, C>>(y), normalised.mean, normalised.variance))
}

/// What the backward pass needs beside the input: γ and the batch statistics, as the forward pass read them, and
/// the activation with the affine map whose output it was applied to.
#[derive(Debug, Clone)]
struct Saved {
    gamma: Vec<f32>,
    mean: Vec<f32>,
    variance: Vec<f32>,
    epsilon: f64,
    layout: NormLayout,
    act: Activation,
    scale: Vec<f32>,
    shift: Vec<f32>,
}

/// The backward pass of the CPU batch norm: relab's input, γ and β gradients.
#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    type State = (NodeId, Saved);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (x_state, s) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let g = gradients(&x, None, &dy, &s);
        register(grads, [node_x, node_gamma, node_beta].map(|n| n.map(|n| n.id)), g, &x, &s);
    }
}

/// The backward pass of the CPU batch norm with a residual: [`BatchNormBackward`]'s gradients and the residual's.
#[derive(Debug)]
struct ResidualBatchNormBackward;

impl Backward<Flex, 4> for ResidualBatchNormBackward {
    type State = ((NodeId, NodeId), Saved);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta, node_residual] = ops.parents;
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let ((x_state, residual_state), s) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let residual = checkpointer.retrieve_node_output::<FlexTensor>(residual_state);
        let mut g = gradients(&x, Some(&residual), &dy, &s);
        if let (Some(node), Some(values)) = (node_residual, g.residual.take()) {
            grads.register::<Flex>(node.id, flex_tensor(values, x.shape()));
        }
        register(grads, [node_x, node_gamma, node_beta].map(|n| n.map(|n| n.id)), g, &x, &s);
    }
}

/// relab's gradients of the batch norm whose input was `x` (and residual `residual`), given its output's `dy`.
fn gradients(x: &FlexTensor, residual: Option<&FlexTensor>, dy: &FlexTensor, s: &Saved) -> batch_norm_cpu::NormGrads {
    let run = |x: &[f32], residual: Option<&[f32]>| {
        with_values(dy, |dy| {
            let activated = batch_norm_cpu::Activated { act: s.act, scale: &s.scale, shift: &s.shift, residual };
            batch_norm_cpu::backward(x, dy, &s.gamma, (&s.mean, &s.variance), s.epsilon, s.layout, activated)
        })
    };
    with_values(x, |x| match residual {
        Some(r) => with_values(r, |r| run(x, Some(r))),
        None => run(x, None),
    })
}

/// Hands the input, γ and β gradients to the parents that want them.
fn register(
    grads: &mut Gradients,
    [x_id, gamma_id, beta_id]: [Option<NodeId>; 3],
    g: batch_norm_cpu::NormGrads,
    x: &FlexTensor,
    s: &Saved,
) {
    if let Some(id) = x_id {
        grads.register::<Flex>(id, flex_tensor(g.x, x.shape()));
    }
    if let Some(id) = gamma_id {
        grads.register::<Flex>(id, flex_tensor(g.gamma, [s.layout.channels]));
    }
    if let Some(id) = beta_id {
        grads.register::<Flex>(id, flex_tensor(g.beta, [s.layout.channels]));
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Device, Distribution};

    use super::*;

    fn close<const D: usize>(a: &Tensor<D>, b: &Tensor<D>, what: &str) {
        let (a, b) = (a.to_data().try_to_vec::<f32>().unwrap(), b.to_data().try_to_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= 2e-4 * (1.0 + y.abs()), "{what}[{i}]: relab {x}, burn {y}");
        }
    }

    /// Two copies of one layer with γ, β and running statistics away from their initial values.
    fn layers(channels: usize, device: &Device) -> (BatchNorm, BatchNorm) {
        let mut bn = BatchNormConfig::new(channels).with_momentum(0.3).init(device);
        let random = |shift: f64| Tensor::<1>::random([channels], Distribution::Normal(shift, 0.5), device);
        bn.gamma = bn.gamma.map(|_| random(1.0).require_grad());
        bn.beta = bn.beta.map(|_| random(0.0).require_grad());
        bn.running_mean.update(random(0.0));
        bn.running_var.update(random(2.0).abs());
        (bn.clone().fork(device), bn)
    }

    /// relab's kernels against burn's own batch norm: the output, the running statistics after the step and the
    /// gradients of a loss that weighs every output differently, for NCHW and `[B, C]` inputs.
    #[test]
    fn values_statistics_and_gradients_match_burns_batch_norm() {
        let device = Device::flex().autodiff();
        for dims in [[4usize, 3, 5, 5].to_vec(), vec![2, 6, 3, 7], vec![1, 2, 4, 4]] {
            let (ours_bn, burns_bn) = layers(dims[1], &device);
            let dims: [usize; 4] = dims.try_into().unwrap();
            let x = Tensor::<4>::random(dims, Distribution::Normal(0.7, 2.0), &device).require_grad();
            let ours = forward(&ours_bn, x.clone());
            let burns = burns_bn.forward(x.clone());
            close(&ours, &burns, "output");
            close(&ours_bn.running_mean.value(), &burns_bn.running_mean.value(), "running mean");
            close(&ours_bn.running_var.value(), &burns_bn.running_var.value(), "running variance");
            let weights = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
            let g_ours = (ours * weights.clone()).sum().backward();
            let g_burn = (burns * weights).sum().backward();
            close(&x.grad(&g_ours).unwrap(), &x.grad(&g_burn).unwrap(), "input gradient");
            for (name, a, b) in [("γ", &ours_bn.gamma, &burns_bn.gamma), ("β", &ours_bn.beta, &burns_bn.beta)] {
                close(&a.val().grad(&g_ours).unwrap(), &b.val().grad(&g_burn).unwrap(), name);
            }
        }
        let (ours_bn, burns_bn) = layers(5, &device);
        let x = Tensor::<2>::random([6, 5], Distribution::Normal(-1.0, 3.0), &device).require_grad();
        let (ours, burns) = (forward(&ours_bn, x.clone()), burns_bn.forward(x.clone()));
        close(&ours, &burns, "[B, C] output");
        let (g_ours, g_burn) = (ours.powi_scalar(2).sum().backward(), burns.powi_scalar(2).sum().backward());
        close(&x.grad(&g_ours).unwrap(), &x.grad(&g_burn).unwrap(), "[B, C] input gradient");
    }

    fn bits<const D: usize>(t: &Tensor<D>) -> Vec<u32> {
        t.to_data().try_to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
    }

    /// The fused activation gives the same bits as relab's batch norm followed by the activation as burn
    /// operations, forward and backward: fusing it changes no training run.
    #[test]
    fn fused_activations_give_the_same_bits_as_the_operations_apart() {
        let device = Device::flex().autodiff();
        for act in [Activation::Relu, Activation::LeakyRelu(0.1)] {
            let (fused_bn, apart_bn) = layers(4, &device);
            let x = Tensor::<4>::random([3, 4, 5, 5], Distribution::Normal(0.3, 2.0), &device).require_grad();
            let fused = forward_activated(&fused_bn, x.clone(), act);
            let apart = match act {
                Activation::Relu => burn::tensor::activation::relu(forward(&apart_bn, x.clone())),
                _ => leaky_relu(forward(&apart_bn, x.clone()), 0.1),
            };
            assert_eq!(bits(&fused), bits(&apart), "{act:?} output");
            let weights = Tensor::<4>::random([3, 4, 5, 5], Distribution::Normal(0.0, 1.0), &device);
            let g_fused = (fused * weights.clone()).sum().backward();
            let g_apart = (apart * weights).sum().backward();
            assert_eq!(bits(&x.grad(&g_fused).unwrap()), bits(&x.grad(&g_apart).unwrap()), "{act:?} input gradient");
            for (name, a, b) in [("γ", &fused_bn.gamma, &apart_bn.gamma), ("β", &fused_bn.beta, &apart_bn.beta)] {
                assert_eq!(bits(&a.val().grad(&g_fused).unwrap()), bits(&b.val().grad(&g_apart).unwrap()), "{name}");
            }
        }
    }

    /// The residual sum fused in gives the same bits as relab's batch norm, burn's add and burn's ReLU apart, forward
    /// and backward (the residual's gradient too), and burn's own path in evaluation.
    #[test]
    fn a_fused_residual_gives_the_same_bits_as_the_operations_apart() {
        let device = Device::flex().autodiff();
        for act in [Activation::Relu, Activation::Identity] {
            let (fused_bn, apart_bn) = layers(4, &device);
            let dims = [3, 4, 5, 5];
            let x = Tensor::<4>::random(dims, Distribution::Normal(0.3, 2.0), &device).require_grad();
            let r = Tensor::<4>::random(dims, Distribution::Normal(-0.2, 1.0), &device).require_grad();
            let fused = forward_onto(&fused_bn, x.clone(), r.clone(), act);
            let sum = forward(&apart_bn, x.clone()) + r.clone();
            let apart = if act == Activation::Relu { burn::tensor::activation::relu(sum) } else { sum };
            assert_eq!(bits(&fused), bits(&apart), "{act:?} output");
            let weights = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
            let g_fused = (fused * weights.clone()).sum().backward();
            let g_apart = (apart * weights).sum().backward();
            assert_eq!(bits(&x.grad(&g_fused).unwrap()), bits(&x.grad(&g_apart).unwrap()), "{act:?} input gradient");
            assert_eq!(bits(&r.grad(&g_fused).unwrap()), bits(&r.grad(&g_apart).unwrap()), "{act:?} residual gradient");
            for (name, a, b) in [("γ", &fused_bn.gamma, &apart_bn.gamma), ("β", &fused_bn.beta, &apart_bn.beta)] {
                assert_eq!(bits(&a.val().grad(&g_fused).unwrap()), bits(&b.val().grad(&g_apart).unwrap()), "{name}");
            }
        }
        let (bn, _) = layers(3, &device);
        let valid = bn.valid();
        let x = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &Device::flex());
        let r = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &Device::flex());
        let burns = burn::tensor::activation::relu(valid.forward(x.clone()) + r.clone());
        close(&forward_onto(&valid, x, r, Activation::Relu), &burns, "evaluation output");
    }

    #[test]
    fn the_kernels_run_on_flex_and_evaluation_keeps_burns_path() {
        let device = Device::flex().autodiff();
        let (bn, _) = layers(3, &device);
        let x = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        let layout = NormLayout::of(&x.dims()).unwrap();
        let (gamma, beta) = (bn.gamma.val(), bn.beta.val());
        let act = Activation::Identity;
        assert!(
            on_cpu::<NoCheckpointing, 4>(&x, None, &gamma, &beta, bn.epsilon, layout, act).is_some(),
            "the kernel path"
        );
        // Evaluation: no autodiff device, so burn's inference path with the running statistics, which stay.
        let valid = bn.valid();
        let x = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &Device::flex());
        let before = valid.running_mean.value().to_data();
        close(&forward(&valid, x.clone()), &valid.forward(x), "evaluation output");
        assert_eq!(valid.running_mean.value().to_data(), before);
    }
}
