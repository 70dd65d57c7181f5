//! The one way the tests start the `modelwatch` binary: a [`Launch`]
//! builder (subcommand, roles, config file, logs dir, broker URL, fault
//! points, environment, arguments, current dir, where its output goes) and
//! the [`Proc`] it spawns, which kills the child and removes the temporary
//! folder it owns when it is dropped, so a failing test leaves no process
//! and no folder behind.
//!
//! Every child starts from the same clean environment: the variables that
//! change the program's behaviour (`MODELWATCH*`, `AMQP_URL`, `RUST_LOG`,
//! `FAILPOINTS`, `RUST_BACKTRACE`, `NO_COLOR`) are removed, then only what
//! the test sets is added; it serves HTTP on a free port of its own
//! (`logs/http.addr`), never the default 9898, since many run at once.
//! The domain helpers ([`super::sandbox::Sandbox`], [`super::amqp::App`],
//! [`super::split::RoleProc`], [`super::history`]) are thin wrappers over
//! this builder. [`Launch::command`] is the escape hatch for the tests of
//! the command line itself that need a plain [`Command`].

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_modelwatch"))
}

/// The shipped configuration file, by absolute path.
pub fn default_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml")
}

/// True for the variables of the calling shell a child must not inherit.
fn behaviour_variable(k: &str) -> bool {
    k.starts_with("MODELWATCH")
        || matches!(
            k,
            "AMQP_URL" | "RUST_LOG" | "FAILPOINTS" | "RUST_BACKTRACE" | "NO_COLOR"
        )
}

/// Where the child's stdout and stderr go.
#[derive(Debug, Clone)]
enum Output {
    /// Pipes, read to the end by threads ([`Proc::wait`] returns them).
    Piped,
    /// `stdout.txt` and `stderr.txt` in this folder (read while it runs).
    Files(PathBuf),
    /// Nowhere.
    Null,
}

/// How to start one `modelwatch` process. Options that take a path or URL
/// become the command line's own flags, in this order: subcommand,
/// `--config`, `--roles`, `--amqp-url`, `--logs-dir`, then [`Launch::args`].
#[derive(Debug)]
pub struct Launch {
    exe: PathBuf,
    subcommand: Option<String>,
    config: Option<PathBuf>,
    roles: Option<String>,
    broker: Option<String>,
    logs: Option<PathBuf>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    output: Output,
    /// A temporary folder the [`Proc`] owns (and removes on drop).
    dir: Option<tempfile::TempDir>,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch::new()
    }
}

impl Launch {
    /// The binary with no arguments, stdout and stderr piped.
    pub fn new() -> Launch {
        Launch {
            exe: exe().to_path_buf(),
            subcommand: None,
            config: None,
            roles: None,
            broker: None,
            logs: None,
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            output: Output::Piped,
            dir: None,
        }
    }

    /// `modelwatch <sub>`.
    pub fn subcommand(mut self, sub: &str) -> Launch {
        self.subcommand = Some(sub.to_owned());
        self
    }

    /// `run --config <default.toml>`: the usual start of a pipeline run.
    pub fn run() -> Launch {
        Launch::new().subcommand("run").config(default_config())
    }

    /// Another binary file (a copy of it, say).
    pub fn exe(mut self, exe: &Path) -> Launch {
        self.exe = exe.to_path_buf();
        self
    }

    /// `--config <path>`.
    pub fn config(mut self, path: impl Into<PathBuf>) -> Launch {
        self.config = Some(path.into());
        self
    }

    /// `--roles <roles>`.
    pub fn roles(mut self, roles: &str) -> Launch {
        self.roles = Some(roles.to_owned());
        self
    }

    /// `--amqp-url <url>`: the shared broker or a test's private one.
    pub fn broker(mut self, url: &str) -> Launch {
        self.broker = Some(url.to_owned());
        self
    }

    /// `--logs-dir <path>`.
    pub fn logs(mut self, path: impl Into<PathBuf>) -> Launch {
        self.logs = Some(path.into());
        self
    }

