//! The command line: `modelwatch run`, `train`, `bench`, `replay`,
//! `config`, `completions`, `man`.
//!
//! Parsing, then the steps in order: settings (bad ones exit 2 before
//! anything starts), logging, start-up checks (exit 2), the run (exit 0 once
//! drained and everything delivered; 1 on a runtime failure, on rows not
//! written, on messages not delivered or on a second signal; 70 on a panic).
//! The binary needs nothing from the repository: with no config file named
//! or found it runs on the built-in defaults, and completions and the man
//! page come from these same clap definitions.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::config::{ConfigSource, Overrides, Role, Settings, CONFIG_ENV, DEFAULT_TOML};
use crate::core::data::Dataset;
use crate::core::exit;
use crate::core::log_paths::LogPaths;
use crate::core::logging;
use crate::core::shutdown::Shutdown;
use crate::model::LinearModel;
use crate::pipeline;

/// `--version`: the crate version and the git commit it was built from
/// (build.rs; "unknown" outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BUILD_GIT_COMMIT"),
    ")"
);

/// The end of `--help` and of the man page.
const AFTER_HELP: &str = "\
Exit codes: 0 finished and flushed; 1 a failure during the run; 2 bad input \
before anything started (one line on stderr naming it); 70 a panic or a dead \
actor (restart the process).

Environment: MODELWATCH_CONFIG names the config file; MODELWATCH__SECTION__KEY \
sets any key (e.g. MODELWATCH__SOURCE__RATE=100); AMQP_URL turns the bridge \
on; RUST_LOG sets the log filter; NO_COLOR (any non-empty value) turns off the colour stderr has on a terminal (never in a file or a pipe).";

/// Run a linear model on the diabetes data in a loop and watch its errors live.
///
/// The pipeline streams random rows to the model, joins each prediction with
/// the true target, appends the absolute error to logs/metric_log.csv and
/// keeps logs/error_distribution.png up to date. No broker is needed.
#[derive(Debug, Parser)]
#[command(name = "modelwatch", version = VERSION, about, long_about)]
#[command(after_long_help = AFTER_HELP)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand, `modelwatch [FLAGS]` is `modelwatch run [FLAGS]`.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline (until --count samples are done, or SIGINT/SIGTERM).
    Run(RunArgs),
    /// Fit the model on the 442 rows and write the artifact `run` loads.
    Train(TrainArgs),
    /// Measure throughput, latency, memory and cost growth (BENCHMARKS.md).
    Bench(BenchArgs),
    /// Read the history stream (history.enabled): print it as JSON lines, or
    /// rebuild metric_log.csv, labels_log.txt and the plot from it.
    Replay(ReplayArgs),
    /// Print the configuration: the effective one (password hidden), or with
    /// --default the complete commented default file, to start your own.
    Config(ConfigCmdArgs),
    /// Print a shell completion script: `modelwatch completions bash > ...`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `modelwatch man > modelwatch.1`.
    Man,
    /// Print every metric the program declares (name, type, labels, help) as
    /// the markdown table docs/metrics.md is checked against.
    Metrics,
}

