//! CTAugment (ReMixMatch, FixMatch; docs/method.md §6.3, §6b.3): random policies of [`CtOp`]s whose magnitudes are
//! drawn from per-bin rates, the rates learnt from how well a model still classifies images under uniformly
//! random probe policies.
//!
//! A learner each step: augments with [`CtAugment::sample`] policies (FixMatch appends a forced
//! `cutout(v = 1)`, [`Policy::with_cutout`]); augments the labelled images with [`CtAugment::probe`] policies,
//! classifies them (the EMA model in the references) and feeds each [`probe_accuracy`] to [`CtAugment::update`].
//! The whole state serialises exactly (floats round-trip), so a learner checkpoints it in its recipe state.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::ct_ops::CtOp;
use super::image::Image;

/// CTAugment's three knobs; defaults are the references' flags (`adepth`, `ath`, `adecay`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CtAugmentConfig {
    /// Ops per policy.
    pub depth: usize,
    /// Bins whose weight, normalised to the parameter's largest, is below this are never drawn.
    pub threshold: f32,
    /// Rate update `rate ← decay·rate + (1 − decay)·accuracy`; `1 − decay` is also added to every weight.
    pub decay: f32,
}

impl Default for CtAugmentConfig {
    fn default() -> Self {
        CtAugmentConfig { depth: 2, threshold: 0.8, decay: 0.99 }
    }
}

impl CtAugmentConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.depth == 0 {
            return Err("ctaugment: depth must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!("ctaugment: threshold = {} must lie in [0, 1]", self.threshold));
        }
        if !(self.decay > 0.0 && self.decay < 1.0) {
            return Err(format!("ctaugment: decay = {} must lie in (0, 1)", self.decay));
        }
        Ok(())
    }
}

/// One op of a policy with its magnitudes (one per parameter, each in `[0, 1]`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OpDraw {
    pub op: CtOp,
    pub magnitudes: Vec<f32>,
}

/// Ops applied in order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Policy(pub Vec<OpDraw>);

impl Policy {
    /// `img` through every op; `rng` places cutouts.
    pub fn apply<R: Rng + ?Sized>(&self, img: Image, rng: &mut R) -> Image {
        self.0.iter().fold(img, |img, d| d.op.apply(img, &d.magnitudes, rng))
    }

    /// This policy followed by `cutout(v = 1)`, FixMatch's strong view (a 16-pixel square on 32×32).
    pub fn with_cutout(mut self) -> Policy {
        self.0.push(OpDraw { op: CtOp::Cutout, magnitudes: vec![1.0] });
        self
    }
}

/// CTAugment's state: the configuration and, for every op, parameter and bin, a rate (an accuracy estimate, 1 at
/// the start).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(try_from = "CtAugmentState", into = "CtAugmentState")]
pub struct CtAugment {
    pub config: CtAugmentConfig,
    /// `rates[i][p][b]`: op `CtOp::ALL[i]`, parameter `p`, bin `b`.
    rates: Vec<Vec<Vec<f32>>>,
}

/// The serialised form: rates by op name, so a checkpoint reads plainly and does not depend on the ops' order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CtAugmentState {
    config: CtAugmentConfig,
    rates: BTreeMap<String, Vec<Vec<f32>>>,
}

impl From<CtAugment> for CtAugmentState {
    fn from(c: CtAugment) -> Self {
        let rates = CtOp::ALL.iter().zip(c.rates).map(|(op, r)| (op.name().to_string(), r)).collect();
        CtAugmentState { config: c.config, rates }
    }
}

impl TryFrom<CtAugmentState> for CtAugment {
    type Error = String;

    fn try_from(mut s: CtAugmentState) -> Result<Self, String> {
        s.config.validate()?;
        let mut rates = Vec::with_capacity(CtOp::ALL.len());
        for op in CtOp::ALL {
            let r = s.rates.remove(op.name()).ok_or_else(|| format!("ctaugment: no rates for `{}`", op.name()))?;
            let shape: Vec<usize> = r.iter().map(Vec::len).collect();
            if shape != op.bins() {
                return Err(format!("ctaugment: `{}` has bins {shape:?}, not {:?}", op.name(), op.bins()));
            }
            if r.iter().flatten().any(|v| !v.is_finite()) {
                return Err(format!("ctaugment: `{}` has a rate that is not a finite number", op.name()));
            }
            rates.push(r);
        }
        if let Some(name) = s.rates.keys().next() {
            return Err(format!("ctaugment: `{name}` is not an op"));
        }
        Ok(CtAugment { config: s.config, rates })
    }
}

