//! The search machinery shared by passes, eclipses and ISL windows: a time grid, satellite tracks sampled on it
//! once and interpolated between samples, and an interval finder that turns a sampled function into the intervals
//! where it is positive, with edges refined by a root finder and peaks by a bracketing search.
//!
//! Between grid samples a satellite's TEME position is a cubic Hermite interpolant of the SGP4 positions and
//! velocities at both ends. At a 60 s step its error is under a metre for any orbit down to 300 km (the fourth
//! derivative of a circular orbit is ω⁴r), i.e. well under a millisecond of along-track time, so refinement costs
//! arithmetic only and no further SGP4 calls.

use crate::frames::{EARTH_ROTATION_RAD_S, Vec3, norm};
use crate::propagate::{PropagationError, Satellite};
use crate::time::UnixSeconds;

/// Sample times over a span: every `step_s`, with the last sample exactly at the span's end.
#[derive(Debug, Clone)]
pub struct Grid {
    /// Span start, Unix seconds.
    pub start: UnixSeconds,
    /// Span end, Unix seconds.
    pub end: UnixSeconds,
    /// Nominal step, seconds.
    pub step_s: f64,
    /// Sample times, Unix seconds.
    pub times: Vec<UnixSeconds>,
    /// sin and cos of GMST at each sample, shared by every satellite.
    pub gmst_sin_cos: Vec<(f64, f64)>,
}

impl Grid {
    /// Builds the grid for a span; `end` must be after `start`.
    pub fn new(start: UnixSeconds, end: UnixSeconds, step_s: f64) -> Grid {
        let n = ((end - start) / step_s).ceil().max(1.0) as usize + 1;
        let times: Vec<f64> = (0..n).map(|i| (start + i as f64 * step_s).min(end)).collect();
        let gmst_sin_cos = times.iter().map(|&t| crate::frames::gmst_rad(t).sin_cos()).collect();
        Grid { start, end, step_s, times, gmst_sin_cos }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether the grid has no samples (never, for a grid built by [`Grid::new`]).
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Index of the segment [t_i, t_i+1] that holds `t` (clamped to the grid).
    #[inline]
    pub fn segment(&self, t: UnixSeconds) -> usize {
        let i = ((t - self.start) / self.step_s).floor();
        (i.max(0.0) as usize).min(self.times.len().saturating_sub(2))
    }
}

/// One satellite sampled on a grid: TEME and Earth-fixed positions, TEME velocities, and bounds on its motion.
#[derive(Debug, Clone)]
pub struct Track {
    /// TEME positions, km.
    pub teme: Vec<Vec3>,
    /// TEME velocities, km/s.
    pub vel: Vec<Vec3>,
    /// Earth-fixed positions, km.
    pub ecef: Vec<Vec3>,
    /// Largest geocentric distance sampled, km.
    pub max_radius_km: f64,
    /// Smallest geocentric distance sampled, km.
    pub min_radius_km: f64,
    /// Upper bound of the angular rate of the satellite's direction seen from Earth's centre, rad/s.
    pub max_angular_rate: f64,
    /// Upper bound of the speed, km/s.
    pub max_speed_km_s: f64,
}

impl Track {
    /// Propagates a satellite at every grid sample: the only SGP4 calls of a search.
    pub fn new(sat: &Satellite, grid: &Grid) -> Result<Track, PropagationError> {
        let n = grid.len();
        let mut track = Track {
            teme: Vec::with_capacity(n),
            vel: Vec::with_capacity(n),
            ecef: Vec::with_capacity(n),
            max_radius_km: 0.0,
            min_radius_km: f64::INFINITY,
            max_angular_rate: 0.0,
            max_speed_km_s: 0.0,
        };
        for (i, &t) in grid.times.iter().enumerate() {
            let s = sat.propagate(t)?;
            track.push(s.position_km, s.velocity_km_s, grid.gmst_sin_cos[i]);
        }
        // The extremes between samples exceed the sampled ones slightly; the margins cover any bound orbit at
        // a step of a few minutes.
        track.max_radius_km *= 1.002;
        track.min_radius_km *= 0.998;
        track.max_angular_rate *= 1.05;
        track.max_speed_km_s *= 1.05;
        Ok(track)
    }

    fn push(&mut self, r: Vec3, v: Vec3, sc: (f64, f64)) {
        let rn = norm(r);
        let vn = norm(v);
        self.max_radius_km = self.max_radius_km.max(rn);
        self.min_radius_km = self.min_radius_km.min(rn);
        self.max_speed_km_s = self.max_speed_km_s.max(vn);
        self.max_angular_rate = self.max_angular_rate.max(vn / rn);
        self.teme.push(r);
        self.vel.push(v);
        self.ecef.push(crate::frames::teme_to_ecef_position(r, sc));
    }

