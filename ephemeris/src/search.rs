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
        let times: Vec<f64> = (0..n)
            .map(|i| (start + i as f64 * step_s).min(end))
            .collect();
        let gmst_sin_cos = times
            .iter()
            .map(|&t| crate::frames::gmst_rad(t).sin_cos())
            .collect();
        Grid {
            start,
            end,
            step_s,
            times,
            gmst_sin_cos,
        }
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
    /// Earth-fixed velocities, km/s.
    pub ecef_vel: Vec<Vec3>,
    /// Unit vectors of the Earth-fixed positions (the satellite's direction from Earth's centre).
    pub ecef_unit: Vec<Vec3>,
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
            ecef_vel: Vec::with_capacity(n),
            ecef_unit: Vec::with_capacity(n),
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
        let r_ecef = crate::frames::teme_to_ecef_position(r, sc);
        let v_rot = crate::frames::teme_to_ecef_position(v, sc);
        let w = EARTH_ROTATION_RAD_S;
        self.ecef.push(r_ecef);
        self.ecef_unit
            .push([r_ecef[0] / rn, r_ecef[1] / rn, r_ecef[2] / rn]);
        self.ecef_vel
            .push([v_rot[0] + w * r_ecef[1], v_rot[1] - w * r_ecef[0], v_rot[2]]);
    }

    /// Interpolated TEME position at `t`, km.
    #[inline]
    pub fn teme_at(&self, grid: &Grid, t: UnixSeconds) -> Vec3 {
        hermite(grid, &self.teme, &self.vel, t)
    }

    /// Interpolated Earth-fixed position at `t`, km. Interpolating in the rotating frame directly (with
    /// Earth-fixed velocities) is as accurate as interpolating in TEME and rotating, and saves a sidereal time
    /// and a rotation per evaluation, which is most of the cost of refining a pass.
    #[inline]
    pub fn ecef_at(&self, grid: &Grid, t: UnixSeconds) -> Vec3 {
        hermite(grid, &self.ecef, &self.ecef_vel, t)
    }

    /// Upper bound of how fast the satellite's direction moves relative to a point on the rotating Earth, rad/s.
    pub fn max_relative_angular_rate(&self) -> f64 {
        self.max_angular_rate + EARTH_ROTATION_RAD_S
    }
}

/// Cubic Hermite interpolation of positions `p` with derivatives `v` sampled on the grid.
#[inline]
fn hermite(grid: &Grid, p: &[Vec3], v: &[Vec3], t: UnixSeconds) -> Vec3 {
    let i = grid.segment(t);
    let (t0, t1) = (grid.times[i], grid.times[i + 1]);
    let h = t1 - t0;
    if h <= 0.0 {
        return p[i];
    }
    let s = ((t - t0) / h).clamp(0.0, 1.0);
    let s2 = s * s;
    let s3 = s2 * s;
    let h00 = 2.0 * s3 - 3.0 * s2 + 1.0;
    let h10 = (s3 - 2.0 * s2 + s) * h;
    let h01 = -2.0 * s3 + 3.0 * s2;
    let h11 = (s3 - s2) * h;
    let (p0, p1, v0, v1) = (p[i], p[i + 1], v[i], v[i + 1]);
    [
        h00 * p0[0] + h10 * v0[0] + h01 * p1[0] + h11 * v1[0],
        h00 * p0[1] + h10 * v0[1] + h01 * p1[1] + h11 * v1[1],
        h00 * p0[2] + h10 * v0[2] + h01 * p1[2] + h11 * v1[2],
    ]
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
            if i >= first && i <= last {
                samples[k + (i - first)].1
            } else {
                f64::NEG_INFINITY
            }
        };
        find_in_run(grid, lo, hi, &value, eval, want_peaks, out);
        k = end;
    }
}

