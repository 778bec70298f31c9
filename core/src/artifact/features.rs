//! One feature vector per training image (`features.npy`), checked to have columns and finite values.

use std::path::Path;

use crate::formats::npy;
use crate::{Error, Result};

/// One feature vector per training image: `rows × dim`, row-major `f32` (`features.npy`).
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub rows: usize,
    pub dim: usize,
    pub values: Vec<f32>,
}

impl Features {
    pub fn new(rows: usize, dim: usize, values: Vec<f32>) -> Self {
        assert_eq!(values.len(), rows * dim, "features: {rows} × {dim} needs {} values", rows * dim);
        Features { rows, dim, values }
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// Why these features cannot be propagated over: no columns, or a NaN or infinite value (the first is named).
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.dim == 0 {
            return Err(format!(
                "the features have zero columns ({} × 0); each image needs a feature vector",
                self.rows
            ));
        }
        if let Some(i) = self.values.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "the features hold {} at row {}, column {}; every value must be finite",
                self.values[i],
                i / self.dim,
                i % self.dim
            ));
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        npy::write_f32(path, &[self.rows, self.dim], &self.values)
    }

    /// Reads `features.npy` (f32, N × D), refusing what [`Features::check`] refuses with the file named.
    pub fn load(path: &Path) -> Result<Self> {
        let (shape, values) = npy::read_f32(path)?;
        let features = match shape[..] {
            [rows, dim] => Features { rows, dim, values },
            _ => {
                return Err(Error::format(
                    path,
                    format!("features must be a 2-D array (N × D), found shape {shape:?}"),
                ));
            }
        };
        features.check().map_err(|why| Error::format(path, why))?;
        Ok(features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_without_columns_or_with_non_finite_values_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.npy");
        npy::write_f32(&path, &[3, 0], &[]).unwrap();
        let err = Features::load(&path).unwrap_err().to_string();
        assert!(err.contains("f.npy") && err.contains("zero columns (3 × 0)"), "{err}");
        for (bad, text) in [(f32::NAN, "NaN"), (f32::NEG_INFINITY, "-inf")] {
            npy::write_f32(&path, &[2, 2], &[0.0, 1.0, 2.0, bad]).unwrap();
            let err = Features::load(&path).unwrap_err().to_string();
            assert!(err.contains("f.npy") && err.contains(&format!("{text} at row 1, column 1")), "{err}");
        }
        npy::write_f32(&path, &[2, 2], &[0.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(Features::load(&path).unwrap().row(1), [2.0, 3.0]);
    }
}
