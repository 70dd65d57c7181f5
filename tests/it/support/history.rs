//! Helpers of the history tests (`history`,
//! `history_restart`): a stream with a unique name that is deleted
//! at the end (streams are durable), the pipeline run with history on, and
//! `modelwatch replay` run as a user runs it, its JSON lines parsed.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::amqp::{rabbitmqctl, unique_name, App, PrivateBroker, BROKER_URL};
use super::process::{default_config, Launch, Proc};

/// A history stream and an exchange of its own (so that no other run on
/// the shared broker reaches it), both named for one test only and deleted
/// on drop, pass or fail.
pub struct TestStream {
    pub name: String,
    /// The broker it lives on ([`BROKER_URL`] unless [`TestStream::on`]).
    pub url: String,
    /// `-n NODE` for rabbitmqctl: None for the shared broker.
    node: Option<String>,
}

impl TestStream {
    /// On the shared broker.
    pub fn new(what: &str) -> TestStream {
        TestStream {
            name: unique_name(&format!("history.{what}")),
            url: BROKER_URL.to_string(),
            node: None,
        }
    }

    /// A queue of that name on the shared broker (one a test made).
    pub fn named(name: &str) -> TestStream {
        TestStream {
            name: name.to_string(),
            url: BROKER_URL.to_string(),
            node: None,
        }
    }

    /// On a test's own node.
    pub fn on(broker: &PrivateBroker, what: &str) -> TestStream {
        TestStream {
            name: unique_name(&format!("history.{what}")),
            url: broker.url(),
            node: Some(broker.node.clone()),
        }
    }

    /// The exchange of this test (same name as the stream).
    pub fn exchange(&self) -> &str {
        &self.name
    }

    /// The environment that turns history on with this stream and exchange.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("MODELWATCH__HISTORY__ENABLED".into(), "true".into()),
            ("MODELWATCH__HISTORY__QUEUE".into(), self.name.clone()),
            ("MODELWATCH__BRIDGE__EXCHANGE".into(), self.name.clone()),
        ]
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let mut args = Vec::new();
        if let Some(node) = &self.node {
            args.extend(["-n", node.as_str()]);
        }
        args.extend(["delete_queue", self.name.as_str()]);
        let _ = rabbitmqctl(&args, Duration::from_secs(30));
        // rabbitmqctl cannot delete an exchange: lapin, on a thread and
        // runtime of its own (drop may run inside the test's runtime).
        let name = self.name.clone();
        let url = self.url.clone();
        let deleted = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let conn = crate::support::amqp::connect_to(&url).await;
                let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
                ch.exchange_delete(
                    name.as_str().into(),
                    lapin::options::ExchangeDeleteOptions::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
                let _ = conn.close(200, "deleted".into()).await;
                Ok::<_, String>(())
            })
        })
        .join();
        if let Ok(Err(e)) = deleted {
            eprintln!("TestStream: deleting exchange {}: {e}", self.name);
        }
    }
}

/// `modelwatch run` with the bridge and history on (`stream`) and `args`.
pub fn run_with_history(stream: &TestStream, args: &[&str], env: &[(&str, &str)]) -> App {
    let mut all = vec!["--amqp-url", stream.url.as_str()];
    all.extend_from_slice(args);
    let mut b = App::builder().args(&all);
    for (k, v) in stream.env() {
        b = b.env(&k, &v);
    }
    for (k, v) in env {
        b = b.env(k, v);
    }
    b.start()
}

/// One line `replay` printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub offset: u64,
    pub key: String,
    pub id: u64,
    pub body: serde_json::Value,
}

/// Parses `replay`'s stdout strictly: every line one JSON object with
/// exactly `offset`, `key`, `id`, `body`.
pub fn parse_lines(stdout: &str) -> Vec<Line> {
    stdout
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("replay line {}: not JSON ({e}): {l:?}", i + 1));
            let o = v.as_object().expect("an object");
            assert_eq!(o.len(), 4, "replay line {}: {l}", i + 1);
            Line {
                offset: o["offset"].as_u64().expect("offset"),
                key: o["key"].as_str().expect("key").to_owned(),
                id: o["id"].as_u64().expect("id"),
                body: o["body"].clone(),
            }
        })
        .collect()
}

/// `modelwatch replay` against the broker of `stream` reading it, with a clean
/// environment (only what the test sets).
pub fn replay_command(stream: &TestStream, args: &[&str]) -> Command {
    replay_launch(stream, args).broker(&stream.url).command()
}

/// [`replay_command`] with the bridge off (no `--amqp-url`).
pub fn replay_command_without_bridge(stream: &TestStream, args: &[&str]) -> Command {
    replay_launch(stream, args).command()
}

fn replay_launch(stream: &TestStream, args: &[&str]) -> Launch {
    Launch::new()
        .subcommand("replay")
        .config(default_config())
        .args(args)
        .env("MODELWATCH__HISTORY__QUEUE", &stream.name)
}

/// What a finished replay gave.
pub struct Replayed {
    pub code: Option<i32>,
    pub lines: Vec<Line>,
    pub stderr: String,
}

/// Runs `replay` to its end (killed and failed after `timeout`).
pub fn replay(stream: &TestStream, args: &[&str], timeout: Duration) -> Replayed {
    replay_with(replay_command(stream, args), timeout)
}

/// Runs a replay `cmd` (from [`replay_command`], perhaps with more
/// arguments) to its end (killed and failed after `timeout`).
pub fn replay_with(mut cmd: Command, timeout: Duration) -> Replayed {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    cmd.stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut child = Proc::spawn(cmd, None);
    let Some(status) = child.wait_for(timeout) else {
        child.kill();
        panic!(
            "replay still running after {timeout:?}: killed\n--- stderr ---\n{}",
            std::fs::read_to_string(&err).unwrap_or_default()
        );
    };
    let stderr = std::fs::read_to_string(&err).unwrap();
    let stdout = std::fs::read_to_string(&out).unwrap();
    Replayed {
        code: status.code(),
        lines: if status.success() {
            parse_lines(&stdout)
        } else {
            vec![]
        },
        stderr,
    }
}

impl Replayed {
    pub fn ok(self) -> Replayed {
        assert_eq!(self.code, Some(0), "replay failed:\n{}", self.stderr);
        self
    }

    /// The one error line of a refused replay (exit 2).
    pub fn refused(&self) -> String {
        assert_eq!(self.code, Some(2), "expected exit 2:\n{}", self.stderr);
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("modelwatch: error:"))
            .collect();
        assert_eq!(lines.len(), 1, "one error line:\n{}", self.stderr);
        lines[0].to_owned()
    }
}

/// Offsets strictly increasing: no message printed twice, in stream order.
pub fn assert_offsets_increase(lines: &[Line]) {
    for w in lines.windows(2) {
        assert!(
            w[0].offset < w[1].offset,
            "offsets out of order: {} then {}",
            w[0].offset,
            w[1].offset
        );
    }
}

/// The distinct ids of `lines`.
pub fn ids(lines: &[Line]) -> HashSet<u64> {
    lines.iter().map(|l| l.id).collect()
}

/// `path` as bytes.
pub fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
