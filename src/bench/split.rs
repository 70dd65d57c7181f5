//! The split layout's end-to-end rate: a metric process, one or two model
//! processes and a features process linked by RabbitMQ, timed from the
//! start of the features process until the metric has written every row.

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
        .env("MODELWATCH__INBOUND__MODEL_QUEUE", format!("{tag}.model"))
        .env(
            "MODELWATCH__INBOUND__METRIC_TRUTH_QUEUE",
            format!("{tag}.y_true"),
        )
        .env(
            "MODELWATCH__INBOUND__METRIC_PREDICTION_QUEUE",
            format!("{tag}.y_pred"),
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

fn once(
    opts: &BenchOptions,
    url: &str,
    models: usize,
    samples: usize,
    run: usize,
) -> anyhow::Result<f64> {
    let tag = format!(
        "modelwatch_bench_split.{}.{models}.{run}",
        std::process::id()
    );
    let mut metric = spawn(opts, url, &tag, "metric", &[])?;
    let mut workers = (0..models)
        .map(|_| spawn(opts, url, &tag, "model", &[]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = |r: &Role, n| {
        wait_for(
            &r.dir.path().join("pipeline.log"),
            "the consumers",
            Duration::from_secs(30),
            |t| t.matches("inbound consumer started").count() >= n,
        )
    };
    started(&metric, 2)?;
    for w in &workers {
        started(w, 1)?;
    }
    let t = Instant::now();
    let n = samples.to_string();
    let mut features = spawn(opts, url, &tag, "features", &["--count", &n, "--rate", "0"])?;
    let csv = metric.dir.path().join("metric_log.csv");
    wait_for(&csv, "every row", Duration::from_secs(300), |t| {
        t.lines().count() > samples
    })?;
    let rate = samples as f64 / t.elapsed().as_secs_f64();
    let status = features.child.wait().context("features process")?;
    if !status.success() {
        bail!("the features process exited with {status}");
    }
    for w in &mut workers {
        terminate(w)?;
    }
    terminate(&mut metric)?;
    remove_topology(url, &tag)?;
    Ok(rate)
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
        for q in ["model", "y_true", "y_pred"] {
            ch.queue_delete(
                format!("{tag}.{q}").as_str().into(),
                QueueDeleteOptions::default(),
            )
            .await?;
        }
        ch.exchange_delete(
            format!("{tag}.x").as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await?;
        conn.close(200, "bench done".into()).await?;
        Ok(())
    })
}

pub fn bench(opts: &BenchOptions, url: &str) -> anyhow::Result<Vec<Figure>> {
    let samples = if opts.quick { 300 } else { 20_000 };
    let mut figures = Vec::new();
    for models in [1, 2] {
        let rates = (0..opts.runs)
            .map(|run| once(opts, url, models, samples, run))
            .collect::<anyhow::Result<Vec<_>>>()?;
        figures.push(Figure::new(
            format!("split layout, {models} model worker(s): end-to-end samples/s"),
            format!("{:.0}", median(rates)),
            format!("features + {models} model + metric processes, {samples} samples, until every row is written"),
        ));
    }
    Ok(figures)
}
