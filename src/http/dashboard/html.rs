//! The HTML of the dashboard and of the predict form, rendered on the
//! server, so that without JavaScript both are readable pages of numbers
//! and the form works as a plain form POST.
//!
//! No template engine: a page is a few `write!`s, and everything that comes
//! from outside (rule names, alert messages, feature names, model paths,
//! what a person typed) goes through [`esc`]. The JSON embedded for the
//! script is escaped for a `<script>` element by [`json_for_script`]. The
//! page's own script (`assets/dashboard.js`) and stylesheet
//! (`assets/dashboard.css`) are separate, cached files; no external fonts.

use std::fmt::Write as _;

use crate::core::data::N_FEATURES;
use crate::http::dashboard::predict::{Answer, FieldError, FieldSpec, RANGES};
use crate::http::dashboard::predict_own::OwnModel;
use crate::http::dashboard::snapshot::{ModelInfo, Snapshot};
use crate::monitor::report::Drift;

/// Beside "Drift" when the latest window had no features (the same text
/// as `dashboard.js` writes).
const NO_FEATURES: &str =
    "(no features: the last window's features never reached the monitor, drift is not watched)";

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that is safe inside a `<script type="application/json">` element:
/// no `<` (so no `</script>`), and no line separators.
pub fn json_for_script(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A number for a person: `-` when it is not finite.
fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "-".into()
    }
}

/// The line under the histogram (the script writes the same words).
pub fn hist_summary(
    h: &crate::plot::view::HistogramView,
    baseline: Option<&crate::model::baseline::Baseline>,
) -> String {
    let mut s = format!(
        "{} rows at the last render of the plot, mean {}, largest {}",
        h.rows,
        num(h.mean, 2),
        num(h.max, 2)
    );
    if let Some(b) = baseline.filter(|b| b.mae.mean.is_finite() && b.mae.mean > 0.0) {
        let _ = write!(
            s,
            "; dashed red line: the training MAE, {}",
            num(b.mae.mean, 2)
        );
    }
    s.push('.');
    s
}

/// An alert event's message without its opening "Alert <rule> <state>: ",
/// which the list already shows in its own words.
pub fn event_detail(e: &crate::monitor::report::AlertEvent) -> &str {
    let opening = format!("Alert {} {}: ", e.rule, e.state);
    e.message.strip_prefix(&opening).unwrap_or(&e.message)
}

/// A p-value: scientific below 0.001.
fn pval(p: f64) -> String {
    if !p.is_finite() {
        "-".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// Uptime as `1h 02m 03s`.
pub fn uptime(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, s) => format!("{h}h {m:02}m {s:02}s"),
    }
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\" class=\"nojs\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title>\
         <link rel=\"stylesheet\" href=\"{}\">\
         <link rel=\"stylesheet\" href=\"{}\"></head>\n<body>\n\
         <header><h1>modelwatch</h1><nav aria-label=\"Pages\">\
         <a href=\"/\">Dashboard</a> <a href=\"/predict\">Predict</a> \
         <a href=\"/metrics\">/metrics</a></nav></header>\n<main>\n",
        esc(title),
        super::assets::UPLOT_CSS_PATH,
        super::assets::DASHBOARD_CSS_PATH,
    );
}

fn foot(out: &mut String) {
    out.push_str("</main>\n</body></html>\n");
}

/// One counter cell: `key` is what the script updates.
fn stat(out: &mut String, key: &str, label: &str, value: &str) {
    let _ = write!(
        out,
        "<div class=\"stat\"><dt>{}</dt><dd data-k=\"{}\">{}</dd></div>",
        esc(label),
        esc(key),
        esc(value)
    );
}

/// The drift table's rows (the script renders the same markup).
fn drift_rows(out: &mut String, drift: &[Drift]) {
    if drift.is_empty() {
        out.push_str("<tr><td colspan=\"5\">no windows yet</td></tr>");
        return;
    }
    for d in drift {
        let class = if d.drifted { " class=\"drifted\"" } else { "" };
        let _ = write!(
            out,
            "<tr{class}><th scope=\"row\">{}</th><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&d.name),
            pval(d.p_value),
            if d.test == "chi2" { " (χ²)" } else { "" },
            num(d.psi, 3),
            num(d.wasserstein, 3),
            verdict(d),
        );
    }
}

