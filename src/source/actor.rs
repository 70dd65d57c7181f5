//! FeatureSource: plays the client. Emits random rows at `rate` samples/s
//! (0 = as fast as downstream accepts), `count` of them (0 = forever), the
//! features to the model and the truth, under the same ids, to the metric.
//!
//! At most `max_in_flight` batches are on their way at once, and a batch is
//! only done when every recipient has handled it (downstream actors answer
//! after forwarding), so mailboxes stay bounded and memory does not grow with
//! the length of the run, whatever the rate.

use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::stream::{FuturesUnordered, StreamExt};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::config::SourceSettings;
use crate::core::actor::fatal_dead_actor;
use crate::core::fanout::Fanout;
use crate::core::messages::{Batch, Features, Truth};
use crate::source::sampler::Sampler;

/// What the source did, reported when it stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceReport {
    pub emitted: u64,
    pub elapsed: Duration,
}

/// The source actor. Its loop runs from `started` until `count` is reached or
/// the stop token is cancelled, then reports on `done`.
pub struct FeatureSource {
    run: Option<SourceRun>,
}

struct SourceRun {
    sampler: Sampler,
    features: Fanout<Batch<Features>>,
    truths: Fanout<Batch<Truth>>,
    settings: SourceSettings,
    stop: CancellationToken,
    done: oneshot::Sender<SourceReport>,
    /// `modelwatch_samples_emitted_total`.
    counter: Counter,
}

impl FeatureSource {
    pub fn new(
        sampler: Sampler,
        features: Fanout<Batch<Features>>,
        truths: Fanout<Batch<Truth>>,
        settings: SourceSettings,
        stop: CancellationToken,
        done: oneshot::Sender<SourceReport>,
        counter: Counter,
    ) -> FeatureSource {
        FeatureSource {
            run: Some(SourceRun {
                sampler,
                features,
                truths,
                settings,
                stop,
                done,
                counter,
            }),
        }
    }
}

impl Actor for FeatureSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(run) = self.run.take() {
            ctx.spawn(run.run().into_actor(self));
        }
    }
}

impl SourceRun {
    async fn run(mut self) {
        let started = Instant::now();
        let s = &self.settings;
        let mut emitted: u64 = 0;
        let mut in_flight = FuturesUnordered::new();
        tracing::info!(
            count = s.count,
            rate = s.rate,
            seed = ?s.seed,
            batch_size = s.batch_size,
            "source started"
        );
        loop {
            if self.stop.is_cancelled() || (s.count > 0 && emitted >= s.count) {
                break;
            }
            let mut n = s.batch_size as u64;
            if s.rate > 0.0 {
                let due = (started.elapsed().as_secs_f64() * s.rate) as u64 + 1;
                if due <= emitted {
                    let next = started + Duration::from_secs_f64(emitted as f64 / s.rate);
                    tokio::select! {
                        _ = self.stop.cancelled() => {}
                        _ = tokio::time::sleep_until(next.into()) => {}
                    }
                    continue;
                }
                n = n.min(due - emitted);
            }
            if s.count > 0 {
                n = n.min(s.count - emitted);
            }
            match self.sampler.remaining() {
                Some(0) => break, // every row once: done
                Some(left) => n = n.min(left),
                None => {}
            }
            while in_flight.len() >= s.max_in_flight {
                if let Some(Err(e)) = in_flight.next().await {
                    fatal_dead_actor("source", e);
                }
            }
            let (features, truths) = self.sampler.batch(n as usize);
            let f = self.features.send(features);
            let t = self.truths.send(truths);
            in_flight.push(async move {
                let (a, b) = futures::join!(f, t);
                a.and(b)
            });
            emitted += n;
            self.counter.inc_by(n);
        }
        while let Some(r) = in_flight.next().await {
            if let Err(e) = r {
                fatal_dead_actor("source", e);
            }
        }
        let report = SourceReport {
            emitted,
            elapsed: started.elapsed(),
        };
        tracing::info!(
            emitted,
            secs = report.elapsed.as_secs_f64(),
            "source finished"
        );
        let _ = self.done.send(report);
    }
}

/// The source never stops itself (its loop has no failure to recover from);
/// should anything stop it, the loop ends with the context and the run ends
/// without a report, which the pipeline treats as an error.
impl Supervised for FeatureSource {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::error!("source actor was stopped; its run cannot resume");
    }
}
