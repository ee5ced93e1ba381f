//! `odc passes`, `odc eclipses`, `odc isl`, `odc propagate`: the ephemeris from the command line, reading and
//! writing the calibration data's file formats.

use anyhow::{Context, bail};
use clap::Args;
use odc_ephemeris::frames::{Geodetic, look_angles, teme_to_ecef};
use odc_ephemeris::time::{format_ms, parse_rfc3339, to_unix};
use odc_ephemeris::{
    Catalog, EclipseRecord, IslOptions, IslRecord, PassRecord, SearchOptions, Shadow, Span,
    Station, find_eclipses, find_isl_windows, find_passes, stale_elements,
};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the elements come from and which span to search.
#[derive(Args, Clone)]
pub struct CatalogArgs {
    /// TLE file (2-line or 3-line records).
    #[arg(long, conflicts_with = "omm", required_unless_present = "omm")]
    pub tle: Option<PathBuf>,
    /// CCSDS OMM file in JSON (an array of records).
    #[arg(long)]
    pub omm: Option<PathBuf>,
    /// Load what parses and report bad records on stderr instead of failing.
    #[arg(long)]
    pub lenient: bool,
    /// Span start, RFC 3339 (e.g. 2026-06-20T00:00:00Z).
    #[arg(long)]
    pub start: String,
    /// Span end, RFC 3339; defaults to 24 h after the start.
    #[arg(long)]
    pub end: Option<String>,
    /// Coarse search step, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub step: f64,
    /// Write JSON (the calibration files' layout) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `odc passes`.
#[derive(Args)]
pub struct PassesArgs {
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Stations file: a JSON array of {name, lat_deg, lon_deg, alt_m, min_elevation_deg}.
    #[arg(long)]
    stations: PathBuf,
}

/// Arguments of `odc eclipses`.
#[derive(Args)]
pub struct EclipsesArgs {
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Shadow boundary: centre (the Sun's centre hidden), umbra, or penumbra.
    #[arg(long, default_value = "centre")]
    shadow: Shadow,
}

/// Arguments of `odc isl`.
#[derive(Args)]
pub struct IslArgs {
    #[command(flatten)]
    catalog: CatalogArgs,
    /// The line of sight must clear the Earth by this much, km.
    #[arg(long, default_value_t = 80.0)]
    grazing_km: f64,
    /// Longest usable link, km.
    #[arg(long, default_value_t = 5000.0, conflicts_with = "no_range_limit")]
    max_range_km: f64,
    /// Line of sight only, at any range.
    #[arg(long)]
    no_range_limit: bool,
}

/// Arguments of `odc propagate`.
#[derive(Args)]
pub struct PropagateArgs {
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Satellite name or catalog number.
    #[arg(long)]
    satellite: String,
    /// Stations file, to add look angles from `--station`.
    #[arg(long, requires = "station")]
    stations: Option<PathBuf>,
    /// Station name for look angles.
    #[arg(long, requires = "stations")]
    station: Option<String>,
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn time_arg(name: &str, text: &str) -> anyhow::Result<f64> {
    parse_rfc3339(text).map(|t| to_unix(&t)).with_context(|| {
        format!("--{name} {text:?} is not an RFC 3339 time like 2026-06-20T00:00:00Z")
    })
}

/// Loads the catalog and span and warns about stale elements.
pub fn load(args: &CatalogArgs) -> anyhow::Result<(Catalog, Span)> {
    let start = time_arg("start", &args.start)?;
    let end = match &args.end {
        Some(end) => time_arg("end", end)?,
        None => start + 86_400.0,
    };
    let span = Span::new(start, end)?;
    if !(args.step > 0.0 && args.step <= 600.0) {
        bail!("--step {} must be in (0, 600] seconds", args.step);
    }
    let (lenient, path) = match (&args.tle, &args.omm) {
        (Some(path), _) => {
            let text = read(path)?;
            if text.trim_start().starts_with(['[', '{']) {
                bail!(
                    "{}: this looks like JSON, not TLE text; pass OMM JSON with --omm",
                    path.display()
                );
            }
            (Catalog::parse_tle_lenient(&text), path)
        }
        (None, Some(path)) => (
            Catalog::parse_omm_json_lenient(&read(path)?)
                .with_context(|| path.display().to_string())?,
            path,
        ),
        (None, None) => bail!("give --tle FILE or --omm FILE"),
    };
    if !lenient.rejected.is_empty() {
        if !args.lenient {
            let first = &lenient.rejected[0];
            let more = lenient.rejected.len() - 1;
            let more = if more > 0 {
                format!(" (and {more} more; --lenient skips them)")
            } else {
                String::new()
            };
            bail!("{}: {first}{more}", path.display());
        }
        for bad in &lenient.rejected {
            eprintln!("warning: {}: skipped {bad}", path.display());
        }
    }
    if lenient.catalog.satellites.is_empty() {
        bail!("{}: no satellites", path.display());
    }
    for stale in stale_elements(&lenient.catalog, span) {
        eprintln!(
            "warning: {} elements are {:.1} days from the span: expect missed or shifted passes",
            stale.name, stale.age_days
        );
    }
    Ok((lenient.catalog, span))
}

fn options(
    args: &CatalogArgs,
    total: usize,
    what: &str,
) -> (SearchOptions, Option<indicatif::ProgressBar>) {
    let bar = crate::output::progress(total, what);
    let progress = bar
        .clone()
        .map(|b| Arc::new(move || b.inc(1)) as Arc<dyn Fn() + Send + Sync>);
    (
        SearchOptions {
            step_s: args.step,
            threads: None,
            progress,
        },
        bar,
    )
}

fn report_problems(problems: &[odc_ephemeris::SatelliteProblem]) {
    for p in problems {
        eprintln!("warning: {p}; its results are missing");
    }
}

/// Loads a station list.
pub fn load_stations(path: &PathBuf) -> anyhow::Result<Vec<Station>> {
    Station::parse_list(&read(path)?).with_context(|| path.display().to_string())
}

/// `odc passes`.
pub fn passes(args: PassesArgs) -> anyhow::Result<()> {
    let (catalog, span) = load(&args.catalog)?;
    let stations = load_stations(&args.stations)?;
    let (opts, bar) = options(&args.catalog, catalog.satellites.len(), "passes");
    let report = find_passes(&catalog, &stations, span, &opts);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    report_problems(&report.problems);
    let records: Vec<PassRecord> = report
        .passes
        .iter()
        .map(|p| PassRecord::new(p, &catalog, &stations))
        .collect();
    if args.catalog.json {
        return crate::output::write_json_lines(&records);
    }
    let mut table = crate::output::table();
    table.set_header([
        "satellite",
        "station",
        "AOS",
        "TCA",
        "LOS",
        "max el (°)",
        "duration (s)",
    ]);
    for r in &records {
        let mark = |t: &str, clipped: bool| {
            if clipped {
                format!("{t}*")
            } else {
                t.to_owned()
            }
        };
        table.add_row([
            r.satellite.clone(),
            r.station.clone(),
            mark(&r.aos, r.aos_clipped),
            r.tca.clone(),
            mark(&r.los, r.los_clipped),
            format!("{:.2}", r.max_elevation_deg),
            format!("{:.1}", r.duration_s),
        ]);
    }
    println!("{table}");
    println!("{} passes (* clipped by the span)", records.len());
    Ok(())
}

/// `odc eclipses`.
pub fn eclipses(args: EclipsesArgs) -> anyhow::Result<()> {
    let (catalog, span) = load(&args.catalog)?;
    let (opts, bar) = options(&args.catalog, catalog.satellites.len(), "eclipses");
    let report = find_eclipses(&catalog, span, &[args.shadow], &opts);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    report_problems(&report.problems);
    let records: Vec<EclipseRecord> = report
        .eclipses
        .iter()
        .map(|e| EclipseRecord::new(e, &catalog))
        .collect();
    if args.catalog.json {
        return crate::output::write_json_lines(&records);
    }
    let mut table = crate::output::table();
    table.set_header(["satellite", "enter", "exit", "duration (s)"]);
    for r in &records {
        let enter = if r.enter_clipped {
            format!("{}*", r.enter)
        } else {
            r.enter.clone()
        };
        let exit = if r.exit_clipped {
            format!("{}*", r.exit)
        } else {
            r.exit.clone()
        };
        table.add_row([
            r.satellite.clone(),
            enter,
            exit,
            format!("{:.1}", r.duration_s),
        ]);
    }
    println!("{table}");
    println!(
        "{} eclipses, {:?} boundary (* clipped by the span)",
        records.len(),
        args.shadow
    );
    Ok(())
}

/// `odc isl`.
pub fn isl(args: IslArgs) -> anyhow::Result<()> {
    let (catalog, span) = load(&args.catalog)?;
    let valid = args.grazing_km.is_finite() && args.grazing_km >= 0.0 && args.max_range_km > 0.0;
    if !valid {
        bail!("--grazing-km must be ≥ 0 and --max-range-km > 0");
    }
    let isl = IslOptions {
        grazing_altitude_km: args.grazing_km,
        max_range_km: (!args.no_range_limit).then_some(args.max_range_km),
    };
    let (opts, bar) = options(&args.catalog, catalog.satellites.len(), "links");
    let report = find_isl_windows(&catalog, span, &isl, &opts);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    report_problems(&report.problems);
    let records: Vec<IslRecord> = report
        .windows
        .iter()
        .map(|w| IslRecord::new(w, &catalog))
        .collect();
    if args.catalog.json {
        return crate::output::write_json_lines(&records);
    }
    let mut table = crate::output::table();
    table.set_header(["satellite A", "satellite B", "start", "end", "duration (s)"]);
    for r in &records {
        table.add_row([
            r.sat_a.clone(),
            r.sat_b.clone(),
            r.start.clone(),
            r.end.clone(),
            format!("{:.1}", r.duration_s),
        ]);
    }
    println!("{table}");
    println!(
        "{} windows over {} candidate pairs",
        records.len(),
        report.pairs_examined
    );
    Ok(())
}

/// One row of `odc propagate --json`.
#[derive(serde::Serialize)]
struct StateRow {
    time: String,
    minutes_since_epoch: f64,
    teme_km: [f64; 3],
    teme_km_s: [f64; 3],
    itrs_km: [f64; 3],
    itrs_km_s: [f64; 3],
    lat_deg: f64,
    lon_deg: f64,
    alt_km: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    azimuth_deg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elevation_deg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    range_km: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    range_rate_km_s: Option<f64>,
}

/// `odc propagate`.
pub fn propagate(args: PropagateArgs) -> anyhow::Result<()> {
    let (catalog, span) = load(&args.catalog)?;
    let sat = catalog.find(&args.satellite).with_context(|| {
        format!(
            "no satellite named or numbered {:?} in the catalog",
            args.satellite
        )
    })?;
    let site = match (&args.stations, &args.station) {
        (Some(path), Some(name)) => {
            let stations = load_stations(path)?;
            let st = stations
                .into_iter()
                .find(|s| &s.name == name)
                .with_context(|| format!("no station named {name:?} in {}", path.display()))?;
            Some(st.geodetic())
        }
        _ => None,
    };
    let steps = (span.duration_s() / args.catalog.step).floor() as usize;
    if steps > 1_000_000 {
        bail!("{steps} steps is too many: widen --step or shorten the span");
    }
    let mut rows = Vec::with_capacity(steps + 1);
    for k in 0..=steps {
        let t = span.start + k as f64 * args.catalog.step;
        let s = sat
            .propagate(t)
            .with_context(|| format!("{} at {}", sat.name, format_ms(t)))?;
        let (r, v) = teme_to_ecef(t, s.position_km, s.velocity_km_s);
        let g = Geodetic::from_ecef(r);
        let look = site.map(|site| look_angles(&site, r, v));
        rows.push(StateRow {
            time: format_ms(t),
            minutes_since_epoch: (t - sat.epoch_unix) / 60.0,
            teme_km: s.position_km,
            teme_km_s: s.velocity_km_s,
            itrs_km: r,
            itrs_km_s: v,
            lat_deg: g.lat_deg,
            lon_deg: g.lon_deg,
            alt_km: g.alt_km,
            azimuth_deg: look.map(|l| l.azimuth_deg),
            elevation_deg: look.map(|l| l.elevation_deg),
            range_km: look.map(|l| l.range_km),
            range_rate_km_s: look.map(|l| l.range_rate_km_s),
        });
    }
    if args.catalog.json {
        return crate::output::write_json_lines(&rows);
    }
    let mut table = crate::output::table();
    let mut header = vec![
        "time",
        "lat (°)",
        "lon (°)",
        "alt (km)",
        "TEME x, y, z (km)",
    ];
    if site.is_some() {
        header.extend(["az (°)", "el (°)", "range (km)"]);
    }
    table.set_header(header);
    for r in &rows {
        let mut row = vec![
            r.time.clone(),
            format!("{:.4}", r.lat_deg),
            format!("{:.4}", r.lon_deg),
            format!("{:.3}", r.alt_km),
            format!(
                "{:.3}, {:.3}, {:.3}",
                r.teme_km[0], r.teme_km[1], r.teme_km[2]
            ),
        ];
        if let (Some(az), Some(el), Some(range)) = (r.azimuth_deg, r.elevation_deg, r.range_km) {
            row.extend([
                format!("{az:.2}"),
                format!("{el:.2}"),
                format!("{range:.1}"),
            ]);
        }
        table.add_row(row);
    }
    println!("{table}");
    Ok(())
}
