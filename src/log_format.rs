//! The formats of the two files the metric writes.
//!
//! `metric_log.csv`: `id,y_true,y_pred,absolute_error`, one row per joined
//! sample, written with the `csv` crate (floats in shortest round-trip form).
//! `labels_log.txt`: one line per message received,
//! `<RFC 3339 time> <kind> id=<id> value=<value>`, like the Python metric
//! service's log.

use std::io;
use std::path::Path;

use crate::messages::{Kind, MetricRecord, SampleId};

/// The first line of `metric_log.csv`.
pub const METRIC_HEADER: &str = "id,y_true,y_pred,absolute_error";

/// Appends CSV rows (no header) for `records` to `out`. A record with a
/// non-finite number is never written (the inbound checks and the model's
/// artifact check keep such values out; this is the last guard): the others
/// are, and the error says how many were left out.
pub fn write_metric_rows(records: &[MetricRecord], out: &mut Vec<u8>) -> csv::Result<()> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    let mut not_finite = 0;
    for r in records {
        if ![r.y_true, r.y_pred, r.absolute_error]
            .iter()
            .all(|v| v.is_finite())
        {
            not_finite += 1;
            continue;
        }
        w.serialize(r)?;
    }
    w.flush()?;
    if not_finite > 0 {
        return Err(csv::Error::from(io::Error::other(format!(
            "{not_finite} metric rows with a non-finite number not written"
        ))));
    }
    Ok(())
}

/// Appends one labels line to `out`.
pub fn write_label_line(out: &mut Vec<u8>, time: &str, kind: Kind, id: SampleId, value: f64) {
    use std::io::Write;
    writeln!(out, "{time} {} id={id} value={value}", kind.routing_key()).expect("writing to a Vec");
}

/// Reads every record of an existing `metric_log.csv`, calling `each` per
/// row; a missing file reads as empty. An unfinished last line (no newline
/// yet: a crash, or a writer in another process mid-row) is not read.
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
    let whole = crate::append_file::complete_lines_len(&mut file)?;
    file.seek(SeekFrom::Start(0))?;
    let reader = io::BufReader::with_capacity(1 << 20, file.take(whole));
    let mut reader = csv::Reader::from_reader(reader);
    let mut n = 0;
    for record in reader.deserialize::<MetricRecord>() {
        each(&record?);
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
        let err = write_metric_rows(&records, &mut out).unwrap_err();
        assert!(err.to_string().contains("1 metric rows"), "{err}");
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
        write_metric_rows(&records, &mut out).unwrap();
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
    }
}
