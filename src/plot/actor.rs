//! PlotActor: keeps the error histogram and renders the PNG every
//! `plot.interval` and at shutdown.
//!
//! The histogram is filled once from the existing `metric_log.csv` at start
//! (see [`PlotActor::load`]), then only from the records the actor is sent,
//! so the cost of a frame does not grow with the log (the Python original
//! re-read the whole CSV each frame). Rendering runs on a blocking thread
//! of its own with a snapshot of the histogram (a 16 KiB copy), so it never
//! stalls message routing. The training baseline, when the model has one,
//! is drawn as a line at its MAE ([`PlotActor::with_baseline`]). After each
//! render the renderer publishes the bars and the density curve it drew to
//! a [`PlotView`] ([`PlotActor::with_view`]) that the dashboard reads.

use std::path::{Path, PathBuf};
use std::time::Instant;

use actix::prelude::*;

use crate::core::messages::{Batch, MetricRecord};
use crate::core::metrics::Metrics;
use crate::metric::log_format::read_metric_log;
use crate::model::baseline::Baseline;
use crate::plot::histogram::ErrorHistogram;
use crate::plot::render::{render_png, PlotSpec};
use crate::plot::renderer::{Draw, Renderer};
use crate::plot::view::PlotView;

/// Renders once more and waits for it. Sent at shutdown.
#[derive(Message)]
#[rtype(result = "Result<u64, String>")]
pub struct FinalRender;

pub struct PlotActor {
    hist: ErrorHistogram,
    spec: PlotSpec,
    baseline: Option<Baseline>,
    path: PathBuf,
    interval: std::time::Duration,
    renderer: Option<Addr<Renderer>>,
    rendering: bool,
    dirty: bool,
    renders: u64,
    metrics: Metrics,
    view: PlotView,
}

impl PlotActor {
    /// Builds the histogram from the log at `csv` (read once) and targets `png`.
    pub fn load(
        csv: &Path,
        png: PathBuf,
        spec: PlotSpec,
        interval: std::time::Duration,
        metrics: Metrics,
    ) -> Result<PlotActor, csv::Error> {
        let started = Instant::now();
        let mut hist = ErrorHistogram::new();
        let rows = read_metric_log(csv, |r| hist.add(r.absolute_error))?;
        if rows > 0 {
            tracing::info!(
                rows,
                ms = started.elapsed().as_millis() as u64,
                file = %csv.display(),
                "plot loaded the existing log"
            );
        }
        Ok(PlotActor {
            hist,
            spec,
            baseline: None,
            path: png,
            interval,
            renderer: None,
            rendering: false,
            dirty: true,
            renders: 0,
            metrics,
            view: PlotView::default(),
        })
    }

    /// Draws a line at the training baseline's MAE (none without one).
    pub fn with_baseline(mut self, baseline: Option<Baseline>) -> PlotActor {
        self.baseline = baseline;
        self
    }

    /// Publishes what it draws to `view` (the dashboard's histogram).
    pub fn with_view(mut self, view: PlotView) -> PlotActor {
        self.view = view;
        self
    }

    /// A picture of the histogram now: drawn, timed
    /// (`modelwatch_plot_render_seconds`) and published for the dashboard.
    fn render_request(&mut self) -> Draw {
        let (hist, spec, baseline, path) = (
            self.hist.clone(),
            self.spec,
            self.baseline.clone(),
            self.path.clone(),
        );
        let (took, view) = (self.metrics.plot_render_seconds.clone(), self.view.clone());
        Draw::new(move || {
            let started = Instant::now();
            let result = render_png(&hist, spec, baseline.as_ref(), &path);
            took.observe(started.elapsed().as_secs_f64());
            view.publish(&hist, spec.bins);
            result
        })
    }

    fn renderer(&mut self) -> Addr<Renderer> {
        Renderer::of(&mut self.renderer)
    }

    /// Starts a render on the renderer thread unless one is running.
    fn rendered(&mut self) {
        self.renders += 1;
        self.metrics.plot_renders.inc();
    }

    fn render_in_background(&mut self, ctx: &mut Context<Self>) {
        if self.rendering || !self.dirty {
            return;
        }
        self.rendering = true;
        self.dirty = false;
        let job = self.renderer().send(self.render_request());
        ctx.spawn(job.into_actor(self).map(|result, act, _| {
            act.rendering = false;
            match result {
                Ok(Ok(())) => act.rendered(),
                Ok(Err(e)) => tracing::error!(error = %e, "plot render failed"),
                Err(e) => tracing::error!(error = %e, "plot renderer is gone"),
            }
        }));
    }
}

impl Actor for PlotActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.interval, |act, ctx| act.render_in_background(ctx));
        self.render_in_background(ctx);
    }
}

impl Supervised for PlotActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.metrics.restart("plot");
        tracing::warn!(renders = self.renders, "plot actor restarting");
    }
}

impl Handler<Batch<MetricRecord>> for PlotActor {
    type Result = ();

    fn handle(&mut self, batch: Batch<MetricRecord>, _: &mut Context<Self>) {
        for r in batch.items.iter() {
            self.hist.add(r.absolute_error);
        }
        self.dirty = true;
    }
}

impl Handler<FinalRender> for PlotActor {
    type Result = ResponseActFuture<Self, Result<u64, String>>;

    fn handle(&mut self, _: FinalRender, _: &mut Context<Self>) -> Self::Result {
        let job = self.renderer().send(self.render_request());
        Box::pin(job.into_actor(self).map(|result, act, _| {
            match result {
                Ok(Ok(())) => act.rendered(),
                Ok(Err(e)) => return Err(e.to_string()),
                Err(e) => return Err(e.to_string()),
            }
            Ok(act.hist.count())
        }))
    }
}
