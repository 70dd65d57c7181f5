//! No Docker engine runs on this machine, so the container files are checked
//! for structure here: what the compose file starts and how, and that the
//! Dockerfile is a multi-stage, locked, non-root build whose inputs exist.

use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> serde_yaml::Value {
    let text = std::fs::read_to_string(repo().join("docker/compose.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("compose.yaml is valid YAML")
}

#[test]
fn compose_runs_rabbitmq_with_a_healthcheck_and_the_app_with_the_bridge_on() {
    let c = compose();
    let services = &c["services"];
    let rabbit = &services["rabbitmq"];
    assert_eq!(rabbit["image"].as_str(), Some("rabbitmq:3-management"));
    assert!(rabbit["healthcheck"]["test"].is_sequence());

    let app = &services["pipeline"];
    assert_eq!(
        app["build"]["dockerfile"].as_str(),
        Some("docker/Dockerfile")
    );
    assert_eq!(app["build"]["context"].as_str(), Some(".."));
    assert_eq!(app["restart"].as_str(), Some("unless-stopped"));
    let url = app["environment"]["AMQP_URL"].as_str().unwrap();
    assert!(
        url.starts_with("amqp://") && url.contains("@rabbitmq:5672"),
        "{url}"
    );
    assert_eq!(
        app["depends_on"]["rabbitmq"]["condition"].as_str(),
        Some("service_healthy")
    );
    let volumes: Vec<&str> = app["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(volumes.contains(&"logs:/app/logs"), "{volumes:?}");
    assert!(c["volumes"].get("logs").is_some());
}

#[test]
fn dockerfile_is_multi_stage_locked_non_root_and_copies_what_exists() {
    let text = std::fs::read_to_string(repo().join("docker/Dockerfile")).unwrap();
    let froms = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(froms >= 2, "multi-stage build expected");
    assert!(text.contains("cargo build --release --locked"));
    let user = text
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert_ne!(user.trim(), "USER root");
    assert!(text.contains("VOLUME [\"/app/logs\"]"));
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(
                repo().join(src).exists(),
                "Dockerfile copies {src}, which is missing"
            );
        }
    }
}

#[test]
fn compose_split_profile_runs_the_four_roles_with_two_models_sharing_logs() {
    let c = compose();
    let services = &c["services"];
    let role = |name: &str| {
        let s = &services[name];
        assert_eq!(s["profiles"][0].as_str(), Some("split"), "{name}");
        assert_eq!(s["image"].as_str(), Some("modelwatch:latest"), "{name}");
        let cmd: Vec<&str> = s["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let at = cmd.iter().position(|a| *a == "--roles").expect("--roles");
        assert_eq!(cmd[at + 1], name);
        assert!(s["environment"]["AMQP_URL"]
            .as_str()
            .unwrap()
            .contains("@rabbitmq:5672"));
        assert_eq!(
            s["depends_on"]["rabbitmq"]["condition"].as_str(),
            Some("service_healthy")
        );
        s
    };
    for name in ["features", "model", "metric", "plot"] {
        role(name);
    }
    assert_eq!(services["model"]["deploy"]["replicas"].as_u64(), Some(2));
    let vols = |name: &str| -> Vec<String> {
        services[name]["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        vols("metric"),
        vols("plot"),
        "metric and plot share the logs volume"
    );
    assert!(vols("metric")[0].ends_with(":/app/logs"));
    // the default `up` (no profile) still runs just rabbitmq and the pipeline
    assert!(services["pipeline"].get("profiles").is_none());
}
