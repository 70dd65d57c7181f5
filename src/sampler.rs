//! Picks the samples the source emits: random rows of the data set.
//!
//! Deterministic for a fixed seed (the same rows in the same order), random
//! otherwise. Pure logic: the source actor owns one and handles pacing.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::data::Dataset;
use crate::ids::IdGenerator;
use crate::messages::{Batch, Features, Truth};

/// Draws random rows and gives each a fresh id.
pub struct Sampler {
    data: &'static Dataset,
    rng: StdRng,
    ids: IdGenerator,
}

impl Sampler {
    pub fn new(data: &'static Dataset, seed: Option<u64>) -> Sampler {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Sampler {
            data,
            rng,
            ids: IdGenerator::new(),
        }
    }

    /// The row index of the next sample (advances the generator).
    pub fn next_row(&mut self) -> usize {
        self.rng.random_range(0..self.data.len())
    }

    /// `n` samples: their features (for the model) and truths (for the metric),
    /// under the same ids.
    pub fn batch(&mut self, n: usize) -> (Batch<Features>, Batch<Truth>) {
        let ids = self.ids.next_ids(n);
        let mut features = Vec::with_capacity(n);
        let mut truths = Vec::with_capacity(n);
        for id in ids {
            let row = self.next_row();
            features.push(Features {
                id,
                x: self.data.feature_row(row),
            });
            truths.push(Truth {
                id,
                y: self.data.targets[row],
            });
        }
        let now = Instant::now();
        (Batch::new(features, now), Batch::new(truths, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_rows() {
        let d = Dataset::embedded();
        let mut a = Sampler::new(d, Some(7));
        let mut b = Sampler::new(d, Some(7));
        let ra: Vec<_> = (0..100).map(|_| a.next_row()).collect();
        let rb: Vec<_> = (0..100).map(|_| b.next_row()).collect();
        assert_eq!(ra, rb);
        let mut c = Sampler::new(d, Some(8));
        let rc: Vec<_> = (0..100).map(|_| c.next_row()).collect();
        assert_ne!(ra, rc);
    }

    #[test]
    fn features_and_truth_share_ids_and_come_from_one_row() {
        let d = Dataset::embedded();
        let mut s = Sampler::new(d, None);
        let (f, t) = s.batch(50);
        assert_eq!(f.len(), 50);
        for (f, t) in f.items.iter().zip(t.items.iter()) {
            assert_eq!(f.id, t.id);
            let row = (0..d.len()).find(|&i| d.feature_row(i) == f.x).unwrap();
            assert_eq!(d.targets[row], t.y);
        }
    }
}
