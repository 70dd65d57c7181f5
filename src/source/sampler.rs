//! Picks the samples the source emits: random rows of the data set (the
//! built-in diabetes data or the user's own, [`Rows`]), or each row once in
//! file order (`source.order`).
//!
//! Deterministic for a fixed seed (the same rows in the same order), random
//! otherwise. With a [`Scenario`] the samples from its `start` on are
//! changed (and drawn from its population, if any). Pure logic: the source
//! actor owns one and handles pacing.

use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::Order;
use crate::core::data::{Dataset, FeatureVector};
use crate::core::ids::IdGenerator;
use crate::core::messages::{Batch, Features, Truth};
use crate::source::own::OwnData;
use crate::source::scenario::Scenario;

/// The rows a sampler picks from.
#[derive(Debug, Clone)]
pub enum Rows {
    /// The built-in diabetes data (sklearn-scaled features).
    Diabetes(&'static Dataset),
    /// The user's own data, in the order of its model's features.
    Own(Arc<OwnData>),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Diabetes(d) => d.len(),
            Rows::Own(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn row(&self, i: usize) -> (FeatureVector, f64) {
        match self {
            Rows::Diabetes(d) => (d.feature_row(i), d.targets[i]),
            Rows::Own(d) => (d.features(i), d.target(i)),
        }
    }
}

/// Draws rows and gives each a fresh id.
pub struct Sampler {
    data: Rows,
    order: Order,
    /// The next row in file order (`Order::Sequential`).
    cursor: usize,
    rng: StdRng,
    ids: IdGenerator,
    scenario: Option<Scenario>,
    /// Samples emitted so far (what the scenario's `start` counts).
    emitted: u64,
}

impl Sampler {
    pub fn new(data: Rows, order: Order, seed: Option<u64>) -> Sampler {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Sampler {
            data,
            order,
            cursor: 0,
            rng,
            ids: IdGenerator::new(),
            scenario: None,
            emitted: 0,
        }
    }

    /// Changes the samples from the scenario's `start` on.
    pub fn with_scenario(mut self, scenario: Option<Scenario>) -> Sampler {
        self.scenario = scenario;
        self
    }

    /// The row index of the next sample (advances the generator, or the
    /// cursor in file order).
    pub fn next_row(&mut self) -> usize {
        match self.order {
            Order::Random => self.rng.random_range(0..self.data.len()),
            Order::Sequential => {
                let i = self.cursor.min(self.data.len() - 1);
                self.cursor += 1;
                i
            }
        }
    }

    /// Samples left before the data is done: the rows not yet taken in
    /// file order; `None` (no end) for random rows.
    pub fn remaining(&self) -> Option<u64> {
        match self.order {
            Order::Random => None,
            Order::Sequential => Some(self.data.len().saturating_sub(self.cursor) as u64),
        }
    }

    /// `n` samples: their features (for the model) and truths (for the metric),
    /// under the same ids.
    pub fn batch(&mut self, n: usize) -> (Batch<Features>, Batch<Truth>) {
        let ids = self.ids.next_ids(n);
        let mut features = Vec::with_capacity(n);
        let mut truths = Vec::with_capacity(n);
        for id in ids {
            let (x, y) = match (&mut self.scenario, &self.data) {
                (Some(s), data) if self.emitted >= s.plan.start => {
                    let row = s.plan.pick_row(&mut self.rng, data.len());
                    match data {
                        Rows::Diabetes(d) => (s.plan.features(*d, row), s.target(d.targets[row])),
                        Rows::Own(d) => (s.plan.features(d.as_ref(), row), s.target(d.target(row))),
                    }
                }
                _ => {
                    let row = self.next_row();
                    self.data.row(row)
                }
            };
            self.emitted += 1;
            features.push(Features { id, x });
            truths.push(Truth { id, y });
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
        let mut a = Sampler::new(Rows::Diabetes(d), Order::Random, Some(7));
        let mut b = Sampler::new(Rows::Diabetes(d), Order::Random, Some(7));
        let ra: Vec<_> = (0..100).map(|_| a.next_row()).collect();
        let rb: Vec<_> = (0..100).map(|_| b.next_row()).collect();
        assert_eq!(ra, rb);
        let mut c = Sampler::new(Rows::Diabetes(d), Order::Random, Some(8));
        let rc: Vec<_> = (0..100).map(|_| c.next_row()).collect();
        assert_ne!(ra, rc);
    }

    #[test]
    fn a_scenario_changes_the_samples_from_its_start_on() {
        use crate::config::scenario::parse_spec;
        use crate::source::scenario::Plan;
        let d = Dataset::embedded();
        let plan = Plan::new(&parse_spec("start=70,bmi+=5,target+=10").unwrap(), d).unwrap();
        let mut plain = Sampler::new(Rows::Diabetes(d), Order::Random, Some(3));
        let mut shifted = Sampler::new(Rows::Diabetes(d), Order::Random, Some(3))
            .with_scenario(Some(Scenario::new(plan, Some(3))));
        // Batches that straddle the start.
        let mut k = 0;
        for n in [50, 50, 20] {
            let (fa, ta) = plain.batch(n);
            let (fb, tb) = shifted.batch(n);
            for i in 0..n {
                let (xa, xb) = (&fa.items[i].x, &fb.items[i].x);
                let (ya, yb) = (ta.items[i].y, tb.items[i].y);
                if k < 70 {
                    assert_eq!((xa, ya), (xb, yb), "sample {k} is before the start");
                } else {
                    assert!((xb[2] - xa[2] - 5.0 / d.scaling.scale[2]).abs() < 1e-12);
                    assert_eq!(yb, ya + 10.0, "sample {k}");
                }
                k += 1;
            }
        }
    }

    #[test]
    fn features_and_truth_share_ids_and_come_from_one_row() {
        let d = Dataset::embedded();
        let mut s = Sampler::new(Rows::Diabetes(d), Order::Random, None);
        let (f, t) = s.batch(50);
        assert_eq!(f.len(), 50);
        for (f, t) in f.items.iter().zip(t.items.iter()) {
            assert_eq!(f.id, t.id);
            let row = (0..d.len()).find(|&i| d.feature_row(i) == f.x).unwrap();
            assert_eq!(d.targets[row], t.y);
        }
    }
}
