//! Mixup as the method runs it: `λ ~ Beta(α, α)`, then `λ ← max(λ, 1−λ)` so the first sample dominates, and one
//! random permutation `π` of the batch: `x̃_i = λ_i·x_i + (1−λ_i)·x_{π(i)}`, likewise for soft targets.
//!
//! One λ per batch (iMix §2.1, PL §5.2) or one per sample (ReMixMatch §6.2). A [`Mix`] is what the losses need.
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_distr::{Beta, Distribution};

/// One mixup draw for a batch of `perm.len()` samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// One λ for the whole batch, or one per sample; each in `[0.5, 1]` when drawn.
    pub lambda: Vec<f32>,
    /// Sample `i` is mixed with sample `perm[i]`.
    pub perm: Vec<usize>,
}

/// `λ ~ Beta(α, α)`, then `max(λ, 1−λ)`. `α ≤ 0` means no mixup: λ = 1.
pub fn draw_lambda(rng: &mut impl Rng, alpha: f64) -> f32 {
    if alpha <= 0.0 {
        return 1.0;
    }
    let beta = Beta::new(alpha, alpha).expect("Beta(α, α) exists for every finite α > 0");
    let l: f64 = beta.sample(rng);
    l.max(1.0 - l) as f32
}

/// A uniformly random permutation of `0..n` (`torch.randperm`).
pub fn permutation(rng: &mut impl Rng, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(rng);
    p
}

impl Mix {
    /// One λ for the batch, then the permutation (the order of `mixup_data` in iMix/ReLaB).
    pub fn per_batch(rng: &mut impl Rng, n: usize, alpha: f64) -> Self {
        let lambda = vec![draw_lambda(rng, alpha)];
        Mix { lambda, perm: permutation(rng, n) }
    }

    /// One λ per sample, then the permutation (ReMixMatch).
    pub fn per_sample(rng: &mut impl Rng, n: usize, alpha: f64) -> Self {
        let lambda = (0..n).map(|_| draw_lambda(rng, alpha)).collect();
        Mix { lambda, perm: permutation(rng, n) }
    }

    /// No mixing: λ = 1, identity permutation.
    pub fn none(n: usize) -> Self {
        Mix { lambda: vec![1.0], perm: (0..n).collect() }
    }

    /// Batch size.
    pub fn len(&self) -> usize {
        self.perm.len()
    }

    pub fn is_empty(&self) -> bool {
        self.perm.is_empty()
    }

    /// The λ of sample `i`.
    pub fn lambda(&self, i: usize) -> f32 {
        if self.lambda.len() == 1 { self.lambda[0] } else { self.lambda[i] }
    }

