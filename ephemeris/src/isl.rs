//! Inter-satellite link (ISL) windows: intervals in which two satellites have a line of sight that clears the
//! Earth plus a grazing altitude (the atmosphere bends and absorbs a laser near the limb) and lie within range.
//!
//! Without a range limit every pair must be examined. With one, a spatial hash of the satellites at each grid
//! sample, with cells as large as the range plus the distance two satellites can close in one step, yields the
//! only pairs that can come within range; no step scans all N² pairs.

use crate::catalog::Catalog;
use crate::frames::{Vec3, dot, norm, sub};
use crate::search::{Grid, Interval, Track, find_intervals};
use crate::sun::SHADOW_EARTH_RADIUS_KM;
use crate::time::{UnixSeconds, format_ms};
use crate::{SatelliteProblem, SearchOptions, Span, build_tracks};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// What counts as a usable link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IslOptions {
    /// The line of sight must pass this high above the Earth's sphere, km.
    pub grazing_altitude_km: f64,
    /// Longest usable link, km; `None` for line of sight only.
    pub max_range_km: Option<f64>,
}

impl Default for IslOptions {
    /// 80 km grazing altitude (above the denser atmosphere), 5,000 km range (optical terminals in service).
    fn default() -> Self {
        IslOptions {
            grazing_altitude_km: 80.0,
            max_range_km: Some(5_000.0),
        }
    }
}

/// One window in which two satellites can link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IslWindow {
    /// Catalog index of the first satellite (the lower index).
    pub sat_a: usize,
    /// Catalog index of the second satellite.
    pub sat_b: usize,
    /// Start (the span's start when clipped), Unix seconds.
    pub start: UnixSeconds,
    /// End (the span's end when clipped), Unix seconds.
    pub end: UnixSeconds,
    /// Whether the window began before the span.
    pub start_clipped: bool,
    /// Whether it goes on after the span.
    pub end_clipped: bool,
}

/// A window as written to JSON: the field names and formats of the calibration data's `isl.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IslRecord {
    /// First satellite's name.
    pub sat_a: String,
    /// First satellite's catalog number.
    pub norad_a: u64,
    /// Second satellite's name.
    pub sat_b: String,
    /// Second satellite's catalog number.
    pub norad_b: u64,
    /// Start, RFC 3339 UTC with milliseconds.
    pub start: String,
    /// End, RFC 3339 UTC with milliseconds.
    pub end: String,
    /// Whether start is the span's start.
    pub start_clipped: bool,
    /// Whether end is the span's end.
    pub end_clipped: bool,
    /// End − start, seconds (3 decimals).
    pub duration_s: f64,
}

impl IslRecord {
    /// The record of a window, with names from the catalog.
    pub fn new(w: &IslWindow, catalog: &Catalog) -> IslRecord {
        let (a, b) = (&catalog.satellites[w.sat_a], &catalog.satellites[w.sat_b]);
        IslRecord {
            sat_a: a.name.clone(),
            norad_a: a.norad_id,
            sat_b: b.name.clone(),
            norad_b: b.norad_id,
            start: format_ms(w.start),
            end: format_ms(w.end),
            start_clipped: w.start_clipped,
            end_clipped: w.end_clipped,
            duration_s: ((w.end - w.start) * 1e3).round() / 1e3,
        }
    }
}

/// ISL windows found in a span.
#[derive(Debug, Clone, Default)]
pub struct IslReport {
    /// Sorted by first satellite, second satellite, start.
    pub windows: Vec<IslWindow>,
    /// How many pairs were examined (all pairs without a range limit, the candidates with one).
    pub pairs_examined: usize,
    /// Satellites whose propagation failed; no windows involve them.
    pub problems: Vec<SatelliteProblem>,
}

