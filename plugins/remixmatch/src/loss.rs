//! ReMixMatch's loss (`docs/method.md` §6.3 steps 2–6): the labelled and unlabelled mixup losses, the pre-mixup
//! loss on the first strong view and the rotation loss, weighted as
//! `L_x + w_kl·ramp·L_kl + w_match·ramp·L_u + w_rot·L_rot`.
use relab_core::burn::tensor::activation::softmax;
use relab_core::burn::tensor::{Int, Tensor};
use relab_core::train::{cross_entropy, soft_cross_entropy};

/// The loss weights of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub w_match: f64,
    pub w_kl: f64,
    pub w_rot: f64,
    /// The linear ramp of `w_match` and `w_kl`, in `[0, 1]`.
    pub ramp: f64,
}

/// The terms and their weighted sum, each a one-element tensor.
pub struct Loss {
    pub total: Tensor<1>,
    /// Soft cross-entropy of the mixed labelled images with their mixed targets.
    pub x: Tensor<1>,
    /// The mixed unlabelled images' loss: soft cross-entropy, or the squared error of the probabilities.
    pub u: Tensor<1>,
    /// Cross-entropy of the first strong view (unmixed) with the guess.
    pub kl: Tensor<1>,
    /// Cross-entropy of the rotation head; `None` when `w_rot` is 0.
    pub rot: Option<Tensor<1>>,
}

/// What the loss is computed from. Logits are `N × C`, targets `N × C` (stop-gradient), rotation labels `N`.
pub struct Outputs {
    pub labeled_logits: Tensor<2>,
    pub labeled_targets: Tensor<2>,
    pub unlabeled_logits: Tensor<2>,
    pub unlabeled_targets: Tensor<2>,
    pub strong_logits: Tensor<2>,
    pub guess: Tensor<2>,
    pub rotation: Option<(Tensor<2>, Tensor<1, Int>)>,
}

/// The unlabelled mixup loss: the batch mean of the soft cross-entropy (`use_xe`), or the mean over every entry of
/// `(t − softmax(z))²` (the original's `tf.reduce_mean` of the squared error).
pub fn unlabeled_loss(logits: Tensor<2>, targets: Tensor<2>, use_xe: bool) -> Tensor<1> {
    if use_xe { soft_cross_entropy(logits, targets) } else { (targets - softmax(logits, 1)).square().mean() }
}

/// The four terms and their weighted sum.
pub fn remixmatch_loss(o: Outputs, w: Weights, use_xe: bool) -> Loss {
    let x = soft_cross_entropy(o.labeled_logits, o.labeled_targets);
    let u = unlabeled_loss(o.unlabeled_logits, o.unlabeled_targets, use_xe);
    let kl = soft_cross_entropy(o.strong_logits, o.guess);
    let rot = o.rotation.map(|(logits, labels)| cross_entropy(logits, labels));
    let mut total = x.clone() + kl.clone().mul_scalar(w.w_kl * w.ramp) + u.clone().mul_scalar(w.w_match * w.ramp);
    if let Some(r) = &rot {
        total = total + r.clone().mul_scalar(w.w_rot);
    }
    Loss { total, x, u, kl, rot }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::burn::tensor::{Device, TensorData};
    use relab_core::train::losses::labels_tensor;

    fn t2(rows: &[&[f32]]) -> Tensor<2> {
        let c = rows[0].len();
        let v: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(v, [rows.len(), c]), &Device::flex())
    }

    fn value(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }

    fn lse(z: &[f64]) -> f64 {
        z.iter().map(|v| v.exp()).sum::<f64>().ln()
    }

    /// `−Σ t·log_softmax(z)` of one row.
    fn ce(z: &[f64], t: &[f64]) -> f64 {
        let l = lse(z);
        -z.iter().zip(t).map(|(zi, ti)| ti * (zi - l)).sum::<f64>()
    }

    #[test]
    fn the_terms_and_their_weighted_sum_match_hand_computation() {
        let o = Outputs {
            labeled_logits: t2(&[&[1.0, 0.0]]),
            labeled_targets: t2(&[&[0.7, 0.3]]),
            unlabeled_logits: t2(&[&[0.0, 2.0], &[0.5, 0.5]]),
            unlabeled_targets: t2(&[&[0.2, 0.8], &[1.0, 0.0]]),
            strong_logits: t2(&[&[3.0, 1.0]]),
            guess: t2(&[&[0.9, 0.1]]),
            rotation: Some((
                t2(&[&[0.0, 1.0, 0.0, 0.0], &[2.0, 0.0, 0.0, 0.0]]),
                labels_tensor(&[1, 3], &Device::flex()),
            )),
        };
        let w = Weights { w_match: 1.5, w_kl: 0.5, w_rot: 0.5, ramp: 0.25 };
        let loss = remixmatch_loss(o, w, true);
        let lx = ce(&[1.0, 0.0], &[0.7, 0.3]);
        let lu = (ce(&[0.0, 2.0], &[0.2, 0.8]) + ce(&[0.5, 0.5], &[1.0, 0.0])) / 2.0;
        let lkl = ce(&[3.0, 1.0], &[0.9, 0.1]);
        let lrot = ((lse(&[0.0, 1.0, 0.0, 0.0]) - 1.0) + lse(&[2.0, 0.0, 0.0, 0.0])) / 2.0;
        assert!((value(loss.x) - lx).abs() < 1e-6);
        assert!((value(loss.u) - lu).abs() < 1e-6);
        assert!((value(loss.kl) - lkl).abs() < 1e-6);
        assert!((value(loss.rot.unwrap()) - lrot).abs() < 1e-6);
        let total = lx + 0.5 * 0.25 * lkl + 1.5 * 0.25 * lu + 0.5 * lrot;
        assert!((value(loss.total) - total).abs() < 1e-5, "{total}");
    }

    #[test]
    fn squared_error_and_no_rotation() {
        // softmax([0, ln 3]) = [0.25, 0.75]; targets [1, 0]: errors 0.5625 and 0.5625, mean over 2 entries.
        let l = unlabeled_loss(t2(&[&[0.0, 3f32.ln()]]), t2(&[&[1.0, 0.0]]), false);
        assert!((value(l) - 0.5625).abs() < 1e-6);
        let o = Outputs {
            labeled_logits: t2(&[&[0.0, 0.0]]),
            labeled_targets: t2(&[&[1.0, 0.0]]),
            unlabeled_logits: t2(&[&[0.0, 3f32.ln()]]),
            unlabeled_targets: t2(&[&[1.0, 0.0]]),
            strong_logits: t2(&[&[0.0, 0.0]]),
            guess: t2(&[&[0.5, 0.5]]),
            rotation: None,
        };
        // Ramp 0: only the labelled term is left.
        let loss = remixmatch_loss(o, Weights { w_match: 1.5, w_kl: 0.5, w_rot: 0.5, ramp: 0.0 }, false);
        assert!(loss.rot.is_none());
        assert!((value(loss.total) - 2f64.ln()).abs() < 1e-6);
        assert!((value(loss.u) - 0.5625).abs() < 1e-6);
    }
}
