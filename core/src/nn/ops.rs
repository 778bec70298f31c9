//! Parameter-free tensor operations the networks and heads share.
use burn::tensor::Tensor;

/// Global average pooling, `[B, C, H, W] → [B, C]` (PyTorch's `adaptive_avg_pool2d(x, 1).flatten(1)`).
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [batch, channels, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([batch, channels])
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
}
