//! Exact upper bound of a small planning problem, for measuring plan quality.
//!
//! Plan quality against an exact optimum. On random small instances (no ISLs, no energy-starved nodes) a MILP
//! solved exactly gives an upper bound of the best possible priority-weighted delivery: it keeps every contact
//! capacity, antenna, deadline and quota rule but relaxes the rest (a job may take its contacts as if it were first
//! in line, batches need no set-up, the accelerator is only bounded interval by interval, battery and storage are
//! not modelled). The planner's objective divided by that bound is therefore a lower bound of its true quality.
//! First-come-first-served is measured beside it as the baseline.

use good_lp::{Expression, ProblemVariables, Solution, SolverModel, constraint, microlp, variable};
use odc_model::time::Instant;
use odc_planner::synthetic::{Size, Variation, snapshot_with};
use odc_planner::{Snapshot, plan};

/// The instance size used for quality measurements.
pub const SIZE: Size = Size {
    nodes: 2,
    stations: 1,
    tenants: 2,
    jobs: 24,
    hours: 4,
};
use std::collections::BTreeMap;

struct Contact {
    station: usize,
    start: f64,
    end: f64,
    up_rate: f64,
    down_rate: f64,
}

/// The exact optimum of the relaxed problem (seconds from `now` as the time axis).
pub fn milp_upper_bound(s: &Snapshot) -> f64 {
    let t = |i: Instant| (i - s.now).as_secs_f64();
    let horizon = t(s.horizon_end);
    let station_of: BTreeMap<_, usize> = s
        .stations
        .iter()
        .enumerate()
        .map(|(i, st)| (st.id.clone(), i))
        .collect();
    let contacts: Vec<Vec<Contact>> = s
        .nodes
        .iter()
        .map(|n| {
            let up = n
                .spec
                .radios
                .iter()
                .map(|r| r.uplink_bps)
                .fold(0.0, f64::max);
            let down = n
                .spec
                .radios
                .iter()
                .map(|r| r.downlink_bps)
                .fold(0.0, f64::max);
            s.contacts
                .iter()
                .filter(|c| c.node == n.spec.id)
                .filter_map(|c| {
                    let st = station_of[&c.station];
                    let (start, end) = (t(c.start).max(0.0), t(c.end).min(horizon));
                    (end > start).then(|| Contact {
                        station: st,
                        start,
                        end,
                        up_rate: s.stations[st].uplink_bps.min(up) / 8.0,
                        down_rate: s.stations[st].downlink_bps.min(down) / 8.0,
                    })
                })
                .collect()
        })
        .collect();
    let mut vars = ProblemVariables::new();
    // x[(j, n, u)]: job j goes up to node n in contact u; z[(j, n, d)]: its result comes down in contact d.
    // Pairs (u, d) that cannot work in time are excluded pairwise, which keeps the model small.
    let mut x: BTreeMap<(usize, usize, usize), good_lp::Variable> = BTreeMap::new();
    let mut z: BTreeMap<(usize, usize, usize), good_lp::Variable> = BTreeMap::new();
    let mut infeasible_pairs = Vec::new();
    let mut compute_of = BTreeMap::new();
    for (j, job) in s.jobs.iter().enumerate() {
        let deadline = t(job.spec.deadline).min(horizon);
        let (input, output) = (
            job.spec.input.size_bytes as f64,
            job.spec.output_bound_bytes as f64,
        );
        for (n, node) in s.nodes.iter().enumerate() {
            let Some(profile) = node.spec.accelerator.models.get(&job.spec.model) else {
                continue;
            };
            let compute = input / profile.input_bytes_per_s;
            compute_of.insert((j, n), compute);
            let ups: Vec<(usize, f64)> = contacts[n]
                .iter()
                .enumerate()
                .map(|(u, cu)| (u, cu.start + input / cu.up_rate))
                .filter(|&(u, ready)| ready <= contacts[n][u].end && ready + compute <= deadline)
                .collect();
            let downs: Vec<(usize, f64)> = contacts[n]
                .iter()
                .enumerate()
                .map(|(d, cd)| (d, cd.end.min(deadline) - output / cd.down_rate))
                .filter(|&(d, latest)| latest >= contacts[n][d].start - 1e9 && latest > 0.0)
                .collect();
            for &(u, ready) in &ups {
                for &(d, latest) in &downs {
                    let cd = &contacts[n][d];
                    let delivered = cd.start.max(ready + compute) + output / cd.down_rate;
                    if delivered > cd.end.min(deadline) || ready + compute > latest {
                        infeasible_pairs.push(((j, n, u), (j, n, d)));
                    }
                }
            }
            for &(u, _) in &ups {
                x.insert((j, n, u), vars.add(variable().binary()));
            }
            for &(d, _) in &downs {
                z.insert((j, n, d), vars.add(variable().binary()));
            }
        }
    }
    let ys: Vec<Vec<_>> = contacts
        .iter()
        .map(|list| list.iter().map(|_| vars.add(variable().binary())).collect())
        .collect();
    let weight = |j: usize| s.jobs[j].spec.priority.weight();
    let objective: Expression = x.iter().map(|(k, v)| weight(k.0) * *v).sum();
    let mut model = vars.maximise(objective).using(microlp);
    for j in 0..s.jobs.len() {
        let up: Expression = x.iter().filter(|(k, _)| k.0 == j).map(|(_, v)| *v).sum();
        model = model.with(constraint!(up <= 1));
        for n in 0..s.nodes.len() {
            let up: Expression = x
                .iter()
                .filter(|(k, _)| k.0 == j && k.1 == n)
                .map(|(_, v)| *v)
                .sum();
            let down: Expression = z
                .iter()
                .filter(|(k, _)| k.0 == j && k.1 == n)
                .map(|(_, v)| *v)
                .sum();
            model = model.with(constraint!(up == down));
        }
    }
    for (a, b) in &infeasible_pairs {
        if let (Some(&xa), Some(&zb)) = (x.get(a), z.get(b)) {
            model = model.with(constraint!(xa + zb <= 1));
        }
    }
    for (n, list) in contacts.iter().enumerate() {
        for (c, k) in list.iter().enumerate() {
            let up: Expression = x
                .iter()
                .filter(|(key, _)| key.1 == n && key.2 == c)
                .map(|(key, v)| s.jobs[key.0].spec.input.size_bytes as f64 * *v)
                .sum();
            let down: Expression = z
                .iter()
                .filter(|(key, _)| key.1 == n && key.2 == c)
                .map(|(key, v)| s.jobs[key.0].spec.output_bound_bytes as f64 * *v)
                .sum();
            let secs = k.end - k.start;
            model = model
                .with(constraint!(up <= k.up_rate * secs))
                .with(constraint!(down <= k.down_rate * secs));
            for (key, v) in x
                .iter()
                .chain(z.iter())
                .filter(|(key, _)| key.1 == n && key.2 == c)
            {
                let _ = key;
                model = model.with(constraint!(*v <= ys[n][c]));
            }
        }
        // The accelerator: the compute of jobs that go up no earlier than R and are due by L fits in L − R.
        let starts: Vec<f64> = list.iter().map(|k| k.start).collect();
        let ends: Vec<f64> = s
            .jobs
            .iter()
            .map(|j| t(j.spec.deadline).min(horizon))
            .collect();
        for &r in &starts {
            for &l in &ends {
                if l <= r {
                    continue;
                }
                let e: Expression = x
                    .iter()
                    .filter(|(k, _)| {
                        k.1 == n
                            && list[k.2].start >= r
                            && t(s.jobs[k.0].spec.deadline).min(horizon) <= l
                    })
                    .map(|(k, v)| compute_of[&(k.0, k.1)] * *v)
                    .sum();
                model = model.with(constraint!(e <= l - r));
            }
        }
    }
    // Antennas: contacts of a station that overlap (with set-up time) share its antennas.
    for (st, spec) in s.stations.iter().enumerate() {
        let all: Vec<(usize, usize)> = contacts
            .iter()
            .enumerate()
            .flat_map(|(n, list)| {
                list.iter()
                    .enumerate()
                    .filter(|(_, k)| k.station == st)
                    .map(move |(c, _)| (n, c))
            })
            .collect();
        for &(n0, c0) in &all {
            let at = contacts[n0][c0].start;
            let e: Expression = all
                .iter()
                .filter(|&&(n, c)| {
                    contacts[n][c].start <= at && at < contacts[n][c].end + spec.setup_s
                })
                .map(|&(n, c)| ys[n][c])
                .sum();
            model = model.with(constraint!(e <= f64::from(spec.antennas)));
        }
    }
    for tenant in &s.tenants {
        let q = &tenant.tenant.quota;
        let mine: Vec<_> = x
            .iter()
            .filter(|(k, _)| s.jobs[k.0].spec.tenant == tenant.tenant.id)
            .collect();
        let acc: Expression = mine
            .iter()
            .map(|(k, v)| compute_of[&(k.0, k.1)] * **v)
            .sum();
        let up: Expression = mine
            .iter()
            .map(|(k, v)| s.jobs[k.0].spec.input.size_bytes as f64 * **v)
            .sum();
        let down: Expression = mine
            .iter()
            .map(|(k, v)| s.jobs[k.0].spec.output_bound_bytes as f64 * **v)
            .sum();
        model = model
            .with(constraint!(
                acc <= q.accelerator_s - tenant.used.accelerator_s
            ))
            .with(constraint!(
                up <= (q.uplink_bytes - tenant.used.uplink_bytes) as f64
            ))
            .with(constraint!(
                down <= (q.downlink_bytes.min(1 << 50) - tenant.used.downlink_bytes) as f64
            ));
    }
    let solution = model
        .solve()
        .expect("the relaxation always has a solution (deliver nothing)");
    x.iter()
        .map(|(k, v)| weight(k.0) * solution.value(*v))
        .sum()
}

/// Ratios over random small instances: (planner / bound, first-come-first-served / bound).
pub fn ratios(instances: u64) -> Vec<(f64, f64, f64)> {
    ratios_from(0, instances)
}

pub fn ratios_from(first: u64, instances: u64) -> Vec<(f64, f64, f64)> {
    (first..first + instances)
        .map(|seed| {
            let mut s = snapshot_with(
                1000 + seed,
                SIZE,
                Variation {
                    hard_nodes: false,
                    isl: false,
                },
            );
            s.options.use_isl = false;
            let planner = plan(&s).stats.weighted_delivered;
            let mut fcfs = s.clone();
            fcfs.options.first_come_first_served = true;
            let baseline = plan(&fcfs).stats.weighted_delivered;
            let bound = milp_upper_bound(&s);
            assert!(
                planner <= bound + 1e-6,
                "seed {seed}: planner {planner} above the bound {bound}"
            );
            if bound <= 0.0 {
                (1.0, 1.0, 0.0)
            } else {
                (planner / bound, baseline / bound, bound)
            }
        })
        .collect()
}
