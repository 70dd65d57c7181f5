//! The Prometheus text format (version 0.0.4) of the registry, for clients
//! that ask `GET /metrics` for `text/plain` instead of OpenMetrics.
//!
//! Why: prometheus-client writes only OpenMetrics, which Prometheus itself
//! reads, but `promtool check metrics` (2.42, Debian's) and other tools of
//! the older format do not: they reject the `info` type, and they see a
//! counter family `x` whose samples are `x_total` as a family without help.
//! So `/metrics` negotiates ([`wants_text`]): OpenMetrics by default and
//! whenever the client accepts it (Prometheus does), the text format when
//! the client asks for `text/plain` only (`curl -H 'Accept: text/plain'`).
//!
//! [`from_openmetrics`] rewrites the OpenMetrics text line by line, as the
//! two formats define the same families: a counter's help and type lines are
//! named `x_total`; an info family `x` becomes the gauge `x_info`; `unknown`
//! becomes `untyped`; `# UNIT`, `# EOF`, `_created` samples and exemplars
//! have no place in the text format and are left out. Pure, tested here and
//! by `promtool` in tests/it/prometheus.rs.

use std::collections::HashMap;

/// The content type of the text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// True when an `Accept` header asks for the text format and not for
/// OpenMetrics (a missing header, `*/*` or any OpenMetrics entry: false).
pub fn wants_text(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let mut text = false;
    for media in accept.split(',') {
        let kind = media.split(';').next().unwrap_or("").trim();
        if kind.eq_ignore_ascii_case("application/openmetrics-text") {
            return false;
        }
        text |= kind.eq_ignore_ascii_case("text/plain");
    }
    text
}

/// The name and type a family has in the text format, from its OpenMetrics
/// name and type.
fn text_family<'a>(name: &'a str, om_type: &str) -> (String, &'a str) {
    match om_type {
        "counter" if !name.ends_with("_total") => (format!("{name}_total"), "counter"),
        "info" => (format!("{name}_info"), "gauge"),
        "stateset" => (name.to_owned(), "gauge"),
        "counter" | "gauge" | "histogram" | "summary" => (name.to_owned(), ""),
        _ => (name.to_owned(), "untyped"),
    }
}

/// OpenMetrics escapes `"` in help text; the text format knows only `\\`
/// and `\n` there.
fn unescape_quotes(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The registry's OpenMetrics text as the Prometheus text format 0.0.4.
pub fn from_openmetrics(om: &str) -> String {
    // Every family's OpenMetrics type, by name (help comes before type).
    let types: HashMap<&str, &str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let created_of = |sample: &str| {
        sample.strip_suffix("_created").is_some_and(|family| {
            matches!(
                types.get(family),
                Some(&"counter" | &"histogram" | &"summary" | &"gaugehistogram")
            )
        })
    };
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if let Some(meta) = line.strip_prefix("# ") {
            let (keyword, rest) = meta.split_once(' ').unwrap_or((meta, ""));
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let om_type = types.get(name).copied().unwrap_or("unknown");
            let (text_name, text_type) = text_family(name, om_type);
            match keyword {
                "HELP" => {
                    out.push_str(&format!("# HELP {text_name} {}\n", unescape_quotes(tail)));
                }
                "TYPE" => {
                    let t = if text_type.is_empty() {
                        tail
                    } else {
                        text_type
                    };
                    out.push_str(&format!("# TYPE {text_name} {t}\n"));
                }
                _ => {} // UNIT, EOF, comments
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        // A sample: drop an exemplar (` # {...}`); `_created` has no place.
        let sample = line.split_once(" # ").map_or(line, |(s, _)| s);
        let name_end = sample.find(['{', ' ']).unwrap_or(sample.len());
        if created_of(&sample[..name_end]) {
            continue;
        }
        out.push_str(sample);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_choose_the_format() {
        assert!(!wants_text(None));
        assert!(!wants_text(Some("*/*")));
        assert!(wants_text(Some("text/plain")));
        assert!(wants_text(Some(
            "text/plain; version=0.0.4; q=0.5, */*; q=0.1"
        )));
        // What Prometheus 2.42 sends: OpenMetrics first.
        assert!(!wants_text(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
    }

    #[test]
    fn openmetrics_families_are_rewritten_as_the_text_format_names_them() {
        let om = "# HELP a_x Things \\\"done\\\".\n# TYPE a_x counter\na_x_total{k=\"v\"} 3\na_x_created{k=\"v\"} 1.7e9\n\
                  # HELP a_lat Latency.\n# TYPE a_lat histogram\n# UNIT a_lat seconds\na_lat_bucket{le=\"+Inf\"} 2 # {id=\"1\"} 0.5\na_lat_sum 1.0\na_lat_count 2\n\
                  # HELP a_build Build.\n# TYPE a_build info\na_build_info{version=\"1\"} 1\n\
                  # TYPE a_u unknown\na_u 4\n# EOF\n";
        assert_eq!(
            from_openmetrics(om),
            "# HELP a_x_total Things \"done\".\n# TYPE a_x_total counter\na_x_total{k=\"v\"} 3\n\
             # HELP a_lat Latency.\n# TYPE a_lat histogram\na_lat_bucket{le=\"+Inf\"} 2\na_lat_sum 1.0\na_lat_count 2\n\
             # HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{version=\"1\"} 1\n\
             # TYPE a_u untyped\na_u 4\n"
        );
    }

    #[test]
    fn the_registry_has_every_sample_in_both_formats() {
        let t = crate::core::metrics::Telemetry::new("features,model");
        t.metrics.samples_emitted.inc_by(3);
        t.metrics.absolute_error.observe(4.0);
        let om = t.encode();
        let text = from_openmetrics(&om);
        let samples = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .map(|l| l.split(' ').next().unwrap().to_owned())
                .collect()
        };
        assert_eq!(samples(&om), samples(&text));
        assert!(text.contains("# TYPE modelwatch_samples_emitted_total counter\n"));
        assert!(text.contains("modelwatch_samples_emitted_total 3\n"));
        assert!(text.contains("# TYPE modelwatch_build_info gauge\n"));
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
    }
}