/// Absolute tolerance of interval edges, seconds.
pub const EDGE_TOLERANCE_S: f64 = 1e-4;
/// Absolute tolerance of peak times, seconds. A peak is flat: 10 ms from a LEO culmination the elevation differs
/// by well under a microdegree.
pub const PEAK_TOLERANCE_S: f64 = 1e-2;

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
    let run_start = out.len();
    // Rising and falling edges, in time order; a rise at the span start is a clipped start.
    let mut edges: Vec<(UnixSeconds, bool)> = Vec::new();
    if lo == 0 && value(0) > 0.0 {
        edges.push((t[0], true));
    }
    for i in lo..hi {
        let (a, b) = (value(i), value(i + 1));
        if (a > 0.0) != (b > 0.0) {
            // A skipped sample's value is only known to be negative; evaluate it for the root finder.
            let fa = if a.is_finite() { a } else { eval(t[i]) };
            let fb = if b.is_finite() { b } else { eval(t[i + 1]) };
            edges.push((root_bracketed(eval, t[i], fa, t[i + 1], fb), b > 0.0));
        }
    }
    let mut hidden: Vec<Interval> = Vec::new();
    // Between two negative samples a short positive stretch can still hide; it shows as a discrete local
    // maximum at or next to it, so each such maximum is searched on its two neighbouring segments.
    for i in lo..=hi {
        let v = value(i);
        if v > 0.0 || v == f64::NEG_INFINITY {
            continue;
        }
        let left = if i > 0 {
            value(i - 1)
        } else {
            f64::NEG_INFINITY
        };
        let right = if i + 1 < n {
            value(i + 1)
        } else {
            f64::NEG_INFINITY
        };
        if v > left && v >= right {
            let a = t[i.saturating_sub(1)];
            let b = t[(i + 1).min(n - 1)];
            let (tp, vp) = maximize_from(eval, (a, left), (t[i], v), (b, right));
            if vp > 0.0 {
                // A whole interval between samples: both edges and its peak are known here.
                let start = if tp <= t[0] {
                    t[0]
                } else {
                    root_bracketed(eval, a, eval(a), tp, vp)
                };
                let end = if tp >= t[n - 1] {
                    t[n - 1]
                } else {
                    root_bracketed(eval, tp, vp, b, eval(b))
                };
                let (peak, peak_value) = if want_peaks { (tp, vp) } else { (start, 0.0) };
                hidden.push(Interval {
                    start,
                    end,
                    start_clipped: tp <= t[0],
                    end_clipped: tp >= t[n - 1],
                    peak,
                    peak_value,
                });
            }
        }
    }
    // The mirror case: a short negative dip between positive samples, seen as a discrete local minimum.
    for i in lo..=hi {
        let v = value(i);
        if v <= 0.0 || i == 0 || i + 1 >= n {
            continue;
        }
        let (left, right) = (value(i - 1), value(i + 1));
        if left > 0.0 && right > 0.0 && v < left && v <= right {
            let neg = |x: f64| -eval(x);
            let (tm, vm) = maximize_from(&neg, (t[i - 1], -left), (t[i], -v), (t[i + 1], -right));
            if vm > 0.0 {
                edges.push((root_bracketed(eval, t[i - 1], left, tm, -vm), false));
                edges.push((root_bracketed(eval, tm, -vm, t[i + 1], right), true));
            }
        }
    }
    edges.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut open: Option<(UnixSeconds, bool)> = None;
    for (time, rising) in edges {
        match (rising, open) {
            (true, None) => open = Some((time, time <= t[0] && lo == 0 && value(0) > 0.0)),
            (false, Some((start, clipped))) => {
                out.push(finish(
                    grid, value, eval, start, time, clipped, false, want_peaks,
                ));
                open = None;
            }
            // Two rises or two falls in a row only come from edges closer than the tolerance; keep the first.
            _ => {}
        }
    }
    if let Some((start, clipped)) = open {
        out.push(finish(
            grid,
            value,
            eval,
            start,
            t[n - 1],
            clipped,
            true,
            want_peaks,
        ));
    }
    if !hidden.is_empty() {
        out.extend(hidden);
        out[run_start..].sort_by(|x, y| x.start.total_cmp(&y.start));
    }
}

#[allow(clippy::too_many_arguments)] // One private helper; a struct would only rename the arguments.
fn finish(
    grid: &Grid,
    value: &impl Fn(usize) -> f64,
    eval: &impl Fn(UnixSeconds) -> f64,
    start: UnixSeconds,
    end: UnixSeconds,
    start_clipped: bool,
    end_clipped: bool,
    want_peaks: bool,
) -> Interval {
    let (peak, peak_value) = if want_peaks {
        interval_peak(grid, value, eval, start, end)
    } else {
        (start, 0.0)
    };
    Interval {
        start,
        end,
        start_clipped,
        end_clipped,
        peak,
        peak_value,
    }
}

