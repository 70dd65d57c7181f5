//! The formats of the monitor's two files.
//!
//! `metrics_over_time.csv`: one row per closed window. The columns: the
//! window's sequence number (counting across restarts), the id of its last
//! record, when it closed (RFC 3339, UTC, milliseconds), the records the
//! monitor has taken in so far (across restarts), the count
//! window's figures, the period window's figures, then per feature and for
//! the predictions the drift test's p-value, PSI, normalised Wasserstein
//! distance and verdict (1 = drifted), for the user's own data each
//! feature's missing share (`<name>_missing`), a classifier's window figures
//! (accuracy, log_loss, roc_auc, precision, recall, f1, brier), the drift share, dataset drift, and
//! the rules firing after the window (names joined by `;`). The header is
//! written once, rows are appended across restarts like `metric_log.csv`.
//!
//! `alerts.jsonl`: one JSON object per alert event (see
//! [`super::report::AlertEvent`]).
//!
//! [`last_row`] reads back where the previous run stopped, so a restarted
//! monitor (even after `kill -9`) continues the sequence and takes in
//! exactly the records of `metric_log.csv` it had not yet put in a window.
//! [`read_over_time`] and [`read_alerts_tail`] read back the earlier runs'
//! windows and latest alert events, so `error_over_time.png` still covers
//! the whole history after a restart (in bounded memory: lines longer than
//! a row can be are skipped, and only the tail of `alerts.jsonl` is read).

use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::path::Path;

use crate::core::messages::SampleId;
use crate::model::tabular::CLASSIFICATION_METRICS;

use super::over_time::PastWindow;
use super::report::{AlertEvent, Drift, WindowReport, WindowStats};

/// What a window's figures are called in the header, in order.
const STATS: [&str; 6] = ["count", "mae", "rmse", "r2", "bias", "max_error"];
/// What a drift result is called in the header, in order.
const DRIFT: [&str; 4] = ["p", "psi", "wasserstein", "drift"];

/// Which optional columns `metrics_over_time.csv` has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layout {
    /// A classifier's figures.
    pub classifier: bool,
    /// Each feature's missing share (the user's own data).
    pub missing: bool,
}