    /// `λ_i·x_i + (1−λ_i)·x_{π(i)}` along the first axis, for inputs (`B × C × H × W`), soft targets (`B × C`) or
    /// anything else batched on axis 0.
    pub fn mix<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dims = x.dims();
        assert_eq!(dims[0], self.len(), "mix: the draw is for {} samples, the batch has {}", self.len(), dims[0]);
        assert!(
            self.lambda.len() == 1 || self.lambda.len() == self.len(),
            "mix: {} λ values for {} samples",
            self.lambda.len(),
            self.len()
        );
        let device = x.device();
        let partner = x.clone().select(0, self.perm_tensor(&device));
        if self.lambda.len() == 1 {
            let l = self.lambda[0] as f64;
            return x.mul_scalar(l) + partner.mul_scalar(1.0 - l);
        }
        let mut shape = [1usize; D];
        shape[0] = self.len();
        let l: Tensor<D> =
            Tensor::<1>::from_data(TensorData::new(self.lambda.clone(), [self.len()]), &device).reshape(shape);
        let one_minus = l.clone().neg().add_scalar(1.0);
        x * l + partner * one_minus
    }

    /// The `B × B` target matrix of the mixed N-pairs loss: `λ_i` at `(i, i)` plus `1−λ_i` at `(i, π(i))`.
    pub fn pair_targets(&self, device: &Device) -> Tensor<2> {
        let n = self.len();
        let mut t = vec![0f32; n * n];
        for (i, &j) in self.perm.iter().enumerate() {
            let l = self.lambda(i);
            t[i * n + i] += l;
            t[i * n + j] += 1.0 - l;
        }
        Tensor::from_data(TensorData::new(t, [n, n]), device)
    }

    /// `π` as an index tensor, for callers that permute other batched tensors alike.
    pub fn perm_tensor(&self, device: &Device) -> Tensor<1, Int> {
        let p: Vec<i64> = self.perm.iter().map(|&i| i as i64).collect();
        Tensor::from_data(TensorData::new(p, [self.len()]), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn mixes_inputs_and_targets_with_one_lambda() {
        let device = Device::flex();
        let x = Tensor::<2>::from_data(TensorData::new(vec![1f32, 2., 3., 4., 5., 6.], [3, 2]), &device);
        let mix = Mix { lambda: vec![0.75], perm: vec![2, 0, 1] };
        // Row 0: 0.75·[1,2] + 0.25·[5,6]; row 1: 0.75·[3,4] + 0.25·[1,2]; row 2: 0.75·[5,6] + 0.25·[3,4].
        assert!(close(&values(mix.mix(x)), &[2.0, 3.0, 2.5, 3.5, 4.5, 5.5]));
        let t = Tensor::<2>::from_data(TensorData::new(vec![1f32, 0., 0., 1., 0.5, 0.5], [3, 2]), &device);
        let mixed = values(mix.mix(t));
        assert!(close(&mixed, &[0.875, 0.125, 0.25, 0.75, 0.375, 0.625]), "{mixed:?}");
        assert!(mixed.chunks(2).all(|r| (r[0] + r[1] - 1.0).abs() < 1e-6));
    }

    #[test]
    fn mixes_images_with_a_lambda_per_sample() {
        let device = Device::flex();
        let x: Vec<f32> = (0..3 * 2 * 2 * 2).map(|v| v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(x.clone(), [3, 2, 2, 2]), &device);
        let mix = Mix { lambda: vec![1.0, 0.5, 0.8], perm: vec![1, 2, 0] };
        let got = values(mix.mix(x));
        let want: Vec<f32> = (0..24)
            .map(|k| {
                let (i, off) = (k / 8, k % 8);
                let l = mix.lambda(i);
                l * k as f32 + (1.0 - l) * (mix.perm[i] * 8 + off) as f32
            })
            .collect();
        assert!(close(&got, &want), "{got:?}");
        assert_eq!(&got[..8], &want[..8]); // λ = 1 keeps the sample
    }

    #[test]
    fn pair_targets_put_lambda_on_the_diagonal_and_the_rest_on_the_partner() {
        let mix = Mix { lambda: vec![0.7], perm: vec![1, 0, 2] };
        let t = values(mix.pair_targets(&Device::flex()));
        assert!(close(&t, &[0.7, 0.3, 0.0, 0.3, 0.7, 0.0, 0.0, 0.0, 1.0]), "{t:?}");
    }

    #[test]
    fn draws_are_seeded_and_lambda_dominates() {
        let draw = |seed| Mix::per_batch(&mut ChaCha8Rng::seed_from_u64(seed), 16, 1.0);
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
        let m = draw(3);
        let mut sorted = m.perm.clone();
        sorted.sort();
        assert_eq!(sorted, (0..16).collect::<Vec<_>>());

        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let lambdas: Vec<f32> = (0..4000).map(|_| draw_lambda(&mut rng, 1.0)).collect();
        assert!(lambdas.iter().all(|l| (0.5..=1.0).contains(l)));
        // max(U, 1−U) is uniform on [0.5, 1]: mean 0.75.
        let mean = lambdas.iter().sum::<f32>() / lambdas.len() as f32;
        assert!((mean - 0.75).abs() < 0.01, "{mean}");
        // Beta(0.75, 0.75) puts more mass near the ends: mean of max(λ, 1−λ) above 0.75.
        let l: Vec<f32> = (0..4000).map(|_| draw_lambda(&mut rng, 0.75)).collect();
        assert!(l.iter().sum::<f32>() / 4000.0 > 0.76);
        assert_eq!(draw_lambda(&mut rng, 0.0), 1.0);

        let per = Mix::per_sample(&mut ChaCha8Rng::seed_from_u64(1), 8, 0.75);
        assert_eq!(per.lambda.len(), 8);
        assert!(per.lambda.windows(2).any(|w| w[0] != w[1]));
        assert_eq!(Mix::none(3).mix(Tensor::<1>::from_floats([1.0, 2.0, 3.0], &Device::flex())).dims(), [3]);
    }
}
