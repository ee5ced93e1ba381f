//! An independent check of a plan against its snapshot, written from the rules, not from the planner's code:
//! every claim the plan makes (contacts, antennas, bytes, batches, routes, deadlines, quotas, battery and heat)
//! is re-derived from the plan and the snapshot alone.

use odc_budget::{NodeBudget, NodeModel, NodeState, ZERO_CELSIUS_K};
use odc_model::id::{ContactId, JobId, NodeId};
use odc_model::plan::{Direction, Endpoint};
use odc_model::tenant::Usage;
use odc_model::time::{Duration, Instant};
use odc_planner::{PlanOutcome, Snapshot};
use std::collections::BTreeMap;

/// Every rule the plan breaks, as readable lines (empty when the plan is valid).
pub fn violations(s: &Snapshot, out: &PlanOutcome) -> Vec<String> {
    let mut bad = Vec::new();
    let plan = &out.plan;
    let node = |id: &NodeId| s.nodes.iter().find(|n| &n.spec.id == id);
    let job = |id: &JobId| s.jobs.iter().find(|j| &j.id == id);
    let tol = Duration::from_millis(2);

    // Generations.
    match &s.previous {
        Some(prev) if plan.generation != prev.generation + 1 || plan.parent != Some(prev.id) => bad
            .push(format!(
                "generation {} / parent {:?} do not follow the previous plan",
                plan.generation, plan.parent
            )),
        None if plan.generation != 1 || plan.parent.is_some() => {
            bad.push("first plan must be generation 1".into())
        }
        _ => {}
    }
    if let Err(e) = plan.validate() {
        bad.push(e.to_string());
    }

    // Contacts: inside a real pass, antennas not double-booked (with set-up time), bytes within capacity.
    let mut by_antenna: BTreeMap<(String, u32), Vec<(Instant, Instant)>> = BTreeMap::new();
    let mut contact_bytes: BTreeMap<ContactId, (f64, f64)> = BTreeMap::new();
    for c in &plan.contacts {
        let Some(st) = s.stations.iter().find(|x| x.id == c.station) else {
            bad.push(format!("contact {} at unknown station", c.id));
            continue;
        };
        let Some(n) = node(&c.node) else {
            bad.push(format!("contact {} with unknown node", c.id));
            continue;
        };
        if !s.contacts.iter().any(|w| {
            w.station == c.station && w.node == c.node && w.start <= c.start && c.end <= w.end
        }) {
            bad.push(format!("contact {} is not inside a pass", c.id));
        }
        if c.antenna >= st.antennas {
            bad.push(format!(
                "contact {} uses antenna {} of {}",
                c.id, c.antenna, st.antennas
            ));
        }
        by_antenna
            .entry((c.station.to_string(), c.antenna))
            .or_default()
            .push((c.start, c.end));
        let secs = (c.end - c.start).as_secs_f64();
        let up = st.uplink_bps.min(
            n.spec
                .radios
                .iter()
                .map(|r| r.uplink_bps)
                .fold(0.0, f64::max),
        ) / 8.0
            * secs;
        let down = st.downlink_bps.min(
            n.spec
                .radios
                .iter()
                .map(|r| r.downlink_bps)
                .fold(0.0, f64::max),
        ) / 8.0
            * secs;
        if c.uplink_bytes as f64 > up + 1.0 || c.downlink_bytes as f64 > down + 1.0 {
            bad.push(format!(
                "contact {} carries more than rate × duration",
                c.id
            ));
        }
        contact_bytes.insert(c.id, (0.0, 0.0));
    }
    for ((station, antenna), mut list) in by_antenna {
        let setup = s
            .stations
            .iter()
            .find(|x| x.id.as_str() == station)
            .map(|x| x.setup_s)
            .unwrap_or(0.0);
        list.sort();
        for w in list.windows(2) {
            if w[1].0 < w[0].1 + Duration::from_secs_f64(setup) {
                bad.push(format!(
                    "{station} antenna {antenna}: passes overlap or lack set-up time"
                ));
            }
        }
    }

    // Batches: on a node that hosts the model, inside the horizon, no overlap, long enough for their jobs.
    let mut batch_of: BTreeMap<JobId, (NodeId, Instant, Instant)> = BTreeMap::new();
    let mut busy: BTreeMap<NodeId, Vec<(Instant, Instant)>> = BTreeMap::new();
    for b in &plan.batches {
        let Some(n) = node(&b.node) else {
            bad.push(format!("batch {} on unknown node", b.id));
            continue;
        };
        let Some(profile) = n.spec.accelerator.models.get(&b.model) else {
            bad.push(format!("batch {} runs a model its node lacks", b.id));
            continue;
        };
        if b.start < s.now || b.end > s.horizon_end {
            bad.push(format!("batch {} outside the horizon", b.id));
        }
        let mut needed = 0.0;
        for j in &b.jobs {
            let Some(job) = job(j) else {
                bad.push(format!("batch {} holds unknown job {j}", b.id));
                continue;
            };
            if job.spec.model != b.model || job.spec.tenant != b.tenant {
                bad.push(format!("batch {} mixes models or tenants", b.id));
            }
            needed += job.spec.input.size_bytes as f64 / profile.input_bytes_per_s;
            batch_of.insert(*j, (b.node.clone(), b.start, b.end));
        }
        if (b.end - b.start).as_secs_f64() + 0.001 * (b.jobs.len() as f64 + 1.0) < needed {
            bad.push(format!("batch {} is shorter than its jobs' compute", b.id));
        }
        busy.entry(b.node.clone())
            .or_default()
            .push((b.start, b.end));
    }
    for (n, list) in &busy {
        let mut list = list.clone();
        list.sort();
        if list.windows(2).any(|w| w[1].0 < w[0].1) {
            bad.push(format!("node {n}: batches overlap"));
        }
    }

    // Routes: connected, inside their windows, in order: up before the batch, down after it, by the deadline.
    let mut usage: BTreeMap<_, Usage> = BTreeMap::new();
    for (id, jp) in &out.jobs {
        let Some(job) = job(id) else {
            bad.push(format!("plan holds unknown job {id}"));
            continue;
        };
        let Some((bnode, bstart, bend)) = batch_of.get(id).cloned() else {
            bad.push(format!("job {id} is in no batch"));
            continue;
        };
        if bnode != jp.node {
            bad.push(format!("job {id}: batch node differs from its placement"));
        }
        if jp.delivered > job.spec.deadline {
            bad.push(format!("job {id} delivered after its deadline"));
        }
        let routes: Vec<_> = plan.routes.iter().filter(|r| &r.job == id).collect();
        let on_board = job.state.rank().is_some_and(|r| r >= 3)
            && job.placement.as_ref().is_some_and(|p| p.node == jp.node);
        for r in &routes {
            let mut at: Option<Endpoint> = None;
            for h in &r.hops {
                if at.as_ref().is_some_and(|a| a != &h.from) {
                    bad.push(format!("job {id}: route not connected"));
                }
                at = Some(h.to.clone());
                match h.contact {
                    Some(cid) => {
                        let Some(c) = plan.contacts.iter().find(|c| c.id == cid) else {
                            bad.push(format!("job {id}: hop uses an unreserved contact"));
                            continue;
                        };
                        if h.end > c.end + tol || h.end < c.start {
                            bad.push(format!("job {id}: hop ends outside its contact"));
                        }
                        let e = contact_bytes.entry(cid).or_default();
                        if r.direction == Direction::Up {
                            e.0 += r.bytes as f64
                        } else {
                            e.1 += r.bytes as f64
                        }
                    }
                    None => {
                        let (Endpoint::Node(a), Endpoint::Node(b)) = (&h.from, &h.to) else {
                            bad.push(format!("job {id}: ISL hop between non-nodes"));
                            continue;
                        };
                        let ok = s.isl.iter().any(|w| {
                            ((&w.a, &w.b) == (a, b) || (&w.a, &w.b) == (b, a))
                                && w.start <= h.start + tol
                                && h.end <= w.end + tol
                        });
                        if !ok {
                            bad.push(format!("job {id}: ISL hop outside any ISL window"));
                        }
                    }
                }
            }
            let last = r.hops.last().map(|h| h.end).unwrap_or(s.now);
            match r.direction {
                Direction::Up => {
                    if r.hops.last().map(|h| &h.to) != Some(&Endpoint::Node(jp.node.clone())) {
                        bad.push(format!("job {id}: uplink does not end at its node"));
                    }
                    if last > bstart + tol {
                        bad.push(format!("job {id}: input arrives after its batch starts"));
                    }
                }
                Direction::Down => {
                    if r.hops.first().map(|h| &h.from) != Some(&Endpoint::Node(jp.node.clone())) {
                        bad.push(format!("job {id}: downlink does not start at its node"));
                    }
                    if r.hops.first().map(|h| h.end).unwrap_or(bend) + tol
                        < bend.min(jp.result_ready)
                    {
                        bad.push(format!("job {id}: result leaves before it is ready"));
                    }
                    if last > job.spec.deadline {
                        bad.push(format!("job {id}: result lands after the deadline"));
                    }
                    if !matches!(r.hops.last().map(|h| &h.to), Some(Endpoint::Station(_))) {
                        bad.push(format!("job {id}: downlink does not reach a station"));
                    }
                }
            }
        }
        if !on_board && !routes.iter().any(|r| r.direction == Direction::Up) {
            bad.push(format!("job {id}: no uplink route"));
        }
        if !routes.iter().any(|r| r.direction == Direction::Down) {
            bad.push(format!("job {id}: no downlink route"));
        }
        let rate = node(&jp.node)
            .and_then(|n| n.spec.accelerator.models.get(&job.spec.model))
            .map(|p| p.input_bytes_per_s);
        let u = usage.entry(job.spec.tenant).or_default();
        *u = u.plus(&Usage {
            accelerator_s: job.spec.input.size_bytes as f64 / rate.unwrap_or(1.0),
            energy_wh: 0.0,
            uplink_bytes: if on_board {
                0
            } else {
                job.spec.input.size_bytes
            },
            downlink_bytes: job.spec.output_bound_bytes,
        });
    }
    for c in &plan.contacts {
        let (up, down) = contact_bytes.get(&c.id).copied().unwrap_or_default();
        let slack = plan.routes.len() as f64 + 1.0;
        if (up - c.uplink_bytes as f64).abs() > slack
            || (down - c.downlink_bytes as f64).abs() > slack
        {
            bad.push(format!(
                "contact {}: routes carry {up}/{down} bytes, reservation says {}/{}",
                c.id, c.uplink_bytes, c.downlink_bytes
            ));
        }
    }

    // Quotas (accelerator time counted as compute at the planned node's rate).
    for t in &s.tenants {
        let planned = usage.get(&t.tenant.id).copied().unwrap_or_default();
        let total = t.used.plus(&planned);
        if total.accelerator_s > t.tenant.quota.accelerator_s * 1.000_001 + 1e-6
            || total.uplink_bytes > t.tenant.quota.uplink_bytes
            || total.downlink_bytes > t.tenant.quota.downlink_bytes
        {
            bad.push(format!("tenant {} over quota: {total:?}", t.tenant.name));
        }
    }

    // Battery and heat: simulate each node with its batches; no limit may be broken that the node would not
    // break anyway without them.
    for n in &s.nodes {
        let model = NodeModel::from_spec(&n.spec, n.altitude_km);
        let initial = NodeState {
            energy_wh: n.state_of_charge * n.spec.power.battery_capacity_wh,
            temp_k: n.temp_c + ZERO_CELSIUS_K,
        };
        let baseline = NodeBudget::new(
            model,
            &n.illumination,
            s.now,
            s.horizon_end,
            s.options.budget_step_s,
            initial,
        );
        let mut loaded = baseline.clone();
        for (a, b) in busy.get(&n.spec.id).cloned().unwrap_or_default() {
            loaded.force_add_load(a, b, model.busy_extra_w);
        }
        for k in 0..=loaded.slots() {
            let (l, b) = (loaded.state_at_slot(k), baseline.state_at_slot(k));
            if l.energy_wh < model.min_energy_wh - 1e-6 && l.energy_wh < b.energy_wh - 1e-6 {
                bad.push(format!(
                    "node {}: battery {:.2} Wh below minimum at slot {k}",
                    n.spec.id, l.energy_wh
                ));
                break;
            }
            if l.temp_k > model.max_temp_k + 1e-6 && l.temp_k > b.temp_k + 1e-6 {
                bad.push(format!(
                    "node {}: {:.2} K above maximum at slot {k}",
                    n.spec.id, l.temp_k
                ));
                break;
            }
        }
    }
    bad
}