/// A drift row's verdict, with a column of the user's data's unseen
/// levels and missing share when it has any (the script says the same).
fn verdict(d: &Drift) -> String {
    let mut v = String::from(if d.drifted { "drifted" } else { "ok" });
    if let Some(n) = d.unseen.filter(|n| *n > 0) {
        let _ = write!(v, ", {n} unseen");
    }
    if let Some(m) = d.missing.filter(|m| *m > 0.0) {
        let _ = write!(v, ", {}% missing", ((m * 100.0).round() as u64).max(1));
    }
    v
}

/// The dashboard, with `snap`'s numbers rendered in: the counters now,
/// quality over time, the error histogram, drift, alerts, then the scripts.
pub fn dashboard(snap: &Snapshot) -> String {
    let mut out = String::with_capacity(16 * 1024);
    head(&mut out, "modelwatch: dashboard");
    now_section(&mut out, snap);
    quality_section(&mut out, snap);
    histogram_section(&mut out, snap);
    drift_section(&mut out, snap);
    alerts_section(&mut out, snap);
    let _ = writeln!(
        out,
        "<script src=\"{}\"></script><script src=\"{}\"></script>",
        super::assets::UPLOT_JS_PATH,
        super::assets::DASHBOARD_JS_PATH
    );
    foot(&mut out);
    out
}

/// "Now": the counters, the bridge, the inbound queues, the model.
fn now_section(out: &mut String, snap: &Snapshot) {
    let c = &snap.counters;
    out.push_str("<section aria-labelledby=\"h-now\"><h2 id=\"h-now\">Now <span id=\"live\" class=\"muted\" aria-live=\"polite\">(numbers as of page load)</span></h2><dl class=\"stats\">");
    stat(out, "rate", "Samples/s now", &num(c.rate, 1));
    stat(out, "samples", "Samples emitted", &c.samples.to_string());
    stat(out, "rows", "Rows written", &c.rows.to_string());
    stat(out, "waiting", "Waiting to join", &c.waiting.to_string());
    stat(
        out,
        "expired",
        "Expired (unmatched)",
        &c.expired.to_string(),
    );
    stat(
        out,
        "evicted",
        "Evicted (unmatched)",
        &c.evicted.to_string(),
    );
    stat(out, "uptime", "Uptime", &uptime(c.uptime_s));
    match &c.bridge {
        Some(b) => {
            stat(
                out,
                "bridge",
                "Broker",
                if b.connected {
                    "connected"
                } else {
                    "not connected"
                },
            );
            stat(out, "buffered", "Buffered", &b.buffered.to_string());
            stat(out, "resent", "Resent", &b.resent.to_string());
            stat(
                out,
                "bdropped",
                "Dropped (full buffer)",
                &b.dropped.to_string(),
            );
        }
        None => stat(out, "bridge", "Broker", "bridge off"),
    }
    for q in &c.inbound {
        stat(
            out,
            &format!("q:{}", q.queue),
            &format!("Queue {}: delivered / acked", q.queue),
            &format!("{} / {}", q.delivered, q.acked),
        );
    }
    match &snap.model {
        Some(m) => {
            let label = format!("Model {} (training)", m.score);
            stat(out, "model_r2", &label, &num(m.r2, 4));
            stat(out, "model_origin", "Model from", &m.origin);
        }
        None => stat(out, "model_r2", "Model", "runs in another process"),
    }
    out.push_str("</dl></section>\n");
}

