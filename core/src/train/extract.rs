//! Feature extraction for any encoder: every image of a set, normalised and not augmented (CIFAR's test-time
//! transform is the identity resize; method §2.2), through the encoder in evaluation mode, rows in set order.
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use crate::Result;
use crate::artifact::Features;
use crate::data::{ImageSet, LoaderConfig, for_each_batch};
use crate::{Error, data::Batch};

/// Runs `forward` over `set` in batches of `batch_size` (the last one shorter) and stacks its `B × D` outputs into
/// [`Features`], row `i` for image `i`. Images are scaled to `[0, 1]` and normalised with `mean`/`std` (one value
/// per channel); batches are made by the data loader's worker threads while `forward` runs.
///
/// `forward` must run the encoder in evaluation mode (batch norm on running statistics): give it a
/// [`Module::valid`] copy, or use [`extract_with`], which does. Inputs are created on `device`.
pub fn extract_features<F>(
    set: &ImageSet,
    mean: &[f32],
    std: &[f32],
    batch_size: usize,
    device: &Device,
    mut forward: F,
) -> Result<Features>
where
    F: FnMut(Tensor<4>) -> Tensor<2>,
{
    let cfg = LoaderConfig::new(batch_size, mean, std);
    let order: Vec<usize> = (0..set.len()).collect();
    let mut dim = None;
    let mut values = Vec::new();
    for_each_batch(set, &order, &cfg, |batch: Batch| {
        let b = batch.shape[0];
        let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), device);
        let out = forward(x);
        let [rows, d] = out.dims();
        if rows != b || dim.is_some_and(|dim| dim != d) {
            return Err(Error::stage(
                "features",
                format!("the encoder gave {rows} × {d} features for a batch of {b} (expected {b} × {:?})", dim),
            ));
        }
        dim = Some(d);
        let rows = out.into_data().try_into_vec_as::<f32>();
        values.extend(rows.map_err(|e| Error::stage("features", format!("cannot read the features: {e:?}")))?);
        Ok(())
    })?;
    Ok(Features::new(set.len(), dim.unwrap_or(0), values))
}

/// [`extract_features`] through `model` in evaluation mode: a [`Module::valid`] copy (no autodiff, batch norm on
/// running statistics) runs `forward`, with inputs on `device` without autodiff.
pub fn extract_with<M, F>(
    model: &M,
    set: &ImageSet,
    mean: &[f32],
    std: &[f32],
    batch_size: usize,
    device: &Device,
    forward: F,
) -> Result<Features>
where
    M: Module,
    F: Fn(&M, Tensor<4>) -> Tensor<2>,
{
    let eval = model.valid();
    let device = device.clone().without_autodiff();
    extract_features(set, mean, std, batch_size, &device, |x| forward(&eval, x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{BatchNorm, BatchNormConfig};

    fn set(n: usize) -> ImageSet {
        ImageSet {
            channels: 2,
            height: 2,
            width: 3,
            pixels: (0..n * 12).map(|i| (i * 29 % 256) as u8).collect(),
            labels: None,
        }
    }

    #[test]
    fn rows_come_back_in_set_order_with_a_short_last_batch() {
        let s = set(7);
        let (mean, std) = ([0.5, 0.25], [0.5, 2.0]);
        // "Encoder": the mean of each channel.
        let f = extract_features(&s, &mean, &std, 3, &Device::flex(), |x| x.mean_dims(&[2, 3]).flatten(1, 3)).unwrap();
        assert_eq!((f.rows, f.dim), (7, 2));
        for i in 0..7 {
            for c in 0..2 {
                let px = &s.image(i)[c * 6..(c + 1) * 6];
                let want = px.iter().map(|&p| (p as f32 / 255.0 - mean[c]) / std[c]).sum::<f32>() / 6.0;
                assert!((f.row(i)[c] - want).abs() < 1e-5, "image {i} channel {c}");
            }
        }
        let err = extract_features(&s, &mean, &std, 3, &Device::flex(), |x| x.flatten(1, 3).slice([0..1, 0..2]));
        assert!(err.unwrap_err().to_string().contains("for a batch of 3"));
    }

    #[test]
    fn extract_with_runs_the_model_in_evaluation_mode() {
        let device = Device::flex().autodiff();
        let bn: BatchNorm = BatchNormConfig::new(2).init(&device);
        let s = set(5);
        // In evaluation mode with fresh statistics (mean 0, var 1) batch norm is the identity (up to ε), so the
        // features equal the normalised channel means; in training mode they would be centred per batch.
        let f = extract_with(&bn, &s, &[0.0, 0.0], &[1.0, 1.0], 2, &device, |m, x| {
            m.forward(x).mean_dims(&[2, 3]).flatten(1, 3)
        })
        .unwrap();
        let plain =
            extract_features(&s, &[0.0, 0.0], &[1.0, 1.0], 2, &Device::flex(), |x| x.mean_dims(&[2, 3]).flatten(1, 3))
                .unwrap();
        assert!(f.values.iter().zip(&plain.values).all(|(a, b)| (a - b / (1.0f32 + 1e-5).sqrt()).abs() < 1e-6));
        // Running statistics were not updated.
        let m: Vec<f32> = bn.running_mean.value().into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(m, vec![0.0, 0.0]);
    }
}
