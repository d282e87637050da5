//! The `emsp` binary as an operator uses it: help, migrations, bad configuration, the demo,
//! graceful shutdown on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn emsp() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_emsp"));
    // The tests decide the database; the environment of the developer or CI does not leak in.
    command.env_remove("DATABASE_URL").env_remove("EMSP_CONFIG").env("EMSP_LOG_FORMAT", "json").env("RUST_LOG", "info");
    command
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("emsp-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn every_subcommand_has_help() {
    let output = emsp().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = text(&output);
    for command in ["serve", "migrate", "demo", "config"] {
        assert!(help.contains(command), "{help}");
        let sub = emsp().args([command, "--help"]).output().unwrap();
        assert!(sub.status.success(), "{command} --help: {}", text(&sub));
    }
}

#[test]
fn unknown_database_scheme_is_a_clear_error() {
    let output = emsp().arg("migrate").env("DATABASE_URL", "mysql://root@localhost/emsp").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("scheme \"mysql\" is not supported"), "{}", text(&output));
}

#[test]
fn sqlite_in_a_missing_folder_is_an_error_not_a_new_database() {
    let dir = temp_dir("missing");
    let file = dir.join("nope").join("emsp.sqlite");
    let output = emsp().arg("migrate").env("DATABASE_URL", format!("sqlite://{}", file.display())).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("does not exist"), "{}", text(&output));
    assert!(!file.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn migrate_applies_once() {
    let dir = temp_dir("migrate");
    let url = format!("sqlite://{}", dir.join("emsp.sqlite").display());
    let first = emsp().arg("migrate").env("DATABASE_URL", &url).output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied"), "{}", text(&first));
    let second = emsp().arg("migrate").env("DATABASE_URL", &url).output().unwrap();
    assert!(String::from_utf8_lossy(&second.stdout).contains("up to date"), "{}", text(&second));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_unreachable_database_is_retried_then_reported() {
    let output = emsp()
        .arg("serve")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/emsp")
        .env("EMSP_DB_STARTUP_TIMEOUT_S", "2")
        .env("EMSP_DB_CONNECT_TIMEOUT_S", "1")
        .env("EMSP_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output);
    assert!(out.contains("retrying"), "backs off and retries: {out}");
    assert!(out.contains("unreachable after"), "{out}");
}

#[test]
fn a_config_file_with_an_unknown_key_is_rejected() {
    let dir = temp_dir("config");
    let file = dir.join("emsp.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:0\"\nworkerz = 3\n").unwrap();
    let output = emsp().args(["--config", file.to_str().unwrap(), "config"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("unknown field `workerz`"), "{}", text(&output));
    std::fs::remove_dir_all(dir).unwrap();
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let response = client.get(format!("http://{addr}{path}")).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    })
}

/// The demo serves `/health` and `/ready` on SQLite in its data folder, registers with two
/// simulated CPOs (OCPI 2.2.1 and 2.1.1), pulls their locations into search, takes their status
/// pushes, and SIGTERM stops it gracefully with exit code 0.
#[test]
fn demo_serves_health_and_ready_and_stops_on_sigterm() {
    let dir = temp_dir("demo");
    let mut child = emsp()
        .arg("demo")
        .env("EMSP_DATA_DIR", dir.join("data"))
        .env("EMSP_LISTEN", "127.0.0.1:0")
        .env("DATABASE_URL", "postgres://ignored-by-the-demo@127.0.0.1:1/x")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep draining stderr for the child's whole life, as a terminal would.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (sender, receiver) = std::sync::mpsc::channel();
    let (up_sender, up_receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("emsp is listening on http://") {
                let _ = sender.send(rest.split_whitespace().next().map(str::to_owned));
            }
            if line.starts_with("the demo is up") {
                let _ = up_sender.send(line);
            }
        }
    });
    let addr = receiver.recv_timeout(Duration::from_secs(60)).ok().flatten();
    let addr = addr.expect("the demo prints where it listens");
    assert_eq!(http_get(&addr, "/health").0, 200);
    let (status, body) = http_get(&addr, "/ready");
    assert_eq!(status, 200, "{body}");
    assert!(dir.join("data").join("demo.sqlite").exists(), "the demo uses SQLite in its data folder");
    let up = up_receiver.recv_timeout(Duration::from_secs(120)).expect("the demo comes up");
    assert!(up.contains("2500 locations"), "{up}");
    let (_, metrics) = http_get(&addr, "/metrics");
    assert!(metrics.contains("emsp_search_index_locations 2500"), "{metrics}");
    // Status pushes of the simulators arrive at our OCPI receiver.
    let started = std::time::Instant::now();
    while !http_get(&addr, "/metrics")
        .1
        .contains(r#"route="/ocpi/{version}/locations/{cc}/{pid}/{location_id}/{evse_uid}",status="200""#)
    {
        assert!(started.elapsed() < Duration::from_secs(30), "no status push arrived");
        std::thread::sleep(Duration::from_millis(200));
    }

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "graceful shutdown exits 0: {:?}", output.status);
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(logs.contains("\"message\":\"stopped\""), "{logs}");
    assert!(logs.contains("\"request_id\""), "request logs carry the request id: {logs}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `emsp tariff price` checks the specification's example CDR against its tariff: 1.973 h of
/// charging, billed per 5 minutes (2 h) at 2.00/h excl. 10 % VAT = 4.00 / 4.40, as the CDR says.
#[test]
fn tariff_price_checks_a_cdr() {
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/ocpi-spec-examples/2.2.1/cdr_example.json");
    let dir = temp_dir("tariff");
    let cdr: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(shared).unwrap()).unwrap();
    let tariff_file = dir.join("tariff.json");
    std::fs::write(&tariff_file, cdr["tariffs"][0].to_string()).unwrap();
    let output = emsp()
        .args([
            "tariff",
            "price",
            "--tariff",
            tariff_file.to_str().unwrap(),
            "--cdr",
            shared,
            "--time-zone",
            "Europe/Brussels",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let check: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let amount = |v: &serde_json::Value| v.as_str().unwrap().parse::<f64>().unwrap();
    assert_eq!(amount(&check["total_cost"]["ours"]["excl_vat"]), 4.0);
    assert_eq!(amount(&check["total_cost"]["ours"]["incl_vat"]), 4.4);
    assert_eq!(amount(&check["total_cost"]["cdr"]["excl_vat"]), 4.0);
    for key in ["total_energy_cost", "total_time_cost", "total_parking_cost", "total_fixed_cost"] {
        assert!(check[key]["ours"].is_object(), "{key}");
    }
    assert_eq!(check["time_zone"], "Europe/Brussels");

    let bad = emsp().args(["tariff", "price", "--cdr", tariff_file.to_str().unwrap()]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1), "a tariff is not a CDR: {}", text(&bad));
    std::fs::remove_dir_all(dir).unwrap();
}
