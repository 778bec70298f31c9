//! Interoperability with the original ReLaB code's files (see `data.md`, "Original ReLaB artifacts"):
//!
//! - `labels_seed<S>_<spc>spc_<dataset>.npz`: key `arr_0`, a float32 `N × C` one-hot matrix of the propagated label
//!   of every training image;
//! - `subset_seed<S>_<spc>spc_<boot>c_<dataset>.npz`: key `arr_0`, an int64 vector of the reliable subset's indices,
//!   class-major (class 0's indices, then class 1's, ...).
//!
//! Reading accepts any float (or integer) `N × C` labels matrix and takes the argmax of each row; writing produces
//! exactly what the original writes.
use std::path::Path;

use super::{LabeledSet, Propagation};
use crate::formats::npz::{self, NpyArray};
use crate::{Error, Result};

/// Reads a `labels_*.npz` file into a [`Propagation`] (scores = the stored matrix, labels = row argmax).
pub fn read_labels(path: &Path) -> Result<Propagation> {
    let (shape, scores) = match npz::read(path)? {
        NpyArray::F32 { shape, data } => (shape, data),
        NpyArray::I64 { shape, data } => (shape, data.into_iter().map(|v| v as f32).collect()),
    };
    let [_, c] = shape[..] else {
        return Err(Error::format(
            path,
            format!("expected an N × C label matrix under `arr_0`, found shape {shape:?}"),
        ));
    };
    if c == 0 {
        return Err(Error::format(path, "the label matrix has no class columns (shape N × 0)"));
    }
    if let Some(i) = scores.iter().position(|v| !v.is_finite()) {
        let what = scores[i];
        return Err(Error::format(path, format!("the label matrix holds {what} (row {}, class {})", i / c, i % c)));
    }
    Ok(Propagation::from_scores(c, scores))
}

/// Writes `propagation` as a `labels_*.npz` file: the one-hot matrix of its hard labels, float32, key `arr_0`.
pub fn write_labels(path: &Path, propagation: &Propagation) -> Result<()> {
    let c = propagation.num_classes;
    let mut one_hot = vec![0f32; propagation.len() * c];
    for (i, &l) in propagation.labels.iter().enumerate() {
        if l as usize >= c {
            return Err(Error::format(path, format!("label {l} of sample {i} is outside 0..{c}")));
        }
        one_hot[i * c + l as usize] = 1.0;
    }
    let arr = NpyArray::F32 { shape: vec![propagation.len(), c], data: one_hot };
    npz::write(path, &[(npz::DEFAULT_KEY, &arr)])
}

/// Reads a `subset_*.npz` file: the indices under `arr_0` (an integer vector; a `C × boot` matrix is read row by
/// row), in their stored class-major order.
pub fn read_subset(path: &Path) -> Result<Vec<usize>> {
    let (shape, data) = match npz::read(path)? {
        NpyArray::I64 { shape, data } => (shape, data),
        NpyArray::F32 { .. } => {
            return Err(Error::format(path, "expected an integer index vector under `arr_0`, found a float array"));
        }
    };
    if shape.len() > 2 || shape.is_empty() {
        return Err(Error::format(path, format!("expected a 1-D index vector under `arr_0`, found shape {shape:?}")));
    }
    data.into_iter()
        .map(|i| usize::try_from(i).map_err(|_| Error::format(path, format!("negative index {i} in the subset"))))
        .collect()
}

/// Reads a subset and labels pair from the original code as a [`LabeledSet`]: the subset's indices, each labelled
/// with its row's argmax in the labels matrix.
pub fn read_reliable_set(subset_path: &Path, labels_path: &Path) -> Result<LabeledSet> {
    let labels = read_labels(labels_path)?;
    let indices = read_subset(subset_path)?;
    let mut out = Vec::with_capacity(indices.len());
    for &i in &indices {
        let Some(&l) = labels.labels.get(i) else {
            return Err(Error::format(
                subset_path,
                format!("index {i} is outside the {} rows of {}", labels.len(), labels_path.display()),
            ));
        };
        out.push(l);
    }
    Ok(LabeledSet::new(indices, out))
}

