//! End-to-end tests of the `odc` binary: the ephemeris commands on the calibration files, and clean one-line
//! errors for bad arguments and bad files.

mod support;

use support::{DATA, odc, stderr, tempdir, tle};

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
