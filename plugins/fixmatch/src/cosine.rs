//! FixMatch's learning rate, `η_k = η₀·cos(7πk/(16K))` with `k` the steps taken and `K` the run's steps (method
//! §6b.2), and the form core's training loop can run.
//!
//! Core's [`LrSchedule`] has no cosine: its only decaying shape is `η₀·γ^(milestones passed)`. The loop takes its
//! rate from that schedule, so the cosine is followed as a staircase of step milestones: level `j` (rate `η₀·γʲ`)
//! starts at the first step where the cosine falls to `η₀·γ^(j−½)`, which keeps the staircase within a factor
//! `γ^(±½)` of the cosine at every step. `γ = 1 − 7/K`, at most 0.99 (0.5 % off the curve) and at least 0.5, is
//! about the steepest per-step drop of the cosine (at `k = K` it falls by `6.9/K` per step), so no two levels
//! share a step from `K ≈ 700` on; below that the levels are pushed one step apart and lag the curve a little.
use std::f64::consts::PI;

use relab_core::train::LrSchedule;
use relab_core::train::schedule::Unit;

/// `η₀·cos(7π·min(k, K)/(16K))`.
pub fn cosine_lr(lr: f64, step: u64, total: u64) -> f64 {
    let k = step.min(total) as f64;
    lr * (7.0 * PI * k / (16.0 * total.max(1) as f64)).cos()
}

/// The factor between two levels of the staircase for a run of `total` steps.
pub fn staircase_gamma(total: u64) -> f64 {
    (1.0 - 7.0 / total.max(1) as f64).clamp(0.5, 0.99)
}

/// The cosine of a run of `total` steps as core's schedule: milestones counted in steps, factor
/// [`staircase_gamma`].
pub fn cosine_schedule(lr: f64, total: u64) -> LrSchedule {
    let gamma = staircase_gamma(total);
    let scale = 16.0 * total.max(1) as f64 / (7.0 * PI);
    let mut milestones: Vec<u64> = Vec::new();
    for j in 1.. {
        let level = gamma.powf(j as f64 - 0.5);
        // The cosine's last value, at k = K, is cos(7π/16) ≈ 0.195: a lower level is never reached.
        if level < (7.0 * PI / 16.0).cos() {
            break;
        }
        let at = (scale * level.acos()).ceil() as u64;
        let at = milestones.last().map_or(at, |&last| at.max(last + 1));
        if at >= total {
            break;
        }
        milestones.push(at);
    }
    LrSchedule::multi_step(lr, &milestones, gamma).with_milestones_in(Unit::Step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_values_by_hand() {
        assert_eq!(cosine_lr(0.03, 0, 100), 0.03);
        // k = K/2: cos(7π/32) = 0.773010453…; k = K: cos(7π/16) = 0.195090322…; clipped beyond K.
        assert!((cosine_lr(0.03, 50, 100) - 0.03 * 0.773_010_453_362_736_9).abs() < 1e-15);
        assert!((cosine_lr(0.03, 100, 100) - 0.03 * 0.195_090_322_016_128_3).abs() < 1e-15);
        assert_eq!(cosine_lr(0.03, 250, 100), cosine_lr(0.03, 100, 100));
        assert!((cosine_lr(1.0, 1 << 19, 1 << 20) - 0.773_010_453_362_736_9).abs() < 1e-15);
    }

    #[test]
    fn the_staircase_stays_within_half_a_level_of_the_cosine() {
        for total in [700u64, 1000, 4000, 1 << 14] {
            let gamma = staircase_gamma(total);
            let s = cosine_schedule(0.03, total);
            assert!(s.check().is_ok());
            for k in 0..total {
                let ratio = s.lr(0, k) / cosine_lr(0.03, k, total);
                assert!(
                    ratio <= gamma.powf(-0.5) + 1e-12 && ratio >= gamma.powf(0.5) - 1e-12,
                    "K = {total}, step {k}: staircase/cosine = {ratio}"
                );
            }
            // The last step is near η₀·cos(7π/16).
            let end = s.lr(0, total - 1) / 0.03;
            assert!((end - 0.195).abs() < 0.01, "K = {total}: {end}");
        }
        assert_eq!(staircase_gamma(1000), 0.99);
        assert!((staircase_gamma(100) - 0.93).abs() < 1e-12);
        // A short run still decays monotonically, from η₀ down to near the cosine's end.
        let s = cosine_schedule(1.0, 20);
        let rates: Vec<f64> = (0..20).map(|k| s.lr(0, k)).collect();
        assert_eq!(rates[0], 1.0);
        assert!(rates.windows(2).all(|w| w[1] <= w[0]), "{rates:?}");
        assert!(rates[19] < 0.4 && rates[19] > 0.15, "{rates:?}");
    }
}
