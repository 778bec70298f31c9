//! The loss of one step (`docs/method.md` §5.2 item 5): mixup soft cross-entropy on the mixed targets, plus in the
//! semi-supervised run `prior_weight·L_p + entropy_weight·L_e`, both computed on the predictions for the mixed
//! images. The pieces are core's; this puts them together and keeps the parts for the metrics.
use relab_core::burn::tensor::Tensor;
use relab_core::train::losses::{entropy_loss, prior_loss};
use relab_core::train::soft_cross_entropy;

/// Weights of the two regularisers; `None` in the warm-up, which trains without them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regularisers {
    pub prior: f64,
    pub entropy: f64,
}

/// The total to minimise and its parts, each a one-element tensor.
pub struct StepLoss {
    pub total: Tensor<1>,
    pub cross_entropy: Tensor<1>,
    /// `(L_p, L_e)` before weighting, when the regularisers are on.
    pub regularisers: Option<(Tensor<1>, Tensor<1>)>,
}

/// `logits` of the mixed batch (`B × C`) against its mixed soft targets (`B × C`): with targets
/// `λ·t_a + (1−λ)·t_b`, the cross-entropy equals `λ·CE(t_a) + (1−λ)·CE(t_b)`, the original's form.
pub fn step_loss(logits: Tensor<2>, mixed_targets: Tensor<2>, regularisers: Option<Regularisers>) -> StepLoss {
    let cross_entropy = soft_cross_entropy(logits.clone(), mixed_targets);
    match regularisers {
        None => StepLoss { total: cross_entropy.clone(), cross_entropy, regularisers: None },
        Some(w) => {
            let prior = prior_loss(logits.clone());
            let entropy = entropy_loss(logits);
            let total =
                cross_entropy.clone() + prior.clone().mul_scalar(w.prior) + entropy.clone().mul_scalar(w.entropy);
            StepLoss { total, cross_entropy, regularisers: Some((prior, entropy)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::burn::tensor::{Device, TensorData};
    use relab_core::train::Mix;

    fn t2(rows: &[&[f32]]) -> Tensor<2> {
        let c = rows[0].len();
        let v: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(v, [rows.len(), c]), &Device::flex())
    }

    fn value(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }

    #[test]
    fn the_semi_supervised_loss_matches_a_hand_computation() {
        // Softmax rows: [1/2, 1/2] and [2/3, 1/3]; batch mean [7/12, 5/12].
        let logits = t2(&[&[0.0, 0.0], &[2f32.ln(), 0.0]]);
        // Targets: a one-hot label and a soft pseudo-label, mixed with λ = 0.75 and π = (1, 0).
        let targets = t2(&[&[1.0, 0.0], &[0.2, 0.8]]);
        let mix = Mix { lambda: vec![0.75], perm: vec![1, 0] };
        let mixed = mix.mix(targets);

        let ce = |t: [f64; 2], p: [f64; 2]| -(t[0] * p[0].ln() + t[1] * p[1].ln());
        let (p0, p1) = ([0.5, 0.5], [2.0 / 3.0, 1.0 / 3.0]);
        let (t0, t1) = ([1.0, 0.0], [0.2, 0.8]);
        // The original's form: λ·CE(t_a) + (1−λ)·CE(t_b), row by row.
        let mixup_ce = (0.75 * ce(t0, p0) + 0.25 * ce(t1, p0) + 0.75 * ce(t1, p1) + 0.25 * ce(t0, p1)) / 2.0;
        let prior = -(0.5 * (7.0f64 / 12.0).ln() + 0.5 * (5.0f64 / 12.0).ln());
        let h = |p: [f64; 2]| -(p[0] * p[0].ln() + p[1] * p[1].ln());
        let entropy = (h(p0) + h(p1)) / 2.0;

        let loss = step_loss(logits.clone(), mixed.clone(), Some(Regularisers { prior: 0.8, entropy: 0.4 }));
        let (lp, le) = loss.regularisers.unwrap();
        assert!((value(loss.cross_entropy) - mixup_ce).abs() < 1e-6);
        assert!((value(lp) - prior).abs() < 1e-6 && (value(le) - entropy).abs() < 1e-6);
        assert!((value(loss.total) - (mixup_ce + 0.8 * prior + 0.4 * entropy)).abs() < 1e-6);

        // The warm-up trains on the cross-entropy alone.
        let warmup = step_loss(logits, mixed, None);
        assert!(warmup.regularisers.is_none());
        assert!((value(warmup.total) - mixup_ce).abs() < 1e-6);
    }
}
