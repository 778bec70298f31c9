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

    pub fn save(&self, path: &Path) -> Result<()> {
        npy::write_f32(path, &[self.rows, self.dim], &self.values)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let (shape, values) = npy::read_f32(path)?;
        match shape[..] {
            [rows, dim] => Ok(Features { rows, dim, values }),
            _ => Err(Error::format(path, format!("features must be a 2-D array (N × D), found shape {shape:?}"))),
        }
    }
}
