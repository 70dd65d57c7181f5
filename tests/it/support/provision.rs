//! What the integration tests need beyond the Rust toolchain, provisioned by
//! the tests themselves so that the README's `cargo test --locked` passes on a
//! fresh machine with RabbitMQ installed:
//!
//! - [`python_with_pika`]: a Python with pika and numpy (the tests' oracle
//!   of numpy-scaled features), in a venv under the target dir
//!   (`target/test-venv`), made once and shared by every test binary. Never the
//!   system Python (Debian refuses system-wide pip installs, and a test must
//!   not depend on what someone installed there). Creation runs under a file
//!   lock, so parallel test binaries do not race, and is idempotent: a venv
//!   that imports both is reused as it is.
//! - [`ensure_broker`]: starts RabbitMQ when 127.0.0.1:5672 does not answer
//!   (`rabbitmqctl start_app`, else `rabbitmq-server -detached`, then
//!   `rabbitmqctl await_startup`), bounded; panics, saying why, when it cannot.
//! - [`prometheus_tools`]: `prometheus` and `promtool` (PATH, else /usr/bin);
//!   when missing, installs Debian's `prometheus` package (`apt-get update`
//!   once, then `apt-get install -y --no-install-recommends prometheus`)
//!   under a file lock, bounded; panics, saying why, when it cannot. The
//!   package may enable a `prometheus` service of its own (port 9090, data
//!   in /var/lib/prometheus): the tests never use it, and leave it alone.
//!
//! Every external command runs with a time limit and is killed past it.

use std::fs::{self, File};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// pika as the tests use it; pinned so every machine runs the same client.
const PIKA: &str = "pika==1.3.2";
/// numpy, for features scaled as the original Python services scale them.
const NUMPY: &str = "numpy==2.4.6";
/// scikit-learn and scipy: the oracle of `train --data` (tests/oracle/tabular.py).
const SKLEARN: &str = "scikit-learn==1.9.1";
const SCIPY: &str = "scipy==1.17.1";
/// ONNX Runtime (its Python API, the oracle of the ONNX tests, and the
/// library `libonnxruntime.so` modelwatch runs ONNX models on) and the
/// exporter of scikit-learn models to ONNX (tests/oracle/onnx_models.py).
const ONNXRUNTIME: &str = "onnxruntime==1.32.0";
const SKL2ONNX: &str = "skl2onnx==1.20.0";
/// What the venv must import to be whole.
const IMPORTS: &str = "import pika, numpy, scipy, sklearn, onnxruntime, skl2onnx";
/// The broker the tests run against.
const BROKER_ADDR: &str = "127.0.0.1:5672";

/// The cargo target dir of this build (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// Runs `cmd` with stdout/stderr captured to files; kills it after `timeout`.
/// Ok(stdout) on exit 0, else Err(what happened, with the end of stderr).
pub fn run_bounded(what: &str, mut cmd: Command, timeout: Duration) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("{what}: temp dir: {e}"))?;
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out).map_err(|e| e.to_string())?)
        .stderr(File::create(&err).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: no exit within {timeout:?}; killed"));
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    };
    let stdout = fs::read_to_string(&out).unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        let stderr = fs::read_to_string(&err).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!("{what}: exited with {status}\n{}", tail.join("\n")))
    }
}

/// The Python interpreter of `target/test-venv`, with pika installed. Made on
/// first use (by whichever test binary gets the lock first); panics, saying
/// what failed, when it cannot be made.
pub fn python_with_pika() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| provision_venv().unwrap_or_else(|e| panic!("provisioning pika: {e}")))
        .clone()
}

fn provision_venv() -> Result<PathBuf, String> {
    let target = target_dir();
    fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let venv = target.join("test-venv");
    let python = venv.join("bin").join("python3");
    let lock_path = target.join("test-venv.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    // Blocks while another test binary provisions; released on drop.
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;

    let imports_pika = |python: &Path| {
        let mut cmd = Command::new(python);
        cmd.args(["-c", IMPORTS]);
        run_bounded(IMPORTS, cmd, Duration::from_secs(60)).is_ok()
    };
    if python.exists() && imports_pika(&python) {
        return Ok(python);
    }
    // Absent or half made (an interrupted earlier attempt): start over.
    if venv.exists() {
        fs::remove_dir_all(&venv).map_err(|e| format!("removing {}: {e}", venv.display()))?;
    }
    eprintln!(
        "provision: creating {} with {PIKA} {NUMPY} {SKLEARN} {SCIPY} {ONNXRUNTIME} {SKL2ONNX}",
        venv.display()
    );
    let mut mk = Command::new("python3");
    mk.args(["-m", "venv"]).arg(&venv);
    run_bounded("python3 -m venv", mk, Duration::from_secs(120)).map_err(|e| {
        format!("{e}\n(the tests need python3 with the venv module: apt-get install python3-venv)")
    })?;
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        PIKA,
        NUMPY,
        SKLEARN,
        SCIPY,
        ONNXRUNTIME,
        SKL2ONNX,
    ]);
    run_bounded(
        "pip install pika numpy scikit-learn scipy onnxruntime skl2onnx",
        pip,
        Duration::from_secs(900),
    )?;
    if !imports_pika(&python) {
        return Err(format!("{} still cannot: {IMPORTS}", python.display()));
    }
    Ok(python)
}

