//! The pretext task's inputs: every image of a batch in its four rotations.

use relab_core::burn::tensor::Tensor;

/// `[B, C, H, W]` square images → `[4B, C, H, W]`: the batch rotated by 0°, 90°, 180° and 270° counter-clockwise,
/// one block of B after another, and the rotation index (0–3) of each row.
pub fn four_rotations(x: Tensor<4>) -> (Tensor<4>, Vec<u32>) {
    let [b, _, h, w] = x.dims();
    assert_eq!(h, w, "rotations need square images");
    let r90 = x.clone().swap_dims(2, 3).flip([2]);
    let r180 = x.clone().flip([2, 3]);
    let r270 = x.clone().swap_dims(2, 3).flip([3]);
    let rotated = Tensor::cat(vec![x, r90, r180, r270], 0);
    (rotated, (0..4).flat_map(|r| std::iter::repeat_n(r, b)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::burn::tensor::{Device, TensorData};

    #[test]
    fn the_four_rotations_of_a_known_image() {
        // 1 2      90°: 2 4    180°: 4 3    270°: 3 1
        // 3 4           1 3          2 1          4 2
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 2, 2]), &device);
        let (rotated, labels) = four_rotations(x);
        assert_eq!(rotated.dims(), [4, 1, 2, 2]);
        let values = rotated.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(values, vec![1., 2., 3., 4., 2., 4., 1., 3., 4., 3., 2., 1., 3., 1., 4., 2.]);
        assert_eq!(labels, vec![0, 1, 2, 3]);
    }

    #[test]
    fn labels_follow_the_blocks() {
        let x = Tensor::<4>::zeros([3, 2, 4, 4], &Device::flex());
        let (rotated, labels) = four_rotations(x);
        assert_eq!(rotated.dims(), [12, 2, 4, 4]);
        assert_eq!(labels, vec![0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    }
}
