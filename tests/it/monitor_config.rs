//! The scenario and the monitor's configuration through the real binary.
//!
//! A scenario changes what the source sends from sample `start` on: the
//! rows of `metric_log.csv` (sorted by id, which is emission order) of a
//! seeded run with a scenario are compared with the same seeded run
//! without one. Before `start` they are equal; from `start` on the
//! prediction moves by exactly sklearn's coefficient times the scaled shift
//! (the model predicts on the shifted features it is sent) and the truth
//! by the bias; a population sends only its rows (checked with the tests'
//! own oracle of the data). Every bad `[monitor]` or scenario setting exits
//! 2 before anything starts, with one error line naming the key.

use std::fs;
use std::time::Duration;

use crate::support::oracle;
use crate::support::sandbox::*;

/// Rows of a finished run's `metric_log.csv` in emission order (ids are
/// strictly increasing as the source emits them).
fn rows_in_order(sb: &Sandbox, name: &str, cmd_args: &[&str], config: Option<&str>) -> Vec<Row> {
    let logs = sb.join(name);
    let mut cmd = match config {
        None => sb.run_command(&logs, cmd_args),
        Some(text) => {
            let path = sb.join(&format!("{name}.toml"));
            fs::write(&path, text).unwrap();
            let mut cmd = sb.command(["run", "--config"]);
            cmd.arg(&path).arg("--logs-dir").arg(&logs).args(cmd_args);
            cmd
        }
    };
    cmd.env("MODELWATCH__MONITOR__ENABLED", "false");
    run(cmd).expect_code(0);
    let mut rows = read_metric_log(&logs);
    rows.sort_by_key(|r| r.id);
    rows
}

/// sklearn's coefficient of bmi times 5 raw units, scaled:
/// /work/venv-sci/bin/python -c "import numpy as np;
///   d=np.loadtxt('data/diabetes.csv',delimiter=',',skiprows=1); X,y=d[:,:10],d[:,10];
///   s=X.std(0)*np.sqrt(len(X)); Xs=(X-X.mean(0))/s; A=np.c_[np.ones(len(X)),Xs];
///   c=np.linalg.lstsq(A,y,rcond=None)[0][1:]; print(repr(c[2]*5/s[2]), repr(c[3]*10/s[3]))"
/// -> 28.014810459618527 11.168079933181913
const BMI_PLUS_5: f64 = 28.014810459618527;
/// The same for bp + 10 (same command).
const BP_PLUS_10: f64 = 11.168079933181913;

/// Same seed with and without the scenario: equal before `start`, moved by
/// `dy_pred` and `dy_true` from `start` on.
fn assert_moved(base: &[Row], shifted: &[Row], start: usize, dy_true: f64, dy_pred: f64) {
    assert_eq!(base.len(), shifted.len());
    for (i, (a, b)) in base.iter().zip(shifted).enumerate() {
        if i < start {
            assert_eq!((a.y_true, a.y_pred), (b.y_true, b.y_pred), "sample {i}");
        } else {
            assert_eq!(b.y_true, a.y_true + dy_true, "sample {i}");
            let moved = b.y_pred - a.y_pred;
            assert!((moved - dy_pred).abs() < 1e-9, "sample {i}: moved {moved}");
            // What the model was sent is a data row with the shift applied.
            oracle::assert_model_output(b.y_true - dy_true, b.y_pred - dy_pred, "shifted row");
        }
    }
}

#[test]
fn the_scenario_flag_shifts_bmi_from_its_start_on() {
    let sb = Sandbox::new();
    let args = ["--count", "2000", "--rate", "0", "--seed", "11"];
    let base = rows_in_order(&sb, "base", &args, None);
    assert_eq!(base.len(), 2000);
    let mut with = args.to_vec();
    with.extend(["--scenario", "start=1000,bmi+=5"]);
    let shifted = rows_in_order(&sb, "shifted", &with, None);
    assert_moved(&base, &shifted, 1000, 0.0, BMI_PLUS_5);
}

#[test]
fn a_scenario_in_the_config_file_shifts_bp_and_biases_the_target() {
    let sb = Sandbox::new();
    let plain = "[source]\ncount = 1000\nrate = 0\nseed = 5\nbatch_size = 64\n";
    let base = rows_in_order(&sb, "base", &[], Some(plain));
    let with = format!(
        "{plain}[source.scenario]\nstart = 400\ntarget_bias = 7.5\nshift = {{ bp = 10.0 }}\n"
    );
    let shifted = rows_in_order(&sb, "shifted", &[], Some(&with));
    assert_eq!(base.len(), 1000);
    assert_moved(&base, &shifted, 400, 7.5, BP_PLUS_10);
}