/// "Quality over time": the latest window in words, and the charts' places.
fn quality_section(out: &mut String, snap: &Snapshot) {
    out.push_str(
        "<section aria-labelledby=\"h-quality\"><h2 id=\"h-quality\">Quality over time</h2>",
    );
    let latest = snap.windows.last();
    let figure =
        |v: Option<Option<f64>>, digits| v.flatten().map_or("-".into(), |v| num(v, digits));
    match latest {
        None => out.push_str("<p id=\"no-windows\">no windows yet: the monitor reports a window once enough rows are joined.</p>"),
        Some(p) if p.accuracy.is_some() => {
            let _ = write!(
                out,
                "<p id=\"no-windows\">Window {}: accuracy {}, log loss {}, ROC AUC {}, Brier {}.</p>",
                p.seq,
                figure(p.accuracy, 3),
                figure(p.log_loss, 3),
                figure(p.roc_auc, 3),
                figure(p.brier, 3)
            );
        }
        Some(p) => {
            let _ = write!(
                out,
                "<p id=\"no-windows\">Window {}: MAE {}, RMSE {}, R² {}, bias {}.</p>",
                p.seq,
                num(p.mae, 2),
                num(p.rmse, 2),
                p.r2.map_or("-".into(), |r| num(r, 3)),
                num(p.bias, 2)
            );
        }
    }
    let classifier = snap
        .baseline
        .as_ref()
        .is_some_and(|b| b.classification.is_some());
    // Without windows there is nothing to plot: the charts wait, hidden.
    let _ = write!(
        out,
        "<div class=\"charts\" id=\"charts\"{}>",
        if latest.is_none() { " hidden" } else { "" }
    );
    if classifier {
        out.push_str(
            "\
             <figure><figcaption>Accuracy</figcaption><div id=\"c-accuracy\" class=\"chart\"></div></figure>\
             <figure><figcaption>Log loss</figcaption><div id=\"c-log_loss\" class=\"chart\"></div></figure>\
             <figure><figcaption>ROC AUC</figcaption><div id=\"c-roc_auc\" class=\"chart\"></div></figure>\
             <figure><figcaption>Brier score</figcaption><div id=\"c-brier\" class=\"chart\"></div></figure>\
             <p class=\"muted wide\">Below, the same windows' error over the class indices the records carry (for two classes, MAE is the error rate).</p>",
        );
    }
    out.push_str(
        "\
         <figure><figcaption>MAE</figcaption><div id=\"c-mae\" class=\"chart\"></div></figure>\
         <figure><figcaption>RMSE</figcaption><div id=\"c-rmse\" class=\"chart\"></div></figure>\
         <figure><figcaption>R²</figcaption><div id=\"c-r2\" class=\"chart\"></div></figure>\
         <figure><figcaption>Bias (prediction − truth)</figcaption><div id=\"c-bias\" class=\"chart\"></div></figure>\
         </div><p class=\"muted\">Shaded: the training baseline band (1st–99th percentile); red marks: windows with an alert firing.</p></section>\n",
    );
}

/// "Absolute error": the histogram's summary and its bars as a table.
fn histogram_section(out: &mut String, snap: &Snapshot) {
    out.push_str("<section aria-labelledby=\"h-hist\"><h2 id=\"h-hist\">Absolute error</h2>\
                  <figure><figcaption>Rows per bar since start, and their density (Gaussian KDE, Scott's bandwidth): the bars and curve of <code>error_distribution.png</code></figcaption><div id=\"c-hist\" class=\"chart\"></div></figure>");
    match &snap.histogram {
        Some(h) => {
            let _ = write!(
                out,
                "<p class=\"muted\" id=\"hist-summary\">{}</p>",
                esc(&hist_summary(h, snap.baseline.as_ref()))
            );
            out.push_str("<table class=\"compact\" id=\"hist-table\"><caption class=\"sr\">Rows per absolute-error bar</caption><thead><tr><th scope=\"col\">Error from</th><th scope=\"col\">to</th><th scope=\"col\">Rows</th></tr></thead><tbody>");
            for (i, n) in h.counts.iter().enumerate() {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{n}</td></tr>",
                    num(i as f64 * h.bar_width, 1),
                    num((i + 1) as f64 * h.bar_width, 1)
                );
            }
            out.push_str("</tbody></table>");
        }
        None => out.push_str(
            "<p class=\"muted\" id=\"hist-summary\">No histogram here: it is drawn by the process with the plot role.</p>",
        ),
    }
    out.push_str("</section>\n");
}

