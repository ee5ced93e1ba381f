//! The live constellation end to end: `odc demo --live` starts a ground service and flight daemons as real
//! processes, linked over QUIC with mutual TLS on loopback in accelerated time; a tenant submits tiles over HTTP and
//! downloads the results, which must all come back once and equal to the model run locally, while a daemon is
//! killed with SIGKILL and restarted, and while the ground itself is killed and restarted.
//!
//! The crash test kills one daemon 100 times at random moments (`ODC_LIVE_KILLS=1000 cargo test --test live` for a
//! longer run).

use std::process::Command;

/// One constellation at a time: each runs on an accelerated clock that does not wait for a starved process.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn live(args: &[&str]) -> serde_json::Value {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let out = Command::new(env!("CARGO_BIN_EXE_odc"))
        .args(["demo", "--live", "--json"])
        .args(args)
        .output()
        .expect("odc runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "odc demo --live failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn count(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(u64::MAX)
}

#[test]
fn three_daemons_return_every_result_right_with_one_killed_and_restarted_mid_run() {
    let v = live(&["--nodes", "3", "--jobs", "48", "--kills", "1"]);
    assert_eq!(count(&v, "submitted"), 48, "{v}");
    assert_eq!(count(&v, "delivered"), 48, "{v}");
    assert_eq!(count(&v, "correct"), 48, "{v}");
    assert_eq!(count(&v, "listed"), 48, "{v}");
    assert_eq!(count(&v, "lost"), 0, "{v}");
    assert_eq!(count(&v, "kills"), 1, "{v}");
    // Results came back through contacts the daemons opened themselves.
    assert!(count(&v, "contacts") >= 3, "{v}");
    // The model's own accuracy on these tiles (a property of the model, not of the system).
    assert!(count(&v, "accurate") >= 45, "{v}");
    // The daemons' own metrics endpoints report their batteries and hold a record of every job they ran.
    let soc = v["node_state_of_charge"].as_f64().unwrap_or(-1.0);
    assert!(soc > 0.0 && soc <= 1.0, "{v}");
    assert_eq!(count(&v, "node_jobs"), 48, "no job held by two nodes: {v}");
    // Their telemetry reached the ground over the links.
    assert!(count(&v, "telemetry_reports") >= 1, "{v}");
}

#[test]
fn a_daemon_killed_a_hundred_times_loses_and_duplicates_nothing() {
    let kills = std::env::var("ODC_LIVE_KILLS").unwrap_or_else(|_| "100".into());
    let v = live(&[
        "--nodes",
        "1",
        "--jobs",
        "40",
        "--kills",
        &kills,
        "--kill-every-ms",
        "800",
        "--timeout-s",
        "1800",
        // A short horizon, so both services compute passes ahead during the run.
        "--horizon-hours",
        "3",
    ]);
    assert_eq!(count(&v, "kills").to_string(), kills, "{v}");
    assert_eq!(count(&v, "submitted"), 40, "{v}");
    assert_eq!(count(&v, "delivered"), 40, "{v}");
    assert_eq!(count(&v, "correct"), 40, "{v}");
    assert_eq!(count(&v, "listed"), 40, "{v}");
    assert_eq!(count(&v, "lost"), 0, "{v}");
}

#[test]
fn the_ground_killed_and_restarted_while_nodes_link_loses_nothing() {
    // Both ends lose their sessions: each side sees the other's new session number and starts afresh, and the
    // cores re-send what was not acknowledged (results stored before the nodes hear of them).
    let v = live(&[
        "--nodes",
        "3",
        "--jobs",
        "48",
        "--ground-kills",
        "3",
        "--kills",
        "3",
    ]);
    assert_eq!(count(&v, "ground_kills"), 3, "{v}");
    // Plan generations keep growing across the ground's restarts: the restarted ground plans above all it issued
    // before, and no node holds a plan numbered above the ground's (a ground counting from 1 again would be
    // below the nodes' plans, and they would refuse its own).
    let before = count(&v, "generation_before_restart");
    assert!(before > 0, "{v}");
    assert!(count(&v, "ground_generation") > before, "{v}");
    assert!(count(&v, "node_generation_max") >= 1, "{v}");
    assert!(
        count(&v, "node_generation_max") <= count(&v, "ground_generation"),
        "{v}"
    );
    // The restarted ground remembers where each input went: no job is sent to a second node to run again.
    assert_eq!(count(&v, "node_jobs"), 48, "{v}");
    assert_eq!(count(&v, "delivered"), 48, "{v}");
    assert_eq!(count(&v, "correct"), 48, "{v}");
    assert_eq!(count(&v, "listed"), 48, "{v}");
    assert_eq!(count(&v, "lost"), 0, "{v}");
}

#[test]
fn three_daemons_relay_inputs_and_results_over_inter_satellite_links() {
    // The daemons also link to each other (QUIC, mutual TLS, in their computed ISL windows) and the ground plans
    // routes through them: inputs go up through a neighbour in a pass, results come down the same way.
    let v = live(&["--nodes", "3", "--jobs", "48", "--isl"]);
    assert_eq!(count(&v, "delivered"), 48, "{v}");
    assert_eq!(count(&v, "correct"), 48, "{v}");
    assert_eq!(count(&v, "lost"), 0, "{v}");
    assert!(v["relayed"][0].as_u64().unwrap_or(0) >= 1, "{v}");
    assert!(count(&v, "isl_messages") >= 1, "{v}");
}