#[test]
fn a_population_scenario_sends_only_its_rows_from_its_start_on() {
    let sb = Sandbox::new();
    let rows = rows_in_order(
        &sb,
        "logs",
        &[
            "--count",
            "1000",
            "--rate",
            "0",
            "--seed",
            "3",
            "--scenario",
            "start=300,age>median",
        ],
        None,
    );
    assert_eq!(rows.len(), 1000);
    // The median age: /work/venv-sci/bin/python -c "import numpy as np;
    //   print(np.median(np.loadtxt('data/diabetes.csv',delimiter=',',skiprows=1)[:,0]))" -> 50.0
    let age =
        |r: &Row| oracle::rows()[oracle::assert_model_output(r.y_true, r.y_pred, "row")].raw[0];
    assert!(
        rows[..300].iter().any(|r| age(r) <= 50.0),
        "before the start every age is drawn"
    );
    for (i, r) in rows.iter().enumerate().skip(300) {
        assert!(age(r) > 50.0, "sample {i} has age {}", age(r));
    }
}

/// Expects exit 2 within a few seconds, one error line naming `key`, and
/// no logs dir.
fn refused(sb: &Sandbox, cmd: std::process::Command, key: &str, what: &str) {
    let out = run_within(cmd, Duration::from_secs(10));
    out.expect_code(2);
    let line = one_error_line(&out);
    assert!(line.contains(key), "{what}: {key:?} not named in {line:?}");
    assert!(!sb.logs().exists(), "{what}: the logs dir was created");
}

#[test]
fn bad_monitor_and_scenario_settings_exit_2_naming_the_key() {
    let rule = |body: &str| format!("[[monitor.rules]]\nname = \"r\"\n{body}\n");
    let files = [
        ("[monitor]\nwindow = 0\n".to_owned(), "monitor.window"),
        ("[monitor]\nperiod = \"0s\"\n".to_owned(), "monitor.period"),
        (
            rule("metric = \"mea\"\nop = \">\"\nvalue = 50"),
            "monitor.rules[0].metric",
        ),
        (
            rule("metric = \"psi.bmj\"\nop = \">\"\nvalue = 0.2"),
            "monitor.rules[0].metric",
        ),
        (
            rule("metric = \"r2\"\nop = \">\"\nvalue = 1.0"),
            "monitor.rules[0].value",
        ),
        (
            rule("metric = \"p_value.bmi\"\nop = \"<\"\nvalue = -0.1"),
            "monitor.rules[0].value",
        ),
        (
            rule("metric = \"mae\"\nop = \"<\"\nvalue = 0"),
            "monitor.rules[0].value",
        ),
        (
            rule("metric = \"drift_share\"\nop = \">\"\nsigmas = 3"),
            "monitor.rules[0].sigmas",
        ),
        (
            rule("metric = \"mae\"\nop = \">\"\nsigmas = 3\nvalue = 50"),
            "monitor.rules[0]",
        ),
        (
            rule("metric = \"mae\"\nop = \">\"\nsigmas = 3\nfor = 0"),
            "monitor.rules[0].for",
        ),
        (rule("metric = \"mae\"\nop = \">=\"\nsigmas = 3"), "op"),
        (
            "[source.scenario]\nshift = { bmi = nan }\n".to_owned(),
            "source.scenario.shift.bmi",
        ),
        (
            "[source.scenario]\nshift = { weight = 5.0 }\n".to_owned(),
            "source.scenario.shift.weight",
        ),
        (
            "[source.scenario]\nshift = { sex = 1.0 }\n".to_owned(),
            "source.scenario.shift.sex",
        ),
        (
            "[source.scenario]\npopulation = { feature = \"age\", above = 90 }\n".to_owned(),
            "source.scenario.population",
        ),
        (
            "[source.scenario]\nstart = 10\nshift = { bmi = 5.0 }\n".to_owned(),
            "source.scenario.start",
        ),
    ];
    for (text, key) in files {
        let sb = Sandbox::new();
        let config = sb.join("bad.toml");
        fs::write(&config, &text).unwrap();
        let mut cmd = sb.command(["run", "--config"]);
        cmd.arg(&config)
            .arg("--logs-dir")
            .arg(sb.logs())
            .args(["--count", "10"]);
        refused(&sb, cmd, key, &text);
    }
    let flags: [(&[&str], &str); 6] = [
        (&["--scenario", "start=10,bmi+=5"], "source.scenario.start"),
        (&["--scenario", "bmq+=5"], "source.scenario.shift.bmq"),
        (&["--scenario", "bmi+=inf"], "--scenario"),
        (
            &["--scenario", "s5*=1.2,age>200"],
            "source.scenario.population",
        ),
        (&["--monitor-window", "0"], "monitor.window"),
        (&["--monitor-window", "1000000"], "monitor.window"),
    ];
    for (args, key) in flags {
        let sb = Sandbox::new();
        let mut all = vec!["--count", "10"];
        all.extend(args);
        refused(
            &sb,
            sb.run_command(&sb.logs(), &all),
            key,
            &format!("{args:?}"),
        );
    }
    let env = [
        (
            "MODELWATCH__MONITOR__RULES",
            "mae>50",
            "MODELWATCH__MONITOR__RULES",
        ),
        (
            "MODELWATCH__SOURCE__SCENARIO",
            "sex*=2",
            "source.scenario.scale.sex",
        ),
        (
            "MODELWATCH__MONITOR__DRIFT_P_VALUE",
            "2",
            "monitor.drift_p_value",
        ),
    ];
    for (name, value, key) in env {
        let sb = Sandbox::new();
        let mut cmd = sb.run_command(&sb.logs(), &["--count", "10"]);
        cmd.env(name, value);
        refused(&sb, cmd, key, name);
    }
}