fn index(op: CtOp) -> usize {
    CtOp::ALL.iter().position(|&o| o == op).expect("every op is in ALL")
}

impl CtAugment {
    /// Every rate at 1.
    pub fn new(config: CtAugmentConfig) -> Self {
        let rates = CtOp::ALL.iter().map(|op| op.bins().iter().map(|&n| vec![1.0; n]).collect()).collect();
        CtAugment { config, rates }
    }

    /// The rates of `op`, one vector of bins per parameter.
    pub fn rates(&self, op: CtOp) -> &[Vec<f32>] {
        &self.rates[index(op)]
    }

    /// Overwrite the rates of `op` (same shape), e.g. to restore or to test a given state.
    pub fn set_rates(&mut self, op: CtOp, rates: Vec<Vec<f32>>) {
        assert_eq!(rates.iter().map(Vec::len).collect::<Vec<_>>(), op.bins(), "{} bins", op.name());
        self.rates[index(op)] = rates;
    }

    /// The reference's `rate_to_p`: `w = rate + (1 − decay)`, divided by its largest, bins below the threshold
    /// set to 0. At least the largest bin stays at 1.
    pub fn weights(&self, rates: &[f32]) -> Vec<f32> {
        let w: Vec<f32> = rates.iter().map(|r| r + (1.0 - self.config.decay)).collect();
        let max = w.iter().copied().fold(f32::MIN, f32::max);
        w.iter().map(|x| x / max).map(|x| if x < self.config.threshold { 0.0 } else { x }).collect()
    }

    /// A training policy: `depth` ops drawn uniformly (with replacement); for each parameter a bin `j` drawn with
    /// probability ∝ its weight and the magnitude `(j + U[0, 1)) / bins`. This is FixMatch's `ctaugment.py`
    /// (§6b.3); ReMixMatch's draws between bins instead, [`CtAugment::sample_segments`].
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Policy {
        self.draw(rng, |w, rng| {
            let j = pick(w, rng);
            (j as f32 + rng.random::<f32>()) / w.len() as f32
        })
    }

    /// A training policy as ReMixMatch's (and ReLaB's) `ctaugment.py` draws it (§6.3): the weights of adjacent
    /// bins are summed into `bins − 1` segments `w[1:] + w[:-1]`, a segment `s` drawn ∝ its sum, and the
    /// magnitude is `(s + U[0, 1)) / (bins − 1)`.
    pub fn sample_segments<R: Rng + ?Sized>(&self, rng: &mut R) -> Policy {
        self.draw(rng, |w, rng| {
            let segments: Vec<f32> = w.windows(2).map(|p| p[0] + p[1]).collect();
            let s = pick(&segments, rng);
            (s as f32 + rng.random::<f32>()) / segments.len() as f32
        })
    }

    fn draw<R: Rng + ?Sized>(&self, rng: &mut R, magnitude: impl Fn(&[f32], &mut R) -> f32) -> Policy {
        let ops = (0..self.config.depth)
            .map(|_| {
                let i = rng.random_range(0..CtOp::ALL.len());
                let magnitudes = self.rates[i].iter().map(|r| magnitude(&self.weights(r), rng).min(1.0)).collect();
                OpDraw { op: CtOp::ALL[i], magnitudes }
            })
            .collect();
        Policy(ops)
    }

    /// A probe policy: `depth` ops drawn uniformly, every magnitude uniform in `[0, 1)`.
    pub fn probe<R: Rng + ?Sized>(&self, rng: &mut R) -> Policy {
        let ops = (0..self.config.depth)
            .map(|_| {
                let op = CtOp::ALL[rng.random_range(0..CtOp::ALL.len())];
                OpDraw { op, magnitudes: op.bins().iter().map(|_| rng.random::<f32>()).collect() }
            })
            .collect();
        Policy(ops)
    }