#[derive(Debug, Args)]
pub struct ConfigCmdArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the built-in default configuration, every key with its comment
    /// (`modelwatch config --default > my.toml` is a complete starting file).
    #[arg(long)]
    pub default: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Measurements per figure; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Tiny sizes: checks that every bench works, in seconds (the tests run this).
    #[arg(long)]
    pub quick: bool,
    /// RabbitMQ for the bridge figures (skipped without it).
    #[arg(long)]
    pub amqp_url: Option<String>,
    /// Python with pika, for the baseline of the original services, and
    /// with scikit-learn and skl2onnx, for the ONNX forest of split_onnx
    /// (which also needs the ONNX Runtime library: model.onnxruntime or
    /// ORT_DYLIB_PATH).
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Only these groups of figures (comma-separated): pipeline, columns,
    /// http, monitor, plot, bridge, split, split_onnx, history. Default: all.
    #[arg(long, value_delimiter = ',', value_parser = ["pipeline", "columns", "http", "monitor", "plot", "bridge", "split", "split_onnx", "history"])]
    pub only: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The broker (turns the bridge on). Also AMQP_URL.
    #[arg(long)]
    pub amqp_url: Option<String>,
    /// Where to start: first, last, next, an offset, or an RFC 3339 time
    /// (e.g. 2026-11-29T08:42:49Z; whole seconds).
    #[arg(long, default_value = "first")]
    pub from: String,
    /// Where to stop: now (the end of the stream when the replay starts) or
    /// an RFC 3339 time in the past.
    #[arg(long, default_value = "now", conflicts_with = "follow")]
    pub until: String,
    /// Keep reading new messages until SIGINT/SIGTERM, reconnecting after a
    /// lost broker and continuing from the last offset.
    #[arg(long)]
    pub follow: bool,
    /// Routing keys to keep, repeatable or comma-separated: features,
    /// y_true, y_pred, metrics, monitor, alerts (default all).
    #[arg(long, value_name = "KEY")]
    pub key: Vec<String>,
    /// Instead of printing, write metric_log.csv, labels_log.txt,
    /// error_distribution.png and the monitor's files in DIR, as a live run
    /// writes them. Resumable: run again, it writes only what DIR lacks.
    #[arg(long, value_name = "DIR")]
    pub rebuild: Option<PathBuf>,
    /// Start right after the offset saved in FILE (if it exists; else at
    /// --from) and save the offset reached there as it goes (atomically).
    #[arg(long, value_name = "FILE")]
    pub from_offset_file: Option<PathBuf>,
    /// A history of a run of your own data: the run's --data, --target
    /// and --model. --rebuild then reads the features by column name and
    /// leaves other schemas' messages out.
    #[command(flatten)]
    pub own: crate::config::flags::OwnDataFlags,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Configuration file (TOML; `modelwatch config --default` prints every
    /// key). Default: ./config/default.toml if it exists, else the built-in
    /// defaults. A file named here must exist.
    #[arg(long, short, env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    fn source(&self) -> ConfigSource {
        ConfigSource::resolve(self.config.as_deref())
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Flags that override config keys.
    #[command(flatten)]
    pub overrides: Overrides,
    /// Print the effective configuration (password redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Where to write the artifact (default: model.artifact of the config).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Rows per window of the training baseline the artifact carries
    /// (10..=100000; default: the config's monitor.window, so that `run`
    /// uses the artifact's baseline).
    #[arg(long, value_parser = baseline_window)]
    pub baseline_window: Option<usize>,
    /// Bootstrap windows the baseline is drawn from (100..=100000; default:
    /// the config's monitor.baseline_windows).
    #[arg(long, value_parser = baseline_windows)]
    pub baseline_windows: Option<usize>,
    /// Seed of the baseline's bootstrap.
    #[arg(long, default_value_t = crate::monitor::baseline::DEFAULT_SEED)]
    pub baseline_seed: u64,
    /// Your own data: a CSV file with a header line. The model is fitted on
    /// every other column to predict --target, and written with the schema
    /// and the preprocessing (default --out: models/<file name>.model.json).
    #[arg(long, requires = "target", value_name = "FILE.csv")]
    pub data: Option<PathBuf>,
    /// The column of --data to predict.
    #[arg(long, requires = "data", value_name = "COLUMN")]
    pub target: Option<String>,
    /// An ONNX model to wrap instead of fitting one (exported from a model
    /// fitted on --data, e.g. by skl2onnx): its inputs and output are
    /// checked against the columns of --data, it is run over every row for
    /// the monitor's reference, and the artifact names the file with its
    /// sha256 (docs/onnx.md). Needs the ONNX Runtime library
    /// (model.onnxruntime or ORT_DYLIB_PATH).
    #[arg(long, requires = "data", value_name = "FILE.onnx")]
    pub model: Option<PathBuf>,
    /// A column of --data that identifies rows (left out of the features).
    #[arg(long, requires = "data", value_name = "COLUMN")]
    pub id: Option<String>,
    /// Columns of --data that are categorical even when every value is a
    /// number (codes, zip codes, class numbers), comma-separated.
    #[arg(
        long,
        requires = "data",
        value_name = "COLUMN,...",
        value_delimiter = ','
    )]
    pub categorical: Vec<String>,
    /// Regression or classification (default: classification when the
    /// target has a value that is not a number, else regression).
    #[arg(long, requires = "data", value_enum)]
    pub task: Option<crate::model::tabular::Task>,
    /// The field delimiter of --data (one ASCII character; `\t` for tab;
    /// default: the config's data.delimiter, ",").
    #[arg(long, requires = "data", value_parser = delimiter)]
    pub delimiter: Option<u8>,
    /// Rows with a missing value (empty, NA, NaN): left out and counted
    /// (omit), or the file refused naming the first (refuse); default: the
    /// config's data.missing, omit (keep, for `run`, trains as omit: the
    /// fit takes complete rows).
    #[arg(long, requires = "data", value_enum)]
    pub missing: Option<crate::core::table::Missing>,
    /// Largest --data file read, in bytes (1..=64 GiB; default: the
    /// config's data.max_bytes, 1 GiB).
    #[arg(long, requires = "data", value_parser = clap::value_parser!(u64).range(1..=(64u64 << 30)))]
    pub max_bytes: Option<u64>,
    /// Most levels of a categorical column of --data (2..=10000; default:
    /// the config's data.max_levels, 100).
    #[arg(long, requires = "data", value_parser = max_levels)]
    pub max_levels: Option<usize>,
}

