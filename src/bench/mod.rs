//! `modelwatch bench`: the figures of BENCHMARKS.md, reproducible.
//!
//! Each figure is measured `runs` times and the median is quoted; compared
//! figures are measured in the same invocation. The pipeline figures run
//! this very binary as a child (`run --rate 0`), the way a user runs it, and
//! read its summary line from `pipeline.log`; the plot figures call the plot
//! code in-process; the bridge and history figures need a RabbitMQ
//! (`--amqp-url`).
//! `--quick` shrinks every size so the tests can run the whole command.

pub mod bridge;
pub mod columns;
pub mod history;
pub mod http;
pub mod monitor;
pub mod pipeline;
pub mod plot;
pub mod split;
pub mod split_onnx;

use std::path::PathBuf;

/// Options of one bench invocation.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Config file for the child runs; `None`: they find theirs as `run` does.
    pub config: Option<PathBuf>,
    pub runs: usize,
    pub quick: bool,
    /// Broker for the bridge figures; `None` skips them (and says so).
    pub amqp_url: Option<String>,
    pub python: String,
    /// Groups to run (`--only`); empty: all.
    pub only: Vec<String>,
}

impl BenchOptions {
    /// Whether the group `name` of figures runs.
    pub fn runs_group(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == name)
    }

    /// `--config FILE` for a child run, or nothing.
    pub fn config_args(&self) -> Vec<&std::ffi::OsStr> {
        match &self.config {
            Some(c) => vec!["--config".as_ref(), c.as_os_str()],
            None => Vec::new(),
        }
    }
}

/// One row of the result table.
#[derive(Debug, Clone)]
pub struct Figure {
    pub what: String,
    pub value: String,
    pub note: String,
}

impl Figure {
    pub fn new(
        what: impl Into<String>,
        value: impl Into<String>,
        note: impl Into<String>,
    ) -> Figure {
        Figure {
            what: what.into(),
            value: value.into(),
            note: note.into(),
        }
    }
}

/// Median of some measurements (the upper middle for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs every bench and returns the table rows.
pub fn run_all(opts: &BenchOptions) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    if opts.runs_group("pipeline") {
        figures.extend(pipeline::bench(opts)?);
    }
    if opts.runs_group("columns") {
        figures.extend(columns::bench(opts)?);
    }
    if opts.runs_group("http") {
        figures.extend(http::bench(opts)?);
    }
    if opts.runs_group("monitor") {
        figures.extend(monitor::bench(opts)?);
    }
    if opts.runs_group("plot") {
        figures.extend(plot::bench(opts)?);
    }
    match &opts.amqp_url {
        Some(url) => {
            if opts.runs_group("bridge") {
                figures.extend(bridge::bench(opts, url)?);
            }
            if opts.runs_group("split") {
                figures.extend(split::bench(opts, url)?);
            }
            if opts.runs_group("split_onnx") {
                figures.extend(split_onnx::bench(opts, url)?);
            }
            if opts.runs_group("history") {
                figures.extend(history::bench(opts, url)?);
            }
        }
        None => figures.push(Figure::new(
            "bridge figures",
            "skipped",
            "no --amqp-url given",
        )),
    }
    Ok(figures)
}

/// The table as Markdown.
pub fn to_markdown(figures: &[Figure]) -> String {
    let mut out = String::from("| figure | median | notes |\n|---|---|---|\n");
    for f in figures {
        out.push_str(&format!("| {} | {} | {} |\n", f.what, f.value, f.note));
    }
    out
}
