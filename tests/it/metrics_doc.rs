//! The metrics reference, `docs/metrics.md`, kept equal to the metrics the
//! program declares (`core::metrics::Metrics`, the monitor's
//! `monitor::telemetry::MonitorMetrics`, the build info).
//!
//! Why: the table was a hand copy of the `register` calls that nothing
//! checked (issue 19, item 3); a metric added, renamed, retyped or
//! relabelled in the code and not in the doc, or the other way round, now
//! fails here. The real binary prints its declarations (`modelwatch
//! metrics`, a markdown table); every row of the doc's table "Every metric"
//! must be one of them with the same type and label names, and every
//! declared metric a row. The "what it counts" column stays human-written.
//! The comparison itself is shown to fail when a row is taken out of either
//! side (on edited copies of the two texts).

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::sandbox::{run, Sandbox};

/// A metric's machine-checked columns: its type and its label names.
type Rows = BTreeMap<String, (String, Vec<String>)>;

/// The rows of the first markdown table in `text` whose header starts with
/// `| metric | type | labels |`: the metric's series name (backticks taken
/// off), the first word of its type (`histogram (0 to 350)` is a
/// histogram) and the backticked label names outside parentheses (the
/// values in parentheses are examples).
fn table(text: &str) -> Rows {
    let mut rows = Rows::new();
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with("| metric | type | labels |"));
    assert!(
        lines.next().is_some(),
        "no table `| metric | type | labels |`"
    );
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_owned();
        let kind = cells[2].split_whitespace().next().unwrap_or("").to_owned();
        let labels = label_names(cells[3]);
        assert!(
            rows.insert(name.clone(), (kind, labels)).is_none(),
            "{name}: two rows"
        );
    }
    rows
}

fn label_names(cell: &str) -> Vec<String> {
    let mut outside = String::new();
    let mut depth = 0;
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if depth == 0 => outside.push(c),
            _ => {}
        }
    }
    outside
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// What differs between the declared rows and the doc's: one line each.
fn differences(declared: &Rows, doc: &Rows) -> Vec<String> {
    let mut out = Vec::new();
    for (name, d) in declared {
        match doc.get(name) {
            None => out.push(format!("{name}: declared, no row in docs/metrics.md")),
            Some(r) if r != d => out.push(format!("{name}: declared {d:?}, the doc says {r:?}")),
            Some(_) => {}
        }
    }
    for name in doc.keys().filter(|n| !declared.contains_key(*n)) {
        out.push(format!("{name}: a row of docs/metrics.md, not declared"));
    }
    out
}

fn declared_table() -> String {
    let out = run(Sandbox::new().command(["metrics"]));
    out.expect_code(0);
    out.stdout.clone()
}

fn doc_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_declared_metric_is_a_row_of_the_doc_and_every_row_is_declared() {
    let declared = table(&declared_table());
    let doc = table(&doc_text());
    assert_eq!(
        declared.len(),
        modelwatch::pipeline::check::metric_declarations().len(),
        "the binary prints one row per declaration"
    );
    let diff = differences(&declared, &doc);
    assert!(diff.is_empty(), "docs/metrics.md:\n{}", diff.join("\n"));
}

#[test]
fn the_check_fails_when_a_row_is_taken_out_of_either_side() {
    let declared_text = declared_table();
    let doc_text = doc_text();
    let (declared, doc) = (table(&declared_text), table(&doc_text));
    assert!(differences(&declared, &doc).is_empty());
    for (name, needle) in [
        ("modelwatch_join_waiting", "| `modelwatch_join_waiting` |"),
        (
            "modelwatch_over_time_markers",
            "| `modelwatch_over_time_markers` |",
        ),
    ] {
        let without = |text: &str| -> String {
            let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with(needle)).collect();
            assert!(
                kept.len() < text.lines().count(),
                "{needle} not in the text"
            );
            kept.join("\n")
        };
        let diff = differences(&declared, &table(&without(&doc_text)));
        assert_eq!(
            diff,
            [format!("{name}: declared, no row in docs/metrics.md")]
        );
        let diff = differences(&table(&without(&declared_text)), &doc);
        assert_eq!(
            diff,
            [format!("{name}: a row of docs/metrics.md, not declared")]
        );
    }
    // A changed type or label name fails too.
    let retyped = doc_text.replace(
        "| `modelwatch_join_waiting` | gauge |",
        "| `modelwatch_join_waiting` | counter |",
    );
    assert_eq!(differences(&declared, &table(&retyped)).len(), 1);
    let relabelled = doc_text.replace("| `reason` (expired", "| `why` (expired");
    assert_eq!(differences(&declared, &table(&relabelled)).len(), 1);
}
