//! The images the selector trains on and ranks: all training images (the method), or, for quick runs, a seeded
//! random sample of them plus every seed.

use rand::Rng;
use rand::seq::index;

/// Ascending training indices: `0..n` when `sample` is `None` or covers the set; otherwise `sample` indices
/// drawn without replacement from the non-seed images, with every seed added.
pub fn training_pool<R: Rng + ?Sized>(n: usize, seeds: &[usize], sample: Option<usize>, rng: &mut R) -> Vec<usize> {
    let mut is_seed = vec![false; n];
    for &s in seeds {
        is_seed[s] = true;
    }
    let others: Vec<usize> = (0..n).filter(|&i| !is_seed[i]).collect();
    let Some(sample) = sample.filter(|&s| s < others.len()) else {
        return (0..n).collect();
    };
    let mut pool: Vec<usize> = index::sample(rng, others.len(), sample).into_iter().map(|k| others[k]).collect();
    pool.extend(seeds.iter().copied().filter(|&s| s < n));
    pool.sort_unstable();
    pool.dedup();
    pool
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn everything_without_a_sample_or_when_the_sample_covers_the_set() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(training_pool(5, &[3], None, &mut rng), vec![0, 1, 2, 3, 4]);
        assert_eq!(training_pool(5, &[3], Some(4), &mut rng), vec![0, 1, 2, 3, 4]);
        assert_eq!(training_pool(5, &[3], Some(100), &mut rng), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_sample_draws_that_many_non_seed_images_plus_every_seed_reproducibly() {
        let seeds = [7, 2, 40];
        let draw = |seed| training_pool(50, &seeds, Some(10), &mut ChaCha8Rng::seed_from_u64(seed));
        let pool = draw(3);
        assert_eq!(pool.len(), 13);
        assert!(pool.windows(2).all(|w| w[0] < w[1]), "ascending, no repeats: {pool:?}");
        assert!(seeds.iter().all(|s| pool.contains(s)));
        assert_eq!(pool, draw(3));
        assert_ne!(pool, draw(4));
    }
}
