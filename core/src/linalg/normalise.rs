use rayon::prelude::*;

/// Scales every row of `x` (`dim` values each) to unit Euclidean length; a row shorter than 1e-12 is divided by
/// 1e-12 instead, as `faiss.normalize_L2` / `F.normalize` leave zero rows at zero.
pub fn l2_normalise_rows(x: &mut [f32], dim: usize) {
    assert!(dim > 0 && x.len().is_multiple_of(dim), "l2_normalise_rows: {} values are not rows of {dim}", x.len());
    x.par_chunks_mut(dim).for_each(|row| {
        let norm = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v = (*v as f64 / norm) as f32);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_get_unit_length_and_zero_rows_stay_zero() {
        let mut x = [3.0f32, 4.0, 0.0, 0.0, -2.0, 0.0];
        super::l2_normalise_rows(&mut x, 2);
        assert_eq!(x, [0.6, 0.8, 0.0, 0.0, -1.0, 0.0]);
    }
}
