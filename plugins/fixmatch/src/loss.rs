//! FixMatch's two loss terms as pure functions of tensors (method §6b.1 items 5–8).
use relab_core::burn::tensor::{Int, Tensor};
use relab_core::train::cross_entropy;
use relab_core::train::losses::cross_entropy_per_sample;

/// `ℓ_s = (1/B) Σ_b CE(y_b, f(α(x_b)))`, the mean over the labelled batch.
pub fn supervised_loss(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    cross_entropy(logits, labels)
}

/// `ℓ_u = (1/μB) Σ_b m_b · CE(ŷ_b, f(𝒜(u_b)))`: the mean over **all** unlabelled rows, the masked ones
/// contributing 0 (not divided by `Σ m`), as TF's `reduce_mean(loss * mask)` and the ports.
pub fn unlabeled_loss(strong_logits: Tensor<2>, pseudo_labels: Tensor<1, Int>, mask: Tensor<1>) -> Tensor<1> {
    (cross_entropy_per_sample(strong_logits, pseudo_labels) * mask).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::burn::tensor::{Device, TensorData};
    use relab_core::train::losses::labels_tensor;

    fn value(t: Tensor<1>) -> f64 {
        t.into_data().try_into_vec_as::<f32>().unwrap()[0] as f64
    }

    #[test]
    fn masked_mean_over_every_row() {
        let device = Device::flex();
        // Rows: softmax (½, ½), (¾, ¼), (½, ½); labels 0, 0, 1; the middle row masked out.
        let logits = Tensor::<2>::from_floats([[0.0, 0.0], [3f32.ln(), 0.0], [0.0, 0.0]], &device);
        let mask = Tensor::<1>::from_data(TensorData::new(vec![1f32, 0.0, 1.0], [3]), &device);
        let lu = value(unlabeled_loss(logits.clone(), labels_tensor(&[0, 0, 1], &device), mask));
        // (ln 2 + 0 + ln 2) / 3, not / 2.
        assert!((lu - 2.0 * 2f64.ln() / 3.0).abs() < 1e-6, "{lu}");
        let ls = value(supervised_loss(logits, labels_tensor(&[0, 0, 1], &device)));
        // (ln 2 + ln 4/3 + ln 2) / 3.
        assert!((ls - (2.0 * 2f64.ln() + (4.0f64 / 3.0).ln()) / 3.0).abs() < 1e-6, "{ls}");
        let none = Tensor::<1>::zeros([3], &device);
        let logits = Tensor::<2>::from_floats([[9.0, 0.0], [0.0, 0.0], [1.0, 2.0]], &device);
        assert_eq!(value(unlabeled_loss(logits, labels_tensor(&[1, 0, 0], &device), none)), 0.0);
    }
}
