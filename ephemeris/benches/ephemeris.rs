//! Ephemeris benchmark: SGP4 rate, the pass search against bare propagation and against brute force, and the
//! full 10,000 × 100 search on every core. Run with `cargo bench -p odc-ephemeris`; `ODC_BENCH_QUICK=1` shrinks
//! every case tenfold for a smoke run. Times are wall-clock minima over repeats, so ratios in one run compare
//! like with like on a shared machine.

use odc_ephemeris::search::Grid;
use odc_ephemeris::synthetic::{WalkerShell, station_network, walker};
use odc_ephemeris::{Catalog, Pass, SearchOptions, Span, find_passes, find_passes_brute_force};
use std::time::Instant;

const START: f64 = 1_781_913_600.0; // 2026-06-20T00:00:00Z

fn shells(scale: usize) -> Vec<WalkerShell> {
    // A mixed fleet: a 53° broadband-like shell, dawn-dusk SSO, near-polar 1,200 km and low 28.5°.
    let s = |altitude_km, inclination_deg, planes, per_plane| WalkerShell {
        altitude_km,
        inclination_deg,
        planes,
        per_plane,
        phasing: 1,
    };
    match scale {
        1000 => vec![
            s(550.0, 53.0, 20, 20),
            s(650.0, 97.6, 12, 25),
            s(1200.0, 87.9, 10, 20),
            s(400.0, 28.5, 5, 20),
        ],
        10_000 => vec![
            s(550.0, 53.0, 50, 80),
            s(650.0, 97.6, 30, 100),
            s(1200.0, 87.9, 40, 50),
            s(400.0, 28.5, 20, 50),
        ],
        100 => vec![
            s(550.0, 53.0, 5, 8),
            s(650.0, 97.6, 3, 10),
            s(1200.0, 87.9, 4, 5),
            s(400.0, 28.5, 2, 5),
        ],
        _ => vec![
            s(550.0, 53.0, 10, 10),
            s(650.0, 97.6, 10, 10),
            s(1200.0, 87.9, 10, 10),
            s(400.0, 28.5, 10, 10),
        ],
    }
}

fn catalog(scale: usize) -> Catalog {
    // Elements a few hours old at the span start, as a live catalog would have.
    let satellites = walker(&shells(scale), START - 6.0 * 3600.0, 100_000)
        .expect("synthetic elements are valid");
    assert_eq!(satellites.len(), scale, "shell sizes");
    Catalog { satellites }
}

fn best_of<T>(repeats: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeats {
        let t0 = Instant::now();
        let out = f();
        best = best.min(t0.elapsed().as_secs_f64());
        last = Some(out);
    }
    (best, last.expect("at least one repeat"))
}

fn one_core<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool")
        .install(f)
}

/// Passes matched between two searches: (matched, only in `a`, only in `b`, worst AOS/LOS difference in s).
fn compare(a: &[Pass], b: &[Pass]) -> (usize, Vec<Pass>, Vec<Pass>, f64) {
    use std::collections::BTreeMap;
    let mut by_key: BTreeMap<(usize, usize), Vec<&Pass>> = BTreeMap::new();
    for p in b {
        by_key.entry((p.satellite, p.station)).or_default().push(p);
    }
    let (mut matched, mut only_a, mut worst) = (0, Vec::new(), 0.0f64);
    for p in a {
        let list = by_key.entry((p.satellite, p.station)).or_default();
        match list.iter().position(|q| (q.aos - p.aos).abs() < 5.0) {
            Some(i) => {
                let q = list.remove(i);
                matched += 1;
                worst = worst.max((q.aos - p.aos).abs()).max((q.los - p.los).abs());
            }
            None => only_a.push(p.clone()),
        }
    }
    let only_b = by_key.into_values().flatten().cloned().collect();
    (matched, only_a, only_b, worst)
}

fn main() {
    let quick = std::env::var_os("ODC_BENCH_QUICK").is_some();
    let (small, large, small_stations, large_stations) = if quick {
        (100, 1000, 5, 10)
    } else {
        (1000, 10_000, 50, 100)
    };
    let span = Span::new(START, START + 86_400.0).expect("span");
    println!(
        "odc-ephemeris benchmark{}",
        if quick { " (quick)" } else { "" }
    );

    // (a) SGP4 propagations per second, one core.
    let cat = catalog(small);
    let grid = Grid::new(span.start, span.end, 60.0);
    let (bare_s, checksum) = best_of(3, || {
        let mut acc = 0.0;
        for sat in &cat.satellites {
            for &t in &grid.times {
                acc += sat
                    .propagate(t)
                    .map(|s| s.position_km[0].abs())
                    .unwrap_or(0.0);
            }
        }
        acc
    });
    let props = (cat.satellites.len() * grid.len()) as f64;
    println!(
        "(a) SGP4: {:.2} M propagations/s on one core ({props:.0} in {bare_s:.3} s; checksum {checksum:.1})",
        props / bare_s / 1e6
    );

    // (b) pass search vs the bare 60 s grid, one core.
    let stations = station_network(small_stations, 78.0);
    let opts = SearchOptions {
        threads: Some(1),
        ..SearchOptions::default()
    };
    let (search_s, fast) = best_of(3, || find_passes(&cat, &stations, span, &opts));
    println!(
        "(b) pass search {small} sats × {small_stations} stations × 24 h: {search_s:.3} s on one core, {} passes; \
         {:.2}× the bare 60 s propagation ({bare_s:.3} s) [target ≤ 3×]",
        fast.passes.len(),
        search_s / bare_s
    );

    // (c) brute force at 1 s, one core, same satellites and stations.
    let (brute_s, brute) = best_of(1, || {
        one_core(|| find_passes_brute_force(&cat, &stations, span, 1.0))
    });
    let (matched, only_fast, only_brute, worst) = compare(&fast.passes, &brute.passes);
    println!(
        "(c) brute force 1 s: {brute_s:.1} s on one core, {} passes; speed-up {:.0}× [target ≥ 50×]; \
         matched {matched}, only in search {}, only in brute force {}, worst edge difference {worst:.3} s",
        brute.passes.len(),
        brute_s / search_s,
        only_fast.len(),
        only_brute.len()
    );
    for p in only_fast.iter().chain(&only_brute).take(10) {
        println!(
            "    unmatched: sat {} station {} duration {:.2} s max el {:.3}°",
            p.satellite,
            p.station,
            p.duration_s(),
            p.max_elevation_deg
        );
    }

    // (d) the whole 10,000 × 100 × 24 h on every core.
    let big = catalog(large);
    let stations = station_network(large_stations, 78.0);
    let threads = rayon::current_num_threads();
    let (full_s, report) = best_of(1, || {
        find_passes(&big, &stations, span, &SearchOptions::default())
    });
    println!(
        "(d) pass search {large} sats × {large_stations} stations × 24 h: {full_s:.2} s on {threads} threads, {} passes [target ≤ 20 s]",
        report.passes.len()
    );
}
