//! Losses as pure functions of tensors: soft-target and hard-label cross-entropy, the N-pairs / InfoNCE loss of
//! iMix (method §2.1) and PL's two regularisers (§5.2). Each returns the batch mean as a one-element tensor unless
//! named `*_per_sample`.
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor, TensorData};

use super::mixup::Mix;

/// `−Σ_c t_ic · log_softmax(z_i)_c` for each row `i`: `logits` and `targets` are `B × C`, the result has `B`
/// values. Targets need not sum to one (mixup of soft labels does, up to rounding).
pub fn soft_cross_entropy_per_sample(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let [b, _] = logits.dims();
    (log_softmax(logits, 1) * targets).sum_dim(1).neg().reshape([b])
}

/// The batch mean of [`soft_cross_entropy_per_sample`]: PyTorch's `-(t * log_softmax(z)).sum(1).mean()`.
///
/// Mixup with soft targets (PL, method §5.2) is this loss on mixed targets: `λ·CE(t_a) + (1−λ)·CE(t_b)` equals
/// `CE(λ·t_a + (1−λ)·t_b)`, which [`Mix::mix`] forms.
pub fn soft_cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    soft_cross_entropy_per_sample(logits, targets).mean()
}

/// `−log_softmax(z_i)_{y_i}` for each row: `logits` is `B × C`, `labels` has `B` class indices.
pub fn cross_entropy_per_sample(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [b, _] = logits.dims();
    log_softmax(logits, 1).gather(1, labels.reshape([b, 1])).neg().reshape([b])
}

/// The batch mean of [`cross_entropy_per_sample`]: PyTorch's `F.cross_entropy(z, y)`.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    cross_entropy_per_sample(logits, labels).mean()
}

/// PL's class-prior regulariser (method §5.2, `L_p`): `−Σ_c (1/C)·log p̄_c`, with `p̄` the batch mean of
/// `softmax(logits)`. It is smallest when the batch's predictions cover the classes uniformly.
pub fn prior_loss(logits: Tensor<2>) -> Tensor<1> {
    let [_, c] = logits.dims();
    softmax(logits, 1).mean_dim(0).log().sum().div_scalar(c as f64).neg()
}

/// PL's entropy regulariser (method §5.2, `L_e`): `−(1/B)·Σ_i Σ_c p_ic·log p_ic` with `p = softmax(logits)`.
pub fn entropy_loss(logits: Tensor<2>) -> Tensor<1> {
    let p = softmax(logits.clone(), 1);
    (p * log_softmax(logits, 1)).sum_dim(1).mean().neg()
}

/// Labels as the `Int` tensor the hard-label losses take.
pub fn labels_tensor(labels: &[u32], device: &burn::tensor::Device) -> Tensor<1, Int> {
    let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(values, [labels.len()]), device)
}

/// Rows scaled to unit L2 norm, as PyTorch's `F.normalize(x, dim=1)` (norms below 1e-12 are taken as 1e-12).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// `s_ij = ⟨a_i, b_j⟩ / τ` between the L2-normalised rows of `anchors` (`B × D`) and `positives` (`B × D`).
pub fn n_pairs_logits(anchors: Tensor<2>, positives: Tensor<2>, tau: f64) -> Tensor<2> {
    l2_normalize(anchors).matmul(l2_normalize(positives).transpose()).div_scalar(tau)
}

