//! What an operator relies on around the API: `/metrics` counts, the
//! health check, the body size limit, configuration files and their
//! errors, and stopping on SIGTERM/SIGINT.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{TestDatabase, TestServer};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

/// The value of the sample `name{labels}` in a text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

fn scrape(base: &str, token: &str) -> (u16, String) {
    match ureq::get(&format!("{base}/metrics"))
        .set("x-auth-token", token)
        .call()
    {
        Ok(response) => (
            response.status(),
            response.into_string().unwrap_or_default(),
        ),
        Err(ureq::Error::Status(status, response)) => {
            (status, response.into_string().unwrap_or_default())
        }
        Err(error) => panic!("transport error: {error}"),
    }
}

#[test]
fn metrics_count_a_known_sequence_of_requests() {
    let server = TestServer::start();
    let client = server.client();
    for _ in 0..3 {
        assert_eq!(client.get("/resource_providers").status, 200);
    }
    let provider = uuid::Uuid::new_v4().to_string();
    let created = client.post(
        "/resource_providers",
        &json!({"name": "metered", "uuid": provider}),
    );
    assert_eq!(created.status, 200);
    let inventory = client.put(
        &format!("/resource_providers/{provider}/inventories"),
        &json!({"resource_provider_generation": 0,
                "inventories": {"VCPU": {"total": 4}}}),
    );
    assert_eq!(inventory.status, 200);
    let claim = |vcpus: u32, generation: serde_json::Value| {
        client.put(
            &format!("/allocations/{}", uuid::Uuid::new_v4()),
            &json!({"allocations": {provider.as_str(): {"resources": {"VCPU": vcpus}}},
                    "project_id": "p", "user_id": "u", "consumer_generation": generation,
                    "consumer_type": "INSTANCE"}),
        )
    };
    assert_eq!(claim(3, json!(null)).status, 204);
    assert_eq!(claim(3, json!(null)).status, 409, "over capacity");
    assert_eq!(claim(1, json!(7)).status, 409, "consumer generation");
    assert_eq!(client.get("/nowhere/a/b").status, 404);

    let (status, text) = scrape(&server.base_url, "admin");
    assert_eq!(status, 200);
    let count = |series: &str| sample(&text, series).unwrap_or(-1.0);
    assert_eq!(
        count(
            r#"placement_http_requests_total{method="GET",route="/resource_providers",status="200"}"#
        ),
        3.0
    );
    assert_eq!(
        count(
            r#"placement_http_requests_total{method="PUT",route="/allocations/{consumer_uuid}",status="409"}"#
        ),
        2.0
    );
    assert_eq!(
        count(r#"placement_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        1.0,
        "unknown paths share one label: {text}"
    );
    assert_eq!(count(r#"placement_claims_total{outcome="accepted"}"#), 1.0);
    assert_eq!(count(r#"placement_claims_total{outcome="capacity"}"#), 1.0);
    assert_eq!(
        count(r#"placement_claims_total{outcome="consumer_conflict"}"#),
        1.0
    );
    assert_eq!(
        count(
            r#"placement_http_request_duration_seconds_count{method="GET",route="/resource_providers"}"#
        ),
        3.0
    );
    assert_eq!(
        count("placement_http_requests_in_flight"),
        1.0,
        "the scrape itself"
    );
    assert!(count("placement_db_pool_max_connections") >= 1.0);
    assert!(text.contains(r#"placement_build_info{max_microversion="1.39",version=""#));
    assert!(!text.contains(&provider), "no uuid in any label");

    // On the API port /metrics needs the admin_api rule.
    let (status, _) = scrape(&server.base_url, "alice");
    assert_eq!(status, 403);
}

#[test]
fn the_health_check_needs_no_token_and_reports_the_database() {
    let server = TestServer::start_with(|config| config.pool_timeout = Duration::from_secs(1));
    let base = &server.base_url;
    let ok = ureq::get(&format!("{base}/healthcheck"))
        .call()
        .expect("200");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.into_string().unwrap_or_default(), "OK");
    let head = ureq::head(&format!("{base}/healthcheck"))
        .call()
        .expect("204");
    assert_eq!(head.status(), 204);
    let detailed = ureq::get(&format!("{base}/healthcheck"))
        .set("accept", "application/json")
        .call()
        .expect("200")
        .into_json::<serde_json::Value>()
        .expect("json");
    assert_eq!(detailed, json!({"detailed": false, "reasons": ["OK"]}));

    // The database gone: 503 with the reason, within the pool timeout.
    crate::support::drop_database_now(&server.database.name);
    let started = Instant::now();
    let (status, reason) = match ureq::get(&format!("{base}/healthcheck")).call() {
        Err(ureq::Error::Status(status, response)) => {
            (status, response.into_string().unwrap_or_default())
        }
        other => panic!("expected 503, got {other:?}"),
    };
    assert_eq!(status, 503);
    assert!(reason.contains("database"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_body_over_the_limit_is_a_json_413() {
    let server = TestServer::start_with(|config| config.max_body_bytes = 1024);
    let body = json!({"name": "x".repeat(2048)});
    let reply = server.client().post("/resource_providers", &body);
    assert_eq!(reply.status, 413);
    assert_eq!(reply.body["errors"][0]["status"], 413);
    assert_eq!(reply.body["errors"][0]["title"], "Request Entity Too Large");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    );
    // Under the limit the same request is served.
    let small = server
        .client()
        .post("/resource_providers", &json!({"name": "small"}));
    assert_eq!(small.status, 200);
}

/// `placement` with `args`, a config file of `conf` and `env`.
fn placement(args: &[&str], conf: Option<&str>, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_placement"));
    if let Some(conf) = conf {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("placement-{}.conf", uuid::Uuid::new_v4()));
        std::fs::write(&path, conf).expect("write config");
        command.arg("--config-file").arg(path);
    }
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PORT")
        .env_remove("OS_API__AUTH_STRATEGY")
        .env("OS_PLACEMENT_CONFIG_DIR", env!("CARGO_TARGET_TMPDIR"))
        .env("OS_SERVER__LOG_FILTER", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

fn wait_until_up(base: &str, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ureq::get(&format!("{base}/")).call().is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("server exited with {status}: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("server did not start");
}

fn wait_for_exit(child: &mut std::process::Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

#[test]
fn an_upstream_style_placement_conf_starts_it_and_signals_stop_it_cleanly() {
    for signal in ["-TERM", "-INT"] {
        let database = TestDatabase::new();
        let port = free_port();
        let metrics_port = free_port();
        // As upstream's install guide and a real deployment write it, in
        // upstream's URL form, plus this server's own section.
        let conf = format!(
            "[DEFAULT]\ndebug = false\n\n[api]\nauth_strategy = noauth2\n\n\
             [placement_database]\nconnection = {}\nmax_pool_size = 4\n\n\
             [placement]\nallocation_conflict_retry_count = 5\n\n\
             [oslo_policy]\nenforce_new_defaults = true\npolicy_file = policy.yaml\n\n\
             [server]\nport = {port}\nmetrics_listen = 127.0.0.1:{metrics_port}\nworkers = 1\n",
            database
                .url()
                .replacen("postgres://", "postgresql+psycopg2://", 1)
        );
        let mut child = placement(&["serve"], Some(&conf), &[])
            .spawn()
            .expect("start placement");
        let base = format!("http://127.0.0.1:{port}");
        wait_until_up(&base, &mut child);
        let listed = ureq::get(&format!("{base}/resource_providers"))
            .set("x-auth-token", "admin")
            .call()
            .expect("200");
        assert_eq!(listed.status(), 200);
        // The metrics listener of its own needs no token.
        let metrics = ureq::get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
            .call()
            .expect("metrics");
        let text = metrics.into_string().unwrap_or_default();
        assert!(text.contains("placement_http_requests_total"), "{text}");
        let pid = child.id().to_string();
        let killed = Command::new("kill").args([signal, &pid]).status();
        assert!(killed.is_ok_and(|status| status.success()));
        assert_eq!(wait_for_exit(&mut child), Some(0), "{signal} exits 0");
    }
}

fn stderr_of(mut command: Command) -> (Option<i32>, String) {
    let output = command.output().expect("run placement");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_configuration_stops_start_up_naming_the_setting() {
    let database = TestDatabase::new();
    let url = database.url();
    // keystone is the default, and its options are incomplete.
    let conf = format!(
        "[placement_database]\nconnection = {url}\n\n[keystone_authtoken]\nauth_type = password\n\
         auth_url = http://127.0.0.1:1/v3\nusername = placement\nproject_name = service\n\
         user_domain_name = Default\nproject_domain_name = Default\n"
    );
    let (code, stderr) = stderr_of(placement(&["serve"], Some(&conf), &[]));
    assert_ne!(code, Some(0));
    assert!(stderr.contains("[keystone_authtoken] password"), "{stderr}");
    assert!(!stderr.contains("noauth2 "), "never falls back: {stderr}");

    let (code, stderr) = stderr_of(placement(
        &["serve"],
        Some("[placement_database]\nconnection = mysql+pymysql://root:hunter2@db/placement\n"),
        &[("OS_API__AUTH_STRATEGY", "noauth2")],
    ));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("[placement_database] connection"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "secrets stay secret: {stderr}");

    let (code, stderr) = stderr_of(placement(
        &["serve"],
        Some(&format!(
            "[api]\nauth_strategy = noauth2\n[placement_database]\nconnection = {url}\n[server]\nport = http\n"
        )),
        &[],
    ));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("[server] port = \"http\""), "{stderr}");

    // The environment beats the file.
    let (code, stderr) = stderr_of(placement(
        &["serve"],
        Some(&format!(
            "[api]\nauth_strategy = noauth2\n[placement_database]\nconnection = {url}\n"
        )),
        &[("OS_SERVER__WORKERS", "none")],
    ));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("[server] workers") && stderr.contains("OS_SERVER__WORKERS"),
        "{stderr}"
    );

    let (code, stderr) = stderr_of(placement(
        &["migrate"],
        Some(&format!("[placement_database]\nconnection = {url}\n")),
        &[],
    ));
    assert_eq!(
        code,
        Some(0),
        "migrate needs no [keystone_authtoken]: {stderr}"
    );
}

#[test]
fn the_sample_configuration_lists_every_section_and_the_cli_its_options() {
    let output = placement(&["config", "sample"], None, &[])
        .output()
        .expect("config sample");
    assert!(output.status.success());
    let sample = String::from_utf8_lossy(&output.stdout);
    for section in [
        "[DEFAULT]",
        "[api]",
        "[placement_database]",
        "[placement]",
        "[oslo_policy]",
        "[cors]",
        "[keystone_authtoken]",
        "[server]",
    ] {
        assert!(sample.contains(section), "{section}");
    }
    assert!(sample.contains("#auth_strategy = keystone"));
    assert!(sample.contains("#token_cache_time = 300"));

    let help = placement(&["serve", "--help"], None, &[])
        .output()
        .expect("serve --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--config-file"), "{help}");
    assert!(
        help.contains("[placement_database] max_pool_size = 16"),
        "{help}"
    );

    let version = placement(&["version"], None, &[])
        .output()
        .expect("version");
    assert!(String::from_utf8_lossy(&version.stdout).contains("1.0 to 1.39"));
}