/// Writes `set` as a `subset_*.npz` file: int64 indices under `arr_0`, ordered class-major (by label, and within a
/// label in the set's own order).
pub fn write_subset(path: &Path, set: &LabeledSet) -> Result<()> {
    let mut order: Vec<usize> = (0..set.len()).collect();
    order.sort_by_key(|&k| set.labels[k]); // stable: keeps the given order inside a class
    let data = order
        .into_iter()
        .map(|k| {
            i64::try_from(set.indices[k])
                .map_err(|_| Error::format(path, format!("index {} does not fit in int64", set.indices[k])))
        })
        .collect::<Result<Vec<_>>>()?;
    let arr = NpyArray::I64 { shape: vec![data.len()], data };
    npz::write(path, &[(npz::DEFAULT_KEY, &arr)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_one_hot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed1/labels_seed1_4spc_cifar10.npz");
        let prop = Propagation::from_scores(3, vec![0.1, 0.7, 0.2, 0.9, 0.05, 0.05, 0.3, 0.3, 0.4, 0.0, 0.0, 0.0]);
        write_labels(&path, &prop).unwrap();
        let back = read_labels(&path).unwrap();
        assert_eq!(back.num_classes, 3);
        assert_eq!(back.labels, prop.labels);
        assert_eq!(back.labels, vec![1, 0, 2, 0]);
        assert_eq!(back.scores, vec![0., 1., 0., 1., 0., 0., 0., 0., 1., 1., 0., 0.]);
        // What numpy sees: float32, (4, 3), under arr_0.
        match npz::read(&path).unwrap() {
            NpyArray::F32 { shape, .. } => assert_eq!(shape, vec![4, 3]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn labels_accept_soft_scores_and_reject_bad_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let soft = dir.path().join("soft.npz");
        let arr = NpyArray::F32 { shape: vec![2, 2], data: vec![0.2, 0.8, 0.6, 0.4] };
        npz::write(&soft, &[("arr_0", &arr)]).unwrap();
        let p = read_labels(&soft).unwrap();
        assert_eq!(p.labels, vec![1, 0]);
        assert_eq!(p.scores, vec![0.2, 0.8, 0.6, 0.4]);

        let flat = dir.path().join("flat.npz");
        npz::write(&flat, &[("arr_0", &NpyArray::F32 { shape: vec![4], data: vec![0.0; 4] })]).unwrap();
        assert!(read_labels(&flat).unwrap_err().to_string().contains("N × C"));
        for (bad, text) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf"), (f32::NEG_INFINITY, "-inf")] {
            let arr = NpyArray::F32 { shape: vec![2, 2], data: vec![0.2, 0.8, bad, 0.4] };
            npz::write(&soft, &[("arr_0", &arr)]).unwrap();
            let err = read_labels(&soft).unwrap_err().to_string();
            assert!(err.contains("soft.npz") && err.contains(&format!("holds {text} (row 1, class 0)")), "{err}");
        }
        assert!(read_subset(&flat).unwrap_err().to_string().contains("float"));
    }

    #[test]
    fn subset_round_trip_is_class_major() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subset_seed1_4spc_2c_cifar10.npz");
        let set = LabeledSet::new(vec![10, 3, 7, 42, 5, 8], vec![2, 0, 2, 0, 1, 0]);
        write_subset(&path, &set).unwrap();
        assert_eq!(read_subset(&path).unwrap(), vec![3, 42, 8, 5, 10, 7]);
        assert_eq!(npz::read(&path).unwrap().descr(), "<i8");

        let neg = dir.path().join("neg.npz");
        npz::write(&neg, &[("arr_0", &NpyArray::I64 { shape: vec![2], data: vec![1, -1] })]).unwrap();
        assert!(read_subset(&neg).unwrap_err().to_string().contains("negative"));
    }

    #[test]
    fn reliable_set_from_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let labels = dir.path().join("labels.npz");
        let subset = dir.path().join("subset.npz");
        let prop = Propagation::from_scores(2, vec![1., 0., 0., 1., 0., 1., 1., 0.]);
        write_labels(&labels, &prop).unwrap();
        write_subset(&subset, &LabeledSet::new(vec![3, 1, 0, 2], vec![0, 1, 0, 1])).unwrap();
        let set = read_reliable_set(&subset, &labels).unwrap();
        assert_eq!(set, LabeledSet::new(vec![3, 0, 1, 2], vec![0, 0, 1, 1]));

        write_subset(&subset, &LabeledSet::new(vec![9], vec![0])).unwrap();
        assert!(read_reliable_set(&subset, &labels).unwrap_err().to_string().contains("outside"));
    }
}
