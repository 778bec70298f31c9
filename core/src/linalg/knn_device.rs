//! Exact k-nearest-neighbour search by inner product on a burn device (a GPU when the run has one), with the same
//! result as [`nearest_neighbours`](super::nearest_neighbours) on the CPU.
//!
//! The rows go to the device once. For each block of query rows the device computes the block's similarities to
//! every row (one matmul) and keeps the best `k + 2` per row (`topk_with_indices`); only those come back, so the
//! device holds O(B·n) floats per block, never n², and the host receives O(B·k). The device's top-k says nothing
//! about which of several equal similarities it keeps, so the host re-ranks by (similarity descending, index
//! ascending), and a row whose `(k + 1)`-th and `(k + 2)`-th similarities are equal, where more rows of that
//! similarity may have been cut off, has its whole similarity row fetched and ranked on the host instead.

use burn::tensor::{Device, Int, Tensor, TensorData, TensorReadError, Transaction, s};

use super::knn::{Neighbours, rank};

/// The similarity block on the device stays under this many bytes (its top-k may need a few times as much).
const BLOCK_BYTES: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DeviceKnnError {
    /// The device failed while computing a block or could not hand its result back.
    #[error("kNN on the device: reading back query rows {start}..{end}: {source}")]
    Read { start: usize, end: usize, source: TensorReadError },
}

/// Query rows per device block for `rows` rows: as many as keep the `B × rows` f32 block under [`BLOCK_BYTES`].
pub fn device_block_rows(rows: usize) -> usize {
    (BLOCK_BYTES / (4 * rows.max(1))).clamp(1, rows.max(1))
}

/// How many blocks [`nearest_neighbours_on_device`] computes for `rows` rows (its progress callback counts them).
pub fn device_knn_blocks(rows: usize) -> u64 {
    rows.div_ceil(device_block_rows(rows)) as u64
}

/// For each row of `x` (`rows × dim`, row-major), the `k` other rows of largest inner product with it, computed on
/// `device`. Ranking, ties and the dropping of the row itself are those of
/// [`nearest_neighbours`](super::nearest_neighbours). `done(b)` is called as `b` more blocks (of
/// [`device_knn_blocks`]) finish. Needs `1 ≤ k < rows`.
pub fn nearest_neighbours_on_device(
    x: &[f32],
    rows: usize,
    dim: usize,
    k: usize,
    device: &Device,
    done: &dyn Fn(u64),
) -> Result<Neighbours, DeviceKnnError> {
    blocked(x, rows, dim, k, device, device_block_rows(rows), done)
}

/// [`nearest_neighbours_on_device`] with `block` query rows per device block (tests force small blocks).
fn blocked(
    x: &[f32],
    rows: usize,
    dim: usize,
    k: usize,
    device: &Device,
    block: usize,
    done: &dyn Fn(u64),
) -> Result<Neighbours, DeviceKnnError> {
    assert_eq!(x.len(), rows * dim, "nearest_neighbours_on_device: {rows} × {dim} needs {} values", rows * dim);
    assert!(k >= 1 && k < rows, "nearest_neighbours_on_device: k = {k} needs 1 ≤ k < rows = {rows}");
    assert!(block >= 1, "nearest_neighbours_on_device: a block needs at least one row");
    let all = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [rows, dim]), device);
    let database = all.clone().transpose();
    // One candidate beyond the k + 1 needed shows whether the cut fell inside a run of equal similarities.
    let fetched = (k + 2).min(rows);
    let mut indices = vec![0u32; rows * k];
    let mut similarities = vec![0.0f32; rows * k];
    for start in (0..rows).step_by(block) {
        let end = (start + block).min(rows);
        let read = |source: TensorReadError| DeviceKnnError::Read { start, end, source };
        let sims = all.clone().slice(s![start..end, ..]).matmul(database.clone());
        let (top_values, top_indices) = sims.clone().topk_with_indices(fetched, 1);
        let (values, ids) = read_pair(top_values, top_indices).map_err(read)?;
        let mut ranked = Vec::with_capacity(end - start);
        let mut cut_in_a_tie = Vec::new();
        for q in 0..end - start {
            let row_values = &values[q * fetched..(q + 1) * fetched];
            // With every row fetched, or a strict drop after the (k + 1)-th, the k + 1 best are exactly these.
            if fetched == rows || row_values[k + 1] < row_values[k] {
                let row_ids = &ids[q * fetched..(q + 1) * fetched];
                let mut best: Vec<(f32, u32)> =
                    row_values[..=k].iter().zip(&row_ids[..=k]).map(|(&v, &j)| (v, j as u32)).collect();
                best.sort_unstable_by(rank);
                ranked.push(best);
            } else {
                cut_in_a_tie.push(q);
                ranked.push(Vec::new());
            }
        }
        if !cut_in_a_tie.is_empty() {
            let picked: Vec<i64> = cut_in_a_tie.iter().map(|&q| q as i64).collect();
            let picked = Tensor::<1, Int>::from_data(TensorData::new(picked, [cut_in_a_tie.len()]), device);
            let full = sims.select(0, picked).try_into_vec_as::<f32>().map_err(read)?;
            for (row, &q) in full.chunks(rows).zip(&cut_in_a_tie) {
                ranked[q] = best_on_host(row, k + 1);
            }
        }
        for (q, best) in ranked.into_iter().enumerate() {
            let row = (start + q) as u32;
            let out = (start + q) * k..(start + q + 1) * k;
            keep_others(&best, row, k, &mut indices[out.clone()], &mut similarities[out]);
        }
        done(1);
    }
    Ok(Neighbours { rows, k, indices, similarities })
}

