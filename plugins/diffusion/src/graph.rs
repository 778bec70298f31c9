//! The diffusion graph: kNN edges weighted, symmetrised (`W + Wᵀ`, weights of mutual edges add up), without
//! self-loops, then normalised symmetrically, `D^-1/2 W D^-1/2` with D the degrees (`docs/method.md` §3).

use rayon::prelude::*;
use relab_core::linalg::Neighbours;

use crate::Weights;
use crate::csr::Csr;

/// The normalised affinity matrix and the samples without any edge weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub normalised: Csr,
    /// Rows whose degree is 0 (every edge weighed 0): diffusion never reaches them.
    pub isolated: usize,
}

/// The weight of the edge to a neighbour of similarity `s`; `norms` are the two endpoints' squared lengths (1 for
/// unit vectors), used by the L2 weights.
pub fn edge_weight(weights: Weights, gamma: f64, s: f32, norms: (f32, f32)) -> f32 {
    let base = match weights {
        Weights::Cosine => (s.max(0.0)) as f64,
        Weights::L2 => (norms.0 as f64 + norms.1 as f64 - 2.0 * s as f64).max(0.0),
    };
    // Whole powers (γ = 3 by default) by multiplication: several times faster than `powf` over millions of edges.
    if gamma.fract() == 0.0 && gamma <= 16.0 { base.powi(gamma as i32) as f32 } else { base.powf(gamma) as f32 }
}

/// Builds the normalised graph of `nn` (neighbours of `x`'s rows; `squared_norms` per row).
pub fn build(nn: &Neighbours, squared_norms: &[f32], weights: Weights, gamma: f64) -> Graph {
    let (n, k) = (nn.rows, nn.k);
    // Each row's outgoing edges, sorted by column.
    let outgoing: Vec<Vec<(u32, f32)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut edges: Vec<(u32, f32)> = nn
                .indices_of(i)
                .iter()
                .zip(nn.similarities_of(i))
                .filter(|&(&j, _)| j as usize != i)
                .map(|(&j, &s)| (j, edge_weight(weights, gamma, s, (squared_norms[i], squared_norms[j as usize]))))
                .collect();
            edges.sort_unstable_by_key(|e| e.0);
            edges
        })
        .collect();
    // The transposed edges, grouped by target; filled in source order, so each group is sorted by column.
    let mut incoming_start = vec![0usize; n + 1];
    for &j in &nn.indices {
        incoming_start[j as usize + 1] += 1;
    }
    for i in 0..n {
        incoming_start[i + 1] += incoming_start[i];
    }
    let mut fill = incoming_start.clone();
    let mut incoming = vec![(0u32, 0.0f32); n * k];
    for (i, edges) in outgoing.iter().enumerate() {
        for &(j, w) in edges {
            incoming[fill[j as usize]] = (i as u32, w);
            fill[j as usize] += 1;
        }
    }
    // W + Wᵀ row by row: merge the two sorted lists, adding the weights of an edge present both ways.
    let rows: Vec<Vec<(u32, f32)>> =
        (0..n).into_par_iter().map(|i| merge(&outgoing[i], &incoming[incoming_start[i]..fill[i]])).collect();
    drop(outgoing);
    drop(incoming);
    let degrees: Vec<f64> = rows.par_iter().map(|row| row.iter().map(|&(_, w)| w as f64).sum()).collect();
    let isolated = degrees.iter().filter(|&&d| d == 0.0).count();
    // A zero degree counts as 1, as the original: the row stays zero.
    let inv_sqrt: Vec<f64> = degrees.iter().map(|&d| if d == 0.0 { 1.0 } else { 1.0 / d.sqrt() }).collect();
    let mut row_start = Vec::with_capacity(n + 1);
    row_start.push(0);
    for row in &rows {
        row_start.push(row_start.last().copied().unwrap_or(0) + row.len());
    }
    let nnz = row_start[n];
    let mut cols = Vec::with_capacity(nnz);
    let mut values = Vec::with_capacity(nnz);
    for (i, row) in rows.iter().enumerate() {
        for &(j, w) in row {
            cols.push(j);
            values.push((w as f64 * inv_sqrt[i] * inv_sqrt[j as usize]) as f32);
        }
    }
    Graph { normalised: Csr { n, row_start, cols, values }, isolated }
}

