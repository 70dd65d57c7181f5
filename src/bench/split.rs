//! The split layout's end-to-end rate: a metric process, one or more model
//! processes and a features process linked by RabbitMQ, timed from the
//! start of the features process until the metric has written every row.
//! Every object the run declares is named for it and deleted after.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::{median, BenchOptions, Figure};

struct Role {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(
    opts: &BenchOptions,
    url: &str,
    tag: &str,
    role: &str,
    extra: &[&str],
    batch: bool,
) -> anyhow::Result<Role> {
    let dir = tempfile::tempdir()?;
    let child = Command::new(std::env::current_exe()?)
        .arg("run")
        .args(opts.config_args())
        .args(["--roles", role, "--amqp-url", url])
        .arg("--logs-dir")
        .arg(dir.path())
        .args(extra)
        .env("MODELWATCH__BRIDGE__EXCHANGE", format!("{tag}.x"))
        .env("MODELWATCH__BRIDGE__LEGACY_QUEUES", "false")
        .env("MODELWATCH__BRIDGE__BATCH", batch.to_string())
        .env("MODELWATCH__INBOUND__MODEL_QUEUE", format!("{tag}.model"))
        .env(
            "MODELWATCH__INBOUND__METRIC_TRUTH_QUEUE",
            format!("{tag}.y_true"),
        )
        .env(
            "MODELWATCH__INBOUND__METRIC_PREDICTION_QUEUE",
            format!("{tag}.y_pred"),
        )
        .env(
            "MODELWATCH__INBOUND__MONITOR_FEATURES_QUEUE",
            format!("{tag}.monitor"),
        )
        .env(
            "MODELWATCH__INBOUND__MONITOR_SCORED_QUEUE",
            format!("{tag}.scored"),
        )
        .env(
            "MODELWATCH__INBOUND__DEAD_LETTER_EXCHANGE",
            format!("{tag}.dlx"),
        )
        .env(
            "MODELWATCH__INBOUND__DEAD_LETTER_QUEUE",
            format!("{tag}.dlq"),
        )
        .env("MODELWATCH__METRIC__LABELS_LOG", "false")
        .env("MODELWATCH__HTTP__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Role { child, dir })
}

fn wait_for(
    path: &Path,
    what: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if done(&std::fs::read_to_string(path).unwrap_or_default()) {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("timed out waiting for {what} in {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn terminate(role: &mut Role) -> anyhow::Result<()> {
    Command::new("kill")
        .args(["-TERM", &role.child.id().to_string()])
        .status()?;
    let status = role.child.wait()?;
    if !status.success() {
        bail!("a split role exited with {status}");
    }
    Ok(())
}

/// One split run's shape: model processes, samples, the flags of every
/// process, the metric's consumers (to wait for) and the message form.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout<'a> {
    pub models: usize,
    pub samples: usize,
    pub args: &'a [&'a str],
    pub consumers: usize,
    /// Batch messages (`bridge.batch`) in every process.
    pub batch: bool,
}

/// A timed run: its rate, and the cores each part used on average while it
/// ran (CPU seconds over wall seconds, from `/proc`): what bounds it.
#[derive(Debug, Clone, Copy)]
pub(super) struct SplitRun {
    pub rate: f64,
    pub broker: f64,
    pub features: f64,
    pub models: f64,
    pub metric: f64,
}

impl SplitRun {
    /// "cores: broker 0.91, features 0.20, model(s) 0.75, metric 0.33"
    pub fn cores(&self) -> String {
        format!(
            "cores used: broker {:.2}, features {:.2}, model(s) {:.2}, metric {:.2}",
            self.broker, self.features, self.models, self.metric
        )
    }
}

/// CPU seconds (user + system) of process `pid` so far; 0 when unreadable.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces): utime, stime are
    // the 12th and 13th after its closing parenthesis.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    f.iter().sum::<f64>() / ticks
}

/// The RabbitMQ server processes on this machine (`beam.smp`).
fn broker_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "beam.smp")
        })
        .collect()
}

/// One timed run of the split layout: `models` model processes, every
/// process given `args` (your own data's `--data --target --model`), the
/// metric's `consumers` inbound consumers started before the source.
pub(super) fn once_with(
    opts: &BenchOptions,
    url: &str,
    name: &str,
    layout: Layout,
) -> anyhow::Result<SplitRun> {
    let tag = format!("modelwatch_bench_split.{}.{name}", std::process::id());
    let result = timed(opts, url, &tag, layout);
    // Deleted whatever happened (a failed run leaves no queue behind).
    let removed = remove_topology(url, &tag);
    let rate = result?;
    removed?;
    Ok(rate)
}

