//! The end of a run: wait for the source's count, a drain or a metric
//! that gave up; then drain in order (inbound consumers, the metric's
//! files, the last plot, the monitor, the broker's confirms) and report
//! what was not done ([`RunReport::shortfall`]).

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::start::Actors;
use crate::amqp::{Bridge, BridgeReport};
use crate::config::Settings;
use crate::core::shutdown::Shutdown;
use crate::metric::actor::{FlushAndReport, MetricReport};
use crate::monitor::actor::FinalFlush;
use crate::plot::actor::FinalRender;
use crate::source::actor::SourceReport;

/// Figures of a finished run (each part only if this process ran that role).
#[derive(Debug, Clone)]
pub struct RunReport {
    pub source: Option<SourceReport>,
    pub metric: Option<MetricReport>,
    pub elapsed: Duration,
    /// With the bridge on: its counters and what was not delivered.
    pub bridge: Option<BridgeReport>,
    /// What the monitor could not write, if it ran.
    pub monitor: Option<crate::monitor::actor::MonitorShortfall>,
    /// Lines of `pipeline.log` that could not be written, by the end of the
    /// drain ([`crate::core::logging::pipeline_log_dropped`]).
    pub pipeline_log_dropped: u64,
    /// Rows the model could not predict ([`crate::core::metrics::model_unpredicted`]).
    pub unpredicted: u64,
}

impl RunReport {
    /// What this run did not deliver, if anything (then it must exit 1).
    pub fn shortfall(&self) -> Option<String> {
        let parts: Vec<String> = [
            self.monitor
                .as_ref()
                .filter(|m| !m.is_empty())
                .map(ToString::to_string),
            self.bridge.and_then(bridge_shortfall),
            match self.unpredicted {
                0 => None,
                n => Some(format!(
                    "{n} rows the model could not predict (their truths have no prediction; the ERROR lines say why)"
                )),
            },
            match self.pipeline_log_dropped {
                0 => None,
                n => Some(format!(
                    "{n} lines of pipeline.log could not be written and were dropped (the error on stderr says why)"
                )),
            },
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Rows written per second (0 without the metric role).
    pub fn samples_per_sec(&self) -> f64 {
        let rows = self.metric.as_ref().map_or(0, |m| m.rows_written);
        rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What the bridge did not deliver, if anything.
fn bridge_shortfall(b: BridgeReport) -> Option<String> {
    if b.complete() {
        return None;
    }
    let refused = match b.stats.refused_at_shutdown {
        0 => String::new(),
        n => format!(
            "; {n} of the unconfirmed were never handed to the broker (refused at shutdown after bridge.shutdown_timeout without a confirm)"
        ),
    };
    Some(format!(
        "not everything was delivered: {} messages not confirmed by the broker, {} dropped from the full buffer, {} inbound deliveries abandoned at the shutdown deadline{refused}",
        b.undelivered, b.stats.dropped, b.inbound_abandoned
    ))
}

impl Actors {
    /// Waits for the end of the source's count, a drain, or a metric that
    /// gave up; then stops the source and waits for its report.
    pub(super) async fn wait_for_end(
        &mut self,
        shutdown: &Shutdown,
        bridge: &Option<Bridge>,
        settings: &Settings,
    ) -> anyhow::Result<Option<SourceReport>> {
        let mut report = None;
        let mut running = self.source.is_some();
        tokio::select! {
            r = &mut self.done, if running => {
                report = Some(r.context("the source ended without a report")?);
                running = false;
            }
            why = shutdown.drained() => tracing::info!(signal = why, "stopping: draining in-flight work"),
            _ = self.gave_up.cancelled() => tracing::error!("stopping: the metric cannot write its logs"),
        }
        if report.is_none() || self.gave_up.is_cancelled() {
            // Stopped early: the source and a failing metric stop retrying.
            self.stop.cancel();
        }
        if !running {
            return Ok(report);
        }
        // The source's last batches may wait for room in a full outbox: the
        // broker takes them as long as it confirms (a healthy broker under
        // load); only when it has confirmed nothing for
        // `bridge.shutdown_timeout` does the bridge refuse (and count)
        // instead of wait, so the drain cannot hang on a dead broker.
        let stalled = async {
            let Some(p) = bridge.as_ref().map(Bridge::probe) else {
                return std::future::pending().await;
            };
            let (mut last, mut since) = (p.confirmed(), Instant::now());
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if p.confirmed() != last {
                    (last, since) = (p.confirmed(), Instant::now());
                } else if since.elapsed() >= settings.bridge.shutdown_timeout {
                    return;
                }
            }
        };
        tokio::select! {
            r = &mut self.done => return Ok(Some(r.context("the source ended without a report")?)),
            _ = stalled => {
                tracing::warn!("the broker confirmed nothing for bridge.shutdown_timeout: the bridge refuses what it has no room for (counted)");
                if let Some(b) = bridge {
                    b.stop_blocking();
                }
            }
        }
        Ok(Some(
            (&mut self.done)
                .await
                .context("the source ended without a report")?,
        ))
    }

    /// Drains in order: no new inbound work (what is in flight finishes and
    /// is acked), the metric's final flush, the last plot, then the broker's
    /// confirms (even when the logs failed: wait for the broker and count).
    pub(super) async fn drain(
        self,
        mut bridge: Option<Bridge>,
        source: Option<SourceReport>,
        started: Instant,
    ) -> anyhow::Result<RunReport> {
        if let Some(b) = bridge.as_mut() {
            b.stop_consumers().await;
        }
        let metric = match &self.routes.metric {
            Some(metric) => Some(
                metric
                    .send(FlushAndReport)
                    .await
                    .context("metric actor gone at shutdown")?
                    .map_err(|e| anyhow::anyhow!("final flush of the logs failed: {e}")),
            ),
            None => None,
        };
        if let Some(plot) = &self.routes.plot {
            let plotted = plot
                .send(FinalRender)
                .await
                .context("plot actor gone at shutdown")?;
            if let Err(e) = &plotted {
                tracing::error!(error = %e, "final plot render failed");
            }
        }
        let monitor = match &self.routes.monitor {
            // Behind whatever it still has in its mailbox.
            Some(monitor) => Some(monitor.send(FinalFlush).await.unwrap_or_else(|_| {
                tracing::error!(
                    "monitor gone at shutdown: its last window and picture are not written"
                );
                crate::monitor::actor::MonitorShortfall {
                    unwritten: vec!["the monitor's files (the monitor is gone)".into()],
                    ..Default::default()
                }
            })),
            None => None,
        };
        self.metric_thread.stop();
        self.observers_thread.stop();
        self.monitor_thread.stop();
        let bridge = match bridge {
            Some(b) => Some(b.shutdown().await),
            None => None,
        };
        // A failed metric ends the run with its error; what the monitor
        // could not write is counted on the same line.
        let metric = match metric.transpose() {
            Ok(m) => m,
            Err(e) => match monitor.as_ref().filter(|m| !m.is_empty()) {
                Some(m) => return Err(anyhow::anyhow!("{e:#}; {m}")),
                None => return Err(e),
            },
        };
        Ok(RunReport {
            source,
            metric,
            // With the bridge on, the run ends when the broker has confirmed.
            elapsed: started.elapsed(),
            bridge,
            monitor,
            // Read by `run` once the drain is over.
            pipeline_log_dropped: 0,
            unpredicted: 0,
        })
    }
}
