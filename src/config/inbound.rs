//! `[inbound]`: the consumers that feed this process's roles from RabbitMQ
//! when `roles` leaves some out (the split layout).
//!
//! Each role reads a durable work queue bound to the exchange (processes of
//! one role share it); malformed messages go to the dead-letter exchange
//! with the reason; every queue is bounded by `queue_max_length`. With
//! `legacy` (or `--legacy-inbound`) the model and metric read the queues of
//! the original Python services instead ([`InboundSettings::resolve_legacy`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Role;
use super::{amqp_name, duration_in, in_range, Check, ConfigError, HOUR};
use crate::core::messages::Kind;

/// The RabbitMQ queue type of the work queues (`x-queue-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueType {
    /// One node's queue (RabbitMQ's default).
    Classic,
    /// A Raft-replicated queue: durable, it survives the loss of a minority
    /// of a cluster's nodes; RabbitMQ's recommended type for data safety.
    Quorum,
}

impl QueueType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        }
    }
}

/// Consumers that feed local actors from RabbitMQ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundSettings {
    /// Read what the original Python services publish: the model and metric
    /// work queues become their queues `features`, `y_true` and `y_pred`
    /// (whatever the three queue keys say).
    pub legacy: bool,
    /// Unacknowledged deliveries per consumer.
    pub prefetch: u16,
    /// Most deliveries handed to an actor as one batch.
    pub batch_size: usize,
    /// Larger message bodies are dead-lettered.
    pub max_body_bytes: usize,
    /// Larger batch bodies (several samples, `bridge.batch`) are
    /// dead-lettered whole, unread; each of its samples is held to
    /// `max_body_bytes`. (A body is received whole before it is measured:
    /// what a consumer holds is bounded by `prefetch` and the broker's
    /// `max_message_size`.)
    pub max_batch_bytes: usize,
    /// Work queue of the model role (bound to `features`); model processes share it.
    pub model_queue: String,
    /// Work queues of the metric role (bound to `y_true` and `y_pred`).
    pub metric_truth_queue: String,
    pub metric_prediction_queue: String,
    /// Work queue of the plot role (bound to `metrics`).
    pub plot_queue: String,
    /// The monitor's features (it runs with the metric role; features for
    /// its drift tests come from this queue when the source runs elsewhere).
    pub monitor_features_queue: String,
    /// The monitor's features with a classifier's probabilities (bound to
    /// `scored`), in place of `monitor_features_queue` when the model is
    /// a classifier of the user's own data and runs elsewhere.
    pub monitor_scored_queue: String,
    /// Where malformed messages go, with the reason in the `x-reject-reason` header.
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    /// Length bound of the work queues and the dead-letter queue; a work
    /// queue past it dead-letters its oldest message (reason `maxlen`).
    pub queue_max_length: u32,
    /// The type of the work queues and the dead-letter queue: `classic`,
    /// or `quorum` (replicated over a RabbitMQ cluster's nodes).
    pub queue_type: QueueType,
    /// Longest wait at shutdown for in-flight inbound work before closing.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for InboundSettings {
    fn default() -> Self {
        InboundSettings {
            legacy: false,
            prefetch: 1000,
            batch_size: 250,
            max_body_bytes: 65_536,
            max_batch_bytes: 1 << 20,
            model_queue: "ml_pipeline.model".into(),
            metric_truth_queue: "ml_pipeline.metric.y_true".into(),
            metric_prediction_queue: "ml_pipeline.metric.y_pred".into(),
            plot_queue: "ml_pipeline.plot".into(),
            monitor_features_queue: "ml_pipeline.monitor.features".into(),
            monitor_scored_queue: "ml_pipeline.monitor.scored".into(),
            dead_letter_exchange: "ml_pipeline.dlx".into(),
            dead_letter_queue: "ml_pipeline.dlq".into(),
            queue_max_length: 1_000_000,
            queue_type: QueueType::Classic,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl InboundSettings {
    /// With `legacy` on, the model and metric work queues become the
    /// original services' queues, named after their routing keys. Run once
    /// every source (file, environment, flags) is applied.
    pub(super) fn resolve_legacy(&mut self) {
        if self.legacy {
            self.model_queue = Kind::Features.routing_key().into();
            self.metric_truth_queue = Kind::YTrue.routing_key().into();
            self.metric_prediction_queue = Kind::YPred.routing_key().into();
        }
    }
}

impl InboundSettings {
    /// The deliveries a consumer asks the broker for (`basic.qos`): with
    /// batch messages (`bridge.batch`) `prefetch` counts samples, so
    /// `prefetch / batch_max` messages of up to `batch_max` samples (at
    /// least 2); else `prefetch` messages. What a consumer holds unacked
    /// (a stopped model worker, say) stays about `prefetch` samples either
    /// way: with 1,000 messages of 512 samples a paused worker would hold
    /// 512,000 samples whose truths the metric's join, of
    /// `metric.max_pending` ids, could not keep waiting.
    pub fn prefetch_for(&self, bridge: &super::BridgeSettings) -> u16 {
        match bridge.batch {
            true => (self.prefetch as usize)
                .div_ceil(bridge.batch_max)
                .clamp(2, u16::MAX as usize) as u16,
            false => self.prefetch,
        }
    }

    /// The key whose value is queue `name`, for messages (the first that
    /// matches; `inbound.model_queue` for an unknown name).
    pub fn queue_key(&self, name: &str) -> &'static str {
        self.work_queues_all()
            .into_iter()
            .find(|(_, n, _)| *n == name)
            .map_or("inbound.model_queue", |(k, _, _)| k)
    }

    fn work_queues_all(&self) -> [(&'static str, &str, Kind); 6] {
        [
            ("inbound.model_queue", &self.model_queue, Kind::Features),
            (
                "inbound.metric_truth_queue",
                &self.metric_truth_queue,
                Kind::YTrue,
            ),
            (
                "inbound.metric_prediction_queue",
                &self.metric_prediction_queue,
                Kind::YPred,
            ),
            ("inbound.plot_queue", &self.plot_queue, Kind::Metrics),
            (
                "inbound.monitor_features_queue",
                &self.monitor_features_queue,
                Kind::Features,
            ),
            (
                "inbound.monitor_scored_queue",
                &self.monitor_scored_queue,
                Kind::Scored,
            ),
        ]
    }

    /// Does the model of a process running `roles` forward the features
    /// it consumes to `monitor_features_queue`? With `legacy` it reads the
    /// Python services' queue `features`, which no monitor sees; so it does
    /// when it takes its features from RabbitMQ and the monitor is on.
    pub fn forwards_features(&self, roles: &[Role], monitor: bool) -> bool {
        self.legacy && monitor && roles.contains(&Role::Model) && !roles.contains(&Role::Features)
    }

    /// Does the monitor of a process running `roles` read
    /// `monitor_scored_queue`? When the model is a classifier that runs
    /// elsewhere: the monitor needs its probabilities with the features
    /// (in one process it takes them from the model).
    pub fn monitor_reads_scored(roles: &[Role], monitor: bool, classifier: bool) -> bool {
        monitor && classifier && roles.contains(&Role::Metric) && !roles.contains(&Role::Model)
    }

    /// The work queues a process running `roles` consumes (key, name,
    /// routing key): a local role's input whose producer runs elsewhere,
    /// as the pipeline wires its consumers; and the monitor's queue when
    /// the model forwards features to it ([`Self::forwards_features`]).
    /// The monitor of a `classifier` takes its features with the
    /// probabilities from the model ([`Self::monitor_reads_scored`]).
    pub fn work_queues(
        &self,
        roles: &[Role],
        monitor: bool,
        classifier: bool,
    ) -> Vec<(&'static str, &str, Kind)> {
        let runs = |r| roles.contains(&r);
        let [model, truth, prediction, plot, monitor_features, monitor_scored] =
            self.work_queues_all();
        if Self::monitor_reads_scored(roles, monitor, classifier) {
            let mut out = self.work_queues(roles, false, false);
            out.push(monitor_scored);
            return out;
        }
        let mut out = Vec::new();
        if runs(Role::Model) && !runs(Role::Features) {
            out.push(model);
        }
        if runs(Role::Metric) && !runs(Role::Features) {
            out.push(truth);
        }
        if runs(Role::Metric) && !runs(Role::Model) {
            out.push(prediction);
        }
        if runs(Role::Plot) && !runs(Role::Metric) {
            out.push(plot);
        }
        // The model's forwarded features go there too: declared by the
        // model's process as well, so none is lost when it starts first.
        // (A classifier's monitor takes the model's scored features.)
        if (monitor && !classifier && runs(Role::Metric) && !runs(Role::Features))
            || self.forwards_features(roles, monitor)
        {
            out.push(monitor_features);
        }
        out
    }
}

impl Check for InboundSettings {
    fn check(&self) -> Result<(), ConfigError> {
        in_range("inbound.prefetch", self.prefetch as usize, 1, 65_535)?;
        in_range("inbound.batch_size", self.batch_size, 1, 65_536)?;
        in_range("inbound.max_body_bytes", self.max_body_bytes, 64, 128 << 20)?;
        in_range(
            "inbound.max_batch_bytes",
            self.max_batch_bytes,
            64,
            128 << 20,
        )?;
        for (key, name) in [
            ("inbound.model_queue", &self.model_queue),
            ("inbound.metric_truth_queue", &self.metric_truth_queue),
            (
                "inbound.metric_prediction_queue",
                &self.metric_prediction_queue,
            ),
            ("inbound.plot_queue", &self.plot_queue),
            (
                "inbound.monitor_features_queue",
                &self.monitor_features_queue,
            ),
            ("inbound.monitor_scored_queue", &self.monitor_scored_queue),
            ("inbound.dead_letter_exchange", &self.dead_letter_exchange),
            ("inbound.dead_letter_queue", &self.dead_letter_queue),
        ] {
            amqp_name(key, name)?;
        }
        // Two roles' queues of one name would take each other's messages.
        let queues = self.work_queues_all();
        for (i, (key, name, _)) in queues.iter().enumerate() {
            if let Some((other, _, _)) = queues[..i].iter().find(|(_, n, _)| n == name) {
                return Err(ConfigError::invalid(
                    key,
                    format!("is the same queue as {other}; every work queue needs its own name"),
                ));
            }
        }
        in_range(
            "inbound.queue_max_length",
            self.queue_max_length as usize,
            1,
            100_000_000,
        )?;
        duration_in(
            "inbound.shutdown_timeout",
            self.shutdown_timeout,
            Duration::ZERO,
            HOUR,
        )
    }
}