    /// Learn from one probe: for each op and parameter of `policy`, the bin `⌊v·bins·0.999⌋` moves towards
    /// `accuracy`: `rate ← decay·rate + (1 − decay)·accuracy`.
    pub fn update(&mut self, policy: &Policy, accuracy: f32) {
        let decay = self.config.decay;
        for draw in &policy.0 {
            for (v, rates) in draw.magnitudes.iter().zip(&mut self.rates[index(draw.op)]) {
                let b = ((v * rates.len() as f32 * 0.999) as usize).min(rates.len() - 1);
                rates[b] = rates[b] * decay + accuracy * (1.0 - decay);
            }
        }
    }

    /// One number per op for logs and plots: the mean over its bins (over its parameters' means for rescale) of
    /// the sampling weights [`CtAugment::weights`], in `(0, 1]`. 1 means every magnitude is still drawn alike; a
    /// lower value means part of the op's range has fallen below the threshold or behind the best bin. Identity
    /// has no parameter and is left out.
    pub fn op_rates(&self) -> Vec<(&'static str, f32)> {
        CtOp::ALL
            .iter()
            .zip(&self.rates)
            .filter(|(op, _)| !op.bins().is_empty())
            .map(|(op, params)| {
                let per_param = params.iter().map(|r| self.weights(r).iter().sum::<f32>() / r.len() as f32);
                (op.name(), per_param.sum::<f32>() / params.len() as f32)
            })
            .collect()
    }
}

/// An index drawn with probability ∝ `w` (non-negative, not all 0).
fn pick<R: Rng + ?Sized>(w: &[f32], rng: &mut R) -> usize {
    let total: f64 = w.iter().map(|&x| x as f64).sum();
    let mut u = rng.random::<f64>() * total;
    for (i, &x) in w.iter().enumerate() {
        if x > 0.0 {
            if u < x as f64 {
                return i;
            }
            u -= x as f64;
        }
    }
    w.iter().rposition(|&x| x > 0.0).expect("some weight is positive")
}