/// Positive when the link is usable: the smaller of the line of sight's clearance and the range margin, km.
#[inline]
pub fn link_margin_km(a: Vec3, b: Vec3, options: &IslOptions) -> f64 {
    let d = sub(b, a);
    let dd = dot(d, d);
    let u = if dd > 0.0 {
        (-dot(a, d) / dd).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let closest = [a[0] + u * d[0], a[1] + u * d[1], a[2] + u * d[2]];
    let clearance = norm(closest) - SHADOW_EARTH_RADIUS_KM - options.grazing_altitude_km;
    match options.max_range_km {
        Some(max) => clearance.min(max - dd.sqrt()),
        None => clearance,
    }
}

/// Finds the ISL windows of every pair of satellites in a span.
pub fn find_isl_windows(
    catalog: &Catalog,
    span: Span,
    isl: &IslOptions,
    options: &SearchOptions,
) -> IslReport {
    let grid = Grid::new(span.start, span.end, options.step_s);
    let tracks = build_tracks(catalog, &grid, options, |_, track| track.clone());
    let mut report = IslReport::default();
    let mut ok: Vec<(usize, &Track)> = Vec::new();
    for (index, result) in tracks.iter().enumerate() {
        match result {
            Ok(track) => ok.push((index, track)),
            Err(error) => {
                report
                    .problems
                    .push(SatelliteProblem::new(catalog, index, error.clone()))
            }
        }
    }
    let pairs: Vec<(usize, usize)> = match isl.max_range_km {
        None => (0..ok.len())
            .flat_map(|a| (a + 1..ok.len()).map(move |b| (a, b)))
            .collect(),
        Some(range) => candidate_pairs(&ok, &grid, range),
    };
    report.pairs_examined = pairs.len();
    let windows: Vec<Vec<IslWindow>> = crate::install(options, || {
        use rayon::prelude::*;
        pairs
            .par_iter()
            .map(|&(a, b)| {
                let (ia, ta) = ok[a];
                let (ib, tb) = ok[b];
                pair_windows(ia, ta, ib, tb, &grid, isl)
            })
            .collect()
    });
    report.windows = windows.into_iter().flatten().collect();
    report
}

/// Pairs (as positions in `tracks`) that come close enough at some sample to be within `range_km` between samples.
fn candidate_pairs(tracks: &[(usize, &Track)], grid: &Grid, range_km: f64) -> Vec<(usize, usize)> {
    let max_speed = tracks
        .iter()
        .map(|(_, t)| t.max_speed_km_s)
        .fold(0.0, f64::max);
    let cell = range_km + 2.0 * max_speed * grid.step_s;
    let mut pairs = BTreeSet::new();
    let mut cells: HashMap<(i64, i64, i64), Vec<usize>> = HashMap::new();
    for i in 0..grid.len() {
        cells.clear();
        for (k, (_, track)) in tracks.iter().enumerate() {
            let p = track.teme[i];
            let key = (
                (p[0] / cell).floor() as i64,
                (p[1] / cell).floor() as i64,
                (p[2] / cell).floor() as i64,
            );
            cells.entry(key).or_default().push(k);
        }
        for (&(x, y, z), members) in &cells {
            for dx in -1..=1 {
                for dy in -1..=1 {
                    for dz in -1..=1 {
                        let Some(other) = cells.get(&(x + dx, y + dy, z + dz)) else {
                            continue;
                        };
                        for &a in members {
                            for &b in other {
                                if a < b
                                    && norm(sub(tracks[a].1.teme[i], tracks[b].1.teme[i])) <= cell
                                {
                                    pairs.insert((a, b));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    pairs.into_iter().collect()
}

fn pair_windows(
    ia: usize,
    ta: &Track,
    ib: usize,
    tb: &Track,
    grid: &Grid,
    isl: &IslOptions,
) -> Vec<IslWindow> {
    let samples: Vec<(usize, f64)> = (0..grid.len())
        .map(|i| (i, link_margin_km(ta.teme[i], tb.teme[i], isl)))
        .collect();
    let eval = |t: UnixSeconds| link_margin_km(ta.teme_at(grid, t), tb.teme_at(grid, t), isl);
    let mut intervals: Vec<Interval> = Vec::new();
    find_intervals(grid, &samples, &eval, false, &mut intervals);
    intervals
        .iter()
        .map(|iv| IslWindow {
            sat_a: ia,
            sat_b: ib,
            start: iv.start,
            end: iv.end,
            start_clipped: iv.start_clipped,
            end_clipped: iv.end_clipped,
        })
        .collect()
}
