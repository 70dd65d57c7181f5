//! The command-line flags of `run` that override config keys: one field
//! each, declared once. clap reads this struct (`#[command(flatten)]` in
//! `crate::cli`), its doc comments are the `--help` text, and
//! [`Overrides::apply`] is the only place a flag is mapped to its key.
//! Adding a flag: a field here with its doc comment, and its line in
//! `apply` (which destructures the struct, so a field left unmapped does
//! not compile). Flags are applied last, after the file and the
//! environment; the result is checked like any other value.

use std::path::PathBuf;

use super::scenario::parse_spec;
use super::{ConfigError, Role, Settings};

/// Command-line overrides, applied after the file and the environment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Samples to emit, then stop cleanly (0 = forever). Overrides source.count.
    #[arg(long)]
    pub count: Option<u64>,
    /// Samples per second (0 = as fast as the pipeline takes them). Overrides source.rate.
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Seed for the row picker, for a repeatable sequence. Overrides source.seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Random rows with replacement, or each row once in file order and
    /// then stop. Overrides source.order.
    #[arg(long, value_enum)]
    pub order: Option<super::Order>,
    #[command(flatten)]
    pub own: OwnDataFlags,
    /// Folder for the logs and the plot. Overrides logs.dir.
    #[arg(long)]
    pub logs_dir: Option<PathBuf>,
    /// Mirror every message to this RabbitMQ (turns the bridge on). Also AMQP_URL.
    #[arg(long)]
    pub amqp_url: Option<String>,
    /// Roles this process runs, e.g. `model` or `features,metric` (default all
    /// four). The others are reached through RabbitMQ (needs the bridge on).
    #[arg(long, value_delimiter = ',')]
    pub roles: Option<Vec<Role>>,
    /// Read what the original Python services publish: the model and metric
    /// work queues become `features`, `y_true`, `y_pred`. Sets inbound.legacy.
    #[arg(long)]
    pub legacy_inbound: bool,
    /// Serve /metrics, /health and /ready on this address `ip:port` (port 0
    /// picks a free port; taken: exit 2), `auto` (127.0.0.1:9898, or a free
    /// port when taken) or `off`. Overrides http.listen.
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// Shift the stream on purpose from a sample on, e.g.
    /// `start=20000,bmi+=5` or `start=1000,s5*=1.2,target+=10,target~=20,age>median`
    /// (F+=X, F-=X, F*=X change feature F in raw units; target+=X, target-=X,
    /// target~=X bias the truth or add noise of std X; F>X, F<X with X a
    /// number or `median` keep a sub-population; F=LEVEL gives a categorical
    /// column of your own data that level). Sets source.scenario.
    #[arg(long, value_name = "SPEC")]
    pub scenario: Option<String>,
    /// Records per monitor window. Overrides monitor.window.
    #[arg(long, value_name = "N")]
    pub monitor_window: Option<usize>,
    /// Do not run the monitor. Sets monitor.enabled = false.
    #[arg(long)]
    pub no_monitor: bool,
}

/// The flags of a run of your own data (`run`, and `replay --rebuild` of
/// such a run's history).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OwnDataFlags {
    /// Your own data: a CSV file with a header line, streamed instead of
    /// the built-in diabetes data (docs/own-data.md). Overrides data.path.
    #[arg(long, value_name = "FILE.csv")]
    pub data: Option<PathBuf>,
    /// The column of --data the model predicts. Overrides data.target.
    #[arg(long, value_name = "COLUMN")]
    pub target: Option<String>,
    /// The artifact `modelwatch train --data` wrote, to run on --data
    /// (default: fit the model on --data at start; `replay --rebuild`
    /// needs it). Overrides data.model.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
}