fn delimiter(text: &str) -> Result<u8, String> {
    match text {
        "\\t" | "\t" => Ok(b'\t'),
        t if t.len() == 1 && t.is_ascii() && t != "\"" && t != "\n" && t != "\r" => {
            Ok(t.as_bytes()[0])
        }
        _ => Err("one ASCII character other than a quote or a line break".into()),
    }
}

fn max_levels(text: &str) -> Result<usize, String> {
    in_range(text, 2..=10_000)
}

fn in_range(text: &str, range: std::ops::RangeInclusive<usize>) -> Result<usize, String> {
    let v: usize = text.parse().map_err(|e| format!("{e}"))?;
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not in {range:?}"))
    }
}

fn baseline_window(text: &str) -> Result<usize, String> {
    in_range(text, crate::model::baseline::WINDOW_RANGE)
}

fn baseline_windows(text: &str) -> Result<usize, String> {
    in_range(text, crate::model::baseline::WINDOWS_RANGE)
}

/// Runs the parsed command; returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    logging::exit_on_panic();
    let _failpoints = fail::FailScenario::setup();
    match cli.command {
        Some(Command::Run(args)) => run(args),
        Some(Command::Train(args)) => train(args),
        Some(Command::Bench(args)) => bench(args),
        Some(Command::Replay(args)) => replay(args),
        Some(Command::Config(args)) => config(args),
        Some(Command::Completions { shell }) => completions(shell),
        Some(Command::Man) => man(),
        Some(Command::Metrics) => metrics_table(),
        None => run(cli.run),
    }
}

/// Writes `bytes` to stdout and flushes. `print!` panics when stdout fails
/// (a full disk, `>/dev/full`, a closed pipe); this reports it instead:
/// one line on stderr and exit 1.
fn print_out(bytes: &[u8], what: &str) -> i32 {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("modelwatch: error: writing {what} to stdout: {e}");
            exit::FAILURE
        }
    }
}

/// What clap answers instead of a command line to run: `--help` and
/// `--version` go to stdout through [`print_out`] (clap's own exit ignores
/// a failed write and exits 0, so `--version >/dev/full` looked done);
/// a bad command line is printed by clap on stderr, exit 2.
pub fn parse_failure(e: clap::Error) -> i32 {
    use std::io::IsTerminal as _;
    if e.use_stderr() {
        let _ = e.print();
        return exit::USAGE;
    }
    let colour = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let text = if colour {
        e.render().ansi().to_string()
    } else {
        e.render().to_string()
    };
    print_out(text.as_bytes(), "the help or version text")
}

fn usage_error(e: impl std::fmt::Display) -> i32 {
    eprintln!("modelwatch: error: {e}");
    exit::USAGE
}

