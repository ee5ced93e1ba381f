//! `odc plan`: builds a scenario's snapshot with the ephemeris, plans it, prints a summary and writes the plan.

use anyhow::Context;
use clap::Args;
use odc_planner::scenario::{ScenarioConfig, build};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Arguments of `odc plan`.
#[derive(Args)]
pub struct PlanArgs {
    /// Scenario file (TOML): constellation, stations, node figures, tenants, workload, horizon.
    #[arg(long)]
    scenario: PathBuf,
    /// Where to write the plan as JSON (`-` for standard output).
    #[arg(long, default_value = "plan.json")]
    out: PathBuf,
}

/// `odc plan`.
pub fn run(args: PlanArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.scenario)
        .with_context(|| format!("cannot read {}", args.scenario.display()))?;
    let config: ScenarioConfig = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}",
            args.scenario.display(),
            e.to_string().replace('\n', " ")
        )
    })?;
    let files = super::scenario_files(
        &args.scenario,
        config.constellation.tle.as_deref(),
        config.stations.file.as_deref(),
    )?;
    let begun = std::time::Instant::now();
    let (snapshot, counts) =
        build(&config, &files).with_context(|| args.scenario.display().to_string())?;
    let geometry = begun.elapsed();
    let begun = std::time::Instant::now();
    let outcome = odc_planner::plan(&snapshot);
    let planning = begun.elapsed();
    let s = &outcome.stats;
    println!(
        "scenario: {} nodes, {} stations, {} tenants, {} jobs over {} h ({} passes, {} ISL windows, {} eclipses; {:.2} s)",
        snapshot.nodes.len(),
        snapshot.stations.len(),
        snapshot.tenants.len(),
        snapshot.jobs.len(),
        config.hours,
        counts.contacts,
        counts.isl,
        counts.eclipses,
        geometry.as_secs_f64()
    );
    println!(
        "plan {} (generation {}): {} jobs planned, {} left out, in {:.3} s",
        outcome.plan.id,
        outcome.plan.generation,
        s.planned,
        s.left_out,
        planning.as_secs_f64()
    );
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for r in outcome.left_out.values() {
        *reasons.entry(r.to_string()).or_default() += 1;
    }
    let mut table = crate::output::table();
    table.set_header(["left out because", "jobs"]);
    for (reason, n) in &reasons {
        table.add_row([reason.clone(), n.to_string()]);
    }
    if !reasons.is_empty() {
        println!("{table}");
    }
    let mut table = crate::output::table();
    table.set_header([
        "station",
        "passes booked",
        "booked (min)",
        "up (MB)",
        "down (MB)",
    ]);
    let mut per_station: BTreeMap<String, (usize, f64, u64, u64)> = BTreeMap::new();
    for c in &outcome.plan.contacts {
        let e = per_station.entry(c.station.to_string()).or_default();
        e.0 += 1;
        e.1 += (c.end - c.start).as_secs_f64() / 60.0;
        e.2 += c.uplink_bytes;
        e.3 += c.downlink_bytes;
    }
    for (station, (n, minutes, up, down)) in &per_station {
        table.add_row([
            station.clone(),
            n.to_string(),
            format!("{minutes:.0}"),
            format!("{:.1}", *up as f64 / 1e6),
            format!("{:.1}", *down as f64 / 1e6),
        ]);
    }
    println!("{table}");
    println!(
        "{} batches; {} routes over ISL; priority-weighted jobs delivered {:.1}; smallest battery margin {:.1} Wh",
        outcome.plan.batches.len(),
        s.isl_routes,
        s.weighted_delivered,
        s.min_energy_margin_wh
    );
    let json = serde_json::to_string_pretty(&outcome.plan)?;
    if args.out.as_os_str() == "-" {
        println!("{json}");
    } else {
        std::fs::write(&args.out, json)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        println!("plan written to {}", args.out.display());
    }
    Ok(())
}