/// The highest point of `eval` on [start, end]. The grid samples inside the interval are already known (all are
/// positive, so none was skipped); each discrete local maximum among them, with the edges as extra points, is
/// refined by Brent's method on its two neighbouring segments.
fn interval_peak(
    grid: &Grid,
    value: &impl Fn(usize) -> f64,
    eval: &impl Fn(UnixSeconds) -> f64,
    start: UnixSeconds,
    end: UnixSeconds,
) -> (UnixSeconds, f64) {
    let t = &grid.times;
    // Interior samples: indices first..last with start < t_i < end.
    let first = t.partition_point(|&x| x <= start);
    let last = t.partition_point(|&x| x < end);
    // An edge found by root finding is a zero of the function; a clipped edge is a grid sample.
    let edge_start = if start <= t[0] { value(0) } else { 0.0 };
    let edge_end = if end >= t[t.len() - 1] {
        value(t.len() - 1)
    } else {
        0.0
    };
    // Points: start, interior samples, end.
    let m = last - first + 2;
    let point = |j: usize| -> (f64, f64) {
        if j == 0 {
            (start, edge_start)
        } else if j == m - 1 {
            (end, edge_end)
        } else {
            (t[first + j - 1], value(first + j - 1))
        }
    };
    if m == 2 {
        return maximize(eval, start, end);
    }
    let mut best = (start, f64::NEG_INFINITY);
    for j in 0..m {
        let (x, v) = point(j);
        let left = if j > 0 {
            point(j - 1).1
        } else {
            f64::NEG_INFINITY
        };
        let right = if j + 1 < m {
            point(j + 1).1
        } else {
            f64::NEG_INFINITY
        };
        if v > left && v >= right {
            let cand = maximize_from(
                eval,
                point(j.saturating_sub(1)),
                (x, v),
                point((j + 1).min(m - 1)),
            );
            if cand.1 > best.1 {
                best = cand;
            }
        }
    }
    best
}

/// A root of `f` in [a, b] where f(a) and f(b) differ in sign.
pub fn root(f: &impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    root_bracketed(f, a, f(a), b, f(b))
}