/// The first line of `metrics_over_time.csv` for the feature columns
/// `names` (a name with a comma, a quote or a line break is quoted, as
/// RFC 4180 says), with the columns of `layout`.
pub fn header(names: &[&str], layout: Layout) -> String {
    let mut cols: Vec<String> = ["seq", "end_id", "end_time", "records_total"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    cols.extend(STATS.iter().map(|s| s.to_string()));
    cols.extend(STATS.iter().map(|s| format!("period_{s}")));
    for name in names.iter().chain(&["prediction"]) {
        cols.extend(DRIFT.iter().map(|d| csv_cell(&format!("{name}_{d}"))));
    }
    if layout.missing {
        cols.extend(
            names
                .iter()
                .map(|name| csv_cell(&format!("{name}_missing"))),
        );
    }
    if layout.classifier {
        // A classifier's figures, after the drift.
        cols.extend(CLASSIFICATION_METRICS.map(String::from));
    }
    cols.extend(["drift_share", "dataset_drift", "active_alerts"].map(String::from));
    cols.join(",")
}

/// Appends one row for `w` to `out`. Missing figures (no drift yet, a NaN
/// R²) are empty fields. Alert names are rule names (checked at config
/// load: letters, digits, `_:.-`), so they need no quoting. A
/// classifier's window without its figures has them empty.
pub fn write_row(
    out: &mut Vec<u8>,
    w: &WindowReport,
    records_total: u64,
    names: &[&str],
    layout: Layout,
) {
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
    for name in names.iter().chain(&["prediction"]) {
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
    if layout.missing {
        for name in names {
            num(
                out,
                by_name(name).and_then(|d| d.missing).unwrap_or(f64::NAN),
            );
        }
    }
    if layout.classifier {
        let figures = w.classification.as_ref().map(|c| c.figures());
        for i in 0..CLASSIFICATION_METRICS.len() {
            num(out, figures.and_then(|f| f[i].1).unwrap_or(f64::NAN));
        }
    }
    // Empty for a window without features (not 0: drift was not watched).
    num(out, w.drift_share.unwrap_or(f64::NAN));
    out.push(b',');
    if let Some(d) = w.dataset_drift {
        let _ = write!(out, "{}", d as u8);
    }
    out.push(b',');
    out.extend_from_slice(w.active_alerts.join(";").as_bytes());
    out.push(b'\n');
}

/// A header cell: as it is, or quoted when it holds a comma, a quote or a
/// line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastRow {
    pub seq: u64,
    pub end_id: SampleId,
    pub records_total: u64,
}

/// Largest tail of the file read to find the last row (a row is about
/// 1.2 KB).
const TAIL_BYTES: u64 = 64 * 1024;

/// The last complete row of `metrics_over_time.csv`, if any. A missing or
/// empty file, or a header-only one, has none; a last line without its
/// newline (a crash mid-write) is skipped, as `AppendFile` will cut it.
pub fn last_row(path: &Path) -> io::Result<Option<LastRow>> {
    let Some(mut file) = open_regular(path)? else {
        return Ok(None);
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    file.take(TAIL_BYTES).read_to_end(&mut tail)?;
    let Some(end) = tail.iter().rposition(|&b| b == b'\n') else {
        return Ok(None);
    };
    // The last line that is a row: a line someone appended by hand, or a
    // damaged one, is skipped (and the caller warns), not taken for the
    // end of the history (the numbering would start again at 1).
    let mut lines: Vec<&[u8]> = tail[..end].split(|&b| b == b'\n').collect();
    let cut_first = start > 0 && !lines.is_empty();
    if cut_first {
        lines.remove(0); // the first may be the end of a longer line
    }
    let mut others = 0;
    for (k, line) in lines.iter().enumerate().rev() {
        let fields: Vec<&[u8]> = line.split(|&b| b == b',').collect();
        // A field of digits too long for a u64 is past the bound, not damage.
        let num = |i: usize| -> Option<u64> {
            let field = fields.get(i)?;
            match std::str::from_utf8(field).ok()?.parse() {
                Ok(n) => Some(n),
                Err(_) if !field.is_empty() && field.iter().all(u8::is_ascii_digit) => {
                    Some(u64::MAX)
                }
                Err(_) => None,
            }
        };
        if let (Some(seq), Some(end_id), Some(records_total)) = (num(0), num(1), num(3)) {
            // The next window's seq must stay below the bound too.
            if seq >= MAX_COUNT - 1 || records_total >= MAX_COUNT || end_id >= MAX_COUNT {
                // The numbering cannot go on from here (seq + 1 would wrap
                // to 0 at u64::MAX): not a file this program wrote.
                let line_no = newlines_before(path, start)? + k as u64 + 1 + u64::from(cut_first);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "line {line_no}: seq {seq}, end_id {end_id} or records_total {records_total} is not below 2^53; the numbering cannot go on after it: correct the line or move the file away"
                    ),
                ));
            }
            if others > 0 {
                tracing::warn!(
                    file = %path.display(),
                    lines = others,
                    seq,
                    "the last lines of the file are not rows; continuing after the last row"
                );
            }
            return Ok(Some(LastRow {
                seq,
                end_id,
                records_total,
            }));
        }
        if !line.starts_with(b"seq,") {
            others += 1;
        }
    }
    if others > 0 {
        // Lines, but not one row: not a file this program wrote.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no row of this format in its last {TAIL_BYTES} bytes ({others} other lines)"),
        ));
    }
    Ok(None)
}

/// Bound of a window's `seq`, `end_id` and `records_total` read back: 2^53
/// (exact in JSON and in a float; a program writing a window a millisecond
/// would need 285,000 years to reach it). A larger value can only be a hand
/// edit, and continuing after it would wrap.
pub const MAX_COUNT: u64 = 1 << 53;

/// Newlines in the first `upto` bytes of `path` (for a line number in an
/// error).
fn newlines_before(path: &Path, upto: u64) -> io::Result<u64> {
    let Some(file) = open_regular(path)? else {
        return Ok(0);
    };
    let mut r = io::BufReader::new(file.take(upto));
    let mut n = 0;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(n);
        }
        n += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let len = buf.len();
        r.consume(len);
    }
}