/// The ONNX Runtime library of the test venv's `onnxruntime` wheel
/// (`site-packages/onnxruntime/capi/libonnxruntime.so.<version>`): what a
/// user points `model.onnxruntime` or ORT_DYLIB_PATH at. Panics when the
/// venv has none.
pub fn onnxruntime_library() -> PathBuf {
    let python = python_with_pika();
    let lib = python
        .parent()
        .and_then(Path::parent)
        .map(|v| v.join("lib"));
    let found = lib
        .into_iter()
        .flat_map(|lib| fs::read_dir(lib).into_iter().flatten().flatten())
        .find_map(|py| {
            let capi = py.path().join("site-packages/onnxruntime/capi");
            fs::read_dir(capi)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libonnxruntime.so.1."))
                })
        });
    found.unwrap_or_else(|| panic!("the test venv's onnxruntime has no libonnxruntime.so.1.*"))
}

/// Finds an executable named `name` on PATH, else in /usr/bin.
fn find_executable(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn find_prometheus_tools() -> Option<(PathBuf, PathBuf)> {
    Some((find_executable("prometheus")?, find_executable("promtool")?))
}

/// `prometheus` and `promtool`, installed from Debian's `prometheus`
/// package when missing. Once per test binary; panics with what failed.
pub fn prometheus_tools() -> (PathBuf, PathBuf) {
    static TOOLS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    TOOLS
        .get_or_init(|| {
            provision_prometheus().unwrap_or_else(|e| panic!("provisioning prometheus: {e}"))
        })
        .clone()
}

fn provision_prometheus() -> Result<(PathBuf, PathBuf), String> {
    debian_tools(
        "test-prometheus.lock",
        &["prometheus"],
        "the Prometheus tests need Debian's prometheus package, which ships \
         prometheus and promtool: apt-get install prometheus, as root",
        find_prometheus_tools,
    )
}

/// Tools from Debian's `packages`, installed when `find` does not find
/// them: once across test binaries (a lock file under `target/`, checked
/// again once held), `apt-get update` then `apt-get install -y
/// --no-install-recommends`, each bounded in time. Fails with what failed
/// and `why` (what needs them and how to install them by hand).
pub fn debian_tools<T>(
    lock_name: &str,
    packages: &[&str],
    why: &str,
    find: impl Fn() -> Option<T>,
) -> Result<T, String> {
    if let Some(tools) = find() {
        return Ok(tools);
    }
    let target = target_dir();
    fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let lock_path = target.join(lock_name);
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    // Blocks while another test binary installs; released on drop.
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    if let Some(tools) = find() {
        return Ok(tools); // another test binary installed them meanwhile
    }
    let list = packages.join(" ");
    eprintln!("provision: not found; installing Debian's {list}");
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("NEEDRESTART_MODE", "a");
        cmd
    };
    // A stale or missing package list is the usual reason an install fails
    // on a fresh machine; a failed update still lets the install try.
    if let Err(e) = run_bounded("apt-get update", apt(&["update"]), Duration::from_secs(300)) {
        eprintln!("provision: {e}; trying the install anyway");
    }
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend_from_slice(packages);
    run_bounded(
        &format!("apt-get install {list}"),
        apt(&args),
        Duration::from_secs(900),
    )
    .map_err(|e| format!("{e}\n({why})"))?;
    find().ok_or_else(|| {
        format!("apt-get installed {list}, but its tools are on neither PATH nor /usr/bin")
    })
}

fn broker_answers() -> bool {
    let addr: SocketAddr = BROKER_ADDR.parse().expect("a socket address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Makes sure RabbitMQ answers at 127.0.0.1:5672, starting it if it is
/// installed but not running. Checked once per test binary; panics with what
/// failed when the broker cannot be had.
pub fn ensure_broker() {
    static UP: OnceLock<()> = OnceLock::new();
    UP.get_or_init(|| start_broker().unwrap_or_else(|e| panic!("{e}")));
}

fn start_broker() -> Result<(), String> {
    if broker_answers() {
        return Ok(());
    }
    let target = target_dir();
    fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let lock_path = target.join("test-broker.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    if broker_answers() {
        return Ok(()); // another test binary started it meanwhile
    }
    eprintln!("provision: RabbitMQ does not answer at {BROKER_ADDR}; starting it");
    // A node whose app was stopped only needs start_app; else start the node.
    let mut start_app = Command::new("rabbitmqctl");
    start_app.arg("start_app");
    if let Err(e) = run_bounded("rabbitmqctl start_app", start_app, Duration::from_secs(60)) {
        eprintln!("provision: {e}; trying rabbitmq-server -detached");
        let mut server = Command::new("rabbitmq-server");
        server.arg("-detached");
        run_bounded("rabbitmq-server -detached", server, Duration::from_secs(60))
            .map_err(|e| format!("cannot start RabbitMQ: {e}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = String::new();
    while Instant::now() < deadline {
        let mut wait = Command::new("rabbitmqctl");
        wait.args(["await_startup", "--timeout", "20"]);
        match run_bounded("rabbitmqctl await_startup", wait, Duration::from_secs(30)) {
            Ok(_) if broker_answers() => return Ok(()),
            Ok(_) => last = format!("await_startup succeeded but {BROKER_ADDR} does not answer"),
            Err(e) => last = e,
        }
        thread::sleep(Duration::from_secs(1));
    }
    Err(format!(
        "RabbitMQ did not come up at {BROKER_ADDR} within 120 s ({last}). The tests need it \
         installed (apt-get install rabbitmq-server)."
    ))
}
