//! Parameter-free tensor operations the networks and heads share.
use burn::tensor::Tensor;

/// Global average pooling, `[B, C, H, W] → [B, C]` (PyTorch's `adaptive_avg_pool2d(x, 1).flatten(1)`).
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [batch, channels, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([batch, channels])
}

/// LeakyReLU written as `slope·x + (1 − slope)·relu(x)`: the same function and gradient (1 above zero, `slope`
/// below), but burn's CPU backend runs `relu` and the scaled adds multi-threaded, while its `leaky_relu` goes through a
/// single-threaded masked select that took ~9 % of a WRN training step; this form made a WRN step ~18 % faster.
pub fn leaky_relu<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    burn::tensor::activation::relu(x.clone()).mul_scalar(1.0 - slope) + x.mul_scalar(slope)
}

/// Row-wise L2 normalisation, `x / max(‖x‖₂, 1e-12)` (PyTorch's `F.normalize(x, dim=1)`).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn pools_and_normalises() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new((0..16).map(|v| v as f32).collect::<Vec<_>>(), [1, 2, 2, 4]),
            &device,
        );
        let pooled = global_avg_pool(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(pooled, vec![3.5, 11.5]);

        let y = Tensor::<2>::from_data([[3.0f32, 4.0], [0.0, 0.0]], &device);
        let n = l2_normalize(y).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(n, vec![0.6, 0.8, 0.0, 0.0]);
    }

    #[test]
    fn leaky_relu_matches_burns_value_and_gradient() {
        let device = Device::flex().autodiff();
        let values = vec![-3.0f32, -0.5, -1e-3, 0.25, 2.0, 7.5];
        let x = Tensor::<1>::from_data(TensorData::new(values.clone(), [6]), &device).require_grad();
        let y = leaky_relu(x.clone(), 0.1);
        let grads = (y.clone() * Tensor::<1>::from_data([1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &device)).sum().backward();
        let got = y.into_data().try_to_vec::<f32>().unwrap();
        let reference =
            burn::tensor::activation::leaky_relu(Tensor::<1>::from_data(TensorData::new(values, [6]), &device), 0.1);
        for (g, r) in got.iter().zip(reference.into_data().try_to_vec::<f32>().unwrap()) {
            assert!((g - r).abs() <= 1e-6 * r.abs().max(1.0), "{g} vs {r}");
        }
        let grad = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        let expected = [0.1f32, 0.2, 0.3, 4.0, 5.0, 6.0];
        for (g, e) in grad.iter().zip(expected) {
            assert!((g - e).abs() < 1e-6, "{grad:?}");
        }
    }
}