fn merge(a: &[(u32, f32)], b: &[(u32, f32)]) -> Vec<(u32, f32)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut x, mut y) = (0, 0);
    while x < a.len() || y < b.len() {
        let take_a = y == b.len() || (x < a.len() && a[x].0 <= b[y].0);
        let take_b = x == a.len() || (y < b.len() && b[y].0 <= a[x].0);
        let col = if take_a { a[x].0 } else { b[y].0 };
        let mut w = 0.0f32;
        if take_a {
            w += a[x].1;
            x += 1;
        }
        if take_b {
            w += b[y].1;
            y += 1;
        }
        out.push((col, w));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::linalg::nearest_neighbours;

    /// Six unit vectors at angles 0°, 10°, 20° and 180°, 190°, 230°: two groups.
    fn toy() -> Vec<f32> {
        [0.0f32, 10.0, 20.0, 180.0, 190.0, 230.0]
            .iter()
            .flat_map(|deg| {
                let r = deg.to_radians();
                [r.cos(), r.sin()]
            })
            .collect()
    }

    fn cos_deg(d: f64) -> f64 {
        d.to_radians().cos()
    }

    #[test]
    fn six_points_with_known_weights_in_both_modes() {
        let x = toy();
        let nn = nearest_neighbours(&x, 6, 2, 2, &|_| {});
        // Each group's points pick the other two of their group (1's two are both 10° away).
        let sets: Vec<Vec<u32>> = (0..6)
            .map(|i| {
                let mut s = nn.indices_of(i).to_vec();
                s.sort();
                s
            })
            .collect();
        assert_eq!(sets, vec![vec![1, 2], vec![0, 2], vec![0, 1], vec![4, 5], vec![3, 5], vec![3, 4]]);
        for (weights, w) in [
            (Weights::Cosine, Box::new(|deg: f64| cos_deg(deg).powi(3)) as Box<dyn Fn(f64) -> f64>),
            (Weights::L2, Box::new(|deg: f64| (2.0 - 2.0 * cos_deg(deg)).powi(3))),
        ] {
            let g = build(&nn, &[1.0; 6], weights, 3.0);
            // Every edge here is mutual, so W = 2 × the one-way weights.
            let raw = |a: usize, b: usize| {
                let angles = [0.0, 10.0, 20.0, 180.0, 190.0, 230.0];
                2.0 * w(f64::abs(angles[a] - angles[b]))
            };
            let groups = [[0, 1, 2], [3, 4, 5]];
            let degree = |i: usize| {
                let group = groups.iter().find(|g| g.contains(&i)).unwrap();
                group.iter().filter(|&&j| j != i).map(|&j| raw(i, j)).sum::<f64>()
            };
            let dense = g.normalised.to_dense();
            for i in 0..6 {
                for j in 0..6 {
                    let same = groups.iter().any(|g| g.contains(&i) && g.contains(&j));
                    let want = if same && i != j { raw(i, j) / (degree(i) * degree(j)).sqrt() } else { 0.0 };
                    assert!(
                        (dense[i * 6 + j] - want).abs() < 1e-5,
                        "{weights:?} W[{i},{j}] = {} ≠ {want}",
                        dense[i * 6 + j]
                    );
                }
            }
            assert_eq!(g.isolated, 0);
            assert_eq!(g.normalised.nnz(), 12);
        }
    }

    #[test]
    fn one_way_edges_are_symmetrised_and_mutual_ones_add() {
        // Points on a line (unnormalised inner products): 0 and 1 pick each other, 2 picks 1 but 1 does not pick 2.
        let x = [1.0f32, 0.0, 0.96, 0.28, 0.6, 0.8];
        let nn = nearest_neighbours(&x, 3, 2, 1, &|_| {});
        assert_eq!(nn.indices, vec![1, 0, 1]);
        let g = build(&nn, &[1.0; 3], Weights::Cosine, 1.0);
        let dense = g.normalised.to_dense();
        // Raw W: (0,1) = (1,0) = 2 · 0.96; (1,2) = (2,1) = 0.96·0.6 + 0.28·0.8 = 0.8.
        let (w01, w12) = (1.92f64, 0.8f64);
        let d = [w01, w01 + w12, w12];
        assert!((dense[1] - w01 / (d[0] * d[1]).sqrt()).abs() < 1e-6);
        assert!((dense[5] - w12 / (d[1] * d[2]).sqrt()).abs() < 1e-6);
        assert!((dense[7] - dense[5]).abs() < 1e-7 && dense[2] == 0.0 && dense[0] == 0.0);
    }

    #[test]
    fn negative_similarities_weigh_nothing_and_leave_a_sample_isolated() {
        // Sample 2 points away from both others: its only neighbour has cosine −1 → weight 0.
        let x = [1.0f32, 0.0, 1.0, 0.0, -1.0, 0.0];
        let nn = nearest_neighbours(&x, 3, 2, 1, &|_| {});
        let g = build(&nn, &[1.0; 3], Weights::Cosine, 3.0);
        assert_eq!(g.isolated, 1);
        assert!(g.normalised.row(2).1.iter().all(|&v| v == 0.0));
    }
}