fn run(args: RunArgs) -> i32 {
    let source = args.config.source();
    let settings = match Settings::load_from(&source, &args.overrides, pipeline::check::semantics) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    if args.print_config {
        return print_out(settings.to_redacted_toml().as_bytes(), "the configuration");
    }
    // pipeline.log's own rotation; the data files get theirs in `prepare`.
    let log_reopen = crate::core::reopen::Reopen::new();
    let paths =
        LogPaths::new(&settings.logs.dir).with_rotation(settings.logs.rotation(&log_reopen));
    if let Err(e) = check_output_files(&settings, &paths) {
        return usage_error(e);
    }
    if let Err(e) = paths.create_dir() {
        return usage_error(error_chain(&e));
    }
    let log_file = (paths.pipeline_log.as_path(), paths.rotation.clone());
    let _log_guard = match logging::init(&settings.logs.level, Some(log_file)) {
        Ok(g) => g,
        Err(e) => return usage_error(format!("{}: {e}", paths.pipeline_log.display())),
    };
    tracing::info!("settings from {}", source.describe());
    let prepared = match pipeline::prepare(settings) {
        Ok(p) => p,
        Err(e) => {
            let shown = error_chain(&e);
            tracing::error!(error = shown, "start-up failed");
            return usage_error(shown);
        }
    };
    let telemetry = prepared.telemetry.clone();
    let final_metrics = prepared.paths.final_metrics.clone();
    let reopen = [log_reopen, prepared.paths.rotation.reopen.clone()];
    let shutdown = Shutdown::new();
    let system = actix::System::new();
    let result = system.block_on(async {
        actix::spawn(forward_signals(shutdown.clone(), reopen));
        pipeline::run(prepared, shutdown).await
    });
    // The registry at exit, for whoever reads the final counters of a
    // process that is gone (scripts, the bench, the tests).
    if let Ok(report) = &result {
        telemetry
            .metrics
            .run_seconds
            .set(report.elapsed.as_secs_f64());
    }
    if let Err(e) = crate::core::output_file::replace(&final_metrics, telemetry.encode().as_bytes())
    {
        tracing::error!(error = %e, file = %final_metrics.display(), "cannot write the final metrics");
    }
    match result {
        Ok(report) => {
            log_summary(&report, &telemetry.metrics);
            match report.shortfall() {
                None => exit::OK,
                Some(why) => {
                    tracing::error!(error = %why, "run incomplete");
                    eprintln!("modelwatch: error: {why}");
                    exit::FAILURE
                }
            }
        }
        Err(e) => {
            let shown = error_chain(&e);
            tracing::error!(error = shown, "run failed");
            eprintln!("modelwatch: error: {shown}");
            exit::FAILURE
        }
    }
}

/// Turns SIGINT and SIGTERM into the two steps of `shutdown`: the first
/// signal drains, the second aborts the drain; and SIGHUP (logrotate's
/// `postrotate`) into a request to reopen every log file. The only place
/// that knows about signals.
async fn forward_signals(shutdown: Shutdown, reopen: [crate::core::reopen::Reopen; 2]) {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            tracing::error!(error = %e, "cannot install the signal handlers");
            return;
        }
    };
    loop {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
            _ = hup.recv() => {
                // Asked first: this line is the first of the new pipeline.log.
                reopen.iter().for_each(crate::core::reopen::Reopen::request);
                tracing::info!("SIGHUP: reopening the log files at their next write");
                continue;
            }
        };
        if shutdown.is_draining() {
            shutdown.abort(name);
            return;
        }
        shutdown.drain(name);
    }
}

/// The "run finished" line, from the telemetry registry (and the latency
/// quantiles of the metric's own histogram).
fn log_summary(report: &pipeline::RunReport, metrics: &crate::core::metrics::Metrics) {
    let rss = crate::core::metrics::peak_rss_kib().unwrap_or(0);
    let secs = format!("{:.3}", report.elapsed.as_secs_f64());
    let dropped = |reason| {
        metrics
            .join_dropped
            .get_or_create(&crate::core::metrics::ReasonLabel { reason })
            .get()
    };
    match &report.metric {
        Some(m) => {
            let lat = &m.latency_us;
            tracing::info!(
                samples = metrics.samples_emitted.get(),
                rows = metrics.rows_written.get(),
                secs,
                samples_per_sec = format!("{:.0}", report.samples_per_sec()),
                latency_p50_us = lat.value_at_quantile(0.5),
                latency_p99_us = lat.value_at_quantile(0.99),
                latency_p999_us = lat.value_at_quantile(0.999),
                unmatched = metrics.join_waiting.get(),
                expired = dropped("expired"),
                evicted = dropped("evicted"),
                duplicates = dropped("duplicate"),
                redelivered = dropped("redelivered"),
                restarts = m.restarts,
                peak_rss_kib = rss,
                "run finished"
            );
        }
        None => tracing::info!(
            samples = metrics.samples_emitted.get(),
            secs,
            peak_rss_kib = rss,
            "run finished"
        ),
    }
    if let Some(b) = report.bridge {
        tracing::info!(
            confirmed = b.stats.confirmed,
            resent = b.stats.resent,
            dropped = b.stats.dropped,
            undelivered = b.undelivered,
            "bridge summary"
        );
    }
}