/// "Drift": the share of drifted features and a row per feature.
fn drift_section(out: &mut String, snap: &Snapshot) {
    out.push_str("<div class=\"two\"><section aria-labelledby=\"h-drift\"><h2 id=\"h-drift\">Drift <span class=\"muted\" id=\"drift-share\">");
    if let Some(s) = snap.drift_share {
        let _ = write!(out, "({}% of features drifted)", num(s * 100.0, 0));
    } else if snap.no_features {
        out.push_str(NO_FEATURES);
    }
    out.push_str("</span></h2><table id=\"drift\"><thead><tr><th scope=\"col\">Feature</th><th scope=\"col\">p-value (KS)</th><th scope=\"col\">PSI</th><th scope=\"col\">Wasserstein / σ</th><th scope=\"col\">State</th></tr></thead><tbody>");
    drift_rows(out, &snap.drift);
    out.push_str("</tbody></table></section>\n");
}

/// "Alerts": the rules active now and the events, newest first.
fn alerts_section(out: &mut String, snap: &Snapshot) {
    out.push_str("<section aria-labelledby=\"h-alerts\"><h2 id=\"h-alerts\">Alerts</h2><p>Active: <span id=\"active\">");
    if snap.active_alerts.is_empty() {
        out.push_str("none");
    } else {
        let names: Vec<String> = snap.active_alerts.iter().map(|a| esc(a)).collect();
        let _ = write!(out, "<strong class=\"alert\">{}</strong>", names.join(", "));
    }
    out.push_str("</span></p><ol id=\"events\" reversed>");
    if snap.events.is_empty() {
        out.push_str("<li class=\"muted empty\">no alert events yet</li>");
    }
    for e in snap.events.iter().rev() {
        let _ = write!(
            out,
            "<li class=\"{}\"><strong>{}</strong> {} (window {}): {}</li>",
            if e.state == "fired" {
                "fired"
            } else {
                "resolved"
            },
            esc(&e.rule),
            esc(&e.state),
            e.seq,
            esc(event_detail(e))
        );
    }
    out.push_str("</ol></section></div>\n");
}