/// Reads a block's top similarities and their column indices back in one transfer.
fn read_pair(values: Tensor<2>, indices: Tensor<2, Int>) -> Result<(Vec<f32>, Vec<i64>), TensorReadError> {
    let mut data = Transaction::default().register(values).register(indices).try_execute()?.into_iter();
    let (Some(values), Some(indices)) = (data.next(), data.next()) else {
        unreachable!("a transaction returns one data per registered tensor")
    };
    Ok((values.try_cast_as::<f32>()?.try_into_vec()?, indices.try_cast_as::<i64>()?.try_into_vec()?))
}

/// The `count` best (similarity, column) pairs of one full similarity row, ranked.
fn best_on_host(row: &[f32], count: usize) -> Vec<(f32, u32)> {
    let mut all: Vec<(f32, u32)> = row.iter().enumerate().map(|(j, &v)| (v, j as u32)).collect();
    if all.len() > count {
        all.select_nth_unstable_by(count - 1, rank);
        all.truncate(count);
    }
    all.sort_unstable_by(rank);
    all
}

/// Writes the `k` of the ranked `k + 1` that are not `row` itself; when the row is not among them (ties with
/// duplicates), the last is dropped, as on the CPU.
fn keep_others(best: &[(f32, u32)], row: u32, k: usize, indices: &mut [u32], similarities: &mut [f32]) {
    let skip = best.iter().position(|&(_, j)| j == row).unwrap_or(k);
    let kept = best.iter().enumerate().filter(|&(m, _)| m != skip).map(|(_, c)| c);
    for (m, &(s, j)) in kept.enumerate() {
        indices[m] = j;
        similarities[m] = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::{l2_normalise_rows, nearest_neighbours};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_unit_rows(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x: Vec<f32> = (0..rows * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        l2_normalise_rows(&mut x, dim);
        x
    }

    fn assert_same(device: &Neighbours, cpu: &Neighbours) {
        assert_eq!((device.rows, device.k), (cpu.rows, cpu.k));
        for i in 0..cpu.rows {
            assert_eq!(device.indices_of(i), cpu.indices_of(i), "row {i}");
            for (d, c) in device.similarities_of(i).iter().zip(cpu.similarities_of(i)) {
                assert!((d - c).abs() < 1e-5, "row {i}: {d} on the device, {c} on the CPU");
            }
        }
    }

    #[test]
    fn device_knn_equals_the_cpu_knn_across_ragged_blocks() {
        let (rows, dim, k) = (700, 16, 10);
        let x = random_unit_rows(rows, dim, 11);
        let cpu = nearest_neighbours(&x, rows, dim, k, &|_| {});
        // 700 = 5 × 128 + 60: six blocks, the last one ragged.
        let blocks = std::cell::Cell::new(0);
        let device = blocked(&x, rows, dim, k, &Device::flex(), 128, &|b| blocks.set(blocks.get() + b)).unwrap();
        assert_eq!(blocks.get(), 6);
        assert_same(&device, &cpu);
    }

    #[test]
    fn duplicate_rows_tie_in_index_order_as_on_the_cpu() {
        // Groups of identical rows make runs of equal similarities longer than k + 2, so the device's cut falls
        // inside them and those rows are ranked from their full similarity row.
        let (distinct, copies, dim, k) = (40, 7, 8, 5);
        let base = random_unit_rows(distinct, dim, 3);
        // Copies are interleaved (row r is base row r % distinct) so tied indices are not contiguous.
        let rows = distinct * copies;
        let x: Vec<f32> =
            (0..rows).flat_map(|r| base[(r % distinct) * dim..(r % distinct + 1) * dim].to_vec()).collect();
        let cpu = nearest_neighbours(&x, rows, dim, k, &|_| {});
        let device = blocked(&x, rows, dim, k, &Device::flex(), 64, &|_| {}).unwrap();
        assert_same(&device, &cpu);
        // Row 3's copies are rows 43, 83, ...: its neighbours are the lowest-indexed of them, itself excluded.
        assert_eq!(device.indices_of(3), &[43, 83, 123, 163, 203]);
        assert_eq!(device.indices_of(83), &[3, 43, 123, 163, 203]);
    }

    #[test]
    fn the_cpu_tie_cases_hold_on_the_device() {
        // The CPU module's own tie cases: equal similarities go to the lower index, and a row absent from its own
        // k + 1 best drops the last of them.
        let x = [1.0f32, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, -1.0, 0.0];
        let nn = nearest_neighbours_on_device(&x, 6, 2, 2, &Device::flex(), &|_| {}).unwrap();
        assert_eq!(nn, nearest_neighbours(&x, 6, 2, 2, &|_| {}));
        assert_eq!((nn.indices_of(0), nn.indices_of(3), nn.indices_of(5)), (&[1, 2][..], &[0, 1][..], &[1, 2][..]));
        // k = rows − 1: every row is fetched, nothing can be cut off.
        let nn = blocked(&x, 6, 2, 5, &Device::flex(), 4, &|_| {}).unwrap();
        assert_eq!(nn, nearest_neighbours(&x, 6, 2, 5, &|_| {}));
    }

    #[test]
    fn blocks_stay_under_the_memory_bound() {
        for rows in [1, 10, 50_000, 1_000_000, 100_000_000] {
            let b = device_block_rows(rows);
            assert!(b >= 1 && b <= rows);
            assert!(b == 1 || b * rows * 4 <= BLOCK_BYTES, "{rows} rows: {b} per block");
        }
        assert_eq!(device_knn_blocks(50_000), 50_000u64.div_ceil(device_block_rows(50_000) as u64));
    }
}
