//! The command blocks of `README.md` and `docs/*.md`, run as printed
//! against the binary the tests built, so the docs cannot drift from the
//! program (issue 19, item 8: the README's split layout had stopped working
//! and nothing noticed).
//!
//! A fenced block whose info string starts with `sh run` is run; the tag's
//! attributes (`until-stopped`, `during`, `broker`, `expect=FILE,...`) and
//! how each is run are documented at the top of `docs/testing.md`. In
//! short: each block runs with `bash -e` in a fresh temp folder holding
//! copies of the repository's `config/` and `examples/`, the built
//! `modelwatch` first on `PATH`, `HOME` in the temp folder, and none of the
//! caller's `MODELWATCH*`, `AMQP_URL`, `RUST_LOG`, `FAILPOINTS`. The
//! README's `cargo run --release -- ARGS` (start the program from the
//! repository's root) is mapped to the built `modelwatch ARGS`, and
//! `cargo run --example consume -- ARGS` to the built example: with the
//! copy of `config/` the program reads in the temp folder what it would
//! read from the repository's root, and its `logs/` are the test's.
//!
//! Every fenced block of the README must be run, be `text`, or be the test
//! command itself (`cargo test --locked`), which is not run: it is the
//! command that runs this test.
//!
//! A block tagged `broker` gets a private RabbitMQ node (started once for
//! the test, stopped after), its `127.0.0.1:5672` replaced by the node's
//! address: the pipeline declares fixed names (`ml_pipeline`, the legacy
//! queues), which must not land on the machine's shared broker.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::private_broker::PrivateBroker;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
/// A block that ends by itself must end within this.
const BLOCK: Duration = Duration::from_secs(120);
/// An `until-stopped` block must serve `/health` and write a row within this.
const START: Duration = Duration::from_secs(60);
/// ... and exit after SIGINT within this.
const STOP: Duration = Duration::from_secs(30);
/// A line of a `during` block still running after this passes (`tail -F`).
const LINE: Duration = Duration::from_secs(3);

/// How a tagged block is run.
#[derive(Debug, Default)]
struct Tag {
    until_stopped: bool,
    during: bool,
    broker: bool,
    /// `python3` is the test venv's (scikit-learn, skl2onnx, onnxruntime).
    python: bool,
    expect: Vec<String>,
}

/// A fenced block of a markdown file.
#[derive(Debug)]
struct Block {
    /// `README.md:42` (the opening fence).
    at: String,
    /// The info string after the fence.
    info: String,
    body: String,
}

impl Block {
    /// The tag of a `sh run ...` block, `None` for any other block; an
    /// unknown attribute is an error.
    fn tag(&self) -> Result<Option<Tag>, String> {
        let mut words = self.info.split_whitespace();
        if (words.next(), words.next()) != (Some("sh"), Some("run")) {
            return Ok(None);
        }
        let mut tag = Tag::default();
        for w in words {
            match w {
                "until-stopped" => tag.until_stopped = true,
                "during" => tag.during = true,
                "broker" => tag.broker = true,
                "python" => tag.python = true,
                _ => match w.strip_prefix("expect=") {
                    Some(files) => tag.expect.extend(files.split(',').map(str::to_owned)),
                    None => {
                        return Err(format!("{}: unknown attribute {w:?} of `sh run`", self.at))
                    }
                },
            }
        }
        if tag.until_stopped && tag.during {
            return Err(format!("{}: `until-stopped` and `during` at once", self.at));
        }
        Ok(Some(tag))
    }
}