/// What the predict page shows below the form.
pub enum Outcome<'a> {
    /// The first visit: the form only.
    Blank,
    Refused(&'a [FieldError]),
    Answered(&'a Answer),
}

/// The predict form, with `values` (what the person typed, or a data row)
/// and the outcome.
pub fn predict(model: &ModelInfo, values: &[String; N_FEATURES], outcome: Outcome) -> String {
    let mut out = String::with_capacity(8 * 1024);
    head(&mut out, "modelwatch: predict");
    let errors: &[FieldError] = match outcome {
        Outcome::Refused(e) => e,
        _ => &[],
    };
    form_section(&mut out, model, values, errors);
    if let Outcome::Answered(a) = outcome {
        answer_section(&mut out, a);
    }
    foot(&mut out);
    out
}

/// "Ask the model": the model in words, the count of refused fields, and
/// a field per feature.
fn form_section(
    out: &mut String,
    model: &ModelInfo,
    values: &[String; N_FEATURES],
    errors: &[FieldError],
) {
    out.push_str("<section aria-labelledby=\"h-form\"><h2 id=\"h-form\">Ask the model</h2>");
    let origin = if model.origin == "fitted in memory" {
        "fitted in memory at start".to_owned()
    } else {
        format!("loaded from {}", esc(&model.origin))
    };
    let _ = write!(
        out,
        "<p class=\"muted\">Linear regression (training R² {}), {origin}. Values in the data's raw units; \
         prefilled with the first row of the data.</p>",
        num(model.r2, 4),
    );
    form_start(out, errors);
    for (spec, value) in RANGES.iter().zip(values) {
        field(out, spec, value, errors);
    }
    out.push_str("</div><button type=\"submit\">Predict</button></form></section>\n");
}

/// The count of refused fields (if any), and the form's opening up to
/// its fields.
fn form_start(out: &mut String, errors: &[FieldError]) {
    if !errors.is_empty() {
        let _ = write!(
            out,
            "<p id=\"form-error\" class=\"error\" role=\"alert\">{} field{} need{} a fix; nothing was predicted.</p>",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            if errors.len() == 1 { "s" } else { "" },
        );
    }
    out.push_str("<form method=\"post\" action=\"/predict\" novalidate><div class=\"fields\">");
}

/// One field of the form: its label, its input with `value`, and its
/// error when it was refused (the first refused field takes the focus).
fn field(out: &mut String, spec: &FieldSpec, value: &str, errors: &[FieldError]) {
    let err = errors.iter().find(|e| e.field == spec.name);
    let id = spec.name;
    let _ = write!(
        out,
        "<div class=\"field{}\"><label for=\"f-{id}\">{} <span class=\"muted\">({})</span></label>\
         <input id=\"f-{id}\" name=\"{id}\" type=\"text\" inputmode=\"decimal\" autocomplete=\"off\" \
         maxlength=\"{}\" value=\"{}\"{}>",
        if err.is_some() { " bad" } else { "" },
        esc(spec.label),
        esc(spec.unit),
        super::predict::MAX_FIELD_CHARS,
        esc(value),
        if err.is_some() {
            // The first refused field takes the focus: fix, then Enter.
            let focus = if errors.first().is_some_and(|e| e.field == spec.name) {
                " autofocus"
            } else {
                ""
            };
            format!(" aria-invalid=\"true\" aria-describedby=\"e-{id}\"{focus}")
        } else {
            String::new()
        },
    );
    if let Some(e) = err {
        let _ = write!(
            out,
            "<span class=\"error\" id=\"e-{id}\">{} {}</span>",
            esc(spec.label),
            esc(&e.message)
        );
    }
    out.push_str("</div>");
}

/// "Prediction": the answer, the scaled features the model saw, and the
/// nearest training rows.
fn answer_section(out: &mut String, a: &Answer) {
    let _ = write!(
        out,
        "<section aria-labelledby=\"h-answer\" id=\"answer\"><h2 id=\"h-answer\">Prediction</h2>\
         <p class=\"big\">Disease progression in one year: <output id=\"prediction\">{}</output></p>",
        num(a.prediction, 6)
    );
    out.push_str("<div class=\"two\"><div><h3>What the model saw (scaled features)</h3><table id=\"scaled\"><thead><tr><th scope=\"col\">Feature</th><th scope=\"col\">Raw</th><th scope=\"col\">Scaled</th></tr></thead><tbody>");
    for (j, spec) in RANGES.iter().enumerate() {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>",
            spec.name,
            a.raw.map_or("-".into(), |r| r[j].to_string()),
            num(a.scaled[j], 6)
        );
    }
    out.push_str("</tbody></table></div><div><h3>Nearest training rows</h3><table id=\"nearest\"><thead><tr><th scope=\"col\">Row</th><th scope=\"col\">Distance</th><th scope=\"col\">Target</th></tr></thead><tbody>");
    for n in &a.nearest {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            n.row,
            num(n.distance, 4),
            num(n.target, 0)
        );
    }
    out.push_str("</tbody></table><p class=\"muted\">Row: position in data/diabetes.csv (0 is the first); distance in scaled space.</p></div></div></section>\n");
}

