//! Ground-station passes: for every satellite × station in a span, AOS, TCA, LOS and maximum elevation.
//!
//! Each satellite is propagated once on the coarse grid and its samples serve every station. Per station, the
//! Earth-central angle to the satellite gives a hard bound: while it exceeds the largest angle at which the
//! satellite could clear the mask, plus what it can move in one step, the station cannot see it, and the search
//! jumps ahead by as many samples as the satellite's angular rate allows. Only samples near a possible pass are
//! evaluated; edges are then solved by root finding and the culmination by golden-section search on the
//! interpolated track.

use crate::catalog::Catalog;
use crate::frames::dot;
use crate::search::{Grid, Interval, Track, find_intervals};
use crate::station::{Site, Station};
use crate::time::{UnixSeconds, format_ms};
use crate::{SatelliteProblem, SearchOptions, Span, build_tracks};
use serde::Serialize;

/// One pass of a satellite over a station.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// Index of the satellite in the catalog.
    pub satellite: usize,
    /// Index of the station in the station list.
    pub station: usize,
    /// Acquisition of signal: the satellite rises above the mask (or the span starts), Unix seconds.
    pub aos: UnixSeconds,
    /// Time of closest approach: highest elevation inside the (clipped) pass, Unix seconds.
    pub tca: UnixSeconds,
    /// Loss of signal: the satellite sets below the mask (or the span ends), Unix seconds.
    pub los: UnixSeconds,
    /// Elevation at TCA, degrees.
    pub max_elevation_deg: f64,
    /// Whether the pass began before the span.
    pub aos_clipped: bool,
    /// Whether the pass goes on after the span.
    pub los_clipped: bool,
}

impl Pass {
    /// Length of the pass, seconds.
    pub fn duration_s(&self) -> f64 {
        self.los - self.aos
    }
}

/// A pass as written to JSON: the field names and formats of the calibration data's `passes.json`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PassRecord {
    /// Satellite name.
    pub satellite: String,
    /// NORAD catalog number.
    pub norad_id: u64,
    /// Station name.
    pub station: String,
    /// AOS, RFC 3339 UTC with milliseconds.
    pub aos: String,
    /// TCA, RFC 3339 UTC with milliseconds.
    pub tca: String,
    /// LOS, RFC 3339 UTC with milliseconds.
    pub los: String,
    /// Maximum elevation, degrees (6 decimals).
    pub max_elevation_deg: f64,
    /// Whether AOS is the span's start.
    pub aos_clipped: bool,
    /// Whether LOS is the span's end.
    pub los_clipped: bool,
    /// LOS − AOS, seconds (3 decimals).
    pub duration_s: f64,
}

impl PassRecord {
    /// The record of a pass, with names looked up in the catalog and station list.
    pub fn new(pass: &Pass, catalog: &Catalog, stations: &[Station]) -> PassRecord {
        let sat = &catalog.satellites[pass.satellite];
        PassRecord {
            satellite: sat.name.clone(),
            norad_id: sat.norad_id,
            station: stations[pass.station].name.clone(),
            aos: format_ms(pass.aos),
            tca: format_ms(pass.tca),
            los: format_ms(pass.los),
            max_elevation_deg: (pass.max_elevation_deg * 1e6).round() / 1e6,
            aos_clipped: pass.aos_clipped,
            los_clipped: pass.los_clipped,
            duration_s: (pass.duration_s() * 1e3).round() / 1e3,
        }
    }
}

/// Passes found in a span, and the satellites that could not be searched.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// Sorted by satellite (catalog order), station (list order), AOS.
    pub passes: Vec<Pass>,
    /// Satellites whose propagation failed; their passes are missing.
    pub problems: Vec<SatelliteProblem>,
}

