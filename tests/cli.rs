//! End-to-end tests of the `odc` binary: the ephemeris commands on the calibration files, and clean one-line
//! errors for bad arguments and bad files.

use std::process::{Command, Output};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/orbit-calibration");

fn odc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_odc"))
        .args(args)
        .output()
        .expect("odc runs")
}

/// A TLE line with its checksum (column 69) recomputed.
fn with_checksum(line: &str) -> String {
    let body: String = line.chars().take(68).collect();
    let sum: u32 = body
        .chars()
        .map(|c| match c {
            '-' => 1,
            d => d.to_digit(10).unwrap_or(0),
        })
        .sum();
    format!("{body}{}", sum % 10)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn tle() -> String {
    format!("{DATA}/satellites.tle")
}

fn stations() -> String {
    format!("{DATA}/stations.json")
}

#[test]
fn passes_json_has_the_reference_layout_and_content() {
    let out = odc(&[
        "passes",
        "--tle",
        &tle(),
        "--stations",
        &stations(),
        "--start",
        "2026-06-20T00:00:00Z",
        "--end",
        "2026-06-21T00:00:00Z",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let reference = std::fs::read_to_string(format!("{DATA}/passes.json")).expect("reference");
    // Same layout: one record per line, same keys in the same order.
    assert_eq!(text.lines().count(), reference.lines().count());
    let key_order = |line: &str| -> Vec<String> {
        let parts: Vec<&str> = line.split("\": ").collect();
        parts[..parts.len() - 1]
            .iter()
            .map(|part| part.rsplit('"').next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        key_order(text.lines().nth(1).expect("a record")),
        key_order(reference.lines().nth(1).expect("a record"))
    );
    let found: Vec<serde_json::Value> = serde_json::from_str(&text).expect("valid JSON");
    let expected: Vec<serde_json::Value> = serde_json::from_str(&reference).expect("valid JSON");
    assert_eq!(found.len(), expected.len());
    for (f, e) in found.iter().zip(&expected) {
        assert_eq!(f["satellite"], e["satellite"]);
        assert_eq!(f["station"], e["station"]);
        let dur = |v: &serde_json::Value| v["duration_s"].as_f64().expect("number");
        assert!((dur(f) - dur(e)).abs() < 1.0, "{f} vs {e}");
    }
}

#[test]
fn eclipses_and_isl_commands_run() {
    let out = odc(&[
        "eclipses",
        "--tle",
        &tle(),
        "--start",
        "2026-06-20T00:00:00Z",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let eclipses: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(eclipses.len(), 224);
    let out = odc(&[
        "eclipses",
        "--tle",
        &tle(),
        "--start",
        "2026-06-20T00:00:00Z",
        "--shadow",
        "penumbra",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Penumbra boundary"));
    let out = odc(&[
        "isl",
        "--tle",
        &tle(),
        "--start",
        "2026-06-20T00:00:00Z",
        "--no-range-limit",
        "--grazing-km",
        "0",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let windows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(windows.len(), 3753);
}

#[test]
fn propagate_gives_look_angles() {
    let out = odc(&[
        "propagate",
        "--tle",
        &tle(),
        "--satellite",
        "STARLINKISH-001",
        "--start",
        "2026-06-20T07:55:15.890Z",
        "--end",
        "2026-06-20T07:56:15.890Z",
        "--step",
        "60",
        "--stations",
        &stations(),
        "--station",
        "MADRID",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(rows.len(), 2);
    // The first row is the reference pass's culmination over Madrid (48.47°).
    let el = rows[0]["elevation_deg"].as_f64().expect("elevation");
    assert!((el - 48.4658).abs() < 0.01, "{el}");
}

#[test]
fn omm_input_is_accepted() {
    let dir = tempdir();
    let omm = dir.join("iss.json");
    std::fs::write(
        &omm,
        r#"[{"OBJECT_NAME": "ISS (ZARYA)", "OBJECT_ID": "1998-067A", "EPOCH": "2026-06-19T16:36:04.502592",
            "MEAN_MOTION": 15.49226062, "ECCENTRICITY": 0.0001791, "INCLINATION": 51.6425,
            "RA_OF_ASC_NODE": 160.3689, "ARG_OF_PERICENTER": 103.0442, "MEAN_ANOMALY": 14.6823,
            "EPHEMERIS_TYPE": 0, "CLASSIFICATION_TYPE": "U", "NORAD_CAT_ID": 25544, "ELEMENT_SET_NO": 999,
            "REV_AT_EPOCH": 25993, "BSTAR": 0.00034, "MEAN_MOTION_DOT": 0.00002791, "MEAN_MOTION_DDOT": 0}]"#,
    )
    .expect("write");
    let out = odc(&[
        "passes",
        "--omm",
        omm.to_str().expect("path"),
        "--stations",
        &stations(),
        "--start",
        "2026-06-20T00:00:00Z",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let passes: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(!passes.is_empty());
    assert!(passes.iter().all(|p| p["satellite"] == "ISS (ZARYA)"));
}

#[test]
fn bad_input_gives_one_line_and_a_failure_code() {
    let dir = tempdir();
    let bad = dir.join("bad.tle");
    let text = std::fs::read_to_string(tle()).expect("tle");
    // Damage line 2 of the third satellite: its inclination field.
    let damaged: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 8 {
                l.replacen("53.0", "5X.0", 1)
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(&bad, damaged.join("\n")).expect("write");
    let bad = bad.to_str().expect("path").to_owned();

    let (tle, stations) = (tle(), stations());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "passes",
                "--tle",
                &bad,
                "--stations",
                DATA,
                "--start",
                "2026-06-20T00:00:00Z",
            ],
            "STARLINKISH-003",
        ),
        (
            vec![
                "passes",
                "--tle",
                "/nonexistent.tle",
                "--stations",
                "x",
                "--start",
                "2026-06-20T00:00:00Z",
            ],
            "cannot read",
        ),
        (
            vec![
                "passes",
                "--tle",
                &tle,
                "--stations",
                &tle,
                "--start",
                "2026-06-20T00:00:00Z",
            ],
            "stations",
        ),
        (
            vec![
                "passes",
                "--tle",
                &tle,
                "--stations",
                &stations,
                "--start",
                "yesterday",
            ],
            "RFC 3339",
        ),
        (
            vec![
                "passes",
                "--tle",
                &tle,
                "--stations",
                &stations,
                "--start",
                "2026-06-21T00:00:00Z",
                "--end",
                "2026-06-20T00:00:00Z",
            ],
            "not after",
        ),
        (
            vec![
                "passes",
                "--tle",
                &stations,
                "--stations",
                &stations,
                "--start",
                "2026-06-20T00:00:00Z",
            ],
            "--omm",
        ),
        (vec!["passes", "--bogus"], "--bogus"),
        (
            vec![
                "eclipses",
                "--tle",
                &tle,
                "--start",
                "2026-06-20T00:00:00Z",
                "--shadow",
                "dusk",
            ],
            "dusk",
        ),
        (
            vec![
                "propagate",
                "--tle",
                &tle,
                "--start",
                "2026-06-20T00:00:00Z",
                "--satellite",
                "NOPE",
            ],
            "NOPE",
        ),
    ];
    for (args, needle) in cases {
        let out = odc(&args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} should fail");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: one line expected, got:\n{err}"
        );
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // The damaged record is named down to its field and columns.
    let out = odc(&[
        "passes",
        "--tle",
        &bad,
        "--stations",
        &stations,
        "--start",
        "2026-06-20T00:00:00Z",
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("line 2") && err.contains("inclination") && err.contains("columns 9-16"),
        "{err}"
    );
    // --lenient keeps the rest and reports the bad one.
    let out = odc(&[
        "passes",
        "--tle",
        &bad,
        "--stations",
        &stations,
        "--start",
        "2026-06-20T00:00:00Z",
        "--lenient",
        "--json",
    ]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("skipped record 2 (STARLINKISH-003)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stale_elements_are_warned_about() {
    let out = odc(&[
        "passes",
        "--tle",
        &tle(),
        "--stations",
        &stations(),
        "--start",
        "2026-08-01T00:00:00Z",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("days from the span"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn overview_runs_on_embedded_defaults() {
    let out = odc(&["overview"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("691 passes, 224 eclipses"), "{text}");
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "odc-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn plan_command_writes_a_plan_and_refuses_bad_scenarios() {
    let dir = tempdir();
    let out = dir.join("plan.json");
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/demo.toml");
    let run = odc(&[
        "plan",
        "--scenario",
        scenario,
        "--out",
        out.to_str().expect("path"),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        text.contains("jobs planned") && text.contains("quota exhausted"),
        "{text}"
    );
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("JSON");
    assert_eq!(plan["generation"], 1);
    assert!(plan["batches"].as_array().is_some_and(|b| !b.is_empty()));

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "start = \"2026-06-20T00:00:00Z\"\nhours = -1\n").expect("write");
    let run = odc(&["plan", "--scenario", bad.to_str().expect("path")]);
    assert!(!run.status.success());
    assert_eq!(stderr(&run).trim().lines().count(), 1, "{}", stderr(&run));
    let typo = dir.join("typo.toml");
    let text = std::fs::read_to_string(scenario)
        .expect("scenario")
        .replace("seed = 7", "sede = 7");
    std::fs::write(&typo, text).expect("write");
    let run = odc(&["plan", "--scenario", typo.to_str().expect("path")]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("sede"), "{}", stderr(&run));
}

#[test]
fn pki_creates_an_authority_and_node_credentials_with_private_keys_owner_only() {
    let dir = std::env::temp_dir().join(format!("odc-cli-pki-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_string_lossy().to_string();
    let out = odc(&["pki", "init", "--dir", &d, "--name", "test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = odc(&["pki", "issue", "--dir", &d, "--node", "sat-7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sat-7.node.odc"));
    for f in ["ca.pem", "ca.key", "node-sat-7.pem", "node-sat-7.key"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    #[cfg(unix)]
    for f in ["ca.key", "node-sat-7.key"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join(f))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600, "{f}");
    }
    // Issuing again refuses to overwrite; a bad id and a missing authority are named.
    let out = odc(&["pki", "issue", "--dir", &d, "--node", "sat-7"]);
    assert!(
        !out.status.success() && stderr(&out).contains("already exists"),
        "{}",
        stderr(&out)
    );
    let out = odc(&["pki", "issue", "--dir", &d, "--node", "bad id"]);
    assert!(
        !out.status.success() && stderr(&out).contains("not a valid identity"),
        "{}",
        stderr(&out)
    );
    let missing = dir.join("nowhere").to_string_lossy().to_string();
    let out = odc(&["pki", "issue", "--dir", &missing, "--station", "sv1"]);
    assert!(
        !out.status.success() && stderr(&out).contains("odc pki init"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn twin_runs_a_scenario_and_writes_its_report() {
    let dir = tempdir();
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/twin/scenarios/campaign.toml"
    );
    let out_dir = dir.join("report");
    let out = odc(&[
        "twin",
        "--scenario",
        scenario,
        "--hours",
        "3",
        "--out",
        &out_dir.to_string_lossy(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("invariants: all hold") && text.contains("trace "),
        "{text}"
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).expect("html written");
    assert!(html.contains("<svg"));
    assert!(out_dir.join("report.json").is_file());
    let bad = odc(&["twin", "--scenario", scenario, "--backend", "tpu"]);
    assert!(
        !bad.status.success() && stderr(&bad).contains("--backend"),
        "{}",
        stderr(&bad)
    );
    let missing = odc(&["twin", "--scenario", "no-such.toml"]);
    assert!(!missing.status.success() && stderr(&missing).contains("no-such.toml"));
    let campaign = odc(&["campaign", "--seeds", "2"]);
    assert!(campaign.status.success(), "{}", stderr(&campaign));
    let default = odc(&["twin", "--print-default-scenario"]);
    assert!(String::from_utf8_lossy(&default.stdout).contains("[workload]"));
}

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