/// Opens `path` for reading if it is a regular file; `None` when it does
/// not exist. A FIFO, a device or a directory is refused before it is
/// opened (opening a FIFO would wait for a writer for ever).
pub fn open_regular(path: &Path) -> io::Result<Option<std::fs::File>> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
        Ok(m) if !m.is_file() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file (a directory, FIFO, socket or device)",
            ))
        }
        Ok(_) => {}
    }
    std::fs::File::open(path).map(Some)
}

/// Longest line of `metrics_over_time.csv` taken in when reading it back
/// (a row is about 1.2 KB; a longer line is not one of ours).
pub const MAX_ROW_BYTES: usize = 16 * 1024;
/// Longest line of `alerts.jsonl` taken in when reading it back (an event
/// is a few hundred bytes).
pub const MAX_EVENT_BYTES: usize = 4 * 1024;

/// What [`read_over_time`] found besides the windows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBack {
    /// Complete rows handed on.
    pub rows: u64,
    /// Lines that are not a row of this format (too long, a field that is
    /// not a number, a missing MAE or RMSE), and a last line torn by a crash.
    pub skipped: u64,
    /// The rules firing after the last row handed on (its `active_alerts`).
    pub last_active: Vec<String>,
}

/// Calls `each` for every line of `r` that ends with a newline and is at
/// most `max` bytes long (without it), streaming: memory is bounded by
/// `max` whatever the file. Returns the lines skipped (too long, or a last
/// line without its newline).
fn for_each_line(mut r: impl BufRead, max: usize, mut each: impl FnMut(&[u8])) -> io::Result<u64> {
    let mut line = Vec::new();
    let (mut too_long, mut skipped) = (false, 0u64);
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..newline.unwrap_or(buf.len())];
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = chunk.len() + usize::from(newline.is_some());
        r.consume(used);
        if newline.is_some() {
            if too_long {
                skipped += 1;
            } else {
                each(&line);
            }
            line.clear();
            too_long = false;
        }
    }
    if too_long || !line.is_empty() {
        skipped += 1;
    }
    Ok(skipped)
}