/// The fenced blocks of `rel` (a fence of N backticks closes at a line of at
/// least N backticks alone, so blocks can show fences).
fn blocks(rel: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(Path::new(MANIFEST).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, String, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let ticks = line.chars().take_while(|&c| c == '`').count();
        match &mut open {
            None if ticks >= 3 => {
                open = Some((i + 1, ticks, line[ticks..].trim().to_owned(), String::new()));
            }
            None => {}
            Some((start, n, info, body)) => {
                if ticks >= *n && line.trim_end().len() == ticks {
                    out.push(Block {
                        at: format!("{rel}:{start}"),
                        info: std::mem::take(info),
                        body: std::mem::take(body),
                    });
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "{rel}: a fenced block does not end");
    out
}

/// The markdown files whose blocks are run: the README and every page of docs/.
fn pages() -> Vec<String> {
    let mut pages = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(Path::new(MANIFEST).join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

#[test]
fn every_block_of_the_readme_is_run_or_is_text_or_the_test_command() {
    let mut wrong = Vec::new();
    let mut run = 0;
    for b in blocks("README.md") {
        match b.tag() {
            Ok(Some(_)) => run += 1,
            Ok(None) if b.info == "text" => {}
            Ok(None) if b.info == "sh" && b.body.trim() == "cargo test --locked" => {}
            Ok(None) => wrong.push(format!(
                "{}: ```{} is neither `sh run ...`, `text` nor the test command",
                b.at, b.info
            )),
            Err(e) => wrong.push(e),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(run >= 3, "only {run} blocks of the README are run");
    let test_command = blocks("README.md")
        .iter()
        .filter(|b| b.info == "sh" && b.body.trim() == "cargo test --locked")
        .count();
    assert_eq!(test_command, 1, "the README's test command, once");
}

/// The test's folder: `work/` (the block's cwd, with copies of `config/`
/// and `examples/`) and `home/`; removed when dropped.
struct Folder {
    _dir: tempfile::TempDir,
    work: PathBuf,
    home: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(e.file_name()));
        } else {
            std::fs::copy(&path, to.join(e.file_name())).unwrap();
        }
    }
}

impl Folder {
    fn new() -> Folder {
        let dir = tempfile::tempdir().expect("a temp dir");
        let work = dir.path().join("work");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        for sub in ["config", "examples"] {
            copy_dir(&Path::new(MANIFEST).join(sub), &work.join(sub));
        }
        Folder {
            _dir: dir,
            work,
            home,
        }
    }
}

/// The compiled `consume` example (`target/<profile>/examples/consume`),
/// built when missing or older than its source (`cargo test --test it readme::`
/// does not build examples).
fn consume_example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("examples").join("consume");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let source = Path::new(MANIFEST).join("examples/consume.rs");
    let fresh = matches!((modified(&bin), modified(&source)), (Some(b), Some(s)) if b >= s);
    if !fresh {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--example", "consume"])
            .current_dir(MANIFEST);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cargo build --example consume");
        assert!(status.success(), "cargo build --example consume: {status}");
    }
    bin
}

/// What the blocks of one test share: the private broker (started on
/// first use) and the paths put on `PATH`.
struct Env {
    broker: Option<PrivateBroker>,
    python_dir: Option<PathBuf>,
    consume: Option<PathBuf>,
}

impl Env {
    /// The block's text as run: the README's `cargo run` forms mapped to
    /// the built binaries, the broker's address replaced.
    fn script(&mut self, b: &Block, tag: &Tag) -> String {
        let mut s = b.body.replace("cargo run --release --", "modelwatch");
        if s.contains("cargo run --example consume --") {
            let bin = self.consume.get_or_insert_with(consume_example);
            s = s.replace("cargo run --example consume --", &bin.display().to_string());
        }
        if tag.broker {
            let broker = self
                .broker
                .get_or_insert_with(|| PrivateBroker::start("readme"));
            s = s.replace("127.0.0.1:5672", &format!("127.0.0.1:{}", broker.port));
        }
        if (tag.broker || tag.python) && self.python_dir.is_none() {
            let python = crate::support::provision::python_with_pika();
            self.python_dir = python.parent().map(Path::to_path_buf);
        }
        s
    }

    /// `bash ARGS` in `folder`, its own process group, output to files
    /// beside the work dir.
    fn bash(&self, folder: &Folder, args: &[&str], name: &str) -> Child {
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_modelwatch"))
            .parent()
            .unwrap()
            .to_path_buf();
        let mut path = vec![bin_dir];
        path.extend(self.python_dir.clone());
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let out = |suffix: &str| {
            std::fs::File::create(folder.work.with_file_name(format!("{name}.{suffix}")))
                .expect("an output file")
        };
        let mut cmd = Command::new("bash");
        cmd.args(args)
            .current_dir(&folder.work)
            .env("PATH", std::env::join_paths(path).unwrap())
            .env("HOME", &folder.home)
            .stdin(Stdio::null())
            .stdout(out("stdout"))
            .stderr(out("stderr"));
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("MODELWATCH")
                || matches!(k.as_str(), "AMQP_URL" | "RUST_LOG" | "FAILPOINTS")
            {
                cmd.env_remove(&k);
            }
        }
        cmd.process_group(0);
        cmd.spawn().expect("bash")
    }
}

/// The stdout and stderr a block left, for a failure message.
fn output(folder: &Folder, name: &str) -> String {
    let read = |suffix: &str| {
        std::fs::read_to_string(folder.work.with_file_name(format!("{name}.{suffix}")))
            .unwrap_or_default()
    };
    let tail = |t: String| {
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        tail(read("stdout")),
        tail(read("stderr"))
    )
}

fn signal_group(child: &Child, sig: libc::c_int) {
    // SAFETY: killpg only sends a signal to the group this test started.
    unsafe {
        libc::killpg(child.id() as libc::pid_t, sig);
    }
}

/// Waits for `child` at most `limit`; kills its group and returns `None`
/// past it.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("waiting for bash") {
            return Some(s);
        }
        if Instant::now() > deadline {
            signal_group(child, libc::SIGKILL);
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The status code of `GET path` at `addr`, if it answers.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Rows of `logs/metric_log.csv` under `work`.
fn rows(work: &Path) -> usize {
    std::fs::read_to_string(work.join("logs/metric_log.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// Waits until the program started by an `until-stopped` block serves
/// `/health` at the address of its `logs/http.addr` and has written a row.
fn wait_started(child: &mut Child, work: &Path) -> Result<SocketAddr, String> {
    let deadline = Instant::now() + START;
    let mut addr = None;
    loop {
        if addr.is_none() {
            addr = std::fs::read_to_string(work.join("logs/http.addr"))
                .ok()
                .and_then(|t| t.trim().parse::<SocketAddr>().ok());
        }
        if let Some(a) = addr {
            if http_status(a, "/health") == Some(200) && rows(work) > 0 {
                return Ok(a);
            }
        }
        if let Some(s) = child.try_wait().expect("waiting for bash") {
            return Err(format!("ended ({s}) before it was stopped"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no /health 200 at {addr:?} (logs/http.addr) with a row in logs/metric_log.csv after {START:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs each line of a `during` block while the program runs.
fn run_during(env: &Env, folder: &Folder, b: &Block, addr: SocketAddr) -> Vec<String> {
    let mut errors = Vec::new();
    for (i, line) in b.body.lines().enumerate() {
        let code = line.trim();
        if code.is_empty() || code.starts_with('#') {
            continue;
        }
        let code = code.replace("127.0.0.1:9898", &addr.to_string());
        let name = format!("during-{i}");
        let mut child = env.bash(folder, &["-c", &code], &name);
        let deadline = Instant::now() + LINE;
        let status = loop {
            if let Some(s) = child.try_wait().expect("waiting for bash") {
                break Some(s);
            }
            if Instant::now() > deadline {
                signal_group(&child, libc::SIGTERM);
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Some(s) = status.filter(|s| !s.success()) {
            errors.push(format!(
                "{} line {}: `{code}` exited {s}\n{}",
                b.at,
                i + 1,
                output(folder, &name)
            ));
        }
    }
    errors
}

/// Files an `expect=` names that are missing or empty.
fn missing(work: &Path, tag: &Tag) -> Vec<String> {
    tag.expect
        .iter()
        .filter(|f| std::fs::metadata(work.join(f)).map_or(true, |m| m.len() == 0))
        .cloned()
        .collect()
}

/// Runs one block that is not `during` (with the `during` blocks that
/// follow it when it runs until stopped); the errors found.
fn run_block(env: &mut Env, b: &Block, tag: &Tag, during: &[&Block]) -> Vec<String> {
    let folder = Folder::new();
    let script = env.script(b, tag);
    let script_path = folder.work.with_file_name("block.sh");
    std::fs::write(&script_path, &script).unwrap();
    let script_arg = script_path.display().to_string();
    let mut child = env.bash(&folder, &["-e", &script_arg], "block");
    let started = Instant::now();
    let mut errors = Vec::new();
    let status = if tag.until_stopped {
        match wait_started(&mut child, &folder.work) {
            Ok(addr) => {
                for d in during {
                    errors.extend(run_during(env, &folder, d, addr));
                }
                // Ctrl-C in a terminal: SIGINT to the foreground group.
                signal_group(&child, libc::SIGINT);
                wait_bounded(&mut child, STOP)
            }
            Err(e) => {
                signal_group(&child, libc::SIGKILL);
                let _ = child.wait();
                errors.push(format!("{}: {e}\n{}", b.at, output(&folder, "block")));
                return errors;
            }
        }
    } else {
        wait_bounded(&mut child, BLOCK)
    };
    match status {
        None => errors.push(format!(
            "{}: still running after {:?}; killed\n{}",
            b.at,
            if tag.until_stopped { STOP } else { BLOCK },
            output(&folder, "block")
        )),
        Some(s) if !s.success() => errors.push(format!(
            "{}: exited {s}\n--- script\n{script}{}",
            b.at,
            output(&folder, "block")
        )),
        Some(_) => {
            let gone = missing(&folder.work, tag);
            if !gone.is_empty() {
                errors.push(format!(
                    "{}: missing or empty after it ran: {gone:?}\n{}",
                    b.at,
                    output(&folder, "block")
                ));
            }
        }
    }
    eprintln!(
        "{}: {} in {:.1} s",
        b.at,
        if errors.is_empty() { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    errors
}

#[test]
fn the_tagged_command_blocks_of_the_readme_and_docs_run_as_printed() {
    let mut env = Env {
        broker: None,
        python_dir: None,
        consume: None,
    };
    let mut errors = Vec::new();
    let mut ran = 0;
    for page in pages() {
        let tagged: Vec<(Block, Tag)> = blocks(&page)
            .into_iter()
            .filter_map(|b| match b.tag() {
                Ok(Some(t)) => Some((b, t)),
                Ok(None) => None,
                Err(e) => {
                    errors.push(e);
                    None
                }
            })
            .collect();
        for (i, (b, tag)) in tagged.iter().enumerate() {
            if tag.during {
                let after_until = tagged[..i]
                    .iter()
                    .rev()
                    .find(|(_, t)| !t.during)
                    .is_some_and(|(_, t)| t.until_stopped);
                if !after_until {
                    errors.push(format!(
                        "{}: a `during` block must follow an `until-stopped` one",
                        b.at
                    ));
                }
                continue;
            }
            let during: Vec<&Block> = tagged[i + 1..]
                .iter()
                .take_while(|(_, t)| t.during)
                .map(|(b, _)| b)
                .collect();
            ran += 1 + during.len();
            errors.extend(run_block(&mut env, b, tag, &during));
        }
    }
    drop(env.broker.take());
    assert!(ran > 0, "no `sh run` block found");
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}
