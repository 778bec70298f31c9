//! Reading and making burn CPU-backend (flex) tensors as plain `f32` slices, for relab's own CPU kernels.

use burn::backend::flex::FlexTensor;
use burn::tensor::{Shape, TensorData};

/// `f` applied to the tensor's values in row-major order. A flex tensor's storage may be larger than its values (a
/// view starting at an offset) or strided (a transposed view); only the second is copied.
pub(crate) fn with_values<R>(t: &FlexTensor, f: impl FnOnce(&[f32]) -> R) -> R {
    match t.layout().contiguous_offsets() {
        Some((start, end)) => f(&t.storage::<f32>()[start..end]),
        None => {
            let dense = t.to_contiguous();
            let (start, end) = dense.layout().contiguous_offsets().expect("a contiguous copy");
            f(&dense.storage::<f32>()[start..end])
        }
    }
}

/// A flex tensor of these row-major values.
pub(crate) fn flex_tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::{Device, Tensor};

    fn primitive(t: Tensor<2>) -> FlexTensor {
        t.try_into_primitive::<Flex>().expect("a flex tensor")
    }

    #[test]
    fn views_at_an_offset_and_transposed_views_read_their_own_values() {
        let device = Device::flex();
        let t = Tensor::<2>::from_data(TensorData::new((0..12).map(|v| v as f32).collect::<Vec<_>>(), [4, 3]), &device);
        let rows = primitive(t.clone().slice([2..4, 0..3]));
        assert_eq!(with_values(&rows, |v| v.to_vec()), vec![6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
        let transposed = primitive(t.clone().transpose());
        assert_eq!(with_values(&transposed, |v| v[..4].to_vec()), vec![0.0, 3.0, 6.0, 9.0]);
        assert_eq!(with_values(&primitive(t), |v| v.len()), 12);
    }
}
