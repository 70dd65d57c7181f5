//! A real headless Chromium driven over WebDriver (fantoccini), for the
//! dashboard's browser tests.
//!
//! - [`chromium_tools`]: `chromium` and `chromedriver` (PATH, else
//!   /usr/bin); when missing, installs Debian's `chromium` and
//!   `chromium-driver` packages (`apt-get update` once, then `apt-get
//!   install -y --no-install-recommends chromium chromium-driver`, as root)
//!   under a file lock, bounded; panics, saying why, when it cannot. Never
//!   skips: a browser test that cannot run fails.
//! - [`Browser::start`]: chromedriver on a free port, and through it one
//!   Chromium session: headless, `--no-sandbox` (root), a fresh
//!   `--user-data-dir` (deleted after), background networking, component
//!   updates and sync off, a 1000 px wide window. Dropping the [`Browser`]
//!   kills chromedriver and every process it started, by PID.
//!

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::provision::debian_tools;

/// The cargo target dir of this build (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
pub fn target_dir() -> PathBuf {
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

fn find_executable(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn find_tools() -> Option<(PathBuf, PathBuf)> {
    Some((
        find_executable("chromium")?,
        find_executable("chromedriver")?,
    ))
}

/// `(chromium, chromedriver)`, installed from Debian when missing. Once per
/// test binary; panics with what failed.
pub fn chromium_tools() -> (PathBuf, PathBuf) {
    static TOOLS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    TOOLS
        .get_or_init(|| provision().unwrap_or_else(|e| panic!("provisioning chromium: {e}")))
        .clone()
}

fn provision() -> Result<(PathBuf, PathBuf), String> {
    debian_tools(
        "test-chromium.lock",
        &["chromium", "chromium-driver"],
        "the browser tests need Debian's chromium and chromium-driver packages: \
         apt-get install chromium chromium-driver, as root",
        find_tools,
    )
}

/// Every descendant of `pid` (from /proc), deepest last.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces.
            if let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) {
                if let Some(ppid) = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok())
                {
                    parent_of.push((child, ppid));
                }
            }
        }
    }
    let mut out = vec![];
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &parent_of {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// chromedriver, its Chromium, and a WebDriver session.
pub struct Browser {
    pub client: fantoccini::Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium `width` px wide.
    pub async fn start(width: u32, height: u32) -> Browser {
        let (chromium, chromedriver) = chromium_tools();
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", chromedriver.display()));
        let profile = tempfile::Builder::new()
            .prefix("modelwatch-chromium-")
            .tempdir()
            .expect("a temp dir");
        // The guard exists before anything can fail: a panic kills the driver.
        let mut guard = Guard(Some(driver));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    format!("--user-data-dir={}", profile.path().display()),
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let client = tokio::time::timeout(
            Duration::from_secs(60),
            fantoccini::ClientBuilder::new(
                hyper_util::client::legacy::connect::HttpConnector::new(),
            )
            .capabilities(caps)
            .connect(&format!("http://{addr}")),
        )
        .await
        .expect("a WebDriver session within 60 s")
        .expect("a WebDriver session");
        Browser {
            client,
            driver: guard.0.take().expect("the driver"),
            _profile: profile,
        }
    }

    /// Ends the session (Chromium quits), then the driver.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.clone().close()).await;
        // Drop kills whatever is left.
    }
}

struct Guard(Option<Child>);

fn kill_tree(child: &mut Child) {
    let pid = child.id();
    for p in descendants(pid).into_iter().rev() {
        let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            kill_tree(&mut c);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_tree(&mut self.driver);
    }
}