/// What a post of the own model's form gave.
pub enum OwnOutcome<'a> {
    Blank,
    Refused(&'a [FieldError]),
    /// The JSON answer of [`super::predict_own::answer`].
    Answered(&'a serde_json::Value),
}

/// `/predict` in a run of the user's own data: a field per feature column
/// (a select of the training levels for a categorical one), labelled as
/// `[[data.columns]]` says, with `values` and the outcome.
pub fn predict_own(own: &OwnModel, values: &[String], outcome: OwnOutcome) -> String {
    let mut out = String::with_capacity(8 * 1024);
    head(&mut out, "modelwatch: predict");
    let errors: &[FieldError] = match outcome {
        OwnOutcome::Refused(e) => e,
        _ => &[],
    };
    let m = &own.model;
    out.push_str("<section aria-labelledby=\"h-form\"><h2 id=\"h-form\">Ask the model</h2>");
    let _ = write!(
        out,
        "<p class=\"muted\">{} of {} (training {} {}), from {}. Values as the data file has them; \
         prefilled with the training median or most common level.</p>",
        match (m.task, m.is_onnx()) {
            (crate::model::tabular::Task::Regression, false) => "Linear regression",
            (crate::model::tabular::Task::Classification, false) => "Logistic regression",
            (crate::model::tabular::Task::Regression, true) => "An ONNX regression",
            (crate::model::tabular::Task::Classification, true) => "An ONNX classifier",
        },
        esc(&m.target.name),
        match m.task {
            crate::model::tabular::Task::Regression => "R²",
            crate::model::tabular::Task::Classification => "accuracy",
        },
        num(m.training.score, 4),
        esc(&crate::core::text::sanitize(&own.origin)),
    );
    form_start(&mut out, errors);
    let shown_first = errors.first().map(|e| e.field.clone());
    for (j, (f, value)) in own.fields().iter().zip(values).enumerate() {
        let shown = crate::core::text::sanitize(f.name);
        let err = errors.iter().find(|e| e.field == shown);
        let invalid = match err {
            Some(_) => format!(
                " aria-invalid=\"true\" aria-describedby=\"e-{j}\"{}",
                if shown_first.as_deref() == Some(shown.as_str()) {
                    " autofocus"
                } else {
                    ""
                }
            ),
            None => String::new(),
        };
        let _ = write!(
            out,
            "<div class=\"field{}\"><label for=\"f-{j}\">{} <span class=\"muted\">({})</span></label>",
            if err.is_some() { " bad" } else { "" },
            esc(f.label),
            esc(&f.hint),
        );
        match f.levels {
            Some(levels) => {
                let _ = write!(
                    out,
                    "<select id=\"f-{j}\" name=\"{}\"{invalid}>",
                    esc(f.name)
                );
                for l in levels {
                    // The value as it is: a browser would send the text
                    // with its inner spaces collapsed.
                    let _ = write!(
                        out,
                        "<option value=\"{}\"{}>{}</option>",
                        esc(l),
                        if l == value { " selected" } else { "" },
                        esc(l)
                    );
                }
                out.push_str("</select>");
            }
            None => {
                let _ = write!(
                    out,
                    "<input id=\"f-{j}\" name=\"{}\" type=\"text\" inputmode=\"decimal\" autocomplete=\"off\" maxlength=\"{}\" value=\"{}\"{invalid}>",
                    esc(f.name),
                    super::predict::MAX_FIELD_CHARS,
                    esc(value),
                );
            }
        }
        if let Some(e) = err {
            let _ = write!(
                out,
                "<span class=\"error\" id=\"e-{j}\">{} {}</span>",
                esc(f.label),
                esc(&e.message)
            );
        }
        out.push_str("</div>");
    }
    out.push_str("</div><button type=\"submit\">Predict</button></form></section>\n");
    if let OwnOutcome::Answered(a) = outcome {
        let shown = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => esc(s),
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(v) if v.abs() < 1e9 => num(v, 6),
                Some(v) => esc(&super::predict_own::short_number(v)),
                None => "-".to_owned(),
            },
            other => esc(&other.to_string()),
        };
        let _ = write!(
            out,
            "<section aria-labelledby=\"h-answer\" id=\"answer\"><h2 id=\"h-answer\">Prediction</h2>\
             <p class=\"big\">{}: <output id=\"prediction\">{}</output></p>",
            esc(&m.target.name),
            shown(&a["prediction"]),
        );
        if let Some(p) = a.get("probabilities").and_then(|p| p.as_object()) {
            out.push_str("<table id=\"probabilities\"><thead><tr><th scope=\"col\">Class</th><th scope=\"col\">Probability</th></tr></thead><tbody>");
            for (class, v) in p {
                let _ = write!(
                    out,
                    "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                    esc(class),
                    num(v.as_f64().unwrap_or(f64::NAN), 4)
                );
            }
            out.push_str("</tbody></table>");
        }
        out.push_str("</section>\n");
    }
    foot(&mut out);
    out
}

