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
    let volumes: Vec<&str> = strings(&app["volumes"]);
    assert!(volumes.contains(&"logs:/app/logs"), "{volumes:?}");
    assert!(c["volumes"].get("logs").is_some());
}

/// One Dockerfile instruction: its keyword (upper case) and its arguments,
/// continuation lines joined, comments dropped.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn parse_dockerfile(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (current.is_empty() && trimmed.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, args) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_string(),
        });
        current.clear();
    }
    assert!(current.is_empty(), "Dockerfile ends in a continuation line");
    out
}

/// The stages of a Dockerfile: each `FROM` and the instructions after it.
fn stages(instructions: &[Instruction]) -> Vec<&[Instruction]> {
    let starts: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, i)| i.keyword == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(starts.first(), Some(&0), "the first instruction is FROM");
    starts
        .iter()
        .enumerate()
        .map(|(k, &a)| &instructions[a..*starts.get(k + 1).unwrap_or(&instructions.len())])
        .collect()
}

/// The shell commands of a RUN (split at `&&`, `||`, `;`), each as words.
fn shell_commands(run: &str) -> Vec<Vec<String>> {
    run.replace("&&", ";")
        .replace("||", ";")
        .split(';')
        .map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn dockerfile_is_multi_stage_locked_non_root_and_copies_what_exists() {
    let text = std::fs::read_to_string(repo().join("docker/Dockerfile")).unwrap();
    let instructions = parse_dockerfile(&text);
    let stages = stages(&instructions);
    assert!(stages.len() >= 2, "multi-stage build expected");
    let (final_stage, build_stages) = stages.split_last().unwrap();

    // A build stage runs `cargo build` with --release and --locked as
    // arguments of that command (not in a comment, not another command's).
    let locked_build = build_stages.iter().flat_map(|s| s.iter()).any(|i| {
        i.keyword == "RUN"
            && shell_commands(&i.args).iter().any(|c| {
                c.len() >= 2
                    && c[0] == "cargo"
                    && c[1] == "build"
                    && c.iter().any(|w| w == "--locked")
                    && c.iter().any(|w| w == "--release")
            })
    });
    assert!(
        locked_build,
        "no RUN cargo build --release --locked in a build stage"
    );
    // The final stage takes the binary from a build stage.
    let build_names: Vec<String> = build_stages
        .iter()
        .enumerate()
        .flat_map(|(n, s)| {
            let words: Vec<&str> = s[0].args.split_whitespace().collect();
            let mut names = vec![n.to_string()];
            if words.len() == 3 && words[1].eq_ignore_ascii_case("AS") {
                names.push(words[2].to_string());
            }
            names
        })
        .collect();
    assert!(
        final_stage.iter().any(|i| i.keyword == "COPY"
            && i.args.contains("target/release/modelwatch")
            && i.args.split_whitespace().any(|w| w
                .strip_prefix("--from=")
                .is_some_and(|f| build_names.iter().any(|n| n == f)))),
        "the final stage does not copy the release binary from a build stage"
    );

    // The final stage's last USER is neither root by name nor uid 0, and a
    // named user is created in that stage with a non-zero uid.
    let user = final_stage
        .iter()
        .rfind(|i| i.keyword == "USER")
        .expect("a USER in the final stage");
    let name = user.args.split(':').next().unwrap().trim();
    assert!(
        !name.is_empty() && name != "root" && name.parse::<u32>() != Ok(0),
        "the container runs as root: USER {}",
        user.args
    );
    if name.parse::<u32>().is_err() {
        let created = final_stage.iter().filter(|i| i.keyword == "RUN").any(|i| {
            shell_commands(&i.args).iter().any(|c| {
                matches!(c[0].as_str(), "useradd" | "adduser")
                    && c.last().map(String::as_str) == Some(name)
                    && c.windows(2)
                        .find(|w| matches!(w[0].as_str(), "--uid" | "-u"))
                        .is_none_or(|w| w[1].parse::<u32>().is_ok_and(|uid| uid != 0))
            })
        });
        assert!(
            created,
            "USER {name} is not created (with a non-zero uid) in the final stage"
        );
    }

    // The logs folder is a volume of the final stage.
    let volumes: Vec<String> = final_stage
        .iter()
        .filter(|i| i.keyword == "VOLUME")
        .flat_map(|i| {
            serde_json::from_str::<Vec<String>>(&i.args)
                .unwrap_or_else(|_| i.args.split_whitespace().map(str::to_owned).collect())
        })
        .collect();
    assert!(volumes.iter().any(|v| v == "/app/logs"), "{volumes:?}");

    for i in instructions.iter().filter(|i| i.keyword == "COPY") {
        let parts: Vec<&str> = i.args.split_whitespace().collect();
        if parts.iter().any(|p| p.starts_with("--from")) {
            continue;
        }
        let parts: Vec<&str> = parts.into_iter().filter(|p| !p.starts_with("--")).collect();
        for src in &parts[..parts.len() - 1] {
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
        let cmd: Vec<&str> = strings(&s["command"]);
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

/// The port of an `ip:port` listen address (MODELWATCH__HTTP__LISTEN).
fn listen_port(listen: &str) -> u16 {
    let (_, port) = listen
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("not ip:port: {listen}"));
    port.parse()
        .unwrap_or_else(|_| panic!("bad port in {listen}"))
}

#[test]
fn compose_monitoring_profile_scrapes_every_role_at_its_own_port() {
    let c = compose();
    let services = c["services"].as_mapping().unwrap();

    // Prometheus: the official image, in its own profile, with our config.
    let prom = &c["services"]["prometheus"];
    assert!(
        prom["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("prom/prometheus")),
        "{prom:?}"
    );
    assert_eq!(prom["profiles"][0].as_str(), Some("monitoring"));
    let mounts: Vec<&str> = strings(&prom["volumes"]);
    assert!(
        mounts.contains(&"./prometheus.yml:/etc/prometheus/prometheus.yml:ro"),
        "{mounts:?}"
    );
    let args: Vec<&str> = strings(&prom["command"]);
    assert!(
        args.contains(&"--config.file=/etc/prometheus/prometheus.yml"),
        "{args:?}"
    );

    // The HTTP port each modelwatch service listens on; all distinct.
    let mut ports = std::collections::BTreeMap::new();
    for (name, s) in services {
        let name = name.as_str().unwrap();
        if s["image"].as_str() != Some("modelwatch:latest") {
            continue;
        }
        let listen = s["environment"]["MODELWATCH__HTTP__LISTEN"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no MODELWATCH__HTTP__LISTEN"));
        assert!(
            listen.starts_with("0.0.0.0:"),
            "{name}: {listen} (reachable from Prometheus)"
        );
        ports.insert(name.to_string(), listen_port(listen));
    }
    let mut distinct: Vec<u16> = ports.values().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ports.len(), "one port per role: {ports:?}");
    for role in ["pipeline", "features", "model", "metric", "plot"] {
        assert!(ports.contains_key(role), "{role} serves HTTP: {ports:?}");
    }

    // The scrape config parses, and its targets are exactly those services
    // at those ports, one job each.
    let text = std::fs::read_to_string(repo().join("docker/prometheus.yml")).unwrap();
    let conf: serde_yaml::Value = serde_yaml::from_str(&text).expect("prometheus.yml is YAML");
    let mut scraped = std::collections::BTreeMap::new();
    for job in conf["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
    {
        let name = job["job_name"].as_str().expect("job_name");
        let mut targets = Vec::new();
        for sc in job["static_configs"].as_sequence().into_iter().flatten() {
            for t in sc["targets"].as_sequence().expect("targets") {
                let t = t.as_str().expect("a target string");
                let (host, port) = t.rsplit_once(':').unwrap_or_else(|| panic!("{t}"));
                targets.push((host.to_string(), port.parse::<u16>().expect(t)));
            }
        }
        for sd in job["dns_sd_configs"].as_sequence().into_iter().flatten() {
            let port = sd["port"].as_u64().expect("dns_sd port") as u16;
            for n in sd["names"].as_sequence().expect("names") {
                targets.push((n.as_str().unwrap().to_string(), port));
            }
        }
        assert!(!targets.is_empty(), "job {name} has no target");
        for (host, port) in &targets {
            assert_eq!(
                ports.get(host),
                Some(port),
                "job {name}: {host}:{port} is not a compose service serving that port ({ports:?})"
            );
            assert!(
                scraped.insert(host.clone(), name.to_string()).is_none(),
                "{host} scraped twice"
            );
        }
    }
    let served: Vec<&String> = ports.keys().collect();
    let covered: Vec<&String> = scraped.keys().collect();
    assert_eq!(covered, served, "every modelwatch service is scraped");
}

/// The strings of a YAML list (panics if it is not a list).
fn strings(v: &serde_yaml::Value) -> Vec<&str> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .filter_map(|v| v.as_str())
        .collect()
}