/// An output file that cannot be one is refused at start (exit 2) rather
/// than fail at the first write or render. Files written whole by a rename
/// (the PNGs, `http.addr`, `final_metrics.txt`) must be absent or regular
/// files: a link, a FIFO or a device there would be replaced. Files
/// appended to must not be a directory, FIFO or device (a link to a
/// regular file is appended through).
fn check_output_files(settings: &Settings, paths: &LogPaths) -> Result<(), String> {
    let mut appended = vec![&paths.pipeline_log];
    let mut replaced = vec![&paths.final_metrics];
    if settings.http.listen_addr().is_some() {
        replaced.push(&paths.http_addr);
    }
    if settings.runs(Role::Metric) {
        appended.push(&paths.metric_csv);
        if settings.metric.labels_log {
            appended.push(&paths.labels);
        }
        replaced.push(&paths.over_time_png);
    }
    if settings.runs(Role::Plot) {
        replaced.push(&paths.plot_png);
    }
    for path in appended {
        appendable("logs.dir", path)?;
    }
    for path in replaced {
        replaceable("logs.dir", path)?;
    }
    Ok(())
}

/// `path`, written whole by a rename, holds nothing or a regular file.
fn replaceable(what: &str, path: &Path) -> Result<(), String> {
    crate::core::output_file::check(path).map_err(|why| format!("{what}: {why}"))
}

/// `path`, appended to, is absent or (through any link) a regular file.
fn appendable(what: &str, path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(format!(
            "{what}: {} is {}, not a regular file: remove or rename it",
            crate::core::text::sanitize(&path.display().to_string()),
            if meta.is_dir() {
                "a directory"
            } else {
                "a FIFO, socket or device"
            }
        )),
        _ => Ok(()),
    }
}

fn train(args: TrainArgs) -> i32 {
    // `--data` and `--target` stand for data.path and data.target, so
    // that the config's `[data]` (its declared columns) is checked and
    // applies as it does for `run`.
    let overrides = Overrides {
        own: crate::config::flags::OwnDataFlags {
            data: args.data.clone(),
            target: args.target.clone(),
            model: None,
        },
        ..Overrides::default()
    };
    let settings = match Settings::load_from(
        &args.config.source(),
        &overrides,
        pipeline::check::semantics,
    ) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let _ = logging::init(&settings.logs.level, None);
    // The data of `--data`, or of the config's data.path.
    if settings.data.is_own() {
        return train_own(&args, &settings);
    }
    let (key, out) = match args.out {
        Some(out) => ("--out", out),
        None => ("model.artifact", settings.model.artifact),
    };
    // Before the fit: a link, FIFO or device at the path is refused (exit
    // 2) and left as it is, as `run` refuses such an artifact.
    if let Err(e) = replaceable(key, &out) {
        return usage_error(e);
    }
    let mut model = match LinearModel::fit(Dataset::embedded()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("modelwatch: error: {e:#}");
            return exit::FAILURE;
        }
    };
    let started = std::time::Instant::now();
    let baseline = crate::monitor::baseline::from_model(
        &model,
        args.baseline_window.unwrap_or(settings.monitor.window),
        args.baseline_windows
            .unwrap_or(settings.monitor.baseline_windows),
        args.baseline_seed,
    );
    let took = started.elapsed();
    match baseline {
        Ok(b) => model.baseline = Some(b),
        Err(e) => {
            let flag = match e.key {
                "window" => "--baseline-window",
                "windows" => "--baseline-windows",
                other => other,
            };
            return usage_error(format!("{flag}: {}", e.problem));
        }
    }
    let result = model
        .save(&out)
        .map(|_| model)
        .with_context(|| format!("training into {}", out.display()));
    match result {
        Ok(m) => {
            let mut text = format!(
                "wrote {}: intercept {:.6}, R² {:.7}, MAE {:.4} on {} rows\n",
                out.display(),
                m.intercept,
                m.training.r2,
                m.training.mae,
                m.training.rows
            );
            if let Some(b) = &m.baseline {
                text += &baseline_summary(b, took);
            }
            print_out(text.as_bytes(), "the training summary")
        }
        Err(e) => {
            eprintln!("modelwatch: error: {e:#}");
            exit::FAILURE
        }
    }
}