/// The N-pairs / InfoNCE loss of iMix (method §2.1): with `s = n_pairs_logits(anchors, positives, τ)`,
/// `mean_i [ λ_i·CE(s_i, i) + (1−λ_i)·CE(s_i, π(i)) ]`, CE over the `B` columns.
///
/// Rows are the (mixed) first views, columns the clean second views; there is no symmetric term. `mix` gives λ
/// (one per batch or per sample) and π; `None`, or λ = 1, is plain N-pairs (`--no-mix`). Embeddings are normalised
/// here, which changes nothing for the already-normalised output of a projection head.
pub fn n_pairs_loss(anchors: Tensor<2>, positives: Tensor<2>, tau: f64, mix: Option<&Mix>) -> Tensor<1> {
    let [b, _] = anchors.dims();
    let device = anchors.device();
    let logits = n_pairs_logits(anchors, positives, tau);
    match mix {
        None => {
            let diagonal: Vec<u32> = (0..b as u32).collect();
            cross_entropy(logits, labels_tensor(&diagonal, &device))
        }
        Some(mix) => {
            assert_eq!(mix.len(), b, "n_pairs_loss: the mix is for {} samples, the batch has {b}", mix.len());
            soft_cross_entropy(logits, mix.pair_targets(&device))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn t2(rows: &[&[f32]]) -> Tensor<2> {
        let c = rows[0].len();
        let v: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(v, [rows.len(), c]), &Device::flex())
    }

    fn scalar(t: Tensor<1>) -> f64 {
        assert_eq!(t.dims(), [1]);
        t.into_scalar::<f32>() as f64
    }

    fn lse(z: &[f64]) -> f64 {
        z.iter().map(|v| v.exp()).sum::<f64>().ln()
    }

    #[test]
    fn soft_cross_entropy_matches_hand_computation() {
        let z = t2(&[&[1.0, 2.0, 3.0], &[0.0, 0.0, 0.0]]);
        let t = t2(&[&[0.2, 0.3, 0.5], &[1.0, 0.0, 0.0]]);
        let row0 = lse(&[1.0, 2.0, 3.0]) - (0.2 + 0.6 + 1.5);
        let row1 = 3f64.ln();
        let per = soft_cross_entropy_per_sample(z.clone(), t.clone()).into_data().try_into_vec_as::<f32>().unwrap();
        assert!((per[0] as f64 - row0).abs() < 1e-6 && (per[1] as f64 - row1).abs() < 1e-6, "{per:?}");
        assert!((scalar(soft_cross_entropy(z, t)) - (row0 + row1) / 2.0).abs() < 1e-6);
    }

    #[test]
    fn hard_cross_entropy_matches_hand_computation_and_one_hot_soft_targets() {
        let device = Device::flex();
        let z = t2(&[&[1.0, 2.0, 3.0], &[0.5, -1.0, 0.0]]);
        let y = labels_tensor(&[2, 1], &device);
        let want = ((lse(&[1.0, 2.0, 3.0]) - 3.0) + (lse(&[0.5, -1.0, 0.0]) + 1.0)) / 2.0;
        assert!((scalar(cross_entropy(z.clone(), y)) - want).abs() < 1e-6);
        let one_hot = t2(&[&[0.0, 0.0, 1.0], &[0.0, 1.0, 0.0]]);
        assert!((scalar(soft_cross_entropy(z, one_hot)) - want).abs() < 1e-6);
    }

    #[test]
    fn n_pairs_plain_and_mixed_match_hand_computation() {
        // Unit rows; logits / τ=0.5: row 0 = [2, 1.2], row 1 = [0, 1.6].
        let a = t2(&[&[1.0, 0.0], &[0.0, 1.0]]);
        let b = t2(&[&[1.0, 0.0], &[0.6, 0.8]]);
        let ce = |row: [f64; 2], k: usize| lse(&row) - row[k];
        let (r0, r1) = ([2.0, 1.2], [0.0, 1.6]);
        let plain = (ce(r0, 0) + ce(r1, 1)) / 2.0;
        assert!((scalar(n_pairs_loss(a.clone(), b.clone(), 0.5, None)) - plain).abs() < 1e-6);
        // Scaled inputs give the same loss: the embeddings are normalised.
        let loss = n_pairs_loss(a.clone().mul_scalar(3.0), b.clone().mul_scalar(0.25), 0.5, None);
        assert!((scalar(loss) - plain).abs() < 1e-6);

        let mix = Mix { lambda: vec![0.7], perm: vec![1, 0] };
        let mixed = (0.7 * ce(r0, 0) + 0.3 * ce(r0, 1) + 0.7 * ce(r1, 1) + 0.3 * ce(r1, 0)) / 2.0;
        assert!((scalar(n_pairs_loss(a.clone(), b.clone(), 0.5, Some(&mix))) - mixed).abs() < 1e-6);
        // λ = 1 is plain N-pairs; per-sample λ weights each row by its own.
        let one = Mix { lambda: vec![1.0], perm: vec![1, 0] };
        assert!((scalar(n_pairs_loss(a.clone(), b.clone(), 0.5, Some(&one))) - plain).abs() < 1e-6);
        let per = Mix { lambda: vec![1.0, 0.6], perm: vec![1, 0] };
        let want = (ce(r0, 0) + 0.6 * ce(r1, 1) + 0.4 * ce(r1, 0)) / 2.0;
        assert!((scalar(n_pairs_loss(a, b, 0.5, Some(&per))) - want).abs() < 1e-6);
    }

    #[test]
    fn pl_regularisers_match_hand_computation() {
        let z = t2(&[&[0.0, 0.0], &[2f32.ln(), 0.0]]);
        // Softmax rows: [1/2, 1/2] and [2/3, 1/3]; batch mean [7/12, 5/12].
        let prior = -(0.5 * (7.0f64 / 12.0).ln() + 0.5 * (5.0f64 / 12.0).ln());
        assert!((scalar(prior_loss(z.clone())) - prior).abs() < 1e-6);
        let h = |p: &[f64]| -p.iter().map(|v| v * v.ln()).sum::<f64>();
        let entropy = (h(&[0.5, 0.5]) + h(&[2.0 / 3.0, 1.0 / 3.0])) / 2.0;
        assert!((scalar(entropy_loss(z)) - entropy).abs() < 1e-6);
        // Uniform predictions reach the prior's minimum, log C.
        assert!((scalar(prior_loss(t2(&[&[1.0, 1.0, 1.0]]))) - 3f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn gradients_flow_through_the_losses() {
        let device = Device::flex().autodiff();
        let z = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 3]), &device).require_grad();
        let loss = cross_entropy(z.clone(), labels_tensor(&[0], &device));
        let grads = loss.backward();
        let g: Vec<f32> = z.grad(&grads).unwrap().into_data().try_into_vec_as::<f32>().unwrap();
        // d CE / dz = softmax(z) − onehot(0).
        let s: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|v| (v - lse(&[1.0, 2.0, 3.0])).exp()).collect();
        let want = [s[0] - 1.0, s[1], s[2]];
        assert!(g.iter().zip(want).all(|(a, b)| (*a as f64 - b).abs() < 1e-6), "{g:?}");
    }
}
