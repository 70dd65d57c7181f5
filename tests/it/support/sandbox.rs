//! Shared helpers of the integration tests: run the real `modelwatch` binary
//! in a sandbox (fresh current dir, its own logs dir, a clean environment)
//! with a time limit, and read back the files it writes.

pub use super::openmetrics::Scrape;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

pub use super::process::default_config;
use super::process::{Launch, Proc};

use modelwatch::metric::log_format::METRIC_HEADER;

/// Longest a single run of the binary may take before it is killed and the
/// test fails. Generous: every run in these tests takes a few seconds at most.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A temporary folder holding the current dir of the binary (`cwd/`, empty,
/// so no stray `models/` artifact is picked up) and whatever the test puts
/// beside it (logs dirs, configs, artifacts).
pub struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let root = tempfile::Builder::new()
            .prefix("modelwatch-it-")
            .tempdir()
            .expect("creating a temp dir");
        fs::create_dir(root.path().join("cwd")).expect("creating the cwd");
        Sandbox { root }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// `<sandbox>/<name>`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The default logs dir of the sandbox, `<sandbox>/logs`.
    pub fn logs(&self) -> PathBuf {
        self.join("logs")
    }

    pub fn cwd(&self) -> PathBuf {
        self.join("cwd")
    }

    /// The binary with `args`, in the sandbox's cwd ([`Launch`]'s clean
    /// environment, stdout/stderr piped), as a plain command the test may
    /// add to.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.launch().args(args).command()
    }

    /// As [`Sandbox::command`], with the binary at `exe` (say, a copy).
    pub fn command_of<I, S>(&self, exe: &Path, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.launch().exe(exe).args(args).command()
    }

    /// The builder of a process in this sandbox's cwd.
    pub fn launch(&self) -> Launch {
        Launch::new().cwd(self.cwd())
    }

    /// `run --config <default> --logs-dir <logs> <extra...>`.
    pub fn run_command(&self, logs: &Path, extra: &[&str]) -> Command {
        self.run_launch(logs, extra).command()
    }

    /// The builder behind [`Sandbox::run_command`], for more options.
    pub fn run_launch(&self, logs: &Path, extra: &[&str]) -> Launch {
        Launch::run().cwd(self.cwd()).logs(logs).args(extra)
    }
}