/// A root of `f` in [a, b] given f(a) and f(b), of opposite signs: the Illinois variant of regula falsi, which
/// keeps the bracket and converges superlinearly on the smooth functions met here. Once its steps fall under the
/// tolerance it probes just past the estimate to close the bracket from the other side, because regula falsi
/// alone tends to creep on one end.
pub fn root_bracketed(
    f: &impl Fn(f64) -> f64,
    mut a: f64,
    mut fa: f64,
    mut b: f64,
    mut fb: f64,
) -> f64 {
    if fa == 0.0 {
        return a;
    }
    if fb == 0.0 || fa.signum() == fb.signum() {
        return b;
    }
    let tol = EDGE_TOLERANCE_S;
    let mut side = 0;
    let mut last = f64::NAN;
    for _ in 0..100 {
        if (b - a).abs() < tol {
            break;
        }
        let mut c = (a * fb - b * fa) / (fb - fa);
        if !c.is_finite() || c <= a.min(b) || c >= a.max(b) {
            c = 0.5 * (a + b);
        }
        if (c - last).abs() < 0.5 * tol {
            // Converged from one side: step past the estimate, towards the far end of the bracket.
            let far = if (c - a).abs() > (c - b).abs() { a } else { b };
            let probe = c + 0.5 * tol * (far - c).signum();
            if probe > a.min(b) && probe < a.max(b) {
                c = probe;
            }
        }
        last = c;
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
    0.5 * (a + b)
}

/// The maximum of `f` on [a, b] to `PEAK_TOLERANCE_S`: Brent's method (parabolic steps through the best three
/// points, golden-section steps when a parabola misbehaves), which needs about a third of the evaluations of a
/// pure golden-section search on the smooth peaks met here. The ends are candidates too.
pub fn maximize(f: &impl Fn(f64) -> f64, a: f64, b: f64) -> (f64, f64) {
    let x = a.min(b) + GOLD * (a - b).abs();
    maximize_from(f, (a, f(a)), (x, f(x)), (b, f(b)))
}

/// 2 − φ, the golden-section fraction.
const GOLD: f64 = 0.381_966_011_250_105;

/// [`maximize`] on [a, b] from values already known at a, b and an inner point x0 (grid samples, say); an
/// unknown end value is given as −∞. The first step is the parabola through the three points, which already
/// lands within a fraction of a second of a smooth peak.
pub fn maximize_from(
    f: &impl Fn(f64) -> f64,
    (a, fa): (f64, f64),
    (x0, f0): (f64, f64),
    (b, fb): (f64, f64),
) -> (f64, f64) {
    let g = |x: f64| -f(x);
    let (mut lo, mut hi) = (a.min(b), a.max(b));
    let mut x = x0.clamp(lo, hi);
    let mut fx = -f0;
    // Brent's bookkeeping: w is the second-best point, v the third.
    let (mut w, mut fw, mut v, mut fv) = (x, fx, x, fx);
    let mut e = 0.0f64;
    if fa.is_finite() && fb.is_finite() && x > lo && x < hi {
        let ((p1, q1), (p2, q2)) = if fa >= fb {
            ((a, -fa), (b, -fb))
        } else {
            ((b, -fb), (a, -fa))
        };
        (w, fw, v, fv) = (p1, q1, p2, q2);
        e = hi - lo;
    }
    let mut d = 0.0f64;
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        let tol = 0.5 * PEAK_TOLERANCE_S;
        if (x - mid).abs() <= 2.0 * tol - 0.5 * (hi - lo) {
            break;
        }
        let mut golden = true;
        if e.abs() > tol {
            // Parabola through x, w, v.
            let r = (x - w) * (fx - fv);
            let q0 = (x - v) * (fx - fw);
            let mut p = (x - v) * q0 - (x - w) * r;
            let mut q = 2.0 * (q0 - r);
            if q > 0.0 {
                p = -p;
            }
            q = q.abs();
            if p.abs() < (0.5 * q * e).abs() && p > q * (lo - x) && p < q * (hi - x) {
                e = d;
                d = p / q;
                let u = x + d;
                if u - lo < 2.0 * tol || hi - u < 2.0 * tol {
                    d = if mid >= x { tol } else { -tol };
                }
                golden = false;
            }
        }
        if golden {
            e = if x >= mid { lo - x } else { hi - x };
            d = GOLD * e;
        }
        let u = if d.abs() >= tol {
            x + d
        } else {
            x + tol.copysign(d)
        };
        let fu = g(u);
        if fu <= fx {
            if u >= x {
                lo = x;
            } else {
                hi = x;
            }
            (v, fv, w, fw, x, fx) = (w, fw, x, fx, u, fu);
        } else {
            if u < x {
                lo = u;
            } else {
                hi = u;
            }
            if fu <= fw || w == x {
                (v, fv, w, fw) = (w, fw, u, fu);
            } else if fu <= fv || v == x || v == w {
                (v, fv) = (u, fu);
            }
        }
    }
    let mut best = (x, -fx);
    for (end, known) in [(a, fa), (b, fb)] {
        let value = if known.is_finite() { known } else { f(end) };
        if value > best.1 {
            best = (end, value);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(grid: &Grid, f: &impl Fn(f64) -> f64) -> Vec<(usize, f64)> {
        grid.times
            .iter()
            .enumerate()
            .map(|(i, &t)| (i, f(t)))
            .collect()
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
        assert!(
            out[0].peak < 1e-2,
            "the peak of a clipped interval may be its edge"
        );
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
        assert!(
            (out[0].start - 270.0).abs() < 1e-3 && (out[0].end - 280.0).abs() < 1e-3,
            "{out:?}"
        );
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
        assert!(
            (out[0].start - 200.0).abs() < 1e-3 && (out[0].end - 400.0).abs() < 1e-3,
            "{out:?}"
        );
        assert!((out[0].peak - 300.0).abs() < 1e-2);
    }
}