/// Finds every pass of every satellite over every station in a span.
pub fn find_passes(
    catalog: &Catalog,
    stations: &[Station],
    span: Span,
    options: &SearchOptions,
) -> PassReport {
    let grid = Grid::new(span.start, span.end, options.step_s);
    let sites: Vec<Site> = stations.iter().map(Site::new).collect();
    let per_sat = build_tracks(catalog, &grid, options, |index, track| {
        let mut passes = Vec::new();
        passes_of_track(index, track, &grid, &sites, &mut passes);
        passes
    });
    let mut report = PassReport::default();
    for (index, result) in per_sat.into_iter().enumerate() {
        match result {
            Ok(passes) => report.passes.extend(passes),
            Err(error) => report
                .problems
                .push(SatelliteProblem::new(catalog, index, error)),
        }
    }
    report
}

/// Passes of one sampled satellite over every site, appended in station order then time order.
pub(crate) fn passes_of_track(
    satellite: usize,
    track: &Track,
    grid: &Grid,
    sites: &[Site],
    out: &mut Vec<Pass>,
) {
    const NONE: u32 = u32::MAX;
    let n = grid.len();
    let step_angle = track.max_relative_angular_rate() * grid.step_s;
    let inv_step_angle = 1.0 / step_angle;
    let eval_angles: Vec<f64> = sites
        .iter()
        .map(|site| site.max_central_angle(track.max_radius_km) + step_angle)
        .collect();
    // Each station waits in the bucket of the next sample at which it could be in reach: an intrusive list
    // per sample (`head`, `link`). Walking sample by sample and station by station keeps consecutive tests
    // independent, so the processor overlaps them instead of waiting on one station's chain of skips.
    let mut head = vec![NONE; n];
    let mut link = vec![NONE; sites.len()];
    for station in (0..sites.len()).rev() {
        link[station] = head[0];
        head[0] = station as u32;
    }
    let mut samples: Vec<Vec<(usize, f64)>> = vec![Vec::new(); sites.len()];
    for i in 0..n {
        let mut s = std::mem::replace(&mut head[i], NONE);
        let unit = track.ecef_unit[i];
        while s != NONE {
            let station = s as usize;
            let next = link[station];
            let site = &sites[station];
            let c = dot(unit, site.radial);
            // How far out of reach, in steps, from a cheap lower bound of the central angle: most samples
            // are far from every station, so this test runs far more often than anything else.
            let beyond = (acos_lower_bound(c) - eval_angles[station]) * inv_step_angle;
            let wake = if beyond > 0.0 {
                // The bound is strictly below the true angle, so the true step count is at least
                // trunc(beyond) + 1: every sample before that is out of reach too.
                i + beyond as usize + 1
            } else {
                samples[station].push((i, site.visibility(track.ecef[i])));
                i + 1
            };
            if wake < n {
                link[station] = head[wake];
                head[wake] = s;
            }
            s = next;
        }
    }
    let mut intervals: Vec<Interval> = Vec::new();
    for (station, (site, samples)) in sites.iter().zip(&samples).enumerate() {
        if samples.is_empty() {
            continue;
        }
        intervals.clear();
        let eval = |t: UnixSeconds| site.visibility(track.ecef_at(grid, t));
        find_intervals(grid, samples, &eval, true, &mut intervals);
        out.extend(intervals.iter().map(|iv| {
            Pass {
                satellite,
                station,
                aos: iv.start,
                tca: iv.peak,
                los: iv.end,
                max_elevation_deg: (iv.peak_value + site.sin_mask)
                    .clamp(-1.0, 1.0)
                    .asin()
                    .to_degrees(),
                aos_clipped: iv.start_clipped,
                los_clipped: iv.end_clipped,
            }
        }));
    }
}

/// A lower bound of arccos(x), strictly below it by at most 2.4e-4 rad: Abramowitz & Stegun 4.4.45 (error
/// under 6.8e-5 rad) less a margin, a few multiplications instead of a libm call.
#[inline]
fn acos_lower_bound(x: f64) -> f64 {
    let y = x.abs().min(1.0);
    let r = (1.0 - y).sqrt()
        * (1.570_728_8 + y * (-0.212_114_4 + y * (0.074_261_0 + y * -0.018_729_3)));
    let approx = if x >= 0.0 {
        r
    } else {
        std::f64::consts::PI - r
    };
    approx - 1e-4
}

