//! The order of an epoch's images: `steps` batches, each `B` labelled images then `μB` unlabelled ones. With 40 to
//! 500 labels an epoch over the labelled set would be a handful of steps, so an epoch is a fixed number of steps and
//! both streams are drawn in shuffled passes, as many as the epoch needs (kek's repeated labelled list, TF's
//! repeated streams): every labelled index appears once per pass, and no unlabelled image twice before the pool is
//! exhausted. Each epoch starts fresh passes.
use rand::Rng;
use rand::seq::SliceRandom;

/// The makeup of one step's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `B`.
    pub labeled: usize,
    /// `μB`.
    pub unlabeled: usize,
}

impl Layout {
    /// Images the loader puts in one batch: `B + μB`.
    pub fn batch_size(&self) -> usize {
        self.labeled + self.unlabeled
    }

    /// `steps` batches of `labeled` indices then indices of the unlabelled pool `0..pool`.
    pub fn epoch_order<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        labeled: &[usize],
        pool: usize,
        steps: usize,
    ) -> Vec<usize> {
        let x = passes(rng, labeled, steps * self.labeled);
        let all: Vec<usize> = (0..pool).collect();
        let u = passes(rng, &all, steps * self.unlabeled);
        let mut order = Vec::with_capacity(steps * self.batch_size());
        for (xs, us) in x.chunks_exact(self.labeled.max(1)).zip(u.chunks_exact(self.unlabeled.max(1))).take(steps) {
            order.extend_from_slice(xs);
            order.extend_from_slice(us);
        }
        order
    }
}

/// The first `n` items of shuffled passes over `items`.
fn passes<R: Rng + ?Sized>(rng: &mut R, items: &[usize], n: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(n + items.len());
    while out.len() < n && !items.is_empty() {
        let mut pass = items.to_vec();
        pass.shuffle(rng);
        out.extend(pass);
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn batches_of_labelled_then_unlabelled_in_balanced_passes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let layout = Layout { labeled: 4, unlabeled: 6 };
        let labeled = [3, 7, 11];
        let order = layout.epoch_order(&mut rng, &labeled, 20, 3);
        assert_eq!(order.len(), 30);
        let (mut x, mut u) = (Vec::new(), Vec::new());
        for batch in order.chunks(10) {
            assert!(batch[..4].iter().all(|i| labeled.contains(i)), "{batch:?}");
            x.extend_from_slice(&batch[..4]);
            u.extend_from_slice(&batch[4..]);
        }
        // 12 labelled draws are 4 whole passes over the 3 labels.
        for pass in x.chunks(3) {
            let mut p = pass.to_vec();
            p.sort();
            assert_eq!(p, labeled);
        }
        // 18 unlabelled draws from a pool of 20: all distinct, the labelled images included in the pool.
        let mut seen = u.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 18);
        assert!(u.iter().all(|&i| i < 20));
        // More draws than the pool: a second pass begins after the first is exhausted.
        let order = Layout { labeled: 1, unlabeled: 4 }.epoch_order(&mut rng, &[0], 6, 3);
        let u: Vec<usize> = order.chunks(5).flat_map(|b| b[1..].to_vec()).collect();
        let mut first = u[..6].to_vec();
        first.sort();
        assert_eq!(first, (0..6).collect::<Vec<_>>());
    }
}