impl Overrides {
    /// Sets the key of every flag given; a `--scenario` that does not
    /// parse is an error naming the flag.
    pub(super) fn apply(&self, s: &mut Settings) -> Result<(), ConfigError> {
        let Overrides {
            count,
            rate,
            seed,
            order,
            own:
                OwnDataFlags {
                    data,
                    target,
                    model,
                },
            logs_dir,
            amqp_url,
            roles,
            legacy_inbound,
            http_listen,
            scenario,
            monitor_window,
            no_monitor,
        } = self;
        set(&mut s.source.count, count);
        set(&mut s.source.rate, rate);
        if seed.is_some() {
            s.source.seed = *seed;
        }
        set(&mut s.source.order, order);
        set(&mut s.data.path, data);
        set(&mut s.data.target, target);
        set(&mut s.data.model, model);
        set(&mut s.logs.dir, logs_dir);
        if let Some(url) = amqp_url {
            s.bridge.url = url.clone();
            s.bridge.enabled = true;
        }
        set(&mut s.roles, roles);
        if *legacy_inbound {
            s.inbound.legacy = true;
        }
        set(&mut s.http.listen, http_listen);
        if let Some(spec) = scenario {
            s.source.scenario = Some(
                parse_spec(spec)
                    .map_err(|p| ConfigError::invalid("--scenario (source.scenario)", p))?,
            );
        }
        set(&mut s.monitor.window, monitor_window);
        if *no_monitor {
            s.monitor.enabled = false;
        }
        Ok(())
    }
}

fn set<T: Clone>(key: &mut T, flag: &Option<T>) {
    if let Some(v) = flag {
        *key = v.clone();
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The flags as `run` parses them.
    #[derive(Debug, Parser)]
    struct Run {
        #[command(flatten)]
        overrides: Overrides,
    }

    fn settings_with(args: &[&str]) -> Result<Settings, super::super::ConfigError> {
        let run = Run::try_parse_from(std::iter::once("run").chain(args.iter().copied())).unwrap();
        Settings::load_source(None, &run.overrides, vec![])
    }

    #[test]
    fn every_flag_sets_its_key() {
        let s = settings_with(&[
            "--count=7",
            "--rate=2.5",
            "--seed=3",
            "--logs-dir=/tmp/x",
            "--amqp-url=amqp://u:p@h:5672/%2f",
            "--roles=model,metric",
            "--legacy-inbound",
            "--http-listen=0.0.0.0:0",
            "--scenario=start=3,bmi+=5",
            "--monitor-window=100",
            "--no-monitor",
        ])
        .unwrap();
        let scenario = s.source.scenario.as_ref().unwrap();
        assert_eq!((scenario.start, scenario.shift["bmi"]), (3, 5.0));
        assert_eq!((s.monitor.window, s.monitor.enabled), (100, false));
        assert_eq!(
            (s.source.count, s.source.rate, s.source.seed),
            (7, 2.5, Some(3))
        );
        assert_eq!(s.logs.dir, PathBuf::from("/tmp/x"));
        assert!(s.bridge.enabled);
        assert_eq!(s.bridge.url, "amqp://u:p@h:5672/%2f");
        assert_eq!(s.roles, [Role::Model, Role::Metric]);
        assert!(s.inbound.legacy);
        assert_eq!(s.http.listen_addr(), Some("0.0.0.0:0".parse().unwrap()));
        let s = settings_with(&["--http-listen", "off"]).unwrap();
        assert_eq!(s.http.listen_addr(), None);
    }

    #[test]
    fn the_flag_wins_over_amqp_url_in_the_environment() {
        let run = Run::try_parse_from(["run", "--amqp-url", "amqp://flag/%2f"]).unwrap();
        let env = vec![("AMQP_URL".to_owned(), "amqp://env/%2f".to_owned())];
        let s = Settings::load_source(None, &run.overrides, env.clone()).unwrap();
        assert_eq!(s.bridge.url, "amqp://flag/%2f");
        let s = Settings::load_source(None, &Overrides::default(), env).unwrap();
        assert_eq!(s.bridge.url, "amqp://env/%2f");
        assert!(s.bridge.enabled);
    }
}
