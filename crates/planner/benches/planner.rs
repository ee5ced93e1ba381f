//! Planner scale benchmark: 1,000 satellites, 50 stations (2 antennas each), 100,000 jobs, 24 h. Reports the
//! geometry preparation (ephemeris), the plan, the incremental repair after a node is lost (against replanning
//! from scratch), and peak memory. Run with `cargo bench -p odc-planner`; `ODC_BENCH_QUICK=1` runs a tenth.

use odc_model::id::PlanId;
use odc_model::time::Instant;
use odc_planner::scenario::{
    ConstellationConfig, JobsConfig, NodeConfig, ScenarioConfig, ScenarioFiles, StationsConfig,
    TenantConfig, WalkerConfig, build,
};
use odc_planner::{Change, Planner};
use std::time::Instant as Clock;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let quick = std::env::var_os("ODC_BENCH_QUICK").is_some();
    let scale = if quick { 10 } else { 1 };
    let w = |altitude_km, inclination_deg, planes, per_plane| WalkerConfig {
        altitude_km,
        inclination_deg,
        planes,
        per_plane: per_plane / scale,
        phasing: 1,
    };
    let config = ScenarioConfig {
        start: "2026-06-20T00:00:00Z".parse::<Instant>().expect("time"),
        hours: 24.0,
        seed: 2026,
        constellation: ConstellationConfig {
            tle: None,
            walker: vec![
                w(550.0, 53.0, 20, 20),
                w(650.0, 97.6, 12, 25),
                w(1200.0, 87.9, 10, 20),
                w(400.0, 28.5, 5, 20),
            ],
        },
        stations: StationsConfig {
            file: None,
            lattice: Some(50 / scale.min(5)),
            antennas: 2,
            uplink_bps: None,
            downlink_bps: None,
        },
        node: NodeConfig::default(),
        tenants: (0..5)
            .map(|i| TenantConfig {
                name: format!("tenant-{i}"),
                weight: 1 + i % 3,
                accelerator_s: None,
                uplink_bytes: None,
                downlink_bytes: None,
            })
            .collect(),
        jobs: JobsConfig {
            count: 100_000 / scale as usize,
            models: vec!["minilm-l6".into(), "resnet50".into()],
            input_bytes: [100_000, 2_000_000],
            output_bytes: [10_000, 1_000_000],
            deadline_hours: [2.0, 24.0],
        },
        // Neighbours within 1,500 km: the few a node's terminals would really hold links to.
        isl_range_km: 1_500.0,
    };
    let t0 = Clock::now();
    let (snapshot, counts) = build(&config, &ScenarioFiles::default()).expect("scenario builds");
    let geometry_s = t0.elapsed().as_secs_f64();
    println!(
        "scenario: {} nodes, {} stations, {} jobs; geometry {geometry_s:.2} s on {} threads ({} contact windows, {} ISL windows, {} eclipses)",
        snapshot.nodes.len(),
        snapshot.stations.len(),
        snapshot.jobs.len(),
        rayon_threads(),
        counts.contacts,
        counts.isl,
        counts.eclipses,
    );
    let rss_before = peak_rss_mib();
    let t0 = Clock::now();
    let mut planner = Planner::new(&snapshot);
    let outcome = planner.outcome();
    let plan_s = t0.elapsed().as_secs_f64();
    let s = &outcome.stats;
    println!(
        "plan: {plan_s:.2} s; {} planned, {} left out; {} contacts reserved; {} routes over ISL; {:.1} GB up, {:.1} GB down; min battery margin {:.1} Wh",
        s.planned,
        s.left_out,
        s.contacts_reserved,
        s.isl_routes,
        s.uplink_bytes as f64 / 1e9,
        s.downlink_bytes as f64 / 1e9,
        s.min_energy_margin_wh
    );
    let mut reasons = std::collections::BTreeMap::new();
    for r in outcome.left_out.values() {
        *reasons.entry(r.to_string()).or_insert(0) += 1;
    }
    for (r, n) in reasons {
        println!("    left out: {n:>6} {r}");
    }
    // The node carrying the most jobs is lost.
    let mut per_node = std::collections::BTreeMap::new();
    for jp in outcome.jobs.values() {
        *per_node.entry(jp.node.clone()).or_insert(0) += 1;
    }
    let (lost, carried) = per_node
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .expect("some node carries jobs");
    let t0 = Clock::now();
    let repaired = planner.apply(
        &Change::NodeLost(lost.clone()),
        PlanId::from_u128(outcome.plan.id.as_u128() + 1),
    );
    let replan_s = t0.elapsed().as_secs_f64();
    println!(
        "replan after losing {lost} ({carried} jobs): {replan_s:.3} s ({:.0}× faster than planning from scratch); {} planned, {} left out",
        plan_s / replan_s,
        repaired.stats.planned,
        repaired.stats.left_out
    );
    println!(
        "peak memory: {:.0} MiB after geometry, {:.0} MiB after planning and repair",
        rss_before,
        peak_rss_mib()
    );
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
