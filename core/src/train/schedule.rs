//! Learning-rate schedules as pure functions of the position in training.
//!
//! One configurable shape covers the method's phases: a constant rate (phase 2b, ReMixMatch), multi-step decay
//! (iMix: milestones [2000, 3000] by epoch; PL: [100, 150] and [250, 350]) and a linear ramp-up by optimiser step,
//! alone or combined. In YAML:
//!
//! ```yaml
//! lr: 0.1
//! milestones: [2000, 3000]   # optional; the rate is multiplied by gamma at and after each
//! gamma: 0.1
//! milestones_in: epoch       # or step
//! warmup_steps: 0            # optional linear ramp-up from 0 over this many optimiser steps
//! ```
use serde::{Deserialize, Serialize};

/// What milestones count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    #[default]
    Epoch,
    Step,
}

/// A learning-rate schedule: `lr · γ^(milestones passed) · ramp(step)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrSchedule {
    /// The base learning rate.
    pub lr: f64,
    /// Epochs (or steps, see `milestones_in`) at which the rate is multiplied by `gamma`, in increasing order.
    pub milestones: Vec<u64>,
    pub gamma: f64,
    pub milestones_in: Unit,
    /// Linear ramp-up: the rate is scaled by `min(step / warmup_steps, 1)`; 0 for none.
    pub warmup_steps: u64,
}

impl Default for LrSchedule {
    fn default() -> Self {
        LrSchedule::constant(0.1)
    }
}

impl LrSchedule {
    pub fn constant(lr: f64) -> Self {
        LrSchedule { lr, milestones: Vec::new(), gamma: 0.1, milestones_in: Unit::Epoch, warmup_steps: 0 }
    }

    /// PyTorch's `MultiStepLR(milestones, gamma)`, counting epochs.
    pub fn multi_step(lr: f64, milestones: &[u64], gamma: f64) -> Self {
        LrSchedule { milestones: milestones.to_vec(), gamma, ..LrSchedule::constant(lr) }
    }

    pub fn with_warmup(mut self, steps: u64) -> Self {
        self.warmup_steps = steps;
        self
    }

    pub fn with_milestones_in(mut self, unit: Unit) -> Self {
        self.milestones_in = unit;
        self
    }

    /// Why the schedule is unusable, if it is.
    pub fn check(&self) -> Result<(), String> {
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(format!("lr must be a finite number ≥ 0, found {}", self.lr));
        }
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return Err(format!("gamma must be a finite number > 0, found {}", self.gamma));
        }
        if self.milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("milestones must be strictly increasing, found {:?}", self.milestones));
        }
        Ok(())
    }

    /// The rate for the optimiser step `step` (0-based, counted over the whole run) in epoch `epoch`. The caller
    /// fixes the epoch convention: iMix steps its `MultiStepLR` after each 0-based epoch, so pass the 0-based epoch
    /// (0.1 up to epoch 1999, 0.01 from 2000); ReLaB's PL steps it at the start of each 1-based epoch, so pass
    /// the 1-based epoch (0.1 for 1–249, 0.01 from 250).
    pub fn lr(&self, epoch: u64, step: u64) -> f64 {
        let t = match self.milestones_in {
            Unit::Epoch => epoch,
            Unit::Step => step,
        };
        self.lr * multi_step_factor(&self.milestones, self.gamma, t) * linear_ramp(step, self.warmup_steps)
    }
}

/// `γ^k` with `k` the number of milestones `≤ t`: at a milestone the decayed rate already applies, as in PyTorch's
/// `MultiStepLR` (`bisect_right`). The factor is a running product, as PyTorch's chained form computes it.
pub fn multi_step_factor(milestones: &[u64], gamma: f64, t: u64) -> f64 {
    milestones.iter().filter(|&&m| m <= t).fold(1.0, |f, _| f * gamma)
}

/// `clip(t / length, 0, 1)`; 1 when `length` is 0. This is also ReMixMatch's weight ramp (method §6.2:
/// `clip(samples seen / (1024·1024), 0, 1)`), with `t` the steps (or samples) done before this one.
pub fn linear_ramp(t: u64, length: u64) -> f64 {
    if length == 0 { 1.0 } else { (t as f64 / length as f64).min(1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn multi_step_decays_exactly_at_each_milestone() {
        let s = LrSchedule::multi_step(0.1, &[2000, 3000], 0.1);
        assert_eq!(s.lr(0, 0), 0.1);
        assert_eq!(s.lr(1999, 10_000_000), 0.1);
        assert!(close(s.lr(2000, 0), 0.01));
        assert!(close(s.lr(2999, 0), 0.01));
        assert!(close(s.lr(3000, 0), 0.001));
        assert!(close(s.lr(3999, 0), 0.001));
        // PL run 2, 1-based epochs: 0.1 for 1–249, 0.01 for 250–349, 0.001 from 350.
        let pl = LrSchedule::multi_step(0.1, &[250, 350], 0.1);
        assert_eq!(pl.lr(249, 0), 0.1);
        assert!(close(pl.lr(250, 0), 0.01) && close(pl.lr(349, 0), 0.01) && close(pl.lr(350, 0), 0.001));
        let by_step = LrSchedule::multi_step(1.0, &[5], 0.5).with_milestones_in(Unit::Step);
        assert_eq!((by_step.lr(100, 4), by_step.lr(0, 5)), (1.0, 0.5));
    }

    #[test]
    fn constant_and_ramp_and_their_combination() {
        let c = LrSchedule::constant(0.002);
        assert_eq!((c.lr(0, 0), c.lr(1000, 262_143)), (0.002, 0.002));
        let r = LrSchedule::constant(0.1).with_warmup(10);
        assert_eq!(r.lr(0, 0), 0.0);
        assert!(close(r.lr(0, 5), 0.05));
        assert!(close(r.lr(0, 9), 0.09));
        assert_eq!((r.lr(0, 10), r.lr(3, 11)), (0.1, 0.1));
        let both = LrSchedule::multi_step(0.1, &[2], 0.1).with_warmup(100);
        assert!(close(both.lr(2, 50), 0.005));
        assert_eq!(linear_ramp(16_384, 16_384), 1.0);
        assert_eq!(linear_ramp(8_192, 16_384), 0.5);
        assert_eq!(linear_ramp(7, 0), 1.0);
    }

    #[test]
    fn configured_from_yaml_with_unknown_keys_refused() {
        let s: LrSchedule = serde_yaml::from_str("lr: 0.1\nmilestones: [100, 150]\n").unwrap();
        assert_eq!(s, LrSchedule::multi_step(0.1, &[100, 150], 0.1));
        let s: LrSchedule = serde_yaml::from_str("lr: 0.5\nmilestones_in: step\nwarmup_steps: 3").unwrap();
        assert_eq!(s, LrSchedule::constant(0.5).with_milestones_in(Unit::Step).with_warmup(3));
        let err = serde_yaml::from_str::<LrSchedule>("lr: 0.1\nmilestone: [1]").unwrap_err().to_string();
        assert!(err.contains("unknown field `milestone`"), "{err}");
        assert!(LrSchedule::multi_step(0.1, &[3, 3], 0.1).check().is_err());
        assert!(LrSchedule { gamma: 0.0, ..LrSchedule::default() }.check().is_err());
        assert!(LrSchedule::constant(f64::NAN).check().is_err());
        assert!(LrSchedule::default().check().is_ok());
    }
}
