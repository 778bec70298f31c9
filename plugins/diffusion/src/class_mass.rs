//! Class mass normalisation (Zhu, Ghahramani and Lafferty, 2003) of propagated scores.
//!
//! Diffusion from a few seeds hands a class the mass its seeds reach: seeds in a dense region of the graph take
//! many samples of their neighbours' classes. Dividing each class's column by its total makes the classes'
//! masses equal before the argmax, which is right when the classes are about equally frequent.

use crate::score_block::{column_masses, store_unit_rows};

/// Divides each column of the row-major `n × num_classes` block by its sum over all rows (a column that sums to
/// zero, a class no seed reached, stays zero), then scales each row back to unit L2 norm; rows of zeros stay zero.
pub fn normalise_class_mass(scores: &mut [f32], num_classes: usize) {
    let mass = column_masses(scores, num_classes);
    let scaled: Vec<f64> = scores
        .chunks(num_classes)
        .flat_map(|row| row.iter().zip(&mass).map(|(&v, &m)| if m > 0.0 { v as f64 / m } else { 0.0 }))
        .collect();
    store_unit_rows(scores, &scaled, num_classes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_is_divided_by_its_mass_then_rows_are_unit_length() {
        // Column masses: 0.8 + 0.6 = 1.4 and 0.6 + 0.8 + 1.0 = 2.4; the third class reached no sample.
        let mut s = vec![0.8, 0.6, 0.0, 0.6, 0.8, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        normalise_class_mass(&mut s, 3);
        let (a, b): (f64, f64) = (0.8 / 1.4, 0.6 / 2.4);
        let n = (a * a + b * b).sqrt();
        let expected_0 = [a / n, b / n];
        let (a, b): (f64, f64) = (0.6 / 1.4, 0.8 / 2.4);
        let n = (a * a + b * b).sqrt();
        let expected_1 = [a / n, b / n];
        for (got, want) in s[0..2].iter().zip(expected_0).chain(s[3..5].iter().zip(expected_1)) {
            assert!((*got as f64 - want).abs() < 1e-6, "{got} against {want}");
        }
        assert_eq!(&s[6..], &[0.0, 1.0, 0.0, 0.0, 0.0, 0.0], "a class's own row stays one-hot; zero rows stay zero");
        assert_eq!((s[2], s[5]), (0.0, 0.0));
    }

    #[test]
    fn a_row_can_change_class_when_the_other_class_is_spread_thinner() {
        // Class 0 reaches three samples strongly; class 1 one sample. The shared row leans to class 0 before and
        // to class 1 after, since class 0's mass is larger.
        let mut s = vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.6, 0.55];
        normalise_class_mass(&mut s, 2);
        assert!(s[7] > s[6], "{s:?}");
    }
}