    /// Interpolated TEME position at `t`, km.
    #[inline]
    pub fn teme_at(&self, grid: &Grid, t: UnixSeconds) -> Vec3 {
        let i = grid.segment(t);
        let (t0, t1) = (grid.times[i], grid.times[i + 1]);
        let h = t1 - t0;
        if h <= 0.0 {
            return self.teme[i];
        }
        let s = ((t - t0) / h).clamp(0.0, 1.0);
        let s2 = s * s;
        let s3 = s2 * s;
        let h00 = 2.0 * s3 - 3.0 * s2 + 1.0;
        let h10 = (s3 - 2.0 * s2 + s) * h;
        let h01 = -2.0 * s3 + 3.0 * s2;
        let h11 = (s3 - s2) * h;
        let (p0, p1, v0, v1) = (self.teme[i], self.teme[i + 1], self.vel[i], self.vel[i + 1]);
        [
            h00 * p0[0] + h10 * v0[0] + h01 * p1[0] + h11 * v1[0],
            h00 * p0[1] + h10 * v0[1] + h01 * p1[1] + h11 * v1[1],
            h00 * p0[2] + h10 * v0[2] + h01 * p1[2] + h11 * v1[2],
        ]
    }

    /// Interpolated Earth-fixed position at `t`, km.
    #[inline]
    pub fn ecef_at(&self, grid: &Grid, t: UnixSeconds) -> Vec3 {
        crate::frames::teme_to_ecef_position(self.teme_at(grid, t), crate::frames::gmst_rad(t).sin_cos())
    }

    /// Upper bound of how fast the satellite's direction moves relative to a point on the rotating Earth, rad/s.
    pub fn max_relative_angular_rate(&self) -> f64 {
        self.max_angular_rate + EARTH_ROTATION_RAD_S
    }
}

/// An interval in which a function is positive, with where it peaks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Start (the span's start when clipped), Unix seconds.
    pub start: UnixSeconds,
    /// End (the span's end when clipped), Unix seconds.
    pub end: UnixSeconds,
    /// Whether the interval began before the span.
    pub start_clipped: bool,
    /// Whether the interval goes on after the span.
    pub end_clipped: bool,
    /// Time of the function's maximum inside the interval.
    pub peak: UnixSeconds,
    /// The function's maximum.
    pub peak_value: f64,
}

/// Finds where a continuous function is positive, given its values at grid samples.
///
/// `samples` lists `(index, value)` for the samples that were evaluated, in increasing index order; a sample left
/// out is known to be negative and its whole neighbourhood out to the next listed sample is known to hold no
/// positive stretch (the caller's bound guarantees it), which is how callers skip spans cheaply.
/// `eval` gives the function anywhere in the span. Edges are solved to `EDGE_TOLERANCE_S`, peaks to
/// `PEAK_TOLERANCE_S`. A positive stretch shorter than a grid step is found when it shows as a discrete local
/// maximum, which holds whenever the function is unimodal over two steps around its peak.
pub fn find_intervals(
    grid: &Grid,
    samples: &[(usize, f64)],
    eval: &impl Fn(UnixSeconds) -> f64,
    want_peaks: bool,
    out: &mut Vec<Interval>,
) {
    let n = grid.len();
    let mut k = 0;
    while k < samples.len() {
        // A run of consecutive evaluated samples, widened by one known-negative sample on each side.
        let mut end = k + 1;
        while end < samples.len() && samples[end].0 == samples[end - 1].0 + 1 {
            end += 1;
        }
        let first = samples[k].0;
        let last = samples[end - 1].0;
        let lo = first.saturating_sub(1);
        let hi = (last + 1).min(n - 1);
        let value = |i: usize| -> f64 {
            if i >= first && i <= last { samples[k + (i - first)].1 } else { f64::NEG_INFINITY }
        };
        find_in_run(grid, lo, hi, &value, eval, want_peaks, out);
        k = end;
    }
}

/// Absolute tolerance of interval edges, seconds.
pub const EDGE_TOLERANCE_S: f64 = 1e-4;
/// Absolute tolerance of peak times, seconds.
pub const PEAK_TOLERANCE_S: f64 = 1e-3;