/// Passes by brute force: every satellite propagated at every `step_s` and every station tested at every step,
/// crossings by linear interpolation and culmination by a parabola through the highest samples.
///
/// The reference a smarter search is measured against (speed and agreement); not for production use.
pub fn find_passes_brute_force(
    catalog: &Catalog,
    stations: &[Station],
    span: Span,
    step_s: f64,
) -> PassReport {
    use rayon::prelude::*;
    let sites: Vec<Site> = stations.iter().map(Site::new).collect();
    let n = ((span.end - span.start) / step_s).ceil() as usize + 1;
    let per_sat: Vec<Result<Vec<Pass>, _>> = catalog
        .satellites
        .par_iter()
        .enumerate()
        .map(|(index, sat)| {
            let mut vis = vec![Vec::with_capacity(n); sites.len()];
            for k in 0..n {
                let t = (span.start + k as f64 * step_s).min(span.end);
                let s = sat.propagate(t)?;
                let r = crate::frames::teme_to_ecef_position(
                    s.position_km,
                    crate::frames::gmst_rad(t).sin_cos(),
                );
                for (v, site) in vis.iter_mut().zip(&sites) {
                    v.push(site.visibility(r));
                }
            }
            let time = |k: usize| (span.start + k as f64 * step_s).min(span.end);
            let mut passes = Vec::new();
            for (station, v) in vis.iter().enumerate() {
                let mut k = 0;
                while k < n {
                    if v[k] <= 0.0 {
                        k += 1;
                        continue;
                    }
                    let first = k;
                    while k + 1 < n && v[k + 1] > 0.0 {
                        k += 1;
                    }
                    let last = k;
                    let cross =
                        |a: usize, b: usize| time(a) + (time(b) - time(a)) * v[a] / (v[a] - v[b]);
                    let aos = if first == 0 {
                        span.start
                    } else {
                        cross(first - 1, first)
                    };
                    let los = if last + 1 >= n {
                        span.end
                    } else {
                        cross(last, last + 1)
                    };
                    let top = (first..=last)
                        .max_by(|&a, &b| v[a].total_cmp(&v[b]))
                        .unwrap_or(first);
                    let (tca, peak) = if top > 0 && top + 1 < n {
                        let (y0, y1, y2) = (v[top - 1], v[top], v[top + 1]);
                        let denom = y0 - 2.0 * y1 + y2;
                        let dx = if denom != 0.0 {
                            0.5 * (y0 - y2) / denom
                        } else {
                            0.0
                        };
                        (time(top) + dx * step_s, y1 - 0.25 * (y0 - y2) * dx)
                    } else {
                        (time(top), v[top])
                    };
                    passes.push(Pass {
                        satellite: index,
                        station,
                        aos,
                        tca: tca.clamp(aos, los),
                        los,
                        max_elevation_deg: (peak + sites[station].sin_mask)
                            .clamp(-1.0, 1.0)
                            .asin()
                            .to_degrees(),
                        aos_clipped: first == 0,
                        los_clipped: last + 1 >= n,
                    });
                    k += 1;
                }
            }
            Ok(passes)
        })
        .collect();
    let mut report = PassReport::default();
    for (index, result) in per_sat.into_iter().enumerate() {
        match result {
            Ok(passes) => report.passes.extend(passes),
            Err(error) => report
                .problems
                .push(SatelliteProblem::new(catalog, index, error)),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acos_lower_bound_is_a_strict_lower_bound() {
        for k in -100_000..=100_000 {
            let x = f64::from(k) / 100_000.0;
            let gap = x.acos() - acos_lower_bound(x);
            assert!(gap > 1e-5 && gap < 2.4e-4, "x = {x}: gap {gap}");
        }
    }
}