fn timed(opts: &BenchOptions, url: &str, tag: &str, layout: Layout) -> anyhow::Result<SplitRun> {
    let Layout {
        models,
        samples,
        args,
        consumers,
        batch,
    } = layout;
    let mut metric = spawn(opts, url, tag, "metric", args, batch)?;
    let mut workers = (0..models)
        .map(|_| spawn(opts, url, tag, "model", args, batch))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = |r: &Role, n| {
        wait_for(
            &r.dir.path().join("pipeline.log"),
            "the consumers",
            Duration::from_secs(30),
            |t| t.matches("inbound consumer started").count() >= n,
        )
    };
    started(&metric, consumers)?;
    for w in &workers {
        started(w, 1)?;
    }
    let brokers = broker_pids();
    let cpu_of = |pids: &mut dyn Iterator<Item = u32>| pids.map(cpu_seconds).sum::<f64>();
    let before = (
        cpu_of(&mut brokers.iter().copied()),
        cpu_of(&mut workers.iter().map(|w| w.child.id())),
        cpu_seconds(metric.child.id()),
    );
    let t = Instant::now();
    let n = samples.to_string();
    let source: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--count", &n, "--rate", "0"])
        .collect();
    let mut features = spawn(opts, url, tag, "features", &source, batch)?;
    let csv = metric.dir.path().join("metric_log.csv");
    wait_for(&csv, "every row", Duration::from_secs(300), |t| {
        t.lines().count() > samples
    })?;
    let secs = t.elapsed().as_secs_f64();
    let rate = samples as f64 / secs;
    let run = SplitRun {
        rate,
        broker: (cpu_of(&mut brokers.iter().copied()) - before.0) / secs,
        features: cpu_seconds(features.child.id()) / secs,
        models: (cpu_of(&mut workers.iter().map(|w| w.child.id())) - before.1) / secs,
        metric: (cpu_seconds(metric.child.id()) - before.2) / secs,
    };
    let status = features.child.wait().context("features process")?;
    if !status.success() {
        bail!("the features process exited with {status}");
    }
    for w in &mut workers {
        terminate(w)?;
    }
    terminate(&mut metric)?;
    Ok(run)
}

/// Deletes the run's durable queues and exchange.
fn remove_topology(url: &str, tag: &str) -> anyhow::Result<()> {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let conn = lapin::Connection::connect(url, Default::default()).await?;
        let ch = conn.create_channel().await?;
        for q in ["model", "y_true", "y_pred", "monitor", "scored", "dlq"] {
            ch.queue_delete(
                format!("{tag}.{q}").as_str().into(),
                QueueDeleteOptions::default(),
            )
            .await?;
        }
        for x in ["x", "dlx"] {
            ch.exchange_delete(
                format!("{tag}.{x}").as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await?;
        }
        conn.close(200, "bench done".into()).await?;
        Ok(())
    })
}

/// The split layout of the diabetes data with one sample per message,
/// then with batch messages (`bridge.batch`, over ten times the samples,
/// so that a run lasts long enough to time), 1 and 2 model workers each;
/// every rate beside the per-sample form's with one worker.
pub fn bench(opts: &BenchOptions, url: &str) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let mut base = None;
    for batch in [false, true] {
        let samples = match (opts.quick, batch) {
            (true, _) => 300,
            (false, false) => 20_000,
            (false, true) => 300_000,
        };
        for models in [1, 2] {
            let layout = Layout {
                models,
                samples,
                args: &[],
                consumers: 2,
                batch,
            };
            let runs = (0..opts.runs)
                .map(|run| {
                    let name = format!("{}{models}.{run}", if batch { "b" } else { "" });
                    once_with(opts, url, &name, layout).map(|r| r.rate)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let rate = median(runs);
            let base = *base.get_or_insert(rate);
            let form = match batch {
                true => "batch messages (bridge.batch, up to 512 samples each)",
                false => "one message per sample",
            };
            figures.push(Figure::new(
                format!("split layout, {form}, {models} model worker(s): end-to-end samples/s"),
                format!("{rate:.0} ({:.2}x one worker, one message per sample)", rate / base),
                format!("features + {models} model + metric processes, {samples} samples, until every row is written"),
            ));
        }
    }
    Ok(figures)
}
