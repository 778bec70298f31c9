//! The selection rule of phase 2b (`docs/method.md` §4), as a pure function: seeds first, then every other
//! candidate by ascending mean loss; walk that list and keep the first `per_class` samples of each class.

use std::collections::HashSet;

use relab_core::artifact::LabeledSet;
use serde::Serialize;

/// A training sample the selector may keep: its index, the label it carries (its propagated label) and its loss
/// averaged over the tracked epochs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub index: usize,
    pub label: u32,
    pub mean_loss: f64,
}

/// A class that had fewer candidates than its quota: all of them were kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shortfall {
    pub class: u32,
    pub kept: usize,
    pub quota: usize,
}

/// The kept samples, class-major (class 0's in rank order, then class 1's, ...: the order of the original's
/// `subset_*.npz`), and the classes that could not fill their quota.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub subset: LabeledSet,
    pub shortfalls: Vec<Shortfall>,
}

/// Ranks `seeds` (in their order, with their own labels) ahead of `others` (by ascending mean loss, ties by index),
/// drops repeated indices after their first appearance, and keeps the first `per_class` samples of each of the
/// `num_classes` classes.
///
/// A class short of candidates keeps what it has and is reported, where the original fills the gap with
/// training index 0 (bug B5 of `docs/method.md` §10).
pub fn select(seeds: &LabeledSet, others: &[Candidate], num_classes: usize, per_class: usize) -> Selection {
    let mut ranked: Vec<&Candidate> = others.iter().collect();
    ranked.sort_by(|a, b| a.mean_loss.total_cmp(&b.mean_loss).then(a.index.cmp(&b.index)));
    let seeds_first = seeds.indices.iter().zip(&seeds.labels).map(|(&index, &label)| (index, label));
    let order = seeds_first.chain(ranked.into_iter().map(|c| (c.index, c.label)));

    let mut seen = HashSet::new();
    let mut kept: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    for (index, label) in order {
        if !seen.insert(index) {
            continue;
        }
        let class = &mut kept[label as usize];
        if class.len() < per_class {
            class.push(index);
        }
    }

    let shortfalls = kept
        .iter()
        .enumerate()
        .filter(|(_, k)| k.len() < per_class)
        .map(|(c, k)| Shortfall { class: c as u32, kept: k.len(), quota: per_class })
        .collect();
    let labels = kept.iter().enumerate().flat_map(|(c, k)| std::iter::repeat_n(c as u32, k.len())).collect();
    let indices = kept.into_iter().flatten().collect();
    Selection { subset: LabeledSet::new(indices, labels), shortfalls }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: usize, label: u32, mean_loss: f64) -> Candidate {
        Candidate { index, label, mean_loss }
    }

    #[test]
    fn lowest_mean_loss_first_within_each_class_class_major() {
        let others = [c(0, 1, 0.9), c(1, 0, 0.5), c(2, 1, 0.1), c(3, 0, 0.2), c(4, 0, 0.7), c(5, 1, 0.4)];
        let s = select(&LabeledSet::default(), &others, 2, 2);
        assert_eq!(s.subset.indices, vec![3, 1, 2, 5]);
        assert_eq!(s.subset.labels, vec![0, 0, 1, 1]);
        assert!(s.shortfalls.is_empty());
    }

    #[test]
    fn seeds_come_first_with_their_own_labels_and_are_not_repeated() {
        // Seed 4 (true class 1) has the highest loss and a wrong propagated label (0); it still leads class 1.
        let seeds = LabeledSet::new(vec![4, 6], vec![1, 0]);
        let others = [c(0, 1, 0.1), c(1, 1, 0.2), c(2, 0, 0.3), c(4, 0, 9.0), c(6, 0, 8.0), c(7, 0, 0.05)];
        let s = select(&seeds, &others, 2, 2);
        assert_eq!(s.subset.indices, vec![6, 7, 4, 0]);
        assert_eq!(s.subset.labels, vec![0, 0, 1, 1]);
        // The quota counts seeds: with one slot per class, only the seeds stay.
        let s = select(&seeds, &others, 2, 1);
        assert_eq!((s.subset.indices, s.subset.labels), (vec![6, 4], vec![0, 1]));
    }

    #[test]
    fn ties_are_broken_by_index() {
        let others = [c(9, 0, 0.5), c(2, 0, 0.5), c(5, 0, 0.5)];
        assert_eq!(select(&LabeledSet::default(), &others, 1, 2).subset.indices, vec![2, 5]);
    }

    #[test]
    fn a_class_short_of_its_quota_keeps_what_it_has_and_an_empty_class_is_reported() {
        let seeds = LabeledSet::new(vec![0], vec![0]);
        let others = [c(1, 0, 0.3), c(2, 0, 0.1), c(3, 0, 0.2), c(4, 1, 0.4)];
        let s = select(&seeds, &others, 3, 3);
        assert_eq!(s.subset.indices, vec![0, 2, 3, 4], "no index is repeated to fill a gap");
        assert_eq!(s.subset.labels, vec![0, 0, 0, 1]);
        assert_eq!(
            s.shortfalls,
            vec![Shortfall { class: 1, kept: 1, quota: 3 }, Shortfall { class: 2, kept: 0, quota: 3 }]
        );
    }
}
