//! Image tensors the trainer needs beside the loader's augmented batches: the un-augmented `x⁰` of a batch (the
//! source of its pseudo-labels, `docs/method.md` §5.2 item 7) and softmax predictions read back as rows.
use relab_core::burn::tensor::activation::softmax;
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::data::augment::Image;
use relab_core::data::{Batch, ImageSet};
use relab_core::{Error, Result};

/// A loader batch as a `B × C × H × W` tensor on `device`.
pub fn batch_tensor(batch: Batch, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(batch.images, batch.shape), device)
}

/// Images `indices` of `set` scaled to `[0, 1]` and normalised, without augmentation (ToTensor + Normalize).
pub fn clean_tensor(set: &ImageSet, indices: &[usize], mean: &[f32], std: &[f32], device: &Device) -> Tensor<4> {
    let mut values = Vec::with_capacity(indices.len() * set.image_len());
    for &i in indices {
        let mut img = Image::from_u8(set.channels, set.height, set.width, set.image(i));
        img.normalise(mean, std);
        values.extend_from_slice(&img.data);
    }
    Tensor::from_data(TensorData::new(values, [indices.len(), set.channels, set.height, set.width]), device)
}

/// `softmax(logits)` row by row, read back from the device.
pub fn probabilities(logits: Tensor<2>) -> Result<Vec<f32>> {
    softmax(logits, 1)
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::stage("train", format!("cannot read the predictions back: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_images_are_normalised_in_index_order() {
        let set = ImageSet { channels: 1, height: 1, width: 2, pixels: vec![0, 255, 51, 102], labels: None };
        let t = clean_tensor(&set, &[1, 0], &[0.2], &[0.5], &Device::flex());
        assert_eq!(t.dims(), [2, 1, 1, 2]);
        let v = t.into_data().try_into_vec_as::<f32>().unwrap();
        let want = [(0.2 - 0.2) / 0.5, (0.4 - 0.2) / 0.5, -0.4, 1.6];
        assert!(v.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{v:?}");
        let p = probabilities(Tensor::<2>::from_floats([[0.0, 0.0], [3f32.ln(), 0.0]], &Device::flex())).unwrap();
        assert!(p.iter().zip([0.5, 0.5, 0.75, 0.25]).all(|(a, b)| (a - b).abs() < 1e-6), "{p:?}");
    }
}
