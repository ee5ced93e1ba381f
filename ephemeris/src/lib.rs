//! odc-ephemeris: orbital geometry for odc. Catalogs from TLE and OMM, SGP4/SDP4 propagation, TEME → Earth-fixed
//! frames, ground-station passes, eclipses and inter-satellite line of sight.
//!
//! **Invariant:** no IO and no clock. Every function is handed its text, its span and its options, and returns the
//! same answer for the same input, whatever the thread count.

pub mod catalog;
pub mod eclipses;
pub mod frames;
pub mod isl;
pub mod passes;
pub mod propagate;
pub mod search;
pub mod station;
pub mod sun;
pub mod synthetic;
pub mod time;

pub use catalog::{Catalog, CatalogError, LenientCatalog, RecordError, RecordProblem};
pub use eclipses::{Eclipse, EclipseRecord, EclipseReport, Shadow, find_eclipses};
pub use isl::{IslOptions, IslRecord, IslReport, IslWindow, find_isl_windows};
pub use passes::{Pass, PassRecord, PassReport, find_passes, find_passes_brute_force};
pub use propagate::{PropagationError, Satellite, TemeState};
pub use station::{Station, StationError};
pub use time::UnixSeconds;

use search::{Grid, Track};

/// A time span to search, Unix seconds UTC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// Inclusive start.
    pub start: UnixSeconds,
    /// Inclusive end.
    pub end: UnixSeconds,
}

/// Why a span was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("span end {end} is not after its start {start}")]
pub struct SpanError {
    /// The start asked for, RFC 3339.
    pub start: String,
    /// The end asked for, RFC 3339.
    pub end: String,
}

impl Span {
    /// A span from `start` to `end`; the end must be after the start.
    pub fn new(start: UnixSeconds, end: UnixSeconds) -> Result<Span, SpanError> {
        if end > start && start.is_finite() && end.is_finite() {
            Ok(Span { start, end })
        } else {
            Err(SpanError {
                start: time::format_ms(start),
                end: time::format_ms(end),
            })
        }
    }

    /// Length, seconds.
    pub fn duration_s(&self) -> f64 {
        self.end - self.start
    }
}

/// How a search samples and parallelises.
#[derive(Clone)]
pub struct SearchOptions {
    /// Coarse grid step, seconds. 60 s resolves every LEO pass and eclipse; passes shorter than a step are still
    /// found (see [`search::find_intervals`]).
    pub step_s: f64,
    /// Worker threads; `None` uses every core.
    pub threads: Option<usize>,
    /// Called once per satellite searched, from any thread (for progress bars).
    pub progress: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            step_s: 60.0,
            threads: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for SearchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchOptions")
            .field("step_s", &self.step_s)
            .field("threads", &self.threads)
            .finish()
    }
}

/// A satellite that could not be searched, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("satellite {name} ({norad_id}): {error}")]
pub struct SatelliteProblem {
    /// Catalog index.
    pub satellite: usize,
    /// Name.
    pub name: String,
    /// NORAD catalog number.
    pub norad_id: u64,
    /// What went wrong.
    pub error: PropagationError,
}

impl SatelliteProblem {
    fn new(catalog: &Catalog, satellite: usize, error: PropagationError) -> SatelliteProblem {
        let sat = &catalog.satellites[satellite];
        SatelliteProblem {
            satellite,
            name: sat.name.clone(),
            norad_id: sat.norad_id,
            error,
        }
    }
}

/// A satellite whose elements are far from the span searched: stale elements are the commonest cause of
/// missed passes.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleElements {
    /// Catalog index.
    pub satellite: usize,
    /// Name.
    pub name: String,
    /// Days from the element epoch to the nearest end of the span.
    pub age_days: f64,
}

/// Elements older (or newer) than this many days from a span are reported as stale.
pub const STALE_AFTER_DAYS: f64 = 14.0;

/// Satellites whose element epoch lies more than [`STALE_AFTER_DAYS`] from the span.
pub fn stale_elements(catalog: &Catalog, span: Span) -> Vec<StaleElements> {
    catalog
        .satellites
        .iter()
        .enumerate()
        .filter_map(|(satellite, sat)| {
            let gap = if sat.epoch_unix < span.start {
                span.end - sat.epoch_unix
            } else if sat.epoch_unix > span.end {
                sat.epoch_unix - span.start
            } else {
                0.0
            };
            let age_days = gap / 86_400.0;
            (age_days > STALE_AFTER_DAYS).then(|| StaleElements {
                satellite,
                name: sat.name.clone(),
                age_days,
            })
        })
        .collect()
}

/// Runs `f` on a thread pool sized by the options (the global pool when no size is given).
pub(crate) fn install<R: Send>(options: &SearchOptions, f: impl FnOnce() -> R + Send) -> R {
    match options.threads {
        Some(n) => match rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
        {
            Ok(pool) => pool.install(f),
            Err(_) => f(),
        },
        None => f(),
    }
}

/// Samples every satellite on the grid (in parallel) and hands each track to `per_track`, in catalog order.
pub(crate) fn build_tracks<R: Send>(
    catalog: &Catalog,
    grid: &Grid,
    options: &SearchOptions,
    per_track: impl Fn(usize, &Track) -> R + Sync + Send,
) -> Vec<Result<R, PropagationError>> {
    use rayon::prelude::*;
    install(options, || {
        catalog
            .satellites
            .par_iter()
            .enumerate()
            .map(|(index, sat)| {
                let result = Track::new(sat, grid).map(|track| per_track(index, &track));
                if let Some(progress) = &options.progress {
                    progress();
                }
                result
            })
            .collect()
    })
}