/// `train --data FILE --target COLUMN`: reads the user's CSV (every bad
/// input exit 2, naming file, line and column, nothing written), fits, and
/// writes the artifact with its schema and preprocessing.
fn train_own(args: &TrainArgs, settings: &Settings) -> i32 {
    use crate::core::table::{Missing, ReadOptions, Table};
    use crate::model::tabular::TabularModel;
    // The flags stand for the config's `[data]` keys (--data and --target
    // were put in it as overrides): what the flags leave, the file says.
    let d = &settings.data;
    let (data, target) = (d.path.as_path(), d.target.as_str());
    let id = args
        .id
        .clone()
        .or_else(|| (!d.id.is_empty()).then(|| d.id.clone()));
    let out = match &args.out {
        Some(out) => out.clone(),
        None => {
            let stem = data.file_stem().unwrap_or_default().to_string_lossy();
            PathBuf::from("models").join(format!("{stem}.model.json"))
        }
    };
    if let Err(e) = replaceable("--out", &out) {
        return usage_error(e);
    }
    if same_file(data, &out) {
        return usage_error(format!(
            "--out {} is the --data file: training would replace the data",
            crate::core::text::shown_path(&out)
        ));
    }
    if let Some(onnx) = &args.model {
        if same_file(onnx, &out) {
            return usage_error(format!(
                "--out {} is the --model file: wrapping would replace the ONNX model",
                crate::core::text::shown_path(&out)
            ));
        }
    }
    if crate::model::onnx::is_onnx_file(&out) {
        return usage_error(format!(
            "--out {}: the artifact is JSON, and `run` takes a .onnx file for an ONNX model \
             itself; name it .json",
            crate::core::text::shown_path(&out)
        ));
    }
    let options = ReadOptions {
        delimiter: args.delimiter.unwrap_or_else(|| d.delimiter_byte()),
        max_bytes: args.max_bytes.unwrap_or(d.max_bytes),
        max_levels: args.max_levels.unwrap_or(d.max_levels),
        // The fit takes complete rows: `keep` (which streams rows with a
        // missing cell through a trained model) leaves them out here.
        missing: match args.missing.unwrap_or(d.missing) {
            Missing::Keep => Missing::Omit,
            m => m,
        },
        skip: id.iter().cloned().collect(),
        // `[[data.columns]]` of the config apply to training too.
        categorical: args
            .categorical
            .iter()
            .cloned()
            .chain(settings.data.categorical_columns())
            .collect(),
        model_numeric: settings.data.numeric_columns(),
        allowed: settings.data.allowed(),
        ..ReadOptions::default()
    };
    if id.as_deref() == Some(target) {
        return usage_error(format!(
            "--id and --target are the same column {}",
            crate::core::table::quoted(target)
        ));
    }
    let started = std::time::Instant::now();
    let table = match Table::read(data, &options) {
        Ok(t) => t,
        Err(e) => return usage_error(format!("--data {e}")),
    };
    tracing::info!(
        "read {} rows of {} columns; {}",
        table.rows,
        table.columns.len(),
        match args.model {
            Some(_) => "running the ONNX model over them",
            None => "fitting",
        }
    );
    let fitted = match &args.model {
        Some(onnx) => TabularModel::wrap_onnx(
            &table,
            target,
            args.task,
            onnx,
            &out,
            &crate::model::onnx::RuntimeOptions::of(&settings.model),
        )
        .map_err(|e| e.to_string()),
        None => TabularModel::fit(&table, target, args.task)
            .map_err(|e| format!("--data {}: {e}", crate::core::text::shown_path(data))),
    };
    let (mut model, outputs) = match fitted {
        Ok(m) => m,
        Err(e) => return usage_error(e),
    };
    tracing::info!("fitted; computing the monitor's reference");
    let reference_started = std::time::Instant::now();
    let window = args.baseline_window.unwrap_or(settings.monitor.window);
    let windows = args
        .baseline_windows
        .unwrap_or(settings.monitor.baseline_windows);
    match crate::monitor::reference::of_tabular(
        &model,
        &table,
        outputs,
        window,
        windows,
        args.baseline_seed,
    ) {
        Ok(r) => model.reference = Some(r),
        Err(e) => {
            let flag = match e.key {
                "window" => "--baseline-window",
                "windows" => "--baseline-windows",
                _ => "--data",
            };
            return usage_error(format!("{flag}: {}", e.problem));
        }
    }
    let reference_took = reference_started.elapsed();
    // What `run` will check when it loads the artifact, checked before it
    // is written: a fit `run` would refuse is not written.
    if let Err(e) = model.check() {
        return usage_error(format!(
            "--data {}: the fit cannot be used: {e}",
            crate::core::text::shown_path(data)
        ));
    }
    if let Err(e) = model.save(&out) {
        eprintln!(
            "modelwatch: error: writing {}: {e}",
            crate::core::text::shown_path(&out)
        );
        return exit::FAILURE;
    }
    let (task, score) = match model.task {
        crate::model::tabular::Task::Regression => ("regression", "R²"),
        crate::model::tabular::Task::Classification => ("classification", "accuracy"),
    };
    let inputs = match &model.model {
        crate::model::tabular::Fitted::Onnx(m) => {
            format!("ONNX model {}", crate::core::table::quoted(&m.file))
        }
        _ => format!("{} inputs", model.n_inputs()),
    };
    let text = format!(
        "wrote {}: {task} of {} from {} feature column(s) ({inputs}), {score} {:.6} on {} rows \
         ({} left out for a missing value) in {:.2} s\n",
        crate::core::text::shown_path(&out),
        crate::core::table::quoted(target),
        model.features.len(),
        model.training.score,
        model.training.rows,
        model.training.omitted,
        started.elapsed().as_secs_f64(),
    );
    let mut text = match model.training.log_loss {
        Some(l) => format!(
            "{text}log loss {l:.9} on the {} rows\n",
            match model.is_onnx() {
                true => "--data",
                false => "training",
            }
        ),
        None => text,
    };
    if let Some(r) = &model.reference {
        text += &format!(
            "reference: the distributions of {} feature(s) and of the prediction; bands of {} \
             window metrics over {} bootstrap windows of {} rows (seed {}) in {:.1} ms\n",
            r.features.len(),
            r.bands.len(),
            r.windows,
            r.window,
            r.seed,
            reference_took.as_secs_f64() * 1e3
        );
        for b in &r.bands {
            text += &format!(
                "  {:<9} mean {:>12.6}  std {:>10.6}  p01 {:>12.6}  p99 {:>12.6}\n",
                b.metric, b.band.mean, b.band.std, b.band.p01, b.band.p99
            );
        }
    }
    text += &format!(
        "schema {} (the header x-modelwatch-schema of this model's messages on the wire, docs/wire.md)\n",
        model.wire_schema().fingerprint
    );
    print_out(text.as_bytes(), "the training summary")
}

