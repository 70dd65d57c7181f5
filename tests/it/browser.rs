//! The dashboard and the predict form in a real headless Chromium (Debian's
//! `chromium` and `chromium-driver`, installed by the test when missing),
//! driven over WebDriver with fantoccini, against the real binary on a free
//! port:
//!
//! - `/`: the counters rise while the test watches (the page's EventSource
//!   gets `/events`), and the histogram is drawn: its canvas holds pixels
//!   of its bar colour and of its density curve's;
//! - `/` during a scenario run (`bmi += 10` from sample 3,000): the bmi row
//!   of the drift table turns drifted, the `feature_drift:bmi` and
//!   `mae_high` alerts appear in the alert list and as active, and the
//!   rolling-MAE chart draws its line and red alert marks;
//! - `/predict`: row 0 of `data/diabetes.csv` typed in raw units and
//!   submitted gives sklearn's prediction to the digits shown; bad input
//!   (age "abc", sex 3) shows the messages next to the fields and no
//!   prediction.
//!
//! - `/` of a metric process whose inbound queues are named with `"`, `'`,
//!   `\`, `<` and `]` (split layout, the real RabbitMQ on 127.0.0.1:5672,
//!   objects named for the test and deleted): every chart is drawn and the
//!   queue counters update (the script built a CSS selector from the name
//!   and threw).
//!
//! Screenshots go to `target/screenshots/` for a person to look at
//! (`dashboard-scenario.png` is the one `docs/dashboard.png` is taken from).

use crate::support;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::browser::Browser;
use crate::support::openmetrics::http_addr;
use crate::support::oracle;
use crate::support::sandbox::*;
use fantoccini::Locator;

fn screenshot_dir() -> PathBuf {
    let dir = support::browser::target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).expect("target/screenshots");
    dir
}

async fn save_screenshot(b: &Browser, name: &str) -> PathBuf {
    let png = b.client.screenshot().await.expect("a screenshot");
    let path = screenshot_dir().join(name);
    std::fs::write(&path, &png).expect("writing the screenshot");
    let (w, h) = assert_png_has_a_picture(&path);
    assert!(w >= 300 && h >= 300, "{}: {w}x{h}", path.display());
    path
}

async fn text_of(b: &Browser, css: &str) -> String {
    b.client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// Polls `f` every 100 ms until it returns `Some`; panics after `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn start_app(sb: &Sandbox) -> (Running, SocketAddr) {
    start_app_with(sb, &["--count", "0", "--rate", "300", "--seed", "9"], &[])
}

