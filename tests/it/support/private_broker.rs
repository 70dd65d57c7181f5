//! A private RabbitMQ node for one test: its own port, its own data under
//! the target dir, started by the test and stopped (and removed) when the
//! [`PrivateBroker`] is dropped. For tests that must not share the
//! machine's broker at 127.0.0.1:5672: ones that stop, restart or purge it,
//! or that need fixed queue names (the legacy `features`, `y_true`,
//! `y_pred`, the bench's, the README's commands). Streams (history) are a
//! core feature of the node: no plugin needed.
//!
//! The recipe (ARCHITECTURE.md, "A private RabbitMQ node for tests"): the
//! Debian wrapper runs the server as the `rabbitmq` user, so the node's
//! folder belongs to it; `/etc/rabbitmq/rabbitmq.conf` pins the listener,
//! so the node gets a config file of its own.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::provision::run_bounded;

/// A running private node; stopped when dropped.
pub struct PrivateBroker {
    /// `NAME@localhost`.
    pub node: String,
    /// Its AMQP port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    stopped: bool,
}

/// A port free now on 127.0.0.1 (the OS picks it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl PrivateBroker {
    /// Starts a node named after `tag` and this process, waits until it
    /// answers on its port (bounded), and panics with its log otherwise.
    pub fn start(tag: &str) -> PrivateBroker {
        let name = format!("mwt-{tag}-{}", std::process::id());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("rabbitmq")
            .join(&name);
        let _ = fs::remove_dir_all(&dir);
        for sub in ["mnesia", "log"] {
            fs::create_dir_all(dir.join(sub)).expect("creating the node's folders");
        }
        let port = free_port();
        let dist_port = loop {
            let p = free_port();
            if p != port {
                break p;
            }
        };
        fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .unwrap();
        let mut chown = Command::new("chown");
        chown.arg("-R").arg("rabbitmq:rabbitmq").arg(&dir);
        run_bounded("chown the node's folder", chown, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{e}"));
        let node = format!("{name}@localhost");
        let broker = PrivateBroker {
            node: node.clone(),
            port,
            dir: dir.clone(),
            stopped: false,
        };
        let mut server = Command::new("rabbitmq-server");
        server
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"));
        run_bounded("rabbitmq-server -detached", server, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("starting a private RabbitMQ node: {e}"));
        // await_startup exits 69 until the node has registered: retry.
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last: String;
        loop {
            match broker.ctl(
                &["await_startup", "--timeout", "20"],
                Duration::from_secs(30),
            ) {
                Ok(_) if broker.answers() => break,
                Ok(_) => last = format!("await_startup passed; port {port} does not answer"),
                Err(e) => last = e,
            }
            if Instant::now() > deadline {
                panic!(
                    "the private RabbitMQ node {node} did not start within 90 s: {last}\n{}",
                    broker.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(500));
        }
        broker
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Whether the AMQP port takes a connection.
    pub fn answers(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
    }

    /// `rabbitmqctl -n NODE ARGS`, killed after `timeout`.
    pub fn ctl(&self, args: &[&str], timeout: Duration) -> Result<String, String> {
        let mut cmd = Command::new("rabbitmqctl");
        cmd.arg("-n").arg(&self.node).args(args);
        run_bounded(
            &format!("rabbitmqctl -n {} {args:?}", self.node),
            cmd,
            timeout,
        )
    }

    /// `rabbitmqctl -n NODE stop_app`: this node's broker goes away (the
    /// Erlang node stays up), as a restart of the broker looks to a client.
    pub fn stop_app(&self) {
        self.ctl(&["stop_app"], Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.log_tail()));
    }

    /// `rabbitmqctl -n NODE start_app`, then `await_startup`: this node's
    /// broker is back.
    pub fn start_app(&self) {
        self.ctl(&["start_app"], Duration::from_secs(60))
            .and_then(|_| self.ctl(&["await_startup"], Duration::from_secs(60)))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.log_tail()));
    }

    /// The end of the node's log, for a failure message.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(dir) = fs::read_dir(self.dir.join("log")) {
            for e in dir.flatten() {
                if let Ok(t) = fs::read_to_string(e.path()) {
                    let lines: Vec<&str> = t.lines().rev().take(20).collect();
                    text.push_str(&format!("--- {}\n", e.path().display()));
                    for l in lines.into_iter().rev() {
                        text.push_str(l);
                        text.push('\n');
                    }
                }
            }
        }
        text
    }

    /// Stops the node (bounded) and removes its folder.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Err(e) = self.ctl(&["stop"], Duration::from_secs(60)) {
            eprintln!("private broker {}: {e}", self.node);
            // Last resort: the pid the node wrote.
            if let Ok(pid) = fs::read_to_string(self.dir.join("pid")) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.stop();
    }
}
