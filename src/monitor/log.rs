//! The formats of the monitor's two files.
//!
//! `metrics_over_time.csv`: one row per closed window. The columns: the
//! window's sequence number (counting across restarts), the id of its last
//! record, when it closed (RFC 3339, UTC, milliseconds), the records the
//! monitor has taken in so far (across restarts: with every window closed,
//! the last row's total equals the rows of `metric_log.csv`), the count
//! window's figures, the period window's figures, then per feature and for
//! the predictions the drift test's p-value, PSI, normalised Wasserstein
//! distance and verdict (1 = drifted), the drift share, dataset drift, and
//! the rules firing after the window (names joined by `;`). The header is
//! written once, rows are appended across restarts like `metric_log.csv`.
//!
//! `alerts.jsonl`: one JSON object per alert event (see
//! [`super::report::AlertEvent`]).
//!
//! [`last_row`] reads back where the previous run stopped, so a restarted
//! monitor (even after `kill -9`) continues the sequence and takes in
//! exactly the records of `metric_log.csv` it had not yet put in a window.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::data::FEATURE_NAMES;
use crate::messages::SampleId;

use super::report::{AlertEvent, Drift, WindowReport, WindowStats};

/// What a window's figures are called in the header, in order.
const STATS: [&str; 6] = ["count", "mae", "rmse", "r2", "bias", "max_error"];
/// What a drift result is called in the header, in order.
const DRIFT: [&str; 4] = ["p", "psi", "wasserstein", "drift"];

/// The first line of `metrics_over_time.csv`.
pub fn header() -> String {
    let mut cols: Vec<String> = ["seq", "end_id", "end_time", "records_total"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    cols.extend(STATS.iter().map(|s| s.to_string()));
    cols.extend(STATS.iter().map(|s| format!("period_{s}")));
    for name in FEATURE_NAMES.iter().chain(&["prediction"]) {
        cols.extend(DRIFT.iter().map(|d| format!("{name}_{d}")));
    }
    cols.extend(["drift_share", "dataset_drift", "active_alerts"].map(String::from));
    cols.join(",")
}

/// Appends one row for `w` to `out`. Missing figures (no drift yet, a NaN
/// R²) are empty fields. Alert names are rule names (checked at config
/// load: letters, digits, `_:.-`), so they need no quoting.
pub fn write_row(out: &mut Vec<u8>, w: &WindowReport, records_total: u64) {
    use std::io::Write as _;
    let mut f = ryu::Buffer::new();
    let mut num = |out: &mut Vec<u8>, v: f64| {
        out.push(b',');
        if v.is_finite() {
            out.extend_from_slice(f.format(v).as_bytes());
        }
    };
    let _ = write!(
        out,
        "{},{},{},{}",
        w.seq,
        w.end_id,
        rfc3339_ms(w.end_ms),
        records_total
    );
    for s in [&w.window, &w.period] {
        let WindowStats {
            count,
            mae,
            rmse,
            r2,
            bias,
            max_error,
        } = *s;
        let _ = write!(out, ",{count}");
        for v in [mae, rmse, r2, bias, max_error] {
            num(out, v);
        }
    }
    let by_name = |name: &str| -> Option<&Drift> {
        w.features
            .iter()
            .chain(w.prediction.as_ref())
            .find(|d| d.name == name)
    };
    for name in FEATURE_NAMES.iter().chain(&["prediction"]) {
        match by_name(name) {
            Some(d) => {
                num(out, d.p_value);
                num(out, d.psi);
                num(out, d.wasserstein);
                let _ = write!(out, ",{}", d.drifted as u8);
            }
            None => out.extend_from_slice(b",,,,"),
        }
    }
    num(out, w.drift_share);
    let _ = write!(out, ",{}", w.dataset_drift as u8);
    out.push(b',');
    out.extend_from_slice(w.active_alerts.join(";").as_bytes());
    out.push(b'\n');
}

/// Appends one line of `alerts.jsonl`.
pub fn write_event(out: &mut Vec<u8>, e: &AlertEvent) {
    serde_json::to_writer(&mut *out, e).expect("an event always serialises");
    out.push(b'\n');
}

/// `2026-11-29T15:04:05.123Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Where an earlier run stopped: its last closed window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRow {
    pub seq: u64,
    pub end_id: SampleId,
    pub records_total: u64,
    /// The rules that were firing after it.
    pub active_alerts: Vec<String>,
}

/// Largest tail of the file read to find the last row (a row is about
/// 1.2 KB).
const TAIL_BYTES: u64 = 64 * 1024;