fn start_app_with(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> (Running, SocketAddr) {
    let logs = sb.logs();
    let mut cmd = sb.run_command(&logs, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let app = Running::spawn(cmd);
    let addr = http_addr(&logs, TIMEOUT);
    (app, addr)
}

/// Pixels of the first canvas under `css` within 24 (per channel) of the
/// colour `rgb`, opaque: -1 while there is no such canvas.
async fn pixels_of(b: &Browser, css: &str, rgb: [u8; 3]) -> i64 {
    let script = r#"
        const [css, r, g, b] = arguments;
        const c = document.querySelector(css);
        if (!c) return -1;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
            if (Math.abs(d[i] - r) <= 24 && Math.abs(d[i+1] - g) <= 24 &&
                Math.abs(d[i+2] - b) <= 24 && d[i+3] === 255) n++;
        return n;"#;
    let args = vec![
        serde_json::json!(css),
        serde_json::json!(rgb[0]),
        serde_json::json!(rgb[1]),
        serde_json::json!(rgb[2]),
    ];
    b.client
        .execute(script, args)
        .await
        .expect("execute")
        .as_i64()
        .unwrap_or(-1)
}

/// The histogram's bars (steel blue, as in the PNG) and density curve (dark blue).
const BAR_RGB: [u8; 3] = [0x46, 0x82, 0xb4];
const DENSITY_RGB: [u8; 3] = [0x08, 0x30, 0x6b];
/// The rolling charts' line and alert marks.
const LINE_RGB: [u8; 3] = [0x1f, 0x5f, 0xbf];
const ALERT_RGB: [u8; 3] = [0xb3, 0x26, 0x1e];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_updates_live_and_draws_its_charts() {
    let started = Instant::now();
    let sb = Sandbox::new();
    // The monitor off: the page before any window (the scenario test below
    // has the monitor's windows).
    let (app, addr) = start_app_with(
        &sb,
        &["--count", "0", "--rate", "300", "--seed", "9"],
        &[("MODELWATCH__MONITOR__ENABLED", "false")],
    );
    let b = Browser::start(1000, 1500).await;
    b.client
        .goto(&format!("http://{addr}/"))
        .await
        .expect("open /");

    // Live: the script marks the page, and the counter moves on screen.
    eventually("the page to go live", TIMEOUT, || async {
        (text_of(&b, "#live").await == "(live)").then_some(())
    })
    .await;
    let samples = |s: String| s.trim().parse::<u64>().unwrap_or(0);
    let first = samples(text_of(&b, "[data-k=samples]").await);
    let mut seen = vec![first];
    let deadline = Instant::now() + TIMEOUT;
    while seen.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the counter did not rise twice on screen: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = samples(text_of(&b, "[data-k=samples]").await);
        if now != *seen.last().unwrap() {
            seen.push(now);
        }
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");

    // The histogram is drawn: its canvas holds pixels of the bars' colour
    // and of the density curve's (the PNG's colours).
    let (bar_pixels, curve_pixels) = eventually(
        "histogram bars and curve on the canvas",
        TIMEOUT,
        || async {
            let bars = pixels_of(&b, "#c-hist canvas", BAR_RGB).await;
            let curve = pixels_of(&b, "#c-hist canvas", DENSITY_RGB).await;
            (bars > 500 && curve > 100).then_some((bars, curve))
        },
    )
    .await;
    let canvases = b
        .client
        .execute(
            "return document.querySelectorAll('.chart canvas').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        canvases, 1,
        "the histogram; the line charts wait for windows"
    );
    let hidden = b
        .client
        .execute("return document.getElementById('charts').hidden;", vec![])
        .await
        .unwrap();
    assert_eq!(hidden, true, "no windows: the line charts are hidden");
    // The drift table and alerts say so when the board is empty.
    assert_eq!(text_of(&b, "#drift tbody").await, "no windows yet");
    let shot = save_screenshot(&b, "dashboard.png").await;

    // Phone width: nothing wider than the screen.
    b.client.set_window_size(390, 1200).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let overflow = b
        .client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "wider than a phone by {overflow}"
    );
    save_screenshot(&b, "dashboard-phone.png").await;

    b.close().await;
    drop(app);
    println!(
        "browser: dashboard test {:?} ({} bar pixels, {} curve pixels; {})",
        started.elapsed(),
        bar_pixels,
        curve_pixels,
        shot.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bmi_shift_shows_its_drift_and_alerts_on_the_page() {
    let started = Instant::now();
    let sb = Sandbox::new();
    // 2,000 rows/s, a window closes every 500 rows (monitor.window's
    // default, which the baseline bands are for): the shift begins in the
    // seventh window, 1.5 s in; the monitor test shows the drift and MAE
    // alerts fire within three windows of it.
    let (app, addr) = start_app_with(
        &sb,
        &[
            "--count",
            "0",
            "--rate",
            "2000",
            "--seed",
            "11",
            "--scenario",
            "start=3000,bmi+=10",
        ],
        &[],
    );
    let b = Browser::start(1100, 1800).await;
    b.client
        .goto(&format!("http://{addr}/"))
        .await
        .expect("open /");

    // The drift table marks bmi, and only as the page updates (no reload).
    let drifted = eventually("bmi marked drifted", TIMEOUT, || async {
        let rows = b
            .client
            .find_all(Locator::Css("#drift tbody tr.drifted th"))
            .await
            .ok()?;
        let mut names = Vec::new();
        for r in rows {
            names.push(r.text().await.ok()?);
        }
        names.iter().any(|n| n == "bmi").then_some(names)
    })
    .await;
    let state = text_of(&b, "#drift tbody tr.drifted td:last-child").await;
    assert_eq!(state, "drifted");
    // Both alerts in the list, fired, and active.
    let events = eventually("the alerts in the list", TIMEOUT, || async {
        let t = b
            .client
            .find(Locator::Css("#events"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (t.contains("feature_drift:bmi fired") && t.contains("mae_high fired")).then_some(t)
    })
    .await;
    let fired = b
        .client
        .find_all(Locator::Css("#events li.fired"))
        .await
        .unwrap()
        .len();
    assert!(fired >= 2, "{events}");
    let active = text_of(&b, "#active").await;
    assert!(
        active.contains("feature_drift:bmi") && active.contains("mae_high"),
        "active: {active}"
    );

    // The rolling-MAE chart draws its line and the red marks of windows
    // with an alert; the histogram its bars and curve.
    let (line, marks) = eventually("the MAE chart's line and alert marks", TIMEOUT, || async {
        let line = pixels_of(&b, "#c-mae canvas", LINE_RGB).await;
        let marks = pixels_of(&b, "#c-mae canvas", ALERT_RGB).await;
        (line > 200 && marks > 20).then_some((line, marks))
    })
    .await;
    // The histogram is the plot's, published at each render (every
    // plot.interval, 2 s): its bars come with the first render that had rows.
    eventually("the histogram's bars", TIMEOUT, || async {
        (pixels_of(&b, "#c-hist canvas", BAR_RGB).await > 500).then_some(())
    })
    .await;
    // Let a few more windows in so the picture shows after the shift too,
    // and make the window as tall as the page (the screenshot is its view).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tall = b
        .client
        .execute(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];",
            vec![],
        )
        .await
        .unwrap();
    let (page, chrome) = (tall[0].as_u64().unwrap(), tall[1].as_u64().unwrap_or(0));
    b.client
        .set_window_size(1100, (page + chrome) as u32)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shot = save_screenshot(&b, "dashboard-scenario.png").await;

    // With the monitor's tables full, a phone's width still holds the page.
    b.client.set_window_size(390, 1200).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let overflow = b
        .client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    if overflow.as_i64().unwrap() > 0 {
        save_screenshot(&b, "dashboard-scenario-phone.png").await;
        let wide = b
            .client
            .execute(
                "const w = document.documentElement.clientWidth; return [...document.querySelectorAll('body *')]
                   .filter(e => e.getBoundingClientRect().right > w)
                   .slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
                vec![],
            )
            .await
            .unwrap();
        panic!("wider than a phone by {overflow}: {wide}");
    }
    save_screenshot(&b, "dashboard-scenario-phone.png").await;

    b.close().await;
    drop(app);
    println!(
        "browser: scenario test {:?} (drifted {drifted:?}, {fired} fired events, MAE chart {line} line / {marks} alert pixels; {})",
        started.elapsed(),
        shot.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_predict_form_gives_sklearns_prediction_and_refuses_bad_input_beside_the_field() {
    let started = Instant::now();
    let sb = Sandbox::new();
    let (app, addr) = start_app(&sb);
    let b = Browser::start(1000, 1400).await;
    b.client
        .goto(&format!("http://{addr}/predict"))
        .await
        .expect("open /predict");

    // Row 0 of the data file, read here, typed into the labelled inputs.
    let csv =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/diabetes.csv")).unwrap();
    let mut lines = csv.lines();
    let names: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row0: Vec<&str> = lines.next().unwrap().split(',').collect();
    for (name, value) in names.iter().zip(&row0).take(10) {
        let input = b
            .client
            .find(Locator::Css(&format!(
                "label[for=f-{name}] + input#f-{name}"
            )))
            .await
            .unwrap_or_else(|e| panic!("the labelled input of {name}: {e}"));
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    b.client
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let shown = eventually("the prediction", TIMEOUT, || async {
        let e = b.client.find(Locator::Id("prediction")).await.ok()?;
        e.text().await.ok()
    })
    .await;
    // sklearn's prediction of row 0 (support/oracle.rs: 206.116677...),
    // to the six decimals the page shows.
    let want = oracle::rows()[0].prediction;
    assert_eq!(shown, format!("{want:.6}"), "sklearn: {want}");
    assert_eq!(shown, "206.116677");
    let nearest = text_of(&b, "#nearest tbody tr:first-child").await;
    assert_eq!(
        nearest.split_whitespace().collect::<Vec<_>>(),
        ["0", "0.0000", "151"],
        "row 0 is its own nearest row"
    );
    save_screenshot(&b, "predict.png").await;

    // Bad input: the messages next to their fields, nothing predicted.
    for (name, value) in [("age", "abc"), ("sex", "3")] {
        let input = b
            .client
            .find(Locator::Id(&format!("f-{name}")))
            .await
            .unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    // Keyboard only: Enter in a field submits the form.
    b.client
        .find(Locator::Id("f-sex"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    let age_error = eventually("the age message", TIMEOUT, || async {
        let e = b
            .client
            .find(Locator::Css(".field.bad #e-age"))
            .await
            .ok()?;
        e.text().await.ok()
    })
    .await;
    assert_eq!(age_error, "Age is not a number");
    assert_eq!(text_of(&b, ".field.bad #e-sex").await, "Sex must be 1 or 2");
    // The message belongs to its input (read by screen readers with it).
    let described = b
        .client
        .find(Locator::Id("f-age"))
        .await
        .unwrap()
        .attr("aria-describedby")
        .await
        .unwrap();
    assert_eq!(described.as_deref(), Some("e-age"));
    assert!(
        b.client.find(Locator::Id("prediction")).await.is_err(),
        "a prediction was shown"
    );
    // What was typed stays in the form.
    let age = b
        .client
        .find(Locator::Id("f-age"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(age.as_deref(), Some("abc"));
    save_screenshot(&b, "predict-refused.png").await;

    b.close().await;
    drop(app);
    println!("browser: predict test {:?}", started.elapsed());
}

/// Issue 18: a queue name with `"` made the page's script throw ("bad
/// update: SyntaxError") and draw no chart. Any name a user can configure
/// must leave the page working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_names_with_quotes_and_brackets_leave_every_chart_drawn() {
    // Its source must finish within START: a throughput deadline.
    let _timing = crate::support::serial::timing_lock_async().await;
    use crate::support::split::{ensure_broker, TestBroker, START, STOP};
    ensure_broker();
    let mut broker = TestBroker::new("browserq");
    broker.truth_queue = format!("{}.y_true\"'\\<]", broker.prefix);
    broker.pred_queue = format!("{}.y_pred]<b>\"x\"\\'", broker.prefix);
    let mut metric = broker.spawn("metric", "metric,plot", &[]);
    let addr = http_addr(&metric.logs_dir(), START);
    metric.wait_log("inbound consumer started", 2, START).await;
    // 1,000 rows/s: a monitor window (500 rows) every half second.
    let mut source = broker.spawn(
        "source",
        "features,model",
        &["--count", "0", "--rate", "1000"],
    );
    let b = Browser::start(1000, 1800).await;
    b.client
        .goto(&format!("http://{addr}/"))
        .await
        .expect("open /");
    // Each line chart draws its line, the histogram its bars; the page
    // stays live (no "bad update").
    for id in ["c-mae", "c-rmse", "c-r2", "c-bias"] {
        let css = format!("#{id} canvas");
        eventually(&format!("{id} drawn"), TIMEOUT, || async {
            let live = text_of(&b, "#live").await;
            assert!(!live.contains("bad update"), "{live}");
            (pixels_of(&b, &css, LINE_RGB).await > 50).then_some(())
        })
        .await;
    }
    eventually("histogram bars drawn", TIMEOUT, || async {
        (pixels_of(&b, "#c-hist canvas", BAR_RGB).await > 500).then_some(())
    })
    .await;
    assert_eq!(text_of(&b, "#live").await, "(live)");
    // The two queues' counters are on the page and move as it updates.
    let cell = |name: String| {
        let b = &b;
        async move {
            b.client
                .execute(
                    "const k = 'q:' + arguments[0];
                     const el = Array.from(document.querySelectorAll('[data-k]'))
                         .find(e => e.getAttribute('data-k') === k);
                     return el ? el.textContent : null;",
                    vec![serde_json::json!(name)],
                )
                .await
                .expect("execute")
                .as_str()
                .map(str::to_owned)
        }
    };
    let delivered = |text: &str| -> u64 {
        text.split(" / ")
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    for q in [broker.truth_queue.clone(), broker.pred_queue.clone()] {
        let first = cell(q.clone())
            .await
            .unwrap_or_else(|| panic!("no counter of {q:?} on the page"));
        eventually(&format!("{q:?} counter moves"), TIMEOUT, || {
            let q = q.clone();
            let first = first.clone();
            async move {
                let now = cell(q).await?;
                (delivered(&now) > delivered(&first)).then_some(())
            }
        })
        .await;
    }
    save_screenshot(&b, "dashboard-hostile-queue-names.png").await;
    b.close().await;
    // The bridge drains its backlog before the source exits (every confirm
    // extends its wait); beside Chromium and another test on 2 cores that
    // took longer than STOP in CI. What this test checks is the page.
    source.stop(3 * STOP).await;
    metric.stop(STOP).await;
}
