//! [`BatchPlan`]: the data order as a pure function of (seed, step), so a resumed run draws
//! exactly the batches an uninterrupted one would, with no generator state to save.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Epoch-wise shuffled batches over `len` samples: sample position `p = step · batch + k`
/// belongs to epoch `p / len` and is element `p % len` of that epoch's permutation (ChaCha8
/// seeded with the run seed, stream = epoch). Batches run across epoch boundaries.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    len: usize,
    batch: usize,
    seed: u64,
    cache: std::cell::RefCell<Option<(usize, Vec<usize>)>>,
}

impl BatchPlan {
    /// A plan over `len` samples, `batch` per step.
    ///
    /// # Panics
    ///
    /// If `len` or `batch` is 0.
    pub fn new(len: usize, batch: usize, seed: u64) -> Self {
        assert!(len > 0 && batch > 0, "a non-empty plan");
        Self { len, batch, seed, cache: Default::default() }
    }

    /// The permutation of `epoch`.
    pub fn permutation(&self, epoch: usize) -> Vec<usize> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(epoch as u64);
        let mut order: Vec<usize> = (0..self.len).collect();
        order.shuffle(&mut rng);
        order
    }

    /// Sample indices of `step` and, if `flips`, a fair coin per sample (ChaCha8, seed + 1,
    /// stream = step).
    pub fn batch(&self, step: usize, flips: bool) -> (Vec<usize>, Vec<bool>) {
        let mut indices = Vec::with_capacity(self.batch);
        for k in 0..self.batch {
            let p = step * self.batch + k;
            let epoch = p / self.len;
            let mut cache = self.cache.borrow_mut();
            if cache.as_ref().is_none_or(|(e, _)| *e != epoch) {
                *cache = Some((epoch, self.permutation(epoch)));
            }
            indices.push(cache.as_ref().expect("filled").1[p % self.len]);
        }
        let coins = if flips {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_add(1));
            rng.set_stream(step as u64);
            (0..self.batch).map(|_| rng.random::<bool>()).collect()
        } else {
            vec![false; self.batch]
        };
        (indices, coins)
    }

    /// Epoch of the first sample of `step` (for reports).
    pub fn epoch(&self, step: usize) -> usize {
        step * self.batch / self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_once_per_epoch_and_reproducible() {
        let plan = BatchPlan::new(10, 4, 7);
        let first: Vec<usize> = (0..5).flat_map(|s| plan.batch(s, false).0).collect(); // 20 = 2 epochs
        let mut e0 = first[..10].to_vec();
        e0.sort();
        assert_eq!(e0, (0..10).collect::<Vec<_>>());
        assert_ne!(first[..10], first[10..], "epochs are reshuffled");
        let again = BatchPlan::new(10, 4, 7);
        assert_eq!(again.batch(3, true), plan.batch(3, true));
        assert_ne!(BatchPlan::new(10, 4, 8).batch(0, false), plan.batch(0, false));
    }
}