/// True when both paths name one existing file (device and inode).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The baseline as `train` prints it: one line per metric.
fn baseline_summary(b: &crate::model::baseline::Baseline, took: std::time::Duration) -> String {
    let mut out = format!(
        "baseline: {} bootstrap windows of {} rows (seed {}) in {:.1} ms\n",
        b.windows,
        b.window,
        b.seed,
        took.as_secs_f64() * 1e3
    );
    let bands = [
        ("mae", &b.mae),
        ("rmse", &b.rmse),
        ("r2", &b.r2),
        ("bias", &b.bias),
        ("max_error", &b.max_error),
    ];
    for (name, band) in bands {
        out += &format!(
            "  {name:<9} mean {:>10.4}  std {:>8.4}  p01 {:>10.4}  p99 {:>10.4}\n",
            band.mean, band.std, band.p01, band.p99
        );
    }
    out
}

fn bench(args: BenchArgs) -> i32 {
    let _ = logging::init("warn", None);
    let config = args
        .config
        .source()
        .path()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned()));
    let opts = crate::bench::BenchOptions {
        config,
        runs: args.runs.max(1),
        quick: args.quick,
        amqp_url: args.amqp_url,
        python: args.python,
        only: args.only,
    };
    match crate::bench::run_all(&opts) {
        Ok(figures) => {
            let report = format!(
                "modelwatch {} bench, {} run(s) per figure{}, {} CPUs\n\n{}",
                env!("CARGO_PKG_VERSION"),
                opts.runs,
                if opts.quick { ", quick sizes" } else { "" },
                std::thread::available_parallelism().map_or(0, |n| n.get()),
                crate::bench::to_markdown(&figures)
            );
            print_out(report.as_bytes(), "the bench report")
        }
        Err(e) => {
            eprintln!("modelwatch: bench failed: {e:#}");
            exit::FAILURE
        }
    }
}