/// How well a probe was still classified: `1 − ½·Σ_c |p_c − 1[c = label]|` (1 for a certain right answer, 0 for
/// a certain wrong one).
pub fn probe_accuracy(probs: &[f32], label: usize) -> f32 {
    let distance: f32 = probs.iter().enumerate().map(|(c, &p)| (p - if c == label { 1.0 } else { 0.0 }).abs()).sum();
    1.0 - 0.5 * distance
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn weights_normalise_threshold_and_sampling_follows_them() {
        let mut cta = CtAugment::new(CtAugmentConfig::default());
        // Rotate's 17 bins: rate 0.99 in bins 3 and 10, 0.79 in bin 5, 0 elsewhere. w = rate + 0.01 → 1, 1, 0.8
        // over a max of 1; bin 5's 0.8 is not below the threshold, the zeros (0.01) are.
        let mut r = vec![0.0; 17];
        r[3] = 0.99;
        r[10] = 0.99;
        r[5] = 0.79;
        cta.set_rates(CtOp::Rotate, vec![r.clone()]);
        let w = cta.weights(&r);
        assert!((w[3] - 1.0).abs() < 1e-6 && (w[10] - 1.0).abs() < 1e-6 && (w[5] - 0.8).abs() < 1e-6);
        assert_eq!(w.iter().filter(|&&x| x > 0.0).count(), 3);

        // Sampling: bins 3, 5, 10 in proportion 1 : 0.8 : 1, i.e. 1/2.8, 0.8/2.8, 1/2.8; no other bin ever.
        let mut counts = [0usize; 17];
        let mut ops = std::collections::HashMap::new();
        let mut g = rng(1);
        let draws = 60_000;
        for _ in 0..draws {
            for d in cta.sample(&mut g).0 {
                *ops.entry(d.op).or_insert(0usize) += 1;
                assert_eq!(d.magnitudes.len(), d.op.bins().len());
                assert!(d.magnitudes.iter().all(|v| (0.0..=1.0).contains(v)));
                if d.op == CtOp::Rotate {
                    counts[(d.magnitudes[0] * 17.0) as usize] += 1;
                }
            }
        }
        let rotate: usize = counts.iter().sum();
        for (b, &n) in counts.iter().enumerate() {
            let want = match b {
                3 | 10 => 1.0 / 2.8,
                5 => 0.8 / 2.8,
                _ => 0.0,
            };
            let got = n as f64 / rotate as f64;
            assert!((got - want).abs() < 0.02, "bin {b}: {got} vs {want}");
            if want == 0.0 {
                assert_eq!(n, 0, "bin {b} is below the threshold");
            }
        }
        // Ops uniform: 2 per policy over 19 ops.
        assert_eq!(ops.len(), 19);
        let expected = 2.0 * draws as f64 / 19.0;
        assert!(ops.values().all(|&n| (n as f64 - expected).abs() < 0.06 * expected), "{ops:?}");
    }

    #[test]
    fn segment_sampling_draws_between_bins_in_proportion_to_their_sums() {
        let mut cta = CtAugment::new(CtAugmentConfig::default());
        // Posterize's 8 bins: only bin 2 passes (w = 1); segments w[1:] + w[:-1] are 1 for segments 1 and 2.
        let mut r = vec![0.0; 8];
        r[2] = 1.0;
        cta.set_rates(CtOp::Posterize, vec![r]);
        let mut g = rng(2);
        let mut seen = [0usize; 7];
        for _ in 0..20_000 {
            for d in cta.sample_segments(&mut g).0 {
                if d.op == CtOp::Posterize {
                    seen[(d.magnitudes[0] * 7.0) as usize] += 1;
                }
            }
        }
        let total: usize = seen.iter().sum();
        assert!(total > 1500);
        assert_eq!(seen[0] + seen[3] + seen[4] + seen[5] + seen[6], 0, "{seen:?}");
        assert!((seen[1] as f64 / total as f64 - 0.5).abs() < 0.04, "{seen:?}");
    }

    #[test]
    fn probes_are_uniform_and_the_update_moves_one_bin() {
        let mut cta = CtAugment::new(CtAugmentConfig::default());
        let mut g = rng(3);
        let p = cta.probe(&mut g);
        assert_eq!(p.0.len(), 2);
        assert!(p.0.iter().all(|d| d.magnitudes.len() == d.op.bins().len()));
        // Probe magnitudes cover [0, 1) evenly: mean near ½ over many draws.
        let all: Vec<f32> = (0..4000).flat_map(|_| cta.probe(&mut g).0).flat_map(|d| d.magnitudes).collect();
        let mean = all.iter().sum::<f32>() / all.len() as f32;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");

        // Update: v = 0.5 on 17 bins → ⌊0.5·17·0.999⌋ = 8; v = 1 → ⌊16.983⌋ = 16; rescale's method v = 0.9 on 6
        // bins → ⌊5.3946⌋ = 5.
        let policy = Policy(vec![
            OpDraw { op: CtOp::Rotate, magnitudes: vec![0.5] },
            OpDraw { op: CtOp::Rescale, magnitudes: vec![1.0, 0.9] },
        ]);
        cta.update(&policy, 0.3);
        // 0.99·1 + 0.01·0.3 = 0.993.
        let rot = &cta.rates(CtOp::Rotate)[0];
        assert_eq!(rot[8], 1.0f32 * 0.99 + 0.3 * (1.0 - 0.99f32));
        assert!((rot[8] - 0.993).abs() < 1e-6);
        assert!(rot.iter().enumerate().all(|(b, &r)| b == 8 || r == 1.0));
        assert!((cta.rates(CtOp::Rescale)[0][16] - 0.993).abs() < 1e-6);
        assert!((cta.rates(CtOp::Rescale)[1][5] - 0.993).abs() < 1e-6);
        cta.update(&policy, 0.3);
        // 0.99·0.993 + 0.003 = 0.98607.
        assert!((cta.rates(CtOp::Rotate)[0][8] - 0.98607).abs() < 1e-6);
    }

    #[test]
    fn op_rates_summarise_the_weights() {
        let mut cta = CtAugment::new(CtAugmentConfig::default());
        let fresh = cta.op_rates();
        assert_eq!(fresh.len(), 18);
        assert!(fresh.iter().all(|&(_, r)| (r - 1.0).abs() < 1e-6));
        // Invert: 16 bins at 1, one at 0 (weight 0.01 → 0): mean 16/17.
        let mut r = vec![1.0; 17];
        r[0] = 0.0;
        cta.set_rates(CtOp::Invert, vec![r]);
        // Rescale: scale all 1 (mean 1); method [0.89, 1, ...]: w = 0.9, 1.01 × 5, over the max 0.9/1.01 = 0.891
        // (kept) and 1 × 5; the op's number is the mean of the two parameters' means.
        cta.set_rates(CtOp::Rescale, vec![vec![1.0; 17], vec![0.89, 1.0, 1.0, 1.0, 1.0, 1.0]]);
        let rates: BTreeMap<_, _> = cta.op_rates().into_iter().collect();
        assert!((rates["invert"] - 16.0 / 17.0).abs() < 1e-6);
        assert!((rates["rescale"] - (1.0 + (0.9 / 1.01 + 5.0) / 6.0) / 2.0).abs() < 1e-6);
        assert!(!rates.contains_key("identity"));
    }

    #[test]
    fn probe_accuracy_is_one_minus_half_the_l1_distance() {
        assert_eq!(probe_accuracy(&[0.0, 1.0, 0.0], 1), 1.0);
        assert_eq!(probe_accuracy(&[1.0, 0.0, 0.0], 1), 0.0);
        // |0.2| + |0.7 − 1| + |0.1| = 0.6 → 0.7.
        assert!((probe_accuracy(&[0.2, 0.7, 0.1], 1) - 0.7).abs() < 1e-6);
    }

    #[test]
    fn state_round_trips_exactly_and_bad_states_are_refused() {
        let mut cta = CtAugment::new(CtAugmentConfig { depth: 3, threshold: 0.7, decay: 0.95 });
        let mut g = rng(4);
        for _ in 0..50 {
            let p = cta.probe(&mut g);
            cta.update(&p, g.random::<f32>());
        }
        let json = serde_json::to_string(&cta).unwrap();
        assert!(json.contains("\"shear_x\":[["), "{json}");
        let back: CtAugment = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cta);
        assert_eq!(back.sample(&mut rng(9)), cta.sample(&mut rng(9)));

        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["rates"]["posterize"] = serde_json::json!([[1.0, 1.0]]);
        let e = serde_json::from_value::<CtAugment>(v.clone()).unwrap_err().to_string();
        assert!(e.contains("posterize"), "{e}");
        v["rates"].as_object_mut().unwrap().remove("posterize");
        assert!(serde_json::from_value::<CtAugment>(v).unwrap_err().to_string().contains("no rates"));
        let c: CtAugmentConfig = serde_yaml::from_str("threshold: 0.5").unwrap();
        assert_eq!(c, CtAugmentConfig { threshold: 0.5, ..Default::default() });
        assert!(serde_yaml::from_str::<CtAugmentConfig>("treshold: 0.5").is_err());
        assert!(CtAugmentConfig { decay: 1.0, ..Default::default() }.validate().is_err());
    }

    #[test]
    fn policies_apply_in_order_and_cutout_can_be_forced() {
        let img = Image::new(1, 4, 4, (0..16).map(|k| k as f32 * 16.0 / 255.0).collect());
        let p = Policy(vec![
            OpDraw { op: CtOp::Invert, magnitudes: vec![1.0] },
            OpDraw { op: CtOp::Brightness, magnitudes: vec![0.0] },
        ]);
        // Invert then ×0.1.
        let out = p.apply(img.clone(), &mut rng(0));
        assert!(out.data.iter().zip(&img.data).all(|(o, x)| (o - 0.1 * (1.0 - x)).abs() < 1e-6));
        let forced = p.with_cutout();
        assert_eq!(forced.0.len(), 3);
        let out = forced.apply(img, &mut rng(0));
        // 1 + ⌊4·0.499⌋ = 2: a 2×2 square at most, at least one pixel.
        let grey = out.data.iter().filter(|&&v| v == 0.5).count();
        assert!((1..=4).contains(&grey), "{grey}");
    }
}