/// The page of a process without the model role.
pub fn no_model() -> String {
    let mut out = String::new();
    head(&mut out, "modelwatch: no model here");
    out.push_str(
        "<h2>No model in this process</h2><p>This process does not run the <code>model</code> role, \
         so it cannot predict. Open <code>/predict</code> on the process started with the model role \
         (<code>--roles model</code>, or all roles).</p>",
    );
    foot(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::Telemetry;
    use crate::http::dashboard::snapshot::{self, tests::board};

    fn snap_of(b: &crate::monitor::report::BoardState) -> Snapshot {
        let t = Telemetry::new("test");
        let c = snapshot::counters(&t.metrics, std::time::Instant::now(), false, &[]);
        snapshot::build(c, None, b, None, None)
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(json_for_script("\"</script>\""), "\"\\u003c/script>\"");
    }

    #[test]
    fn an_event_shows_its_message_without_repeating_rule_and_state() {
        let mut e = board().events[0].clone();
        e.message = "Alert mae_high fired: mae = 70 > 50 for 2 windows in a row.".into();
        assert_eq!(event_detail(&e), "mae = 70 > 50 for 2 windows in a row.");
        e.state = "resolved".into();
        assert_eq!(event_detail(&e), e.message, "another opening stays whole");
    }

    #[test]
    fn the_histogram_is_the_plots_view_with_its_table_and_summary() {
        let mut h = crate::plot::histogram::ErrorHistogram::new();
        for v in [1.0, 2.0, 2.5, 9.0] {
            h.add(v);
        }
        let b = board();
        let mut snap = snap_of(&b);
        snap.histogram = Some(std::sync::Arc::new(crate::plot::view::HistogramView::of(
            &h, 3, 1,
        )));
        let html = dashboard(&snap);
        assert!(
            html.contains("4 rows at the last render of the plot, mean 3.62, largest 9.00; dashed red line: the training MAE, 43.00."),
            "{html}"
        );
        // Three bars of 9.000000009 / 3: [0, 3) holds 1, 2, 2.5; [6, 9] holds 9.
        assert!(html.contains("<tr><td>0.0</td><td>3.0</td><td>3</td></tr><tr><td>3.0</td><td>6.0</td><td>0</td></tr><tr><td>6.0</td><td>9.0</td><td>1</td></tr>"), "{html}");
        let none = dashboard(&snap_of(&b));
        assert!(none.contains("drawn by the process with the plot role"));
    }

    #[test]
    fn an_empty_board_says_no_windows_yet() {
        let html = dashboard(&snap_of(&Default::default()));
        assert!(html.contains("no windows yet"), "{html}");
        assert!(html.contains("no alert events yet"));
        assert!(html.contains(">bridge off<"));
    }

    #[test]
    fn the_drift_table_and_alerts_render_from_the_board_escaped() {
        let html = dashboard(&snap_of(&board()));
        assert!(!html.contains("no windows yet"));
        // bmi drifted: its row is marked and coloured by class; age is not.
        assert!(
            html.contains("<tr class=\"drifted\"><th scope=\"row\">bmi</th><td>1.0e-9</td><td>0.900</td><td>0.700</td><td>drifted</td></tr>"),
            "{html}"
        );
        assert!(html.contains("<tr><th scope=\"row\">age</th><td>0.400</td><td>0.020</td><td>0.030</td><td>ok</td></tr>"));
        assert!(html.contains("(50% of features drifted)"));
        assert!(html.contains("<strong class=\"alert\">mae_high</strong>"));
        // The alert's message came from outside: escaped.
        assert!(
            html.contains("MAE &lt;b&gt;43&lt;/b&gt; above 42"),
            "{html}"
        );
        assert!(!html.contains("<b>43</b>"));
        assert!(html.contains("Window 3: MAE 43.00, RMSE 53.00, R² 0.500, bias -1.50."));
    }

    #[test]
    fn a_refused_field_shows_its_message_beside_it_and_keeps_what_was_typed() {
        let m = ModelInfo {
            r2: 0.5,
            score: "R²",
            mae: 43.0,
            origin: "fitted in memory".into(),
        };
        let mut values: [String; N_FEATURES] = Default::default();
        values[0] = "\"><script>".into();
        let errors = [FieldError::new("age", "is not a number")];
        let html = predict(&m, &values, Outcome::Refused(&errors));
        assert!(
            html.contains("value=\"&quot;&gt;&lt;script&gt;\""),
            "{html}"
        );
        assert!(html.contains("aria-describedby=\"e-age\""));
        assert!(html.contains("<span class=\"error\" id=\"e-age\">Age is not a number</span>"));
        assert!(!html.contains("id=\"prediction\""));
        assert!(html.contains("<label for=\"f-sex\">"));
    }
}