fn find_in_run(
    grid: &Grid,
    lo: usize,
    hi: usize,
    value: &impl Fn(usize) -> f64,
    eval: &impl Fn(UnixSeconds) -> f64,
    want_peaks: bool,
    out: &mut Vec<Interval>,
) {
    let t = &grid.times;
    let n = grid.len();
    // Rising and falling edges, in time order; a rise at the span start is a clipped start.
    let mut edges: Vec<(UnixSeconds, bool)> = Vec::new();
    if lo == 0 && value(0) > 0.0 {
        edges.push((t[0], true));
    }
    for i in lo..hi {
        let (a, b) = (value(i), value(i + 1));
        if (a > 0.0) != (b > 0.0) {
            edges.push((root(eval, t[i], t[i + 1]), b > 0.0));
        }
    }
    // Between two negative samples a short positive stretch can still hide; it shows as a discrete local
    // maximum at or next to it, so each such maximum is searched on its two neighbouring segments.
    for i in lo..=hi {
        let v = value(i);
        if v > 0.0 || v == f64::NEG_INFINITY {
            continue;
        }
        let left = if i > 0 { value(i - 1) } else { f64::NEG_INFINITY };
        let right = if i + 1 < n { value(i + 1) } else { f64::NEG_INFINITY };
        if v > left && v >= right {
            let a = t[i.saturating_sub(1)];
            let b = t[(i + 1).min(n - 1)];
            let (tp, vp) = maximize(eval, a, b);
            if vp > 0.0 {
                let rise = if tp <= t[0] { None } else { Some(root(eval, a, tp)) };
                let fall = if tp >= t[n - 1] { None } else { Some(root(eval, tp, b)) };
                match rise {
                    Some(r) => edges.push((r, true)),
                    None => edges.push((t[0], true)),
                }
                if let Some(f) = fall {
                    edges.push((f, false));
                }
            }
        }
    }
    edges.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut open: Option<(UnixSeconds, bool)> = None;
    for (time, rising) in edges {
        match (rising, open) {
            (true, None) => open = Some((time, time <= t[0] && lo == 0 && value(0) > 0.0)),
            (false, Some((start, clipped))) => {
                out.push(finish(grid, eval, start, time, clipped, false, want_peaks));
                open = None;
            }
            // Two rises or two falls in a row only come from edges closer than the tolerance; keep the first.
            _ => {}
        }
    }
    if let Some((start, clipped)) = open {
        out.push(finish(grid, eval, start, t[n - 1], clipped, true, want_peaks));
    }
}

fn finish(
    grid: &Grid,
    eval: &impl Fn(UnixSeconds) -> f64,
    start: UnixSeconds,
    end: UnixSeconds,
    start_clipped: bool,
    end_clipped: bool,
    want_peaks: bool,
) -> Interval {
    let (peak, peak_value) = if want_peaks { interval_peak(grid, eval, start, end) } else { (start, 0.0) };
    Interval { start, end, start_clipped, end_clipped, peak, peak_value }
}

/// The highest point of `eval` on [start, end]: each discrete local maximum of the samples inside (with the
/// edges as samples) is refined by golden-section search on its two neighbouring segments.
fn interval_peak(
    grid: &Grid,
    eval: &impl Fn(UnixSeconds) -> f64,
    start: UnixSeconds,
    end: UnixSeconds,
) -> (UnixSeconds, f64) {
    let mut pts: Vec<UnixSeconds> = vec![start];
    pts.extend(grid.times.iter().copied().filter(|&x| x > start && x < end));
    pts.push(end);
    let vals: Vec<f64> = pts.iter().map(|&x| eval(x)).collect();
    let mut best = (start, f64::NEG_INFINITY);
    for j in 0..pts.len() {
        let left = if j > 0 { vals[j - 1] } else { f64::NEG_INFINITY };
        let right = if j + 1 < pts.len() { vals[j + 1] } else { f64::NEG_INFINITY };
        if vals[j] >= left && vals[j] >= right {
            let a = pts[j.saturating_sub(1)];
            let b = pts[(j + 1).min(pts.len() - 1)];
            let cand = maximize(eval, a, b);
            if cand.1 > best.1 {
                best = cand;
            }
        }
    }
    best
}

