//! Plan quality against an exact optimum (see `milp/mod.rs` for the bound). The full measurement on 50
//! instances is `cargo bench -p odc-planner --bench quality` (the exact solver needs minutes on a few of them);
//! here a quick sample keeps the comparison honest in every test run.

#[allow(dead_code)] // The benchmark uses the rest.
mod milp;

#[test]
fn planner_stays_below_the_bound_and_near_it() {
    let r = milp::ratios_from(0, 8);
    let mean = r.iter().map(|x| x.0).sum::<f64>() / r.len() as f64;
    eprintln!("8 instances: planner mean {mean:.4}");
    assert!(
        r.iter().all(|x| x.0 <= 1.0 + 1e-9),
        "a plan beat the exact bound: the bound or the plan is wrong"
    );
    assert!(mean >= 0.9, "mean ratio {mean:.4}");
}
