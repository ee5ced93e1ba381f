//! Eclipses: the intervals a satellite spends in Earth's shadow, under three boundaries.
//!
//! [`Shadow::Centre`] is the line on which the Sun's centre sets behind a spherical Earth of radius 6378.1366 km:
//! the boundary the calibration reference reports, halfway between the cone edges. [`Shadow::Umbra`] (no Sun at
//! all) and [`Shadow::Penumbra`] (any part of the Sun hidden) are the conical shadow's edges, which power models
//! use to scale the solar array.

use crate::catalog::Catalog;
use crate::search::{Grid, Interval, Track, find_intervals};
use crate::sun::{ShadowAngles, sun_position_km};
use crate::time::{UnixSeconds, format_ms};
use crate::{SatelliteProblem, SearchOptions, Span, build_tracks};
use serde::{Deserialize, Serialize};

/// Which shadow boundary an eclipse is measured by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shadow {
    /// The Sun's centre is behind the Earth (the calibration reference's definition).
    Centre,
    /// The whole Sun is behind the Earth.
    Umbra,
    /// Some of the Sun is behind the Earth (includes the umbra).
    Penumbra,
}

impl Shadow {
    /// Positive inside this shadow.
    pub fn depth(self, angles: &ShadowAngles) -> f64 {
        match self {
            Shadow::Centre => angles.centre_depth(),
            Shadow::Umbra => angles.umbra_depth(),
            Shadow::Penumbra => angles.penumbra_depth(),
        }
    }
}

impl std::str::FromStr for Shadow {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "centre" | "center" => Ok(Shadow::Centre),
            "umbra" => Ok(Shadow::Umbra),
            "penumbra" => Ok(Shadow::Penumbra),
            other => Err(format!(
                "unknown shadow boundary {other:?}; expected centre, umbra or penumbra"
            )),
        }
    }
}

/// One stretch of a satellite in shadow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eclipse {
    /// Index of the satellite in the catalog.
    pub satellite: usize,
    /// The boundary used.
    pub shadow: Shadow,
    /// Entry (the span's start when clipped), Unix seconds.
    pub enter: UnixSeconds,
    /// Exit (the span's end when clipped), Unix seconds.
    pub exit: UnixSeconds,
    /// Whether the eclipse began before the span.
    pub enter_clipped: bool,
    /// Whether it goes on after the span.
    pub exit_clipped: bool,
}

/// An eclipse as written to JSON: the field names and formats of the calibration data's `eclipses.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EclipseRecord {
    /// Satellite name.
    pub satellite: String,
    /// NORAD catalog number.
    pub norad_id: u64,
    /// Entry, RFC 3339 UTC with milliseconds.
    pub enter: String,
    /// Exit, RFC 3339 UTC with milliseconds.
    pub exit: String,
    /// Whether entry is the span's start.
    pub enter_clipped: bool,
    /// Whether exit is the span's end.
    pub exit_clipped: bool,
    /// Exit − entry, seconds (3 decimals).
    pub duration_s: f64,
}

impl EclipseRecord {
    /// The record of an eclipse, with the satellite's name from the catalog.
    pub fn new(e: &Eclipse, catalog: &Catalog) -> EclipseRecord {
        let sat = &catalog.satellites[e.satellite];
        EclipseRecord {
            satellite: sat.name.clone(),
            norad_id: sat.norad_id,
            enter: format_ms(e.enter),
            exit: format_ms(e.exit),
            enter_clipped: e.enter_clipped,
            exit_clipped: e.exit_clipped,
            duration_s: ((e.exit - e.enter) * 1e3).round() / 1e3,
        }
    }
}

/// Eclipses found in a span, and the satellites that could not be searched.
#[derive(Debug, Clone, Default)]
pub struct EclipseReport {
    /// Sorted by satellite (catalog order), boundary (in the order asked), entry.
    pub eclipses: Vec<Eclipse>,
    /// Satellites whose propagation failed.
    pub problems: Vec<SatelliteProblem>,
}

/// Finds the eclipses of every satellite in a span under each of the given boundaries.
pub fn find_eclipses(
    catalog: &Catalog,
    span: Span,
    shadows: &[Shadow],
    options: &SearchOptions,
) -> EclipseReport {
    let grid = Grid::new(span.start, span.end, options.step_s);
    let suns: Vec<_> = grid.times.iter().map(|&t| sun_position_km(t)).collect();
    let per_sat = build_tracks(catalog, &grid, options, |index, track| {
        let mut out = Vec::new();
        for &shadow in shadows {
            eclipses_of_track(index, track, &grid, &suns, shadow, &mut out);
        }
        out
    });
    let mut report = EclipseReport::default();
    for (index, result) in per_sat.into_iter().enumerate() {
        match result {
            Ok(eclipses) => report.eclipses.extend(eclipses),
            Err(error) => report
                .problems
                .push(SatelliteProblem::new(catalog, index, error)),
        }
    }
    report
}

/// Eclipses of one sampled satellite under one boundary. `suns` holds the Sun at each grid sample.
pub(crate) fn eclipses_of_track(
    satellite: usize,
    track: &Track,
    grid: &Grid,
    suns: &[[f64; 3]],
    shadow: Shadow,
    out: &mut Vec<Eclipse>,
) {
    let samples: Vec<(usize, f64)> = track
        .teme
        .iter()
        .zip(suns)
        .enumerate()
        .map(|(i, (&r, &s))| (i, shadow.depth(&ShadowAngles::new(r, s))))
        .collect();
    let eval = |t: UnixSeconds| {
        shadow.depth(&ShadowAngles::new(
            track.teme_at(grid, t),
            sun_position_km(t),
        ))
    };
    let mut intervals: Vec<Interval> = Vec::new();
    find_intervals(grid, &samples, &eval, false, &mut intervals);
    out.extend(intervals.iter().map(|iv| Eclipse {
        satellite,
        shadow,
        enter: iv.start,
        exit: iv.end,
        enter_clipped: iv.start_clipped,
        exit_clipped: iv.end_clipped,
    }));
}
