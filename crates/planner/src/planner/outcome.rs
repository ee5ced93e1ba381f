//! What a planning run yields: the plan, each job placed or left out with why, its figures, and the checks on
//! it (a readable listing, whether it shares fairly).

use super::*;

/// Why a job is not in the plan, in words a tenant can act on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeftOutReason {
    /// The deadline has already passed.
    DeadlinePassed,
    /// No node in the fleet runs this model.
    ModelUnavailable,
    /// The tenant's quota would be exceeded.
    QuotaExhausted {
        /// Which quota.
        resource: String,
    },
    /// A node could run it in time, but not without draining its battery below the minimum.
    EnergyLimited,
    /// A node could run it in time, but would overheat.
    ThermalLimited,
    /// A node could run it in time, but has no storage left for its data.
    StorageFull,
    /// No contacts (with room left) can bring it up, run it and bring it down before the deadline.
    DeadlineUnreachable,
    /// Its node was lost and nothing else can take it in time.
    NodeLost,
}

impl fmt::Display for LeftOutReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeftOutReason::DeadlinePassed => f.write_str("deadline already passed"),
            LeftOutReason::ModelUnavailable => f.write_str("no node runs this model"),
            LeftOutReason::QuotaExhausted { resource } => write!(f, "quota exhausted: {resource}"),
            LeftOutReason::EnergyLimited => {
                f.write_str("energy-limited: no battery margin to run it in time")
            }
            LeftOutReason::ThermalLimited => {
                f.write_str("thermal-limited: running it in time would overheat a node")
            }
            LeftOutReason::StorageFull => f.write_str("no node has storage left for it in time"),
            LeftOutReason::DeadlineUnreachable => {
                f.write_str("deadline unreachable with the contacts available (or they are full)")
            }
            LeftOutReason::NodeLost => f.write_str("its node was lost"),
        }
    }
}

/// Where and when a job runs and when its result lands.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPlan {
    /// The node.
    pub node: NodeId,
    /// Its batch.
    pub batch: BatchId,
    /// When its input is on the node.
    pub input_on_node: Instant,
    /// When its result is ready on the node.
    pub result_ready: Instant,
    /// When its result is on the ground.
    pub delivered: Instant,
    /// Its priority weight.
    pub weight: f64,
}

/// Summary figures of a plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanStats {
    /// Jobs in the plan.
    pub planned: usize,
    /// Jobs left out.
    pub left_out: usize,
    /// Sum of the priority weights of the jobs planned: the objective.
    pub weighted_delivered: f64,
    /// Contacts reserved.
    pub contacts_reserved: usize,
    /// Bytes planned up.
    pub uplink_bytes: u64,
    /// Bytes planned down.
    pub downlink_bytes: u64,
    /// Routes using an ISL hop.
    pub isl_routes: usize,
    /// Smallest margin above the minimum battery charge over all nodes and the horizon, Wh.
    pub min_energy_margin_wh: f64,
    /// Planned jobs the previous plan had put on another node.
    pub moved: usize,
}

/// A plan and what it decided for each job.
#[derive(Debug, Clone)]
pub struct PlanOutcome {
    /// The plan.
    pub plan: Plan,
    /// Every planned job.
    pub jobs: BTreeMap<JobId, JobPlan>,
    /// Every job left out, with why.
    pub left_out: BTreeMap<JobId, LeftOutReason>,
    /// Figures.
    pub stats: PlanStats,
}

impl PlanOutcome {
    /// Whether the plan gives each tenant no more than its weighted share of accelerator time while another tenant
    /// has jobs left out (one job's worth of slack: shares are made of whole jobs).
    pub fn shares_fairly(&self, s: &Snapshot) -> bool {
        let rate = |j: &Job| {
            s.nodes
                .iter()
                .find_map(|n| n.spec.accelerator.models.get(&j.spec.model))
                .map_or(1e6, |p| p.input_bytes_per_s.max(1.0))
        };
        let weight = |t: &TenantId| {
            s.tenants
                .iter()
                .find(|x| &x.tenant.id == t)
                .map_or(1.0, |x| f64::from(x.tenant.share_weight.max(1)))
        };
        let mut planned: BTreeMap<TenantId, f64> = BTreeMap::new();
        let mut waiting: std::collections::BTreeSet<TenantId> = std::collections::BTreeSet::new();
        let mut largest = 0.0f64;
        for j in &s.jobs {
            let cost = j.spec.input.size_bytes as f64 / rate(j);
            largest = largest.max(cost);
            if self.jobs.contains_key(&j.id) {
                *planned.entry(j.spec.tenant).or_default() += cost / weight(&j.spec.tenant);
            } else if self.left_out.contains_key(&j.id) {
                waiting.insert(j.spec.tenant);
                planned.entry(j.spec.tenant).or_default();
            }
        }
        waiting.iter().all(|t| {
            let mine = planned.get(t).copied().unwrap_or(0.0);
            planned
                .iter()
                .all(|(u, theirs)| u == t || *theirs <= mine + largest / weight(u))
        })
    }

    /// A readable, deterministic listing of the plan: contacts, batches, routes and jobs left out. Snapshot
    /// tests compare it, so a change in behaviour shows as a diff.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let p = &self.plan;
        let mut out = String::new();
        let t = |i: Instant| i.to_string()[11..19].to_owned();
        let _ = writeln!(
            out,
            "plan generation {} ({} → {})",
            p.generation, p.horizon_start, p.horizon_end
        );
        let _ = writeln!(out, "contacts:");
        for c in &p.contacts {
            let _ = writeln!(
                out,
                "  {} {}#{} ↔ {}  up {} B  down {} B",
                t(c.start) + "–" + &t(c.end),
                c.station,
                c.antenna,
                c.node,
                c.uplink_bytes,
                c.downlink_bytes
            );
        }
        let _ = writeln!(out, "batches:");
        for b in &p.batches {
            let _ = writeln!(
                out,
                "  {}–{} {} {} {} jobs, {:.1} s, {:.2} Wh",
                t(b.start),
                t(b.end),
                b.node,
                b.model,
                b.jobs.len(),
                b.accelerator_s,
                b.energy_wh
            );
        }
        let _ = writeln!(out, "jobs:");
        for (i, (id, jp)) in self.jobs.iter().enumerate() {
            let hops = |d: Direction| {
                p.routes
                    .iter()
                    .filter(|r| &r.job == id && r.direction == d)
                    .flat_map(|r| r.hops.iter())
                    .map(|h| match (&h.from, &h.to) {
                        (_, Endpoint::Node(n)) if h.contact.is_none() => format!("isl→{n}"),
                        (Endpoint::Station(s), _) => format!("{s}"),
                        (_, Endpoint::Station(s)) => format!("{s}"),
                        _ => "?".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(
                out,
                "  job {i:>3} on {}: up [{}] in {} ready {} down [{}] at {}",
                jp.node,
                hops(Direction::Up),
                t(jp.input_on_node),
                t(jp.result_ready),
                hops(Direction::Down),
                t(jp.delivered)
            );
        }
        let _ = writeln!(out, "left out:");
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for r in self.left_out.values() {
            *reasons.entry(r.to_string()).or_default() += 1;
        }
        for (r, n) in reasons {
            let _ = writeln!(out, "  {n} × {r}");
        }
        out
    }
}
