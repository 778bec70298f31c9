//! One iMix step's loss (method §2.1), on top of core's N-pairs loss and mixup.
use relab_core::burn::tensor::Tensor;
use relab_core::train::{Mix, n_pairs_loss};

/// Mixes the first views only (`x̃_i = λ·v1_i + (1−λ)·v1_{π(i)}`, pixel space, after normalisation), embeds both
/// views in separate forward passes (so batch norm sees each view's batch on its own, as the original's two calls
/// of the model), and returns `mean_i [λ·CE(s_i, i) + (1−λ)·CE(s_i, π(i))]` with `s_ij = ⟨z̃_i, z_j⟩/τ`. Without a
/// mix it is plain N-pairs, `mean_i CE(s_i, i)`.
pub fn imix_loss(
    embed: impl Fn(Tensor<4>) -> Tensor<2>,
    view1: Tensor<4>,
    view2: Tensor<4>,
    temperature: f64,
    mix: Option<&Mix>,
) -> Tensor<1> {
    let view1 = match mix {
        Some(mix) => mix.mix(view1),
        None => view1,
    };
    let anchors = embed(view1);
    let positives = embed(view2);
    n_pairs_loss(anchors, positives, temperature, mix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::burn::tensor::{Device, TensorData};

    /// Images of 1 × 1 × 2 pixels whose "embedding" is the two pixels themselves.
    fn images(rows: &[[f32; 2]]) -> Tensor<4> {
        let values: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(values, [rows.len(), 1, 1, 2]), &Device::flex())
    }

    fn flatten(x: Tensor<4>) -> Tensor<2> {
        x.flatten(1, 3)
    }

    fn value(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }

    fn normalise(v: [f64; 2]) -> [f64; 2] {
        let n = (v[0] * v[0] + v[1] * v[1]).sqrt();
        [v[0] / n, v[1] / n]
    }

    /// `−log softmax(row)_k`.
    fn ce(row: &[f64], k: usize) -> f64 {
        row.iter().map(|v| v.exp()).sum::<f64>().ln() - row[k]
    }

    /// The loss computed by hand: mix rows of `a` (f64), normalise, logits against normalised `b`, weighted CE.
    fn by_hand(a: &[[f64; 2]], b: &[[f64; 2]], tau: f64, lambda: f64, perm: &[usize]) -> f64 {
        let n = a.len();
        let mut total = 0.0;
        for i in 0..n {
            let p = perm[i];
            let mixed =
                normalise([lambda * a[i][0] + (1.0 - lambda) * a[p][0], lambda * a[i][1] + (1.0 - lambda) * a[p][1]]);
            let row: Vec<f64> = b
                .iter()
                .map(|bj| {
                    let bj = normalise(*bj);
                    (mixed[0] * bj[0] + mixed[1] * bj[1]) / tau
                })
                .collect();
            total += lambda * ce(&row, i) + (1.0 - lambda) * ce(&row, p);
        }
        total / n as f64
    }

    const A: [[f32; 2]; 3] = [[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]];
    const B: [[f32; 2]; 3] = [[3.0, 1.0], [0.5, 1.0], [-1.0, 0.2]];

    fn f64s(rows: &[[f32; 2]]) -> Vec<[f64; 2]> {
        rows.iter().map(|r| [r[0] as f64, r[1] as f64]).collect()
    }

    #[test]
    fn mixed_loss_matches_hand_computation() {
        let mix = Mix { lambda: vec![0.7], perm: vec![2, 0, 1] };
        let got = value(imix_loss(flatten, images(&A), images(&B), 0.2, Some(&mix)));
        let want = by_hand(&f64s(&A), &f64s(&B), 0.2, 0.7, &[2, 0, 1]);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn lambda_one_and_no_mix_are_plain_n_pairs() {
        let identity = [0, 1, 2];
        let plain = by_hand(&f64s(&A), &f64s(&B), 0.2, 1.0, &identity);
        // Plain N-pairs by its own definition: CE of each row against its own index.
        let logits = |i: usize| -> Vec<f64> {
            let a = normalise([A[i][0] as f64, A[i][1] as f64]);
            B.iter().map(|b| normalise([b[0] as f64, b[1] as f64])).map(|b| (a[0] * b[0] + a[1] * b[1]) / 0.2).collect()
        };
        let direct = (0..3).map(|i| ce(&logits(i), i)).sum::<f64>() / 3.0;
        assert!((plain - direct).abs() < 1e-12);
        let none = value(imix_loss(flatten, images(&A), images(&B), 0.2, None));
        assert!((none - plain).abs() < 1e-5, "{none} vs {plain}");
        // λ = 1 with any permutation: nothing is mixed and the partner's weight is 0.
        let one = Mix { lambda: vec![1.0], perm: vec![1, 2, 0] };
        let with_one = value(imix_loss(flatten, images(&A), images(&B), 0.2, Some(&one)));
        assert!((with_one - plain).abs() < 1e-5, "{with_one} vs {plain}");
    }

    #[test]
    fn only_the_first_view_is_mixed() {
        // The loss equals the hand computation that mixes the first views alone, and on these inputs mixing the
        // second views too would give a clearly different value.
        let mix = Mix { lambda: vec![0.6], perm: vec![1, 0, 2] };
        let got = value(imix_loss(flatten, images(&A), images(&B), 0.5, Some(&mix)));
        let want = by_hand(&f64s(&A), &f64s(&B), 0.5, 0.6, &[1, 0, 2]);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        let b_mixed: Vec<[f64; 2]> = f64s(&B)
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let p = [1, 0, 2][i];
                let bp = f64s(&B)[p];
                [0.6 * b[0] + 0.4 * bp[0], 0.6 * b[1] + 0.4 * bp[1]]
            })
            .collect();
        let both_mixed = by_hand(&f64s(&A), &b_mixed, 0.5, 0.6, &[1, 0, 2]);
        assert!((got - both_mixed).abs() > 1e-3, "mixing the second view must make a difference here");
    }
}
