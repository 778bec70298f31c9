//! The two steps every class balance of propagated scores shares, on the row-major `n × num_classes` block: the
//! classes' masses, and the balanced values written back as rows of unit L2 norm as the unbalanced scores are.

/// Each column's sum over all rows.
pub(crate) fn column_masses<T: Copy + Into<f64>>(block: &[T], num_classes: usize) -> Vec<f64> {
    let mut mass = vec![0.0; num_classes];
    for row in block.chunks(num_classes) {
        for (m, &v) in mass.iter_mut().zip(row) {
            *m += v.into();
        }
    }
    mass
}

/// Writes each row of `values` into `scores` scaled to unit L2 norm; a row of zeros stays zero.
pub(crate) fn store_unit_rows(scores: &mut [f32], values: &[f64], num_classes: usize) {
    for (row, balanced) in scores.chunks_mut(num_classes).zip(values.chunks(num_classes)) {
        let norm = balanced.iter().map(|v| v * v).sum::<f64>().sqrt();
        for (out, &v) in row.iter_mut().zip(balanced) {
            *out = if norm > 0.0 { (v / norm) as f32 } else { 0.0 };
        }
    }
}