/// What a finished run of the binary left behind.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with stdout/stderr unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Output {
        assert_eq!(
            self.status.code(),
            Some(code),
            "expected exit code {code}, got {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A running child with piped output, killed when dropped (a failing test
/// never leaves a `--count 0` process behind).
pub struct Running {
    proc: Proc,
}

impl Running {
    pub fn spawn(cmd: Command) -> Running {
        Running {
            proc: Proc::spawn(cmd, None),
        }
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }

    /// Sends a signal with `kill(1)`.
    pub fn signal(&self, name: &str) {
        self.proc.signal(name)
    }

    /// Waits for the exit; after `timeout` kills the process and panics with
    /// what it printed.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let status = self.proc.wait_for(timeout);
        let elapsed = self.proc.started().elapsed();
        let timed_out = status.is_none();
        let status = status.unwrap_or_else(|| self.proc.kill());
        let (stdout, stderr) = self.proc.take_output();
        assert!(
            !timed_out,
            "modelwatch did not exit within {timeout:?}; killed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
        Output {
            status,
            stdout,
            stderr,
            elapsed,
        }
    }
}

/// Runs `cmd` to completion within [`TIMEOUT`].
pub fn run(cmd: Command) -> Output {
    run_within(cmd, TIMEOUT)
}

/// Runs `cmd` to completion within `timeout` (killed and failed after).
pub fn run_within(cmd: Command, timeout: Duration) -> Output {
    Running::spawn(cmd).wait(timeout)
}

/// Polls `cond` every 20 ms until it holds; panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

pub use super::{oracle, Row};

/// Parses a whole `metric_log.csv` strictly: the header first and only once,
/// then rows of exactly four fields that parse, and a final newline (no torn
/// last line). Returns the rows, or what is wrong.
pub fn parse_metric_log(text: &str) -> Result<Vec<Row>, String> {
    if text.is_empty() {
        return Err("file is empty".into());
    }
    if !text.ends_with('\n') {
        let tail = text.rsplit('\n').next().unwrap_or_default();
        return Err(format!("last line is torn (no final newline): {tail:?}"));
    }
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    if header != METRIC_HEADER {
        return Err(format!("first line is {header:?}, not the header"));
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 4 {
            return Err(format!("line {n} has {} fields: {line:?}", fields.len()));
        }
        let float = |s: &str| {
            s.parse::<f64>()
                .map_err(|e| format!("line {n}: {s:?}: {e}: {line:?}"))
        };
        rows.push(Row {
            id: fields[0]
                .parse()
                .map_err(|e| format!("line {n}: id {:?}: {e}", fields[0]))?,
            y_true: float(fields[1])?,
            y_pred: float(fields[2])?,
            absolute_error: float(fields[3])?,
        });
    }
    Ok(rows)
}

/// Reads and strictly parses `<logs>/metric_log.csv` (see [`parse_metric_log`]).
pub fn read_metric_log(logs: &Path) -> Vec<Row> {
    let path = logs.join("metric_log.csv");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    parse_metric_log(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One line of `labels_log.txt`: `<time> <kind> id=<id> value=<value>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub kind: String,
    pub id: u64,
    pub value: f64,
}

/// Reads `<logs>/labels_log.txt` strictly (every line whole and well formed).
pub fn read_labels(logs: &Path) -> Vec<Label> {
    let path = logs.join("labels_log.txt");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{}: last line is torn",
        path.display()
    );
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let parts: Vec<&str> = line.split(' ').collect();
            let bad = || panic!("{} line {}: malformed {line:?}", path.display(), i + 1);
            if parts.len() != 4 {
                bad();
            }
            let id = parts[2].strip_prefix("id=").and_then(|s| s.parse().ok());
            let value = parts[3].strip_prefix("value=").and_then(|s| s.parse().ok());
            match (id, value) {
                (Some(id), Some(value)) if matches!(parts[1], "y_true" | "y_pred") => Label {
                    kind: parts[1].to_owned(),
                    id,
                    value,
                },
                _ => bad(),
            }
        })
        .collect()
}

/// `<logs>/pipeline.log` as text.
pub fn read_pipeline_log(logs: &Path) -> String {
    let path = logs.join("pipeline.log");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The value of `field=` in a tracing line (`key=value` tokens, no ANSI).
pub fn log_field<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    let prefix = format!("{field}=");
    line.split_whitespace()
        .find_map(|tok| tok.strip_prefix(prefix.as_str()))
        .map(|v| v.trim_matches('"'))
}

/// The one line of `log` containing `message`; panics on none or several.
pub fn log_line<'a>(log: &'a str, message: &str) -> &'a str {
    let found: Vec<&str> = log.lines().filter(|l| l.contains(message)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {message:?} line in pipeline.log:\n{log}"
    );
    found[0]
}

/// Decodes a PNG fully (8-bit samples): its frame and pixel bytes.
fn decode_png(path: &Path) -> (png::OutputInfo, Vec<u8>) {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{}: not a PNG: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{}: cannot decode: {e}", path.display()));
    buf.truncate(frame.buffer_size());
    (frame, buf)
}

/// Decodes a PNG fully and returns its size.
pub fn png_size(path: &Path) -> (u32, u32) {
    let (frame, _) = decode_png(path);
    (frame.width, frame.height)
}

/// Decodes a PNG fully and panics unless it shows something: a blank picture
/// (one colour, or a background with a few stray pixels) fails. Returns the
/// size. The plot's bars, axes and labels cover far more than 1% of it in
/// several colours.
pub fn assert_png_has_a_picture(path: &Path) -> (u32, u32) {
    let (frame, buf) = decode_png(path);
    let channels = frame.color_type.samples();
    let pixels: Vec<&[u8]> = buf.chunks(channels).collect();
    let mut counts: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(*p).or_default() += 1;
    }
    let background = counts.values().copied().max().unwrap_or(0);
    let drawn = pixels.len() - background;
    assert!(
        counts.len() >= 3 && drawn * 100 >= pixels.len(),
        "{}: blank picture: {} colours, {drawn} of {} pixels differ from the background",
        path.display(),
        counts.len(),
        pixels.len()
    );
    (frame.width, frame.height)
}

/// The lines of a stderr that are not tracing output (which starts with a
/// timestamp, possibly wrapped in ANSI colour codes) nor a panic report.
pub fn plain_stderr_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with('\u{1b}') && !looks_like_timestamp(l))
        .collect()
}

fn looks_like_timestamp(l: &str) -> bool {
    let b = l.as_bytes();
    b.len() > 11 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T'
}

/// Asserts that the only non-tracing stderr line is one
/// `modelwatch: error: ...` line, and returns it.
pub fn one_error_line(out: &Output) -> String {
    let plain = plain_stderr_lines(&out.stderr);
    assert_eq!(
        plain.len(),
        1,
        "expected exactly one error line on stderr, got:\n{}",
        out.stderr
    );
    assert!(
        plain[0].starts_with("modelwatch: error:"),
        "stderr line does not start with `modelwatch: error:`: {:?}",
        plain[0]
    );
    plain[0].to_owned()
}

/// Panics unless every row's error is |y_true - y_pred| and (y_true, y_pred)
/// is the target and sklearn's prediction of one of the data set's rows (see
/// [`oracle`], which does not use the code under test).
pub fn assert_rows_are_model_outputs(rows: &[Row]) {
    for r in rows {
        assert!(
            (r.absolute_error - (r.y_true - r.y_pred).abs()).abs() <= 1e-9,
            "absolute_error is not |y_true - y_pred|: {r:?}"
        );
        oracle::assert_model_output(r.y_true, r.y_pred, &format!("{r:?}"));
    }
}

/// Panics unless the ids of `rows` are all different.
pub fn assert_unique_ids(rows: &[Row]) {
    let mut ids: Vec<u64> = rows.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "{} duplicate ids", before - ids.len());
}

/// Names of the rules that fired, sorted, once each, from `alerts.jsonl`
/// in `logs` (none when it is absent).
pub fn fired(logs: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(logs.join("alerts.jsonl")).unwrap_or_default();
    let mut out: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["state"] == "fired")
        .map(|e| e["rule"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `got` (modelwatch's) within `tol`, relative (absolute below 1), of
/// `want` (an oracle's).
pub fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: modelwatch {got:e}, oracle {want:e}"
    );
}

/// One full window of `metrics_over_time.csv`: its cells by column name.
pub struct OverTimeRow {
    pub seq: usize,
    cells: std::collections::BTreeMap<String, String>,
}

impl OverTimeRow {
    /// The cell of column `name` (panics naming it when there is none).
    pub fn cell(&self, name: &str) -> &str {
        self.cells
            .get(name)
            .unwrap_or_else(|| panic!("no column {name} in metrics_over_time.csv"))
    }

    /// The cell of column `name` as a number.
    pub fn num(&self, name: &str) -> f64 {
        let cell = self.cell(name);
        cell.parse()
            .unwrap_or_else(|e| panic!("window {} {name} {cell:?}: {e}", self.seq))
    }
}

/// The header of `metrics_over_time.csv` in `logs`, and its rows of full
/// windows (`count` is `window`: the last, partial window is left out).
pub fn full_windows(logs: &Path, window: usize) -> (Vec<String>, Vec<OverTimeRow>) {
    let text = std::fs::read_to_string(logs.join("metrics_over_time.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|line| {
            let cells: std::collections::BTreeMap<String, String> = header
                .iter()
                .cloned()
                .zip(line.split(',').map(String::from))
                .collect();
            let seq = cells["seq"].parse().unwrap();
            OverTimeRow { seq, cells }
        })
        .filter(|r| r.cell("count") == window.to_string())
        .collect();
    (header, rows)
}