/// Issue 18, 2.9 and 2.10: a scenario setting that changes nothing (the
/// run would be an unshifted stream its user takes for a shifted one) and
/// a rule on `count`, whose outcome the window size fixes (a count window
/// always holds `monitor.window` records: `count > 499` fires on every
/// run, `count < 500` never), exit 2 naming the key.
#[test]
fn settings_whose_outcome_is_fixed_exit_2_naming_the_key() {
    let flags: [(&[&str], &str); 13] = [
        (&["--scenario", "bmi+=0"], "source.scenario.shift.bmi"),
        (&["--scenario", "bmi-=0"], "source.scenario.shift.bmi"),
        (&["--scenario", "bmi*=1"], "source.scenario.scale.bmi"),
        (&["--scenario", "age>-1"], "source.scenario.population"),
        (
            &["--scenario", "start=100,bp+=1e-300"],
            "source.scenario.shift.bp",
        ),
        (
            &["--scenario", "target+=1e-300"],
            "source.scenario.target_bias",
        ),
        (
            &["--scenario", "target~=1e-300"],
            "source.scenario.target_noise",
        ),
        (&["--scenario", "bmi*=1,s5+=1"], "source.scenario.scale.bmi"),
        // A target setting that changes nothing, alone or beside a real
        // change, names its own key (not `shift`).
        (&["--scenario", "target+=0"], "source.scenario.target_bias"),
        (&["--scenario", "target~=0"], "source.scenario.target_noise"),
        (
            &["--scenario", "s5*=1.2,target+=0"],
            "source.scenario.target_bias",
        ),
        (
            &["--scenario", "bmi+=1,target-=0"],
            "source.scenario.target_bias",
        ),
        (
            &["--scenario", "s5*=1.2,target~=0"],
            "source.scenario.target_noise",
        ),
    ];
    for (args, key) in flags {
        let sb = Sandbox::new();
        let mut all = vec!["--count", "1000", "--rate", "0"];
        all.extend(args);
        refused(
            &sb,
            sb.run_command(&sb.logs(), &all),
            key,
            &format!("{args:?}"),
        );
    }
    let rule = |metric: &str, op: &str, value: f64| {
        format!("[[monitor.rules]]\nname = \"r\"\nmetric = \"{metric}\"\nop = \"{op}\"\nvalue = {value}\n")
    };
    let files = [
        (
            "[source.scenario]\nshift = { bmi = 0.0 }\n".to_owned(),
            &[][..],
            "source.scenario.shift.bmi",
        ),
        (
            "[source.scenario]\npopulation = { feature = \"age\", above = -1 }\n".to_owned(),
            &[][..],
            "source.scenario.population",
        ),
        (
            "[source.scenario]\ntarget_bias = 0.0\n".to_owned(),
            &[][..],
            "source.scenario.target_bias",
        ),
        (
            "[source.scenario]\ntarget_noise = 0.0\n".to_owned(),
            &[][..],
            "source.scenario.target_noise",
        ),
        (
            "[source.scenario]\nshift = { bmi = 1.0 }\ntarget_bias = 0.0\n".to_owned(),
            &[][..],
            "source.scenario.target_bias",
        ),
        (
            "[source.scenario]\nscale = { s5 = 1.2 }\ntarget_noise = 0.0\n".to_owned(),
            &[][..],
            "source.scenario.target_noise",
        ),
        (rule("count", ">", 499.0), &[][..], "monitor.rules[0].value"),
        (rule("count", "<", 500.0), &[][..], "monitor.rules[0].value"),
        (rule("count", "<", 501.0), &[][..], "monitor.rules[0].value"),
        // The window size the flag sets is the one that counts.
        (
            rule("count", ">", 99.0),
            &["--monitor-window", "100"][..],
            "monitor.rules[0].value",
        ),
    ];
    for (text, extra, key) in files {
        let sb = Sandbox::new();
        let config = sb.join("fixed.toml");
        fs::write(&config, &text).unwrap();
        let mut cmd = sb.command(["run", "--config"]);
        cmd.arg(&config)
            .arg("--logs-dir")
            .arg(sb.logs())
            .args(["--count", "1000", "--rate", "0"])
            .args(extra);
        refused(&sb, cmd, key, &text);
    }
    // What still varies is still accepted: period.count, and a real shift.
    let sb = Sandbox::new();
    let config = sb.join("ok.toml");
    fs::write(&config, rule("period.count", ">", 499.0)).unwrap();
    let mut cmd = sb.command(["run", "--config"]);
    cmd.arg(&config).arg("--logs-dir").arg(sb.logs()).args([
        "--count",
        "600",
        "--rate",
        "0",
        "--scenario",
        "bmi+=0.5",
    ]);
    run_within(cmd, Duration::from_secs(60)).expect_code(0);
}