/// Reads `metrics_over_time.csv` back, calling `each` with every complete
/// row's window (sequence number, end time, count-window count, MAE and
/// RMSE), in file order. Streaming; columns are found by the header's
/// names, so a file whose later columns changed still reads. A missing
/// file has no rows; a file whose first line lacks those columns is an
/// `InvalidData` error.
pub fn read_over_time(path: &Path, mut each: impl FnMut(&PastWindow)) -> io::Result<ReadBack> {
    let Some(file) = open_regular(path)? else {
        return Ok(ReadBack::default());
    };
    let mut cols: Option<[usize; 5]> = None;
    let mut active_col = None;
    let mut bad_header = false;
    let mut back = ReadBack::default();
    let torn = for_each_line(io::BufReader::new(file), MAX_ROW_BYTES, |line| {
        let Some(cols) = cols else {
            if bad_header {
                return;
            }
            let names: Vec<&[u8]> = line.split(|&b| b == b',').collect();
            let at = |name: &str| names.iter().position(|n| *n == name.as_bytes());
            match (
                at("seq"),
                at("end_time"),
                at("count"),
                at("mae"),
                at("rmse"),
            ) {
                (Some(a), Some(b), Some(c), Some(d), Some(e)) => cols = Some([a, b, c, d, e]),
                _ => bad_header = true,
            }
            active_col = at("active_alerts");
            return;
        };
        match parse_window(line, cols) {
            Some(w) => {
                back.rows += 1;
                each(&w);
                back.last_active.clear();
                let field = active_col.and_then(|i| line.split(|&b| b == b',').nth(i));
                for name in field.unwrap_or_default().split(|&b| b == b';') {
                    if !name.is_empty() {
                        back.last_active
                            .push(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
            None => back.skipped += 1,
        }
    })?;
    if bad_header {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the first line is not a header with seq, end_time, count, mae and rmse",
        ));
    }
    back.skipped += torn;
    Ok(back)
}

fn parse_window(line: &[u8], [seq, end_time, count, mae, rmse]: [usize; 5]) -> Option<PastWindow> {
    let line = std::str::from_utf8(line).ok()?;
    let fields: Vec<&str> = line.split(',').collect();
    let field = |i: usize| fields.get(i).copied();
    let end = humantime::parse_rfc3339(field(end_time)?).ok()?;
    Some(PastWindow {
        seq: field(seq)?.parse().ok()?,
        end_ms: end
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_millis()
            .try_into()
            .ok()?,
        count: field(count)?.parse().ok()?,
        mae: field(mae)?.parse().ok()?,
        rmse: field(rmse)?.parse().ok()?,
    })
}

/// The last alert events of `alerts.jsonl`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertsTail {
    /// At most the `max` asked for, oldest first.
    pub events: Vec<AlertEvent>,
    /// Complete lines before them (not read back).
    pub older: u64,
    /// Lines among the last `max` that are not an event (or are too long).
    pub skipped: u64,
}

/// Reads the last `max` complete lines of `alerts.jsonl` (at most
/// `max * MAX_EVENT_BYTES` bytes from its end are held; the lines before
/// are only counted, streaming). A missing file has none; a last line
/// without its newline (a crash mid-write) is left out.
pub fn read_alerts_tail(path: &Path, max: usize) -> io::Result<AlertsTail> {
    let Some(mut file) = open_regular(path)? else {
        return Ok(AlertsTail::default());
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub((max * (MAX_EVENT_BYTES + 1)) as u64);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    file.by_ref().take(len - start).read_to_end(&mut tail)?;
    // Complete lines only: none after the last newline, and the first one
    // only when it starts at a line's start.
    let end = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut lines: Vec<&[u8]> = tail[..end].split_inclusive(|&b| b == b'\n').collect();
    let mut older = 0u64;
    if start > 0 {
        file.seek(SeekFrom::Start(start - 1))?;
        let mut before = [0u8];
        file.read_exact(&mut before)?;
        if before[0] != b'\n' && !lines.is_empty() {
            // The part of a line cut at `start`: counted with the older ones.
            lines.remove(0);
            older += 1;
        }
        file.seek(SeekFrom::Start(0))?;
        let mut chunk = vec![0u8; 64 * 1024];
        let mut left = start;
        while left > 0 {
            let n = file.read(&mut chunk[..left.min(64 * 1024) as usize])?;
            if n == 0 {
                break;
            }
            older += chunk[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            left -= n as u64;
        }
    }
    let keep = lines.len().saturating_sub(max);
    older += keep as u64;
    let mut out = AlertsTail {
        older,
        ..AlertsTail::default()
    };
    for line in &lines[keep..] {
        let line = &line[..line.len() - 1];
        match (line.len() <= MAX_EVENT_BYTES)
            .then(|| serde_json::from_slice::<AlertEvent>(line).ok())
            .flatten()
        {
            Some(e) => out.events.push(e),
            None => out.skipped += 1,
        }
    }
    Ok(out)
}

/// How the records after the last window were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// The rows after the window's last record, in file order (the order
    /// the monitor received them).
    AfterItsRow(u64),
    /// The window's last record is not in the log (in one process, a
    /// `kill -9` can lose the rows the metric had not flushed yet, which the
    /// monitor had already seen): the rows with a later id (ids increase
    /// in emission order).
    LaterIds(u64),
}

/// Calls `each` for every record of `metric_log.csv` written after the
/// window that ended with id `after`; see [`Resumed`]. Reads the file
/// twice, streaming.
pub fn records_after(
    metric_csv: &Path,
    after: SampleId,
    mut each: impl FnMut(&crate::core::messages::MetricRecord),
) -> Result<Resumed, csv::Error> {
    let mut position = None;
    let mut row = 0u64;
    crate::metric::log_format::read_metric_log(metric_csv, |r| {
        row += 1;
        if r.id == after {
            position = Some(row);
        }
    })?;
    let (mut row, mut fed) = (0u64, 0u64);
    crate::metric::log_format::read_metric_log(metric_csv, |r| {
        row += 1;
        let take = match position {
            Some(at) => row > at,
            None => r.id > after,
        };
        if take {
            fed += 1;
            each(r);
        }
    })?;
    Ok(match position {
        Some(_) => Resumed::AfterItsRow(fed),
        None => Resumed::LaterIds(fed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::data::FEATURE_NAMES;
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
            classification: None,
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
                unseen: None,
                missing: None,
            }],
            prediction: None,
            drift_share: Some(0.1),
            dataset_drift: Some(false),
            active_alerts: vec!["mae_high".into(), "feature_drift:bmi".into()],
        }
    }

    /// Issue 18: a hand-edited `seq` of u64::MAX wrapped to 0 at the next
    /// window, and one of 2^53 - 1 let the run write 2^53. Such a last row
    /// is refused, naming its line, also when only the tail of a long file
    /// is read.
    #[test]
    fn a_last_row_the_numbering_cannot_go_on_from_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        for rows in [3u64, 200] {
            let mut text = format!("{}\n", header(&FEATURE_NAMES, Layout::default()));
            for seq in 1..=rows {
                let mut out = Vec::new();
                write_row(
                    &mut out,
                    &report(seq),
                    seq * 500,
                    &FEATURE_NAMES,
                    Layout::default(),
                );
                text.push_str(std::str::from_utf8(&out).unwrap());
            }
            let mut out = Vec::new();
            write_row(&mut out, &report(1), 500, &FEATURE_NAMES, Layout::default());
            let row = String::from_utf8(out).unwrap();
            let rest = row.split_once(',').unwrap().1;
            for (seq, total) in [
                (u64::MAX.to_string(), "500".to_string()),
                ((1u64 << 53).to_string(), "500".to_string()),
                // The next window would be 2^53.
                (((1u64 << 53) - 1).to_string(), "500".to_string()),
                // Too long for a u64: past the bound, not a damaged row.
                ("18446744073709551616".to_string(), "500".to_string()),
                ("7".to_string(), u64::MAX.to_string()),
            ] {
                let rest = rest.replacen(",500,", &format!(",{total},"), 1);
                std::fs::write(&p, format!("{text}{seq},{rest}")).unwrap();
                let e = last_row(&p).unwrap_err().to_string();
                let line = rows + 2;
                assert!(e.contains(&format!("line {line}:")), "{e}");
                assert!(e.contains("cannot go on"), "{e}");
            }
            std::fs::write(
                &p,
                format!("{text}{}", ((1u64 << 53) - 2).to_string() + "," + rest),
            )
            .unwrap();
            assert_eq!(last_row(&p).unwrap().unwrap().seq, (1 << 53) - 2);
        }
    }

    #[test]
    fn a_row_has_every_column_of_the_header_and_reads_back() {
        let header = header(&FEATURE_NAMES, Layout::default());
        let n = header.split(',').count();
        assert_eq!(n, 4 + 12 + 11 * 4 + 3);
        let mut out = Vec::new();
        write_row(
            &mut out,
            &report(7),
            3500,
            &FEATURE_NAMES,
            Layout::default(),
        );
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
        write_row(
            &mut second,
            &report(8),
            4000,
            &FEATURE_NAMES,
            Layout::default(),
        );
        text.push_str(std::str::from_utf8(&second).unwrap());
        text.push_str("9,17000"); // torn by a crash
        std::fs::write(&p, &text).unwrap();
        assert_eq!(
            last_row(&p).unwrap(),
            Some(LastRow {
                seq: 8,
                end_id: 1_700_000_000_000_008,
                records_total: 4000
            })
        );
    }

    #[test]
    fn read_over_time_gives_the_windows_of_complete_rows_in_bounded_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics_over_time.csv");
        let mut seen = Vec::new();
        assert_eq!(
            read_over_time(&p, |w| seen.push(*w)).unwrap(),
            ReadBack::default(),
            "no file, no rows"
        );
        let mut text = format!("{}\n", header(&FEATURE_NAMES, Layout::default())).into_bytes();
        write_row(
            &mut text,
            &report(7),
            3500,
            &FEATURE_NAMES,
            Layout::default(),
        );
        text.extend_from_slice(&vec![b'9'; 1 << 20]); // a 1 MiB line: not a row
        text.push(b'\n');
        text.extend_from_slice(b"8,1,not a time,4000,500,1,2\n");
        let mut r8 = report(8);
        r8.active_alerts.push("rmse_high".into());
        r8.active_alerts.remove(0);
        r8.window.mae = 61.0;
        r8.window.count = 499;
        write_row(&mut text, &r8, 4000, &FEATURE_NAMES, Layout::default());
        text.extend_from_slice(b"9,17000"); // torn by a crash
        std::fs::write(&p, &text).unwrap();
        let back = read_over_time(&p, |w| seen.push(*w)).unwrap();
        assert_eq!((back.rows, back.skipped), (2, 3));
        assert_eq!(back.last_active, ["feature_drift:bmi", "rmse_high"]);
        // end_time 2026-11-29T13:48:59.192Z is 1795960139192 ms:
        // python3 -c "import datetime;print(datetime.datetime(2026,11,29,13,48,59,192000,tzinfo=datetime.timezone.utc).timestamp()*1000)"
        let w = |seq, count, mae| PastWindow {
            seq,
            end_ms: 1_795_960_139_192,
            count,
            mae,
            rmse: 54.25,
        };
        assert_eq!(seen, [w(7, 500, 43.5), w(8, 499, 61.0)]);

        std::fs::write(&p, "id,y_true\n1,2\n").unwrap();
        let err = read_over_time(&p, |_| panic!()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    fn event_line(seq: u64, state: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_event(
            &mut out,
            &AlertEvent {
                rule: "mae_high".into(),
                state: state.into(),
                metric: "mae".into(),
                value: 60.0,
                threshold: 47.5,
                seq,
                end_id: 1_000 + seq,
                at_ms: 2_000 + seq,
                message: "MAE 60 above 47.5 for 2 windows".into(),
            },
        );
        out
    }

    #[test]
    fn read_alerts_tail_keeps_the_last_events_and_counts_the_older() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alerts.jsonl");
        assert_eq!(read_alerts_tail(&p, 10).unwrap(), AlertsTail::default());
        let mut text = Vec::new();
        for seq in 0..250 {
            text.extend(event_line(
                seq,
                if seq % 2 == 0 { "fired" } else { "resolved" },
            ));
        }
        text.extend_from_slice(b"{\"rule\": 3}\n"); // not an event
        text.extend_from_slice(&event_line(250, "fired")[..40]); // torn
        std::fs::write(&p, &text).unwrap();

        // The whole file fits the bytes held: the older lines are those
        // before the last 200.
        let all = read_alerts_tail(&p, 200).unwrap();
        assert_eq!(all.events.len(), 199);
        assert_eq!((all.older, all.skipped), (51, 1));
        assert_eq!(all.events[0].seq, 51);
        assert_eq!(all.events[0].state, "resolved");
        assert_eq!(all.events.last().unwrap().seq, 249);

        // Only the end is read: 5 lines of at most 4 KiB from a larger
        // file, and the lines before the bytes read are still counted.
        assert!(text.len() > 5 * (MAX_EVENT_BYTES + 1));
        let tail = read_alerts_tail(&p, 5).unwrap();
        let seqs: Vec<u64> = tail.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [246, 247, 248, 249]);
        assert_eq!((tail.older, tail.skipped), (246, 1));
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
        assert_eq!(
            records_after(&p, 30, |r| seen.push(r.id)).unwrap(),
            Resumed::AfterItsRow(2)
        );
        assert_eq!(seen, [10, 20], "file order, not id order");
        assert_eq!(
            records_after(&p, 99, |_| panic!()).unwrap(),
            Resumed::LaterIds(0)
        );
        seen.clear();
        assert_eq!(
            records_after(&p, 15, |r| seen.push(r.id)).unwrap(),
            Resumed::LaterIds(2),
            "a lost row: the later ids"
        );
        assert_eq!(seen, [30, 20]);
    }
}