/// `modelwatch replay`: 0 at the end (or at SIGINT/SIGTERM with
/// `--follow`), 2 for a refusal before reading, 1 for a failure while reading.
fn replay(args: ReplayArgs) -> i32 {
    let overrides = Overrides {
        amqp_url: args.amqp_url.clone(),
        own: args.own.clone(),
        ..Overrides::default()
    };
    let settings = match Settings::load_from(
        &args.config.source(),
        &overrides,
        pipeline::check::semantics,
    ) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    // Logs to stderr only: stdout carries the lines.
    let _ = logging::init(&settings.logs.level, None);
    let request = crate::history::replay::ReplayRequest {
        from: args.from,
        until: args.until,
        follow: args.follow,
        keys: args.key,
        rebuild: args.rebuild,
        offset_file: args.from_offset_file,
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_signal = cancel.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            on_signal.cancel();
        });
    });
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match crate::history::replay::run(&settings, &request, cancel, &mut out) {
        Ok(_) => exit::OK,
        Err(crate::history::replay::ReplayError::Usage(why)) => usage_error(why),
        Err(e) => {
            eprintln!("modelwatch: error: {e}");
            exit::FAILURE
        }
    }
}

/// `modelwatch config [--default]`.
fn config(args: ConfigCmdArgs) -> i32 {
    if args.default {
        return print_out(DEFAULT_TOML.as_bytes(), "the default configuration");
    }
    match Settings::load_from(
        &args.config.source(),
        &Overrides::default(),
        pipeline::check::semantics,
    ) {
        Ok(s) => print_out(s.to_redacted_toml().as_bytes(), "the configuration"),
        Err(e) => usage_error(e),
    }
}

/// The clap definition of the whole command line (completions, man page).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// `modelwatch completions SHELL`.
fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = command();
    // Rendered in memory: `generate` panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "modelwatch", &mut script);
    print_out(&script, "the completion script")
}

/// `modelwatch man`. (A closed pipe, `modelwatch man | head`, is reported.)
fn man() -> i32 {
    let mut page = Vec::new();
    match clap_mangen::Man::new(command()).render(&mut page) {
        Ok(()) => print_out(&page, "the man page"),
        Err(e) => {
            eprintln!("modelwatch: error: rendering the man page: {e}");
            exit::FAILURE
        }
    }
}

/// `modelwatch metrics`: the declarations `/metrics` is registered from, one
/// row each, by the name a query uses (`_total` for a counter).
fn metrics_table() -> i32 {
    let mut table = String::from("| metric | type | labels | help |\n|---|---|---|---|\n");
    for d in pipeline::check::metric_declarations() {
        let labels: Vec<String> = d.labels.iter().map(|l| format!("`{l}`")).collect();
        table.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            d.series(),
            d.kind.as_str(),
            labels.join(", "),
            d.help.replace('|', "\\|"),
        ));
    }
    print_out(table.as_bytes(), "the metrics table")
}

/// An error and its causes, joined with ": " as `{:#}` does, leaving out a
/// cause whose text the message before already ends with (errors that
/// print their source in their own message would otherwise say it twice).
fn error_chain(e: &anyhow::Error) -> String {
    let mut shown = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if shown.is_empty() {
            shown = text;
        } else if !shown.ends_with(&text) {
            shown.push_str(": ");
            shown.push_str(&text);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Says {
        path: &'static str,
        source: std::io::Error,
    }

    /// A cause that its error already printed is not said twice; others are.
    #[test]
    fn a_cause_is_said_once() {
        let said = || Says {
            path: "logs/j",
            source: std::io::Error::other("not a regular file"),
        };
        let e = anyhow::Error::new(said());
        assert_eq!(error_chain(&e), "logs/j: not a regular file");
        let e = anyhow::Error::new(said()).context("start");
        assert_eq!(error_chain(&e), "start: logs/j: not a regular file");
        let e = anyhow::Error::new(std::io::Error::other("refused")).context("broker");
        assert_eq!(error_chain(&e), "broker: refused");
    }
}
