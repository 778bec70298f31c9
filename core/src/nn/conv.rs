//! The convolution every relab network calls: [`forward`] runs a `Conv2d` through relab's im2col + GEMM kernels
//! ([`crate::kernels::conv_cpu`]) when the tensors live on burn's CPU backend (flex) in f32, and through burn's own
//! `Conv2d::forward` everywhere else (GPU backends, grouped or dilated convolutions, `Same` padding).
//!
//! On the CPU the kernels run as one custom autodiff operation (burn's `extension` API), so that the backward pass
//! uses relab's input and weight gradients instead of burn's, which compute the weight gradient as a convolution
//! with batch and channels swapped (many narrow matrix products; about half of a WRN step).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, CheckpointStrategy, NoCheckpointing};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::{DispatchKindConversion, DispatchTensor, Flex, TensorMetadata};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Tensor};

use super::flex_values::{flex_tensor, with_values};
use crate::kernels::conv_cpu::{self, ConvGeometry};

/// `conv.forward(x)`, on relab's CPU kernels where they apply.
pub fn forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(geometry) = cpu_geometry(conv, &x) else { return conv.forward(x) };
    let Some(y) = on_kernels(&x, &conv.weight.val(), geometry) else { return conv.forward(x) };
    match &conv.bias {
        Some(bias) => y + bias.val().reshape([1, geometry.out_channels as i32, 1, 1]),
        None => y,
    }
}

/// The geometry of a convolution relab's kernels can run: f32, groups 1, dilation 1, symmetric padding.
fn cpu_geometry(conv: &Conv2d, x: &Tensor<4>) -> Option<ConvGeometry> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => [top, left],
        _ => return None,
    };
    if conv.groups != 1 || conv.dilation != [1, 1] || x.dtype() != DType::F32 {
        return None;
    }
    let [batch, in_channels, height, width] = x.dims();
    let [out_channels, weight_in, kh, kw] = conv.weight.dims();
    let geometry = ConvGeometry {
        batch,
        in_channels,
        height,
        width,
        out_channels,
        kernel: [kh, kw],
        stride: conv.stride,
        padding,
    };
    (weight_in == in_channels && conv.kernel_size == [kh, kw] && geometry.is_valid()).then_some(geometry)
}

/// The convolution on relab's kernels, tracked when the tensors are; `None` when they do not live on flex.
fn on_kernels(x: &Tensor<4>, weight: &Tensor<4>, g: ConvGeometry) -> Option<Tensor<4>> {
    on_cpu::<NoCheckpointing>(x, weight, g)
        .or_else(|| on_cpu::<BalancedCheckpointing>(x, weight, g))
        .or_else(|| without_autodiff(x, weight, g))
}

/// The convolution as a tracked operation on `Autodiff<Flex, C>`; `None` when the tensors live elsewhere.
fn on_cpu<C: CheckpointStrategy>(x: &Tensor<4>, weight: &Tensor<4>, g: ConvGeometry) -> Option<Tensor<4>>
where
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let x = x.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
    let weight = weight.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
    let y = match ConvBackward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            let y = flex_forward(x.primitive(), weight.primitive(), &g);
            prep.finish((x_state, weight_state, g), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(flex_forward(x.primitive(), weight.primitive(), &g)),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex, C>>(y))
}

/// The convolution on plain flex tensors (evaluation, feature extraction); `None` when they live elsewhere.
fn without_autodiff(x: &Tensor<4>, weight: &Tensor<4>, g: ConvGeometry) -> Option<Tensor<4>> {
    let x = x.clone().try_into_primitive::<Flex>().ok()?;
    let weight = weight.clone().try_into_primitive::<Flex>().ok()?;
    Some(Tensor::from_primitive::<Flex>(flex_forward(&x, &weight, &g)))
}

fn flex_forward(x: &FlexTensor, weight: &FlexTensor, g: &ConvGeometry) -> FlexTensor {
    let [ho, wo] = g.output_size();
    let y = with_values(x, |x| with_values(weight, |weight| conv_cpu::forward(x, weight, g)));
    flex_tensor(y, [g.batch, g.out_channels, ho, wo])
}

