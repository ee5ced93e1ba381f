//! End-to-end tests of the services as processes: `odc ground` keeps accepted jobs across a restart and clients
//! see only their own, operators and tenants through `odc ops` and `odc tenant`, HTTPS with a certificate from
//! the constellation CA.

mod support;

use std::process::{Command, Output};
use support::{stderr, tempdir, tle, with_checksum};

/// Starts `odc ground` in `dir` and returns it with the base URL it printed.
fn start_ground(dir: &std::path::Path) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_odc"))
        .args(["ground", "--config", "ground.toml"])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("odc ground starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("banner");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, url)
}

fn stop(child: &mut std::process::Child) {
    // SIGTERM: requests in flight finish and the store is closed.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("exits");
    assert!(status.success(), "graceful stop: {status}");
}

fn client(dir: &std::path::Path, url: &str, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_odc"))
        .args(args)
        .args(["--url", url, "--token", token])
        .current_dir(dir)
        .output()
        .expect("odc runs")
}

#[test]
fn the_ground_service_keeps_accepted_jobs_across_a_restart_and_clients_see_only_their_own() {
    let dir = tempdir();
    std::fs::write(dir.join("ground.toml"), "listen = \"127.0.0.1:0\"\n").expect("config");
    let (mut ground, url) = start_ground(&dir);
    let operator = std::fs::read_to_string(dir.join("operator.token")).expect("operator token");
    let operator = operator.trim();
    let mut tokens = Vec::new();
    for name in ["acme", "beta"] {
        let out = client(
            &dir,
            &url,
            operator,
            &["ops", "tenant-create", "--name", name],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        tokens.push(v["token"].as_str().expect("token").to_string());
    }
    std::fs::write(dir.join("tile.bin"), vec![3u8; 4096]).expect("input");
    let submit = [
        "tenant", "submit", "--model", "resnet50", "--input", "tile.bin",
    ];
    let out = client(&dir, &url, &tokens[0], &submit);
    assert!(out.status.success(), "{}", stderr(&out));
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let id = job["id"].as_str().expect("id").to_string();
    // The same file again is the same job (the key defaults to the input's digest).
    let again: serde_json::Value =
        serde_json::from_slice(&client(&dir, &url, &tokens[0], &submit).stdout).expect("json");
    assert_eq!(again["id"], job["id"]);
    // A key with characters a URL query must escape is kept as it was given.
    let keyed = [
        "tenant",
        "submit",
        "--model",
        "resnet50",
        "--input",
        "tile.bin",
        "--key",
        "tile#1&2/3=?+%",
    ];
    let out = client(&dir, &url, &tokens[0], &keyed);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["idempotency_key"], "tile#1&2/3=?+%", "{v}");
    assert_ne!(v["id"], job["id"]);
    // Another tenant: the job does not exist for it.
    let out = client(&dir, &url, &tokens[1], &["tenant", "status", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not_found"), "{}", stderr(&out));
    let out = client(&dir, &url, "wrong", &["tenant", "list"]);
    assert!(stderr(&out).contains("unauthenticated"), "{}", stderr(&out));
    stop(&mut ground);

    let (mut ground, url) = start_ground(&dir);
    let out = client(&dir, &url, &tokens[0], &["tenant", "status", &id]);
    assert!(
        out.status.success(),
        "the job survived the restart: {}",
        stderr(&out)
    );
    let out = client(&dir, &url, &tokens[0], &["tenant", "cancel", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["state"], "cancelled");
    let out = client(&dir, &url, &tokens[0], &["tenant", "usage"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Operators see the fleet and its stations; a station taken down is an alarm.
    let out = client(&dir, &url, operator, &["ops", "nodes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        nodes.as_array().map(Vec::len),
        Some(24),
        "the demo constellation"
    );
    let out = client(&dir, &url, operator, &["ops", "stations"]);
    let stations: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let station = stations[0]["id"].as_str().expect("a station").to_string();
    let out = client(
        &dir,
        &url,
        operator,
        &[
            "ops",
            "station-status",
            "--station",
            &station,
            "--status",
            "down",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = client(&dir, &url, operator, &["ops", "alarms"]);
    let alarms: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        alarms
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["code"] == "station_down" && a["subject"] == station.as_str()),
        "{alarms}"
    );
    let out = client(&dir, &url, &tokens[0], &["ops", "nodes"]);
    assert!(stderr(&out).contains("forbidden"), "{}", stderr(&out));
    // An operator changes beta's quota and gives it a new token: the old one is refused, the new one works.
    let out = client(&dir, &url, operator, &["ops", "tenants"]);
    let tenants: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let beta = tenants
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["tenant"]["name"] == "beta")
        .and_then(|t| t["tenant"]["id"].as_str())
        .expect("beta")
        .to_string();
    let update = [
        "ops",
        "tenant-update",
        "--tenant",
        &beta,
        "--energy-wh",
        "42",
        "--weight",
        "2",
    ];
    let out = client(&dir, &url, operator, &update);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["tenant"]["quota"]["energy_wh"], 42.0, "{v}");
    assert_eq!(
        v["tenant"]["quota"]["accelerator_s"], 3600.0,
        "untouched: {v}"
    );
    assert_eq!(v["tenant"]["share_weight"], 2, "{v}");
    let out = client(
        &dir,
        &url,
        operator,
        &["ops", "tenant-update", "--tenant", &beta],
    );
    assert!(
        stderr(&out).contains("nothing_to_change"),
        "{}",
        stderr(&out)
    );
    let out = client(
        &dir,
        &url,
        operator,
        &["ops", "tenant-token", "--tenant", &beta],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let old = std::mem::replace(&mut tokens[1], v["token"].as_str().expect("token").into());
    let out = client(&dir, &url, &old, &["tenant", "usage"]);
    assert!(stderr(&out).contains("unauthenticated"), "{}", stderr(&out));
    let out = client(&dir, &url, &tokens[1], &["tenant", "usage"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Orbit data: the catalog in force again is stale; one satellite's fresher elements replace its own.
    let text = std::fs::read_to_string(tle()).expect("catalog");
    std::fs::write(dir.join("same.tle"), &text).expect("tle");
    let out = client(
        &dir,
        &url,
        operator,
        &["ops", "orbits-upload", "--file", "same.tle"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        report["stale"].as_array().map(Vec::len),
        Some(24),
        "{report}"
    );
    assert_eq!(report["accepted"].as_array().map(Vec::len), Some(0));
    let record: Vec<&str> = text.lines().take(3).collect();
    let fresher = format!(
        "{}\n{}\n{}\n",
        record[0],
        with_checksum(&record[1].replacen("26170.39149199", "26170.89149199", 1)),
        record[2]
    );
    std::fs::write(dir.join("fresh.tle"), fresher).expect("tle");
    let out = client(
        &dir,
        &url,
        operator,
        &["ops", "orbits-upload", "--file", "fresh.tle"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["accepted"][0]["node"], "n60001", "{report}");
    // Its passes were computed again from the new elements (the others' are unchanged).
    let out = client(&dir, &url, operator, &["ops", "nodes"]);
    let after: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let pass = |v: &serde_json::Value, node: &str| {
        v.as_array()
            .into_iter()
            .flatten()
            .find(|n| n["node"] == node)
            .map(|n| n["next_pass"].clone())
    };
    assert_ne!(pass(&nodes, "n60001"), pass(&after, "n60001"));
    assert_eq!(pass(&nodes, "n60002"), pass(&after, "n60002"));
    let out = client(&dir, &url, operator, &["ops", "orbits"]);
    let epochs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        epochs
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["node"] == "n60001"
                && e["epoch"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("2026-06-19T21:23"))),
        "{epochs}"
    );
    std::fs::write(dir.join("junk.tle"), "hello\n").expect("junk");
    let out = client(
        &dir,
        &url,
        operator,
        &["ops", "orbits-upload", "--file", "junk.tle"],
    );
    assert!(stderr(&out).contains("invalid_orbits"), "{}", stderr(&out));
    stop(&mut ground);
    let printed = Command::new(env!("CARGO_BIN_EXE_odc"))
        .args(["ground", "--print-default-config"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&printed.stdout).contains("listen = \"127.0.0.1:8080\""));
}

#[test]
fn the_api_serves_https_with_a_certificate_from_the_constellation_ca() {
    let dir = tempdir();
    let pki = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_odc"))
            .args(["pki"])
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("odc pki runs");
        assert!(out.status.success(), "{}", stderr(&out));
    };
    pki(&["init", "--dir", "pki"]);
    pki(&["issue", "--dir", "pki", "--api", "127.0.0.1,localhost"]);
    pki(&["init", "--dir", "other"]);
    std::fs::write(
        dir.join("ground.toml"),
        "listen = \"127.0.0.1:0\"\napi_tls_cert = \"pki/api.pem\"\napi_tls_key = \"pki/api.key\"\n",
    )
    .expect("config");
    let (mut ground, url) = start_ground(&dir);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let operator = std::fs::read_to_string(dir.join("operator.token")).expect("operator token");
    let operator = operator.trim();
    let with_ca = |ca: &str| {
        let mut args = vec!["ops", "tenants", "--ca", ca];
        if ca.is_empty() {
            args.truncate(2);
        }
        client(&dir, &url, operator, &args)
    };
    let out = with_ca("pki/ca.pem");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    // No CA given, or one the certificate does not chain to: refused, and said so.
    let out = with_ca("");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--ca"), "{}", stderr(&out));
    let out = with_ca("other/ca.pem");
    assert!(!out.status.success());
    assert!(
        stderr(&out).to_lowercase().contains("certificate"),
        "{}",
        stderr(&out)
    );
    // Plain HTTP to the HTTPS port gets no answer it could take for the API's.
    let plain = url.replacen("https://", "http://", 1);
    let out = client(&dir, &plain, operator, &["ops", "tenants"]);
    assert!(!out.status.success());
    stop(&mut ground);
}
