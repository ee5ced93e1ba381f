//! Property tests of the search machinery and the frames.

use odc_ephemeris::frames::Geodetic;
use odc_ephemeris::search::{Grid, find_intervals};
use proptest::prelude::*;

proptest! {
    #[test]
    fn geodetic_round_trips(lat in -90.0f64..90.0, lon in -179.999f64..180.0, alt in -0.5f64..40_000.0) {
        let g = Geodetic { lat_deg: lat, lon_deg: lon, alt_km: alt };
        let back = Geodetic::from_ecef(g.to_ecef());
        prop_assert!((back.lat_deg - lat).abs() < 1e-8);
        prop_assert!((back.alt_km - alt).abs() < 1e-6);
        if lat.abs() < 89.999 {
            prop_assert!((back.lon_deg - lon).abs() < 1e-8);
        }
    }

    /// Intervals found on a 60 s grid equal those of a dense 0.1 s scan, for smooth functions whose features
    /// are wider than two grid steps.
    #[test]
    fn intervals_match_a_dense_scan(
        amps in proptest::collection::vec(0.1f64..1.0, 3),
        periods in proptest::collection::vec(900.0f64..4000.0, 3),
        phases in proptest::collection::vec(0.0f64..std::f64::consts::TAU, 3),
        offset in -1.2f64..0.8,
    ) {
        let f = |t: f64| {
            offset + (0..3).map(|k| amps[k] * (std::f64::consts::TAU * t / periods[k] + phases[k]).sin()).sum::<f64>()
        };
        let grid = Grid::new(0.0, 10_000.0, 60.0);
        let samples: Vec<(usize, f64)> = grid.times.iter().enumerate().map(|(i, &t)| (i, f(t))).collect();
        let mut found = Vec::new();
        find_intervals(&grid, &samples, &f, true, &mut found);
        // Dense reference.
        let mut dense = Vec::new();
        let step = 0.1;
        let mut inside: Option<f64> = if f(0.0) > 0.0 { Some(0.0) } else { None };
        let mut t = step;
        while t <= 10_000.0 {
            match (inside, f(t) > 0.0) {
                (None, true) => inside = Some(t),
                (Some(s), false) => { dense.push((s, t)); inside = None; }
                _ => {}
            }
            t += step;
        }
        if let Some(s) = inside { dense.push((s, 10_000.0)); }
        // Stretches shorter than a few seconds are at the edge of what either method resolves: each method's
        // stretches of over 5.5 s must be among the other's of over 5 s (a stretch of about 5 s may fall on
        // either side of a single threshold, as both ends carry up to 0.1 s of error).
        let matches = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 0.2 && (a.1 - b.1).abs() < 0.2;
        let found_iv: Vec<(f64, f64)> = found.iter().map(|iv| (iv.start, iv.end)).collect();
        for &d in dense.iter().filter(|d| d.1 - d.0 > 5.5) {
            prop_assert!(
                found_iv.iter().any(|&f| f.1 - f.0 > 5.0 && matches(f, d)),
                "dense {:?} not found in {:?}", d, found
            );
        }
        for a in found.iter().filter(|iv| iv.end - iv.start > 5.5) {
            prop_assert!(
                dense.iter().any(|&d| d.1 - d.0 > 5.0 && matches((a.start, a.end), d)),
                "found {:?} not in the dense scan {:?}", a, dense
            );
            let peak = f(a.peak);
            let mut dense_peak = f64::NEG_INFINITY;
            let mut t = a.start;
            while t <= a.end { dense_peak = dense_peak.max(f(t)); t += 0.5; }
            prop_assert!(peak >= dense_peak - 1e-6, "peak {} < dense {}", peak, dense_peak);
        }
    }
}
