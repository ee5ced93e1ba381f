//! Plan quality benchmark: the planner and a first-come-first-served baseline against an exact MILP bound on 50
//! random small instances. Run with `cargo bench -p odc-planner --bench quality`.

#[path = "../tests/milp/mod.rs"]
mod milp;

fn main() {
    let t0 = std::time::Instant::now();
    let r = milp::ratios(50);
    let n = r.len() as f64;
    let mean = r.iter().map(|x| x.0).sum::<f64>() / n;
    let worst = r.iter().map(|x| x.0).fold(1.0, f64::min);
    let fcfs = r.iter().map(|x| x.1).sum::<f64>() / n;
    let fcfs_worst = r.iter().map(|x| x.1).fold(1.0, f64::min);
    let optimal = r.iter().filter(|x| x.0 >= 1.0 - 1e-9).count();
    println!(
        "quality over {} instances ({:?}): planner mean {mean:.4} (worst {worst:.4}, optimal on {optimal}); \
         first-come-first-served mean {fcfs:.4} (worst {fcfs_worst:.4}); {:.0} s",
        r.len(),
        milp::SIZE,
        t0.elapsed().as_secs_f64()
    );
    assert!(mean >= 0.95, "mean ratio {mean:.4} below 0.95");
}