/// The last complete row of `metrics_over_time.csv`, if any. A missing or
/// empty file, or a header-only one, has none; a last line without its
/// newline (a crash mid-write) is skipped, as `AppendFile` will cut it.
pub fn last_row(path: &Path) -> io::Result<Option<LastRow>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    file.take(TAIL_BYTES).read_to_end(&mut tail)?;
    let Some(end) = tail.iter().rposition(|&b| b == b'\n') else {
        return Ok(None);
    };
    let complete = &tail[..end];
    let line = match complete.iter().rposition(|&b| b == b'\n') {
        Some(i) => &complete[i + 1..],
        None if start == 0 => complete,
        None => return Ok(None),
    };
    let fields: Vec<&[u8]> = line.split(|&b| b == b',').collect();
    let num = |i: usize| -> Option<u64> { std::str::from_utf8(fields.get(i)?).ok()?.parse().ok() };
    // The header, or a line not of this format, gives none.
    Ok(match (num(0), num(1), num(3)) {
        (Some(seq), Some(end_id), Some(records_total)) => Some(LastRow {
            seq,
            end_id,
            records_total,
            active_alerts: match fields.last() {
                Some(f) if fields.len() > 4 && !f.is_empty() => String::from_utf8_lossy(f)
                    .split(';')
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            },
        }),
        _ => None,
    })
}

/// Calls `each` for every record of `metric_log.csv` after the one with id
/// `after` (in file order: the order the monitor received them). When no
/// row has that id (the log was moved away), returns `None` and calls
/// nothing: the monitor starts afresh. Reads the file twice, streaming.
pub fn records_after(
    metric_csv: &Path,
    after: SampleId,
    mut each: impl FnMut(&crate::messages::MetricRecord),
) -> Result<Option<u64>, csv::Error> {
    let mut position = None;
    let mut row = 0u64;
    crate::log_format::read_metric_log(metric_csv, |r| {
        row += 1;
        if r.id == after {
            position = Some(row);
        }
    })?;
    let Some(at) = position else {
        return Ok(None);
    };
    let (mut row, mut fed) = (0u64, 0u64);
    crate::log_format::read_metric_log(metric_csv, |r| {
        row += 1;
        if row > at {
            fed += 1;
            each(r);
        }
    })?;
    Ok(Some(fed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::report::Drift;

    fn report(seq: u64) -> WindowReport {
        let stats = WindowStats {
            count: 500,
            mae: 43.5,
            rmse: 54.25,
            r2: f64::NAN,
            bias: -0.5,
            max_error: 150.0,
        };
        WindowReport {
            seq,
            end_id: 1_700_000_000_000_000 + seq,
            end_ms: 1_795_960_139_192,
            window: stats,
            period: stats,
            features: vec![Drift {
                name: "bmi".into(),
                test: "ks".into(),
                statistic: 0.3,
                p_value: 0.001,
                psi: 0.25,
                wasserstein: 0.5,
                drifted: true,
            }],
            prediction: None,
            drift_share: 0.1,
            dataset_drift: false,
            active_alerts: vec!["mae_high".into(), "feature_drift:bmi".into()],
        }
    }

    #[test]
    fn a_row_has_every_column_of_the_header_and_reads_back() {
        let header = header();
        let n = header.split(',').count();
        assert_eq!(n, 4 + 12 + 11 * 4 + 3);
        let mut out = Vec::new();
        write_row(&mut out, &report(7), 3500);
        let line = String::from_utf8(out).unwrap();
        let fields: Vec<&str> = line.trim_end().split(',').collect();
        assert_eq!(fields.len(), n, "{line}");
        let col = |name: &str| fields[header.split(',').position(|h| h == name).unwrap()];
        // python3 -c "import datetime;print(datetime.datetime.fromtimestamp(1795960139.192, datetime.timezone.utc).isoformat())"
        assert_eq!(col("end_time"), "2026-11-29T13:48:59.192Z");
        assert_eq!(col("r2"), "", "NaN is an empty field");
        assert_eq!(col("bmi_psi"), "0.25");
        assert_eq!(col("bmi_drift"), "1");
        assert_eq!(col("age_p"), "", "no figures: empty");
        assert_eq!(col("active_alerts"), "mae_high;feature_drift:bmi");

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        assert_eq!(last_row(&p).unwrap(), None);
        let mut text = format!("{header}\n");
        std::fs::write(&p, &text).unwrap();
        assert_eq!(last_row(&p).unwrap(), None, "header only");
        text.push_str(&line);
        let mut second = Vec::new();
        write_row(&mut second, &report(8), 4000);
        text.push_str(std::str::from_utf8(&second).unwrap());
        text.push_str("9,17000"); // torn by a crash
        std::fs::write(&p, &text).unwrap();
        assert_eq!(
            last_row(&p).unwrap(),
            Some(LastRow {
                seq: 8,
                end_id: 1_700_000_000_000_008,
                records_total: 4000,
                active_alerts: vec!["mae_high".into(), "feature_drift:bmi".into()],
            })
        );
    }

    #[test]
    fn records_after_feeds_the_rows_that_follow_the_last_window() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metric_log.csv");
        std::fs::write(
            &p,
            "id,y_true,y_pred,absolute_error\n30,1,2,1\n10,1,3,2\n20,1,4,3\n",
        )
        .unwrap();
        let mut seen = Vec::new();
        assert_eq!(records_after(&p, 30, |r| seen.push(r.id)).unwrap(), Some(2));
        assert_eq!(seen, [10, 20], "file order, not id order");
        assert_eq!(records_after(&p, 99, |_| panic!()).unwrap(), None);
    }
}
