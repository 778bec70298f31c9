//! Sinkhorn balancing of propagated scores: the labels of a propagation whose classes are held to equal sizes.
//!
//! Class mass normalisation rescales each class once, and a class whose seeds sit where the graph is hard to reach
//! (Fashion-MNIST's shirts, surrounded by the other tops) still ends with far fewer samples than it has.
//! Alternately rescaling each class to an equal share of the mass and each sample's scores to sum to one
//! (Sinkhorn–Knopp, as the equal-partition pseudo-labels of Asano et al.'s SeLa and Caron et al.'s SwAV) converges
//! to the scores closest to the sharpened ones, in the KL sense, under which every class holds the same mass. It
//! assumes classes of about equal size, as the class mass normalisation does.

use crate::score_block::{column_masses, store_unit_rows};

/// Relative error of the class masses at which the scaling stops.
const TOLERANCE: f64 = 1e-9;
/// The scaling converges geometrically; this bounds it where a class's scores are zero on most samples.
const MAX_ROUNDS: usize = 10_000;

/// Balances the row-major `n × num_classes` block in place: each score raised to `power` (> 1 sharpens), scaled to
/// equal class masses with rows that sum to one, then each row scaled back to unit L2 norm as the other scores are.
/// A row of zeros (no seed reached it) and a column of zeros (a class without seeds) stay zero and take no share.
pub fn balance_sinkhorn(scores: &mut [f32], num_classes: usize, power: f64) {
    let mut p: Vec<f64> = scores.iter().map(|&v| (v.max(0.0) as f64).powf(power)).collect();
    equal_class_masses(&mut p, num_classes);
    store_unit_rows(scores, &p, num_classes);
}

/// Sinkhorn–Knopp on non-negative `p`: afterwards every non-zero row sums to one and every non-zero column to
/// (non-zero rows) / (non-zero columns).
fn equal_class_masses(p: &mut [f64], num_classes: usize) {
    let rows = p.chunks(num_classes).filter(|row| row.iter().any(|&v| v > 0.0)).count();
    let mut mass = column_masses(p, num_classes);
    let columns = mass.iter().filter(|&&m| m > 0.0).count();
    if rows == 0 || columns == 0 {
        return;
    }
    let share = rows as f64 / columns as f64;
    let mut scale = vec![0.0; num_classes];
    for _ in 0..MAX_ROUNDS {
        for (s, m) in scale.iter_mut().zip(&mut mass) {
            *s = if *m > 0.0 { share / *m } else { 0.0 };
            *m = 0.0;
        }
        // The next round's masses are summed in the same pass that rescales the rows.
        for row in p.chunks_mut(num_classes) {
            let sum: f64 = row.iter().zip(&scale).map(|(v, s)| v * s).sum();
            for ((v, s), m) in row.iter_mut().zip(&scale).zip(mass.iter_mut()) {
                *v = if sum > 0.0 { *v * s / sum } else { 0.0 };
                *m += *v;
            }
        }
        if mass.iter().all(|&m| m == 0.0 || (m - share).abs() <= TOLERANCE * share) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(row: [f64; 2]) -> [f64; 2] {
        let n = (row[0] * row[0] + row[1] * row[1]).sqrt();
        [row[0] / n, row[1] / n]
    }

    #[test]
    fn two_samples_of_the_same_class_are_split_between_the_two_classes() {
        // Squared, the scores are K = [[0.81, 0.36], [0.64, 0.09]]. Scaling keeps the cross ratio
        // ρ = K00·K11 / (K01·K10) = 0.31640625, and the balanced 2 × 2 matrix is [[x, 1 − x], [1 − x, x]] with
        // x² / (1 − x)² = ρ: x = √ρ / (1 + √ρ) = 0.5625 / 1.5625 = 0.36. Both rows lean to class 0 before; the
        // first, the weaker for class 0, goes to class 1.
        let mut s = vec![0.9, 0.6, 0.8, 0.3];
        balance_sinkhorn(&mut s, 2, 2.0);
        let expected = [unit([0.36, 0.64]), unit([0.64, 0.36])].concat();
        for (got, want) in s.iter().zip(expected) {
            assert!((*got as f64 - want).abs() < 1e-6, "{s:?}");
        }
    }

    #[test]
    fn classes_end_with_equal_masses_and_rows_sum_to_one() {
        // Class 0 strong everywhere: 40 rows, masses far apart before.
        let mut p: Vec<f64> = (0..40).flat_map(|i| [1.0, 0.1 + 0.02 * i as f64, 0.05 * (i % 7) as f64]).collect();
        equal_class_masses(&mut p, 3);
        for m in column_masses(&p, 3) {
            assert!((m - 40.0 / 3.0).abs() < 1e-6, "{m}");
        }
        for row in p.chunks(3) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn unreached_samples_and_classes_without_seeds_stay_zero() {
        // Rows: two reached, one of zeros. Columns: class 2 has no seed. The two reached rows share the two
        // classes, one each in mass.
        let mut p = vec![0.9, 0.5, 0.0, 0.0, 0.0, 0.0, 0.7, 0.2, 0.0];
        equal_class_masses(&mut p, 3);
        assert_eq!(&p[2..6], &[0.0; 4]);
        assert_eq!(p[8], 0.0);
        let masses = column_masses(&p, 3);
        assert!((masses[0] - 1.0).abs() < 1e-6 && (masses[1] - 1.0).abs() < 1e-6, "{masses:?}");
    }
}