    /// More arguments, after the options above.
    pub fn args<I, S>(mut self, args: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// One variable of the child's environment (over the clean one).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Launch {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Several variables.
    pub fn envs<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Launch
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Whether the test set `key` itself.
    pub fn sets(&self, key: &str) -> bool {
        self.env.iter().any(|(k, _)| k == key)
    }

    /// `FAILPOINTS=<spec>` (the `fail` crate's fault points).
    pub fn failpoints(self, spec: &str) -> Launch {
        self.env("FAILPOINTS", spec)
    }

    /// The child's current dir.
    pub fn cwd(mut self, path: impl Into<PathBuf>) -> Launch {
        self.cwd = Some(path.into());
        self
    }

    /// stdout and stderr discarded.
    pub fn quiet(mut self) -> Launch {
        self.output = Output::Null;
        self
    }

    /// A fresh temporary folder `<tmp>` for this process, removed when the
    /// [`Proc`] drops: current dir `<tmp>/cwd` (empty: no stray model
    /// artifact is picked up), logs in `<tmp>/logs`, output in
    /// `<tmp>/stdout.txt` and `<tmp>/stderr.txt`.
    pub fn in_temp_dir(self, prefix: &str) -> Launch {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("creating a temp dir");
        self.in_dir(dir)
    }

    /// As [`Launch::in_temp_dir`] in `dir` (one a finished process left).
    pub fn in_dir(mut self, dir: tempfile::TempDir) -> Launch {
        let cwd = dir.path().join("cwd");
        if !cwd.exists() {
            std::fs::create_dir(&cwd).expect("creating the cwd");
        }
        self.cwd = Some(cwd);
        self.logs = Some(dir.path().join("logs"));
        self.output = Output::Files(dir.path().to_path_buf());
        self.dir = Some(dir);
        self
    }

    /// The command this describes, without spawning it (output piped or to
    /// files as set; the temporary folder, if any, stays with the builder).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.exe);
        if let Some(sub) = &self.subcommand {
            cmd.arg(sub);
        }
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        if let Some(roles) = &self.roles {
            cmd.arg("--roles").arg(roles);
        }
        if let Some(url) = &self.broker {
            cmd.arg("--amqp-url").arg(url);
        }
        if let Some(logs) = &self.logs {
            cmd.arg("--logs-dir").arg(logs);
        }
        cmd.args(&self.args);
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        for (k, _) in std::env::vars_os() {
            if behaviour_variable(&k.to_string_lossy()) {
                cmd.env_remove(&k);
            }
        }
        cmd.env("MODELWATCH__HTTP__LISTEN", "127.0.0.1:0");
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null());
        match &self.output {
            Output::Piped => {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            Output::Files(dir) => {
                cmd.stdout(File::create(dir.join("stdout.txt")).expect("stdout file"))
                    .stderr(File::create(dir.join("stderr.txt")).expect("stderr file"));
            }
            Output::Null => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        cmd
    }

    /// Starts the process.
    pub fn spawn(self) -> Proc {
        let cmd = self.command();
        Proc::spawn(cmd, self.dir)
    }
}

/// A running (or finished) child: killed, reaped and its temporary folder
/// removed when dropped.
pub struct Proc {
    child: Child,
    status: Option<ExitStatus>,
    started: Instant,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    dir: Option<tempfile::TempDir>,
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> Option<JoinHandle<String>> {
    r.map(|mut r| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    })
}

impl Proc {
    /// Spawns `cmd` (from [`Launch::command`], or a tool the test runs
    /// beside the binary) under the same guard, owning `dir` if given.
    pub fn spawn(mut cmd: Command, dir: Option<tempfile::TempDir>) -> Proc {
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", cmd.get_program()));
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Proc {
            child,
            status: None,
            started,
            stdout,
            stderr,
            dir,
        }
    }

    /// Takes over a child spawned by hand (its stdout read by the caller),
    /// under the same guard.
    pub fn adopt(child: Child, dir: Option<tempfile::TempDir>) -> Proc {
        Proc {
            child,
            status: None,
            started: Instant::now(),
            stdout: None,
            stderr: None,
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When it was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The temporary folder it owns ([`Launch::in_temp_dir`]).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("a process with a folder").path()
    }

    /// Takes its folder back (to start another process in it); the folder
    /// is then removed by whoever holds it.
    pub fn take_dir(&mut self) -> tempfile::TempDir {
        self.dir.take().expect("a process with a folder")
    }

    /// The exit status once it exited.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Still running? (Records the exit status once it has exited.)
    pub fn is_running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait().expect("waiting for a child") {
            Some(s) => {
                self.status = Some(s);
                false
            }
            None => true,
        }
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`...) with `kill(1)`, by pid.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(
            status.success(),
            "kill -{name} {} failed: {status}",
            self.pid()
        );
    }

    /// SIGKILL now (if still running) and reap it.
    pub fn kill(&mut self) -> ExitStatus {
        if self.is_running() {
            let _ = self.child.kill();
            self.status = Some(self.child.wait().expect("reaping a child"));
        }
        self.status.expect("exited")
    }

    /// Waits up to `timeout` for the exit (blocking); None if it is still
    /// running then.
    pub fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.status
    }

    /// As [`Proc::wait_for`], without blocking the test's runtime.
    pub async fn wait_for_async(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.status
    }

    /// What the piped stdout and stderr held, once it exited (empty when
    /// they were not piped).
    pub fn take_output(&mut self) -> (String, String) {
        let join = |h: Option<JoinHandle<String>>| h.map(|h| h.join().unwrap()).unwrap_or_default();
        (join(self.stdout.take()), join(self.stderr.take()))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // No panic here (it may run while a test unwinds): errors ignored.
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
