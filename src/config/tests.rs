//! Loading, environment and redaction tests of the whole configuration; each
//! section's own checks are tested in its file.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::core::text::redact_credentials;

fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, toml).unwrap();
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load_with_env(&path, &Overrides::default(), env)
}

#[test]
fn shipped_default_config_is_the_built_in_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let s = Settings::load_with_env(&path, &Overrides::default(), vec![]).unwrap();
    assert_eq!(s, Settings::default());
}

#[test]
fn env_overrides_with_double_underscore() {
    let s = load(
        "",
        &[
            ("MODELWATCH__SOURCE__RATE", "250"),
            ("MODELWATCH__PLOT__INTERVAL", "500ms"),
        ],
    )
    .unwrap();
    assert_eq!(s.source.rate, 250.0);
    assert_eq!(s.plot.interval, Duration::from_millis(500));
}

#[test]
fn single_underscore_env_is_an_error() {
    let err = load("", &[("MODELWATCH_SOURCE_RATE", "5")]).unwrap_err();
    assert!(err.to_string().contains("MODELWATCH_SOURCE_RATE"), "{err}");
}

#[test]
fn errors_name_the_key() {
    let err = load("[source]\nrat = 3\n", &[]).unwrap_err().to_string();
    assert!(err.contains("rat"), "{err}");
    let err = load("[source]\nrate = -1\n", &[]).unwrap_err().to_string();
    assert!(err.contains("source.rate"), "{err}");
    let err = load("", &[("MODELWATCH__SOURCE__RATE", "fast")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("source.rate"), "{err}");
    let err = load("[source]\nrate = 1e-300\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("source.rate"), "{err}");
    let err = load("[plot]\nbins = 0\n", &[]).unwrap_err().to_string();
    assert!(err.contains("plot.bins"), "{err}");
}

#[test]
fn amqp_url_env_turns_the_bridge_on_and_is_redacted() {
    let s = load("", &[("AMQP_URL", "amqp://u:s3cret@h:5672/%2f")]).unwrap();
    assert!(s.bridge.enabled);
    let shown = s.to_redacted_toml();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("u:***@h"), "{shown}");
}

#[test]
fn built_in_defaults_without_a_file_equal_the_shipped_file() {
    let s = Settings::load_source(None, &Overrides::default(), vec![]).unwrap();
    assert_eq!(s, Settings::default());
    let parsed: Settings = toml::from_str(DEFAULT_TOML).unwrap();
    assert_eq!(parsed, Settings::default());
}

#[test]
fn floats_in_integer_keys_are_refused_not_rounded() {
    for (toml, key) in [
        ("[source]\ncount = 2.5\n", "source.count"),
        ("[source]\nbatch_size = 1.5\n", "source.batch_size"),
        ("[source]\nseed = 7.0\n", "source.seed"),
        ("[bridge]\nheartbeat = 1e1\n", "bridge.heartbeat"),
        ("[source]\ncount = \"5\"\n", "source.count"),
    ] {
        let err = load(toml, &[]).unwrap_err().to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
    let err = load("", &[("MODELWATCH__SOURCE__COUNT", "2.5")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("source.count"), "{err}");
    // whole numbers still load, and integers are fine for float keys
    let s = load(
        "[source]\nrate = 3\n",
        &[("MODELWATCH__SOURCE__COUNT", "5")],
    )
    .unwrap();
    assert_eq!((s.source.rate, s.source.count), (3.0, 5));
}

#[test]
fn extreme_rates_and_periods_are_refused() {
    for toml in [
        "[source]\nrate = 1e30\n",
        "[source]\nrate = 10000001\n",
        "[plot]\ninterval = \"1ns\"\n",
        "[metric]\nflush_interval = \"9ms\"\n",
        "[metric]\npending_ttl = \"2d\"\n",
        "[bridge]\nbackoff_min = \"1us\"\n",
        "[bridge]\nstats_interval = \"1ms\"\n",
        "[bridge]\nshutdown_timeout = \"2h\"\n",
        "[bridge]\nheartbeat = 60000\n",
        "[inbound]\nshutdown_timeout = \"1000h\"\n",
    ] {
        let key = toml
            .lines()
            .next()
            .unwrap()
            .trim_matches(['[', ']'])
            .to_owned()
            + "."
            + toml.lines().nth(1).unwrap().split(' ').next().unwrap();
        let err = load(toml, &[]).unwrap_err().to_string();
        assert!(err.contains(&key), "{toml}: {err}");
    }
    let s = load(
        "[source]\nrate = 10000000\n[plot]\ninterval = \"10ms\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(s.plot.interval, Duration::from_millis(10));
}

#[test]
fn credentials_are_redacted_in_every_quoted_text() {
    assert_eq!(
        redact_credentials("url = \"amqp://guest:SECRET@127.0.0.1/"),
        "url = \"amqp://guest:***@127.0.0.1/"
    );
    assert_eq!(
        redact_credentials("a amqp://u:SE/CR@ET@h:5/x b http://h/p@q"),
        "a amqp://u:***@h:5/x b http://h/p@q"
    );
    let err = load("[bridge]\nurl = \"amqp://guest:SECRET@127.0.0.1/\n", &[])
        .unwrap_err()
        .to_string();
    assert!(!err.contains("SECRET") && err.contains("line 2"), "{err}");
    let err = load("", &[("MODELWATCH__BRIDGE__ON_FULL", "amqp://u:SECRET@h")])
        .unwrap_err()
        .to_string();
    assert!(!err.contains("SECRET") && err.contains("on_full"), "{err}");
    let err = load("", &[("MODELWATCH__BRIDGE__HEARTBEAT", "SECRET")])
        .unwrap_err()
        .to_string();
    assert!(
        !err.contains("SECRET") && err.contains("bridge.heartbeat"),
        "{err}"
    );
    assert_eq!(sanitize("a\nb"), "a\\nb");
    assert!(sanitize(&"x".repeat(10_000)).len() < 400);
}

#[test]
fn legacy_inbound_reads_the_queues_of_the_python_services() {
    let s = load("[inbound]\nlegacy = true\n", &[]).unwrap();
    assert_eq!(
        [
            s.inbound.model_queue.as_str(),
            &s.inbound.metric_truth_queue,
            &s.inbound.metric_prediction_queue
        ],
        ["features", "y_true", "y_pred"]
    );
    let o = Overrides {
        legacy_inbound: true,
        ..Overrides::default()
    };
    let s = Settings::load_source(None, &o, vec![]).unwrap();
    assert!(s.inbound.legacy);
    assert_eq!(s.inbound.model_queue, "features");
}

#[test]
fn a_directory_is_not_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = Settings::load_with_env(dir.path(), &Overrides::default(), vec![])
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a directory"), "{err}");
    let err = Settings::load_with_env(Path::new("/dev/zero"), &Overrides::default(), vec![])
        .unwrap_err()
        .to_string();
    assert!(err.contains("larger than"), "{err}");
}

#[test]
fn http_keys_load_from_the_file_and_the_environment_and_are_checked() {
    let s = load(
        "[http]\nlisten = \"[::1]:0\"\nmax_connections = 5\nrequest_timeout = \"250ms\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(s.http.listen_addr(), Some("[::1]:0".parse().unwrap()));
    assert_eq!(s.http.max_connections, 5);
    assert_eq!(s.http.request_timeout, Duration::from_millis(250));
    let s = load("", &[("MODELWATCH__HTTP__LISTEN", "off")]).unwrap();
    assert_eq!(s.http.listen_addr(), None);
    for (toml, env, key) in [
        ("[http]\nlisten = \"localhost:80\"\n", None, "http.listen"),
        ("[http]\nlisten = 9898\n", None, "http.listen"),
        (
            "[http]\nmax_connections = 1.5\n",
            None,
            "http.max_connections",
        ),
        (
            "[http]\nrequest_timeout = \"2m\"\n",
            None,
            "http.request_timeout",
        ),
        (
            "",
            Some(("MODELWATCH__HTTP__LISTEN", "nowhere")),
            "http.listen",
        ),
        (
            "",
            Some(("MODELWATCH__HTTP__MAX_CONNECTIONS", "0")),
            "http.max_connections",
        ),
    ] {
        let env: Vec<_> = env.into_iter().collect();
        let err = load(toml, &env).unwrap_err().to_string();
        assert!(err.contains(key), "{toml} {env:?}: {err}");
    }
}

#[test]
fn rules_and_a_scenario_load_from_the_file_through_every_layer() {
    let s = load(
        "[source]\ncount = 100\n[source.scenario]\nstart = 50\nshift = { bmi = 5 }\n\
         population = { feature = \"age\", above = \"median\" }\n\
         [monitor]\nwindow = 100\n[[monitor.rules]]\nname = \"mae_abs\"\nmetric = \"period.mae\"\n\
         op = \">\"\nvalue = 60\nfor = 3\nresolve_after = 5\n",
        &[],
    )
    .unwrap();
    let sc = s.source.scenario.as_ref().unwrap();
    assert_eq!((sc.start, sc.shift["bmi"]), (50, 5.0));
    assert_eq!(sc.population.as_ref().unwrap().feature, "age");
    assert_eq!(s.monitor.window, 100);
    let r = &s.monitor.rules[..];
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].op, r[0].value, r[0].for_windows, r[0].resolve_after),
        (Op::Above, Some(60.0), 3, Some(5))
    );
    // The printed form reads back as the same settings (but the password).
    let shown = s.to_redacted_toml();
    let mut back: Settings = toml::from_str(&shown).unwrap();
    back.bridge.url = s.bridge.url.clone();
    assert_eq!(back, s);
}

#[test]
fn history_needs_the_bridge() {
    let err = load("[history]\nenabled = true\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("history.enabled") && err.contains("bridge"),
        "{err}"
    );
    let s = load("[history]\nenabled = true\n[bridge]\nenabled = true\n", &[]).unwrap();
    assert!(s.history.enabled);
    let err = load("[history]\nmax_age = \"7days\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("history.max_age"), "{err}");
    let err = load("[history]\nsegment_bytes = 1.5\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("history.segment_bytes"), "{err}");
}

#[test]
fn batch_messages_are_refused_where_the_python_services_read() {
    let err = load("[bridge]\nbatch = true\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bridge.batch") && err.contains("bridge.legacy_queues = false"),
        "{err}"
    );
    let both = "[bridge]\nbatch = true\nlegacy_queues = false\n";
    let err = load(&format!("{both}[inbound]\nlegacy = true\n"), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bridge.batch") && err.contains("inbound.legacy"),
        "{err}"
    );
    let s = load(both, &[("MODELWATCH__BRIDGE__BATCH_MAX", "64")]).unwrap();
    assert!(s.bridge.batch);
    assert_eq!(s.bridge.batch_max, 64);
    for (toml, key) in [
        ("[bridge]\nbatch_max = 0\n", "bridge.batch_max"),
        ("[bridge]\nbatch_max = 65537\n", "bridge.batch_max"),
        (
            "[inbound]\nmax_batch_bytes = 10\n",
            "inbound.max_batch_bytes",
        ),
        (
            "[inbound]\nmax_batch_bytes = 134217729\n",
            "inbound.max_batch_bytes",
        ),
    ] {
        let err = load(toml, &[]).unwrap_err().to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
    // What loaded before still loads, batches or not.
    load(
        "[inbound]\nprefetch = 65535\nmax_body_bytes = 2000000\n",
        &[],
    )
    .unwrap();
}