/// The backward pass of the CPU convolution: relab's input and weight gradients.
#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    type State = (NodeId, NodeId, ConvGeometry);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, g) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
        // One read of dy for both gradients: a strided gradient (a broadcast one, say) is copied once.
        with_values(&dy, |dy| {
            if let Some(node) = node_x {
                let dx = with_values(&weight, |w| conv_cpu::input_grad(w, dy, &g));
                grads.register::<Flex>(node.id, flex_tensor(dx, [g.batch, g.in_channels, g.height, g.width]));
            }
            if let Some(node) = node_weight {
                let dw = with_values(&x, |x| conv_cpu::weight_grad(x, dy, &g));
                grads.register::<Flex>(node.id, flex_tensor(dw, weight.shape()));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};

    use super::*;

    fn layer(channels: [usize; 2], kernel: usize, stride: usize, padding: usize, bias: bool) -> Conv2dConfig {
        Conv2dConfig::new(channels, [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
            .with_bias(bias)
    }

    fn close(a: &Tensor<4>, b: &Tensor<4>, what: &str) {
        let (a, b) = (a.to_data().try_to_vec::<f32>().unwrap(), b.to_data().try_to_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{what}[{i}]: relab {x}, burn {y}");
        }
    }

    /// relab's kernels against burn's own convolution: the output and the gradients of a loss that weighs every
    /// output differently, for the shapes relab's networks use.
    #[test]
    fn values_and_gradients_match_burns_convolution() {
        let device = Device::flex().autodiff();
        for (channels, kernel, stride, padding, bias) in [
            ([3, 8], 3, 1, 1, false),
            ([4, 6], 3, 2, 1, false),
            ([4, 6], 1, 2, 0, false),
            ([5, 3], 1, 1, 0, true),
            ([3, 4], 7, 2, 3, false),
        ] {
            let conv = layer(channels, kernel, stride, padding, bias).init(&device);
            let x = Tensor::<4>::random([2, channels[0], 9, 9], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let geometry = cpu_geometry(&conv, &x).expect("a convolution the kernels run");
            assert!(on_cpu::<NoCheckpointing>(&x, &conv.weight.val(), geometry).is_some(), "the tracked kernel path");
            let ours = forward(&conv, x.clone());
            let burns = conv.forward(x.clone());
            close(&ours, &burns, "output");
            let weights = Tensor::<4>::random(ours.dims(), Distribution::Normal(0.0, 1.0), &device);
            let g_ours = (ours * weights.clone()).sum().backward();
            let g_burn = (burns * weights).sum().backward();
            let dx = |g| x.grad(g).unwrap();
            close(&dx(&g_ours), &dx(&g_burn), "input gradient");
            let dw = |g| conv.weight.val().grad(g).unwrap();
            close(&dw(&g_ours), &dw(&g_burn), "weight gradient");
            if let Some(b) = &conv.bias {
                let (a, c) = (b.val().grad(&g_ours).unwrap(), b.val().grad(&g_burn).unwrap());
                close(&a.reshape([1, 1, 1, -1]), &c.reshape([1, 1, 1, -1]), "bias gradient");
            }
        }
    }

    #[test]
    fn evaluation_tensors_use_the_kernels_too_and_match() {
        let device = Device::flex();
        let conv = layer([3, 5], 3, 1, 1, true).init(&device);
        let x = Tensor::<4>::random([2, 3, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let geometry = cpu_geometry(&conv, &x).expect("a convolution the kernels run");
        assert!(without_autodiff(&x, &conv.weight.val(), geometry).is_some(), "the untracked kernel path");
        close(&forward(&conv, x.clone()), &conv.forward(x), "output");
    }

    #[test]
    fn same_padding_and_dilation_fall_back_to_burn() {
        let device = Device::flex();
        let same = Conv2dConfig::new([2, 2], [3, 3]).with_padding(PaddingConfig2d::Same).init(&device);
        let dilated = layer([2, 2], 3, 1, 2, false).with_dilation([2, 2]).init(&device);
        let x = Tensor::<4>::random([1, 2, 5, 5], Distribution::Normal(0.0, 1.0), &device);
        assert!(cpu_geometry(&same, &x).is_none());
        assert!(cpu_geometry(&dilated, &x).is_none());
        close(&forward(&same, x.clone()), &same.forward(x.clone()), "same");
        close(&forward(&dilated, x.clone()), &dilated.forward(x), "dilated");
    }
}
