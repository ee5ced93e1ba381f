//! `odc overview`: a day of the embedded calibration constellation's orbital geometry — contacts per station, time
//! in shadow, ISL connectivity — and a plan of the embedded workload on it.

use anyhow::Context;
use clap::Args;
use odc_ephemeris::time::{format_ms, parse_rfc3339, to_unix};
use odc_ephemeris::{
    Catalog, IslOptions, SearchOptions, Shadow, Span, Station, find_eclipses, find_isl_windows,
    find_passes,
};
use std::collections::BTreeMap;

/// The embedded constellation: 24 satellites in seven shells, from LEO formations to GEO.
const CONSTELLATION_TLE: &str = include_str!("../../testdata/orbit-calibration/satellites.tle");
/// The embedded ground network: six stations from Svalbard to McMurdo.
const STATIONS_JSON: &str = include_str!("../../testdata/orbit-calibration/stations.json");
/// The embedded scenario: tenants and workload for the day.
const SCENARIO_TOML: &str = include_str!("../../scenarios/demo.toml");

/// Arguments of `odc overview`.
#[derive(Args)]
pub struct OverviewArgs {
    /// Start of the simulated day, RFC 3339.
    #[arg(long, default_value = "2026-06-20T00:00:00Z")]
    start: String,
    /// Hours to cover.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
}

/// `odc overview`.
pub fn run(args: OverviewArgs) -> anyhow::Result<()> {
    let catalog = Catalog::parse_tle(CONSTELLATION_TLE).context("embedded constellation")?;
    let stations = Station::parse_list(STATIONS_JSON).context("embedded stations")?;
    let start =
        to_unix(&parse_rfc3339(&args.start).with_context(|| format!("--start {:?}", args.start))?);
    anyhow::ensure!(
        args.hours > 0.0 && args.hours <= 24.0 * 14.0,
        "--hours must be in (0, 336]"
    );
    let span = Span::new(start, start + args.hours * 3600.0)?;
    let options = SearchOptions::default();

    let begun = std::time::Instant::now();
    let passes = find_passes(&catalog, &stations, span, &options);
    let eclipses = find_eclipses(&catalog, span, &[Shadow::Centre], &options);
    let links = find_isl_windows(&catalog, span, &IslOptions::default(), &options);
    let elapsed = begun.elapsed();

    println!(
        "odc overview: {} satellites, {} stations, {} → {}",
        catalog.satellites.len(),
        stations.len(),
        format_ms(span.start),
        format_ms(span.end)
    );
    let mut per_station: BTreeMap<usize, (usize, f64)> = BTreeMap::new();
    for p in &passes.passes {
        let entry = per_station.entry(p.station).or_default();
        entry.0 += 1;
        entry.1 += p.duration_s() / 60.0;
    }
    let mut table = crate::output::table();
    table.set_header(["station", "passes", "contact (min)"]);
    for (i, st) in stations.iter().enumerate() {
        let (n, minutes) = per_station.get(&i).copied().unwrap_or_default();
        table.add_row([st.name.clone(), n.to_string(), format!("{minutes:.0}")]);
    }
    println!("{table}");

    let mut table = crate::output::table();
    table.set_header([
        "satellite",
        "passes",
        "contact (min)",
        "in shadow (%)",
        "ISL partners",
    ]);
    for (i, sat) in catalog.satellites.iter().enumerate() {
        let mine = passes.passes.iter().filter(|p| p.satellite == i);
        let (count, minutes) = mine.fold((0, 0.0), |(n, m), p| (n + 1, m + p.duration_s() / 60.0));
        let shadow: f64 = eclipses
            .eclipses
            .iter()
            .filter(|e| e.satellite == i)
            .map(|e| e.exit - e.enter)
            .sum();
        let partners: std::collections::BTreeSet<usize> = links
            .windows
            .iter()
            .filter_map(|w| {
                if w.sat_a == i {
                    Some(w.sat_b)
                } else if w.sat_b == i {
                    Some(w.sat_a)
                } else {
                    None
                }
            })
            .collect();
        table.add_row([
            sat.name.clone(),
            count.to_string(),
            format!("{minutes:.0}"),
            format!("{:.0}", (100.0 * shadow / span.duration_s()).max(0.0)),
            partners.len().to_string(),
        ]);
    }
    println!("{table}");
    println!(
        "{} passes, {} eclipses, {} ISL windows (80 km grazing, 5,000 km range) computed in {:.0} ms",
        passes.passes.len(),
        eclipses.eclipses.len(),
        links.windows.len(),
        elapsed.as_secs_f64() * 1e3
    );

    let mut config: odc_planner::scenario::ScenarioConfig =
        toml::from_str(SCENARIO_TOML).context("embedded scenario")?;
    config.start = odc_model::Instant::from_unix_seconds(span.start);
    config.hours = args.hours;
    let files = odc_planner::scenario::ScenarioFiles {
        tle: Some(CONSTELLATION_TLE.to_owned()),
        stations: Some(STATIONS_JSON.to_owned()),
    };
    let (snapshot, _) =
        odc_planner::scenario::build(&config, &files).context("embedded scenario")?;
    let begun = std::time::Instant::now();
    let outcome = odc_planner::plan(&snapshot);
    let s = &outcome.stats;
    println!(
        "plan: {} of {} jobs from {} tenants planned in {:.1} ms; {} passes booked, {} batches, {} routes over ISL",
        s.planned,
        snapshot.jobs.len(),
        snapshot.tenants.len(),
        begun.elapsed().as_secs_f64() * 1e3,
        s.contacts_reserved,
        outcome.plan.batches.len(),
        s.isl_routes
    );
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for r in outcome.left_out.values() {
        *reasons.entry(r.to_string()).or_default() += 1;
    }
    for (reason, n) in reasons {
        println!("  left out: {n} × {reason}");
    }
    Ok(())
}