/// A root of `f` in [a, b] where f(a) and f(b) differ in sign: the Illinois variant of regula falsi, which keeps
/// the bracket and converges superlinearly on the smooth functions met here.
pub fn root(f: &impl Fn(f64) -> f64, mut a: f64, mut b: f64) -> f64 {
    let mut fa = f(a);
    let mut fb = f(b);
    if fa == 0.0 {
        return a;
    }
    if fb == 0.0 || fa.signum() == fb.signum() {
        return b;
    }
    let mut side = 0;
    for _ in 0..100 {
        if (b - a).abs() < EDGE_TOLERANCE_S {
            break;
        }
        let mut c = (a * fb - b * fa) / (fb - fa);
        if !c.is_finite() || c <= a.min(b) || c >= a.max(b) {
            c = 0.5 * (a + b);
        }
        let fc = f(c);
        if fc == 0.0 {
            return c;
        }
        if fc.signum() == fb.signum() {
            b = c;
            fb = fc;
            if side == -1 {
                fa *= 0.5;
            }
            side = -1;
        } else {
            a = c;
            fa = fc;
            if side == 1 {
                fb *= 0.5;
            }
            side = 1;
        }
    }
    // Report the edge on the positive side's boundary midpoint: the tolerance is far below a millisecond.
    0.5 * (a + b)
}

/// The maximum of `f` on [a, b] by golden-section search, to `PEAK_TOLERANCE_S`; the ends are candidates too.
pub fn maximize(f: &impl Fn(f64) -> f64, a: f64, b: f64) -> (f64, f64) {
    const INV_PHI: f64 = 0.618_033_988_749_895;
    let (mut lo, mut hi) = (a, b);
    let mut x1 = hi - INV_PHI * (hi - lo);
    let mut x2 = lo + INV_PHI * (hi - lo);
    let (mut f1, mut f2) = (f(x1), f(x2));
    while hi - lo > PEAK_TOLERANCE_S {
        if f1 < f2 {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + INV_PHI * (hi - lo);
            f2 = f(x2);
        } else {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - INV_PHI * (hi - lo);
            f1 = f(x1);
        }
    }
    let mid = 0.5 * (lo + hi);
    let mut best = (mid, f(mid));
    for x in [a, b] {
        let v = f(x);
        if v > best.1 {
            best = (x, v);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(grid: &Grid, f: &impl Fn(f64) -> f64) -> Vec<(usize, f64)> {
        grid.times.iter().enumerate().map(|(i, &t)| (i, f(t))).collect()
    }

    #[test]
    fn finds_intervals_of_a_sine_with_clipping() {
        let grid = Grid::new(0.0, 1000.0, 60.0);
        let f = |t: f64| (t / 100.0).cos();
        let mut out = Vec::new();
        find_intervals(&grid, &dense(&grid, &f), &f, true, &mut out);
        let pi = std::f64::consts::PI;
        // Positive on [0, 50π), (150π, 250π) and from 350π ≈ 1100, past the end: two inside.
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].start_clipped && out[0].start == 0.0 && !out[0].end_clipped);
        assert!((out[0].end - 50.0 * pi).abs() < 1e-3);
        assert!(out[0].peak < 1e-2, "the peak of a clipped interval may be its edge");
        assert!((out[1].start - 150.0 * pi).abs() < 1e-3 && (out[1].end - 250.0 * pi).abs() < 1e-3);
        assert!((out[1].peak - 200.0 * pi).abs() < 1e-2);
    }

    #[test]
    fn finds_a_bump_shorter_than_a_step() {
        let grid = Grid::new(0.0, 600.0, 60.0);
        // Positive for 10 s around t = 275 s, between samples at 240 and 300.
        let g = |t: f64| (1.0 - ((t - 275.0) / 5.0).powi(2)).max(-50.0) / 50.0;
        let mut out = Vec::new();
        find_intervals(&grid, &dense(&grid, &g), &g, true, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!((out[0].start - 270.0).abs() < 1e-3 && (out[0].end - 280.0).abs() < 1e-3, "{out:?}");
    }

    #[test]
    fn skipped_samples_are_known_negative() {
        let grid = Grid::new(0.0, 600.0, 60.0);
        let g = |t: f64| 1.0 - ((t - 300.0) / 100.0).powi(2);
        // Only samples 3..=7 (180..420 s) evaluated; the rest are "known negative".
        let samples: Vec<(usize, f64)> = (3..=7).map(|i| (i, g(grid.times[i]))).collect();
        let mut out = Vec::new();
        find_intervals(&grid, &samples, &g, true, &mut out);
        assert_eq!(out.len(), 1);
        assert!((out[0].start - 200.0).abs() < 1e-3 && (out[0].end - 400.0).abs() < 1e-3, "{out:?}");
        assert!((out[0].peak - 300.0).abs() < 1e-2);
    }
}
