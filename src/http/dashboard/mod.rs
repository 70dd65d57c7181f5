//! The dashboard and the predict form: what a person opens in a browser to
//! watch the model (`GET /`, live through `GET /events`) and to ask it for
//! one prediction (`GET`/`POST /predict`, `POST /api/predict`).
//!
//! The pure parts are apart and tested on their own: [`snapshot`] (what
//! the page shows, read from the telemetry registry, the monitor's board
//! and the plot's [`PlotView`]), [`html`] (the pages, rendered on the server so they read without
//! JavaScript), [`predict`] (input checks, scaling, nearest rows) and
//! [`assets`] (uPlot and the page's script, embedded). [`routes`] holds
//! the actix-web handlers, thin, and [`events`] the Server-Sent Events
//! stream, bounded in clients and ended when the server stops.

pub mod assets;
pub mod events;
pub mod html;
pub mod predict;
pub mod predict_own;
pub mod routes;
pub mod snapshot;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::core::metrics::Metrics;
use crate::model::LinearModel;
use crate::monitor::report::Board;
use crate::plot::view::PlotView;
use snapshot::{ModelInfo, Snapshot};

/// What the dashboard's handlers read. Cheap to share (`Arc`s inside).
#[derive(Clone)]
pub struct Dashboard {
    pub metrics: Metrics,
    pub board: Board,
    /// What the plot last drew (`Some` in a process with the plot role).
    pub histogram: Option<PlotView>,
    /// `Some` in a process with the model role: it serves `/predict`.
    pub model: Option<Arc<LinearModel>>,
    pub model_info: Option<ModelInfo>,
    /// A model of the user's own data, where it came from and the
    /// declared columns: it serves `/predict` and `POST /api/predict` by
    /// column name.
    pub own_model: Option<predict_own::OwnModel>,
    /// When the process started (uptime).
    pub started: Instant,
    /// The bridge is on (its counters are shown).
    pub bridge: bool,
    /// Inbound queues this process consumes (split layout).
    pub inbound_queues: Vec<String>,
    /// `/events` streams open at once, at most (`http.max_event_streams`).
    pub max_streams: usize,
    /// Time between two events of a stream (1 s; tests may shorten it).
    pub event_interval: Duration,
    /// Streams open now.
    pub streams: Arc<AtomicUsize>,
    /// Cancelled when the server stops: every stream ends.
    pub stop: CancellationToken,
}

impl Dashboard {
    /// A dashboard with nothing but the registry and a board (no model,
    /// bridge off); set the other fields as the process has them.
    pub fn new(metrics: Metrics, board: Board, max_streams: usize) -> Dashboard {
        Dashboard {
            metrics,
            board,
            histogram: None,
            model: None,
            model_info: None,
            own_model: None,
            started: Instant::now(),
            bridge: false,
            inbound_queues: Vec::new(),
            max_streams,
            event_interval: Duration::from_secs(1),
            streams: Arc::new(AtomicUsize::new(0)),
            stop: CancellationToken::new(),
        }
    }

    /// With the model this process serves and where it came from.
    pub fn with_model(mut self, model: Arc<LinearModel>, origin: &str) -> Dashboard {
        self.model_info = Some(ModelInfo::of(&model, origin));
        self.model = Some(model);
        self
    }

    /// With a model of the user's own data, where it came from, and the
    /// columns the config declares (labels, units, ranges).
    pub fn with_own_model(
        mut self,
        model: Arc<crate::model::tabular::TabularModel>,
        origin: &str,
        columns: Vec<crate::config::data::ColumnSettings>,
    ) -> Dashboard {
        // The page says what runs: its training score (R², or a
        // classifier's accuracy).
        self.model_info = Some(ModelInfo {
            r2: model.training.score,
            score: match model.classes() {
                Some(_) => "accuracy",
                None => "R²",
            },
            mae: f64::NAN,
            origin: crate::core::text::sanitize(origin),
        });
        self.own_model = Some(predict_own::OwnModel {
            model,
            origin: origin.to_owned(),
            columns,
        });
        self
    }

    /// The snapshot now; `after_seq` as in [`snapshot::build`]. Reads the
    /// board in place and copies only the windows past `after_seq`; the
    /// histogram is the plot's shared view (a reference count, no copy).
    pub fn snapshot(&self, after_seq: Option<u64>) -> (Snapshot, Option<u64>) {
        let counters = snapshot::counters(
            &self.metrics,
            self.started,
            self.bridge,
            &self.inbound_queues,
        );
        let histogram = self.histogram.as_ref().and_then(PlotView::latest);
        let model = self.model_info.clone();
        self.board.read(|board| {
            let snap = snapshot::build(counters, model, board, histogram, after_seq);
            (snap, snapshot::last_seq(board).or(after_seq))
        })
    }
}
