//! The formats of the two files the metric writes.
//!
//! `metric_log.csv`: `id,y_true,y_pred,absolute_error`, one row per joined
//! sample, written with the `csv` crate (floats in shortest round-trip form).
//! `labels_log.txt`: one line per message received,
//! `<RFC 3339 time> <kind> id=<id> value=<value>`, like the Python metric
//! service's log.

use std::io;
use std::path::Path;

use crate::core::messages::{Kind, MetricRecord, SampleId, MAX_ABS_VALUE};

/// A truth or prediction the files take: finite and within
/// [`MAX_ABS_VALUE`].
fn within_bound(v: f64) -> bool {
    v.abs() <= MAX_ABS_VALUE
}

/// The first line of `metric_log.csv`.
pub const METRIC_HEADER: &str = "id,y_true,y_pred,absolute_error";

/// Appends CSV rows (no header) for `records` to `out`: the id with itoa,
/// the floats with ryu (shortest round-trip, as the `csv` crate writes
/// them), no quoting needed (numbers only). This is the hot path of the
/// metric: a million rows a second. A record with a non-finite number, or
/// a truth or prediction beyond [`MAX_ABS_VALUE`], is never written (the
/// inbound checks and the model's artifact check keep such values out; this
/// is the last guard, and what `replay --rebuild` counts as malformed);
/// returns how many were left out.
pub fn write_metric_rows(records: &[MetricRecord], out: &mut Vec<u8>) -> usize {
    let mut int = itoa::Buffer::new();
    let mut float = ryu::Buffer::new();
    let mut not_finite = 0;
    out.reserve(records.len() * 64);
    for r in records {
        let values = [r.y_true, r.y_pred, r.absolute_error];
        if !(within_bound(r.y_true) && within_bound(r.y_pred) && r.absolute_error.is_finite()) {
            not_finite += 1;
            continue;
        }
        out.extend_from_slice(int.format(r.id).as_bytes());
        for v in values {
            out.push(b',');
            out.extend_from_slice(float.format(v).as_bytes());
        }
        out.push(b'\n');
    }
    not_finite
}

/// Appends one labels line to `out`. The value is written as the Python
/// service logged it (`265`, not `265.0`), shortest round-trip otherwise.
pub fn write_label_line(out: &mut Vec<u8>, time: &str, kind: Kind, id: SampleId, value: f64) {
    let mut float = ryu::Buffer::new();
    let v = float.format(value);
    let v = v.strip_suffix(".0").unwrap_or(v);
    out.extend_from_slice(time.as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.routing_key().as_bytes());
    out.extend_from_slice(b" id=");
    out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    out.extend_from_slice(b" value=");
    out.extend_from_slice(v.as_bytes());
    out.push(b'\n');
}

/// Reads every record of an existing `metric_log.csv`, calling `each` per
/// row; a missing file reads as empty. An unfinished last line (no newline
/// yet: a crash, or a writer in another process mid-row) is not read. A row
/// whose truth or prediction is beyond [`MAX_ABS_VALUE`] (a hand edit: this
/// program never writes one) is an error naming its line, not taken in.
/// Returns the number of rows.
pub fn read_metric_log(
    path: &Path,
    mut each: impl FnMut(&MetricRecord),
) -> Result<u64, csv::Error> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let whole = crate::core::append_file::complete_lines_len(&mut file)?;
    file.seek(SeekFrom::Start(0))?;
    let reader = io::BufReader::with_capacity(1 << 20, file.take(whole));
    let mut reader = csv::Reader::from_reader(reader);
    let mut n = 0;
    for record in reader.deserialize::<MetricRecord>() {
        let record = record?;
        if !(within_bound(record.y_true) && within_bound(record.y_pred)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "line {}: y_true {:e} or y_pred {:e} is beyond ±{MAX_ABS_VALUE:e}",
                    n + 2,
                    record.y_true,
                    record.y_pred
                ),
            )
            .into());
        }
        each(&record);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_finite_row_is_never_written() {
        // Issue 8 item 6: 1.7e308 - (-1.7e308) is inf.
        let records = vec![
            MetricRecord::join(1, 151.0, 206.5),
            MetricRecord::join(6200, 1.7e308, -1.7e308),
            MetricRecord::join(3, 1.0, 2.0),
        ];
        let mut out = Vec::new();
        assert_eq!(write_metric_rows(&records, &mut out), 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1,151.0,206.5,55.5\n3,1.0,2.0,1.0\n"
        );
    }

    #[test]
    fn rows_round_trip_exactly() {
        let records = vec![
            MetricRecord::join(1732865012345678, 151.0, 206.11667723),
            MetricRecord::join(2, 0.1 + 0.2, 1e-300),
        ];
        let mut out = METRIC_HEADER.as_bytes().to_vec();
        out.push(b'\n');
        assert_eq!(write_metric_rows(&records, &mut out), 0);
        // the same bytes as the csv crate's serializer
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(vec![]);
        for r in &records {
            w.serialize(r).unwrap();
        }
        let by_csv = w.into_inner().unwrap();
        assert!(out.ends_with(&by_csv));
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.starts_with(
                "id,y_true,y_pred,absolute_error\n1732865012345678,151.0,206.11667723,"
            ),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        std::fs::write(&p, out).unwrap();
        let mut back = vec![];
        assert_eq!(read_metric_log(&p, |r| back.push(*r)).unwrap(), 2);
        assert_eq!(back, records);
        assert_eq!(
            read_metric_log(&dir.path().join("none"), |_| {}).unwrap(),
            0
        );
    }

    #[test]
    fn label_line_has_time_kind_id_value() {
        let mut out = vec![];
        write_label_line(&mut out, "2026-11-29T08:00:00Z", Kind::YPred, 5, 206.5);
        assert_eq!(out, b"2026-11-29T08:00:00Z y_pred id=5 value=206.5\n");
        out.clear();
        write_label_line(&mut out, "t", Kind::YTrue, 7, 265.0);
        assert_eq!(out, b"t y_true id=7 value=265\n");
    }
}
