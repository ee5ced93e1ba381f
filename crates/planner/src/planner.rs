//! The planner's state (every resource and what is booked on it) and the placement of jobs.

use crate::snapshot::{PlannerOptions, Snapshot};
use odc_budget::{BudgetViolation, NodeBudget, NodeModel, NodeState};
use odc_model::id::{
    BatchId, ContactId, IdGenerator, JobId, ModelId, NodeId, PlanId, StationId, TenantId,
};
use odc_model::job::{Job, JobState};
use odc_model::plan::{Batch, ContactReservation, Direction, Endpoint, Hop, Plan, Route};
use odc_model::spec::ModelProfile;
use odc_model::tenant::{Quota, Usage};
use odc_model::time::{Duration, Instant};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

mod order;
mod outcome;

pub use outcome::{JobPlan, LeftOutReason, PlanOutcome, PlanStats};

/// A fault or change after which the plan is repaired incrementally.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A node stopped answering; everything on it or routed through it is lost.
    NodeLost(NodeId),
    /// A station is out of service.
    StationDown(StationId),
    /// A job was cancelled.
    JobCancelled(JobId),
    /// Jobs accepted since the plan was made, placed into what is left of its resources.
    JobsAdded(Vec<Job>),
}

#[derive(Debug, Clone)]
struct ContactState {
    id: ContactId,
    station: usize,
    node: usize,
    start: Instant,
    end: Instant,
    up_rate: f64,
    down_rate: f64,
    up_used: f64,
    down_used: f64,
    antenna: Option<u32>,
    usable: bool,
}

#[derive(Debug, Clone)]
struct IslState {
    a: usize,
    b: usize,
    start: Instant,
    end: Instant,
    rate: f64,
    used: f64,
    usable: bool,
}

#[derive(Debug, Clone)]
struct BatchState {
    id: BatchId,
    model: ModelId,
    tenant: TenantId,
    start: Instant,
    end: Instant,
    jobs: Vec<JobId>,
    /// Latest the batch may end and every member's booked way down still hold: joining it delays all results.
    latest_end: Instant,
}

#[derive(Debug, Clone)]
struct NodeRt {
    id: NodeId,
    models: BTreeMap<ModelId, ModelProfile>,
    budget: NodeBudget,
    busy_power_w: f64,
    contacts: Vec<usize>,
    longest_contact: Duration,
    isl: Vec<usize>,
    batches: Vec<BatchState>,
    storage: Vec<f64>,
    storage_cap: f64,
    alive: bool,
}

#[derive(Debug, Clone)]
struct StationRt {
    id: StationId,
    setup: Duration,
    antennas: Vec<Vec<(Instant, Instant)>>,
}

#[derive(Debug, Clone)]
struct TenantRt {
    quota: Option<Quota>,
    used: Usage,
    weight: f64,
    granted_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Leg {
    Up {
        contact: usize,
        bytes: f64,
        arrive: Instant,
    },
    Down {
        contact: usize,
        bytes: f64,
        arrive: Instant,
    },
    Isl {
        window: usize,
        from: usize,
        to: usize,
        bytes: f64,
        depart: Instant,
        arrive: Instant,
    },
}

#[derive(Debug, Clone)]
struct Booking {
    node: usize,
    batch: BatchId,
    up: Vec<Leg>,
    down: Vec<Leg>,
    input_on_node: Instant,
    result_ready: Instant,
    delivered: Instant,
    compute: Duration,
    input_bytes: f64,
    output_bytes: f64,
    usage: Usage,
    tenant: TenantId,
    weight: f64,
}

/// A candidate placement before it is committed.
#[derive(Debug, Clone)]
struct Candidate {
    booking: Booking,
    joins: Option<usize>,
    batch_start: Instant,
    busy: (Instant, Instant),
}

/// The order in which jobs are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOrder {
    /// Weighted fair share between tenants, priority then deadline within each: the default.
    Value,
    /// Weighted fair share between tenants, earliest deadline first within each: better when deadlines, not
    /// priorities, decide what fits.
    Deadline,
    /// Priority first across tenants (fair share within each priority level): the most valuable plan when
    /// priorities are spread across tenants, but one tenant marking everything 9 would take the fleet, so
    /// [`crate::plan`] keeps such a plan only when it gives no tenant more than its share (see
    /// [`PlanOutcome::shares_fairly`]).
    Priority,
}

/// The planner's state: every resource and what is booked on it. Made from a snapshot; repaired by [`Change`]s.
#[derive(Debug, Clone)]
pub struct Planner {
    now: Instant,
    /// No new booking starts before this: the snapshot's time, moved on by [`Planner::advance`] as the plan is
    /// repaired later (what budgets are counted from stays `now`).
    earliest: Instant,
    horizon_end: Instant,
    plan_id: PlanId,
    parent: Option<PlanId>,
    generation: u64,
    ids: IdGenerator,
    options: PlannerOptions,
    nodes: Vec<NodeRt>,
    stations: Vec<StationRt>,
    contacts: Vec<ContactState>,
    isl: Vec<IslState>,
    tenants: BTreeMap<TenantId, TenantRt>,
    jobs: BTreeMap<JobId, Job>,
    previous_node: BTreeMap<JobId, NodeId>,
    order: Vec<JobId>,
    up_cursor: Vec<usize>,
    up_key: Vec<Option<Instant>>,
    hosts_by_model: BTreeMap<ModelId, Vec<usize>>,
    bookings: BTreeMap<JobId, Booking>,
    left_out: BTreeMap<JobId, LeftOutReason>,
    budget_step_ms: i64,
    job_order: JobOrder,
}

/// ISL windows examined per route search: enough to find the neighbour that sees a station first, bounded so
/// that a dense fleet (thousands of windows per node and day) stays fast.
const ISL_WINDOWS_EXAMINED: usize = 24;
/// Link time kept free at the end of every pass and ISL window: a transfer needs its acknowledgement back
/// before the link closes, or it waits (durably, but late) for the next one.
const LINK_MARGIN: Duration = Duration::from_secs(10);

/// Smallest input worth keeping a contact open for, bytes.
const MIN_JOB_BYTES: f64 = 1_000.0;

/// Batches examined for joining, from the first that starts after the input lands.
const BATCHES_EXAMINED: usize = 16;

fn secs(s: f64) -> Duration {
    Duration::from_millis((s * 1000.0).ceil() as i64)
}

fn after(t: Instant, bytes: f64, rate: f64) -> Instant {
    t + secs(bytes / rate.max(1e-9))
}

impl Planner {
    /// Builds the state and places every job of the snapshot, most valuable first.
    pub fn new(s: &Snapshot) -> Planner {
        Self::with_order(s, JobOrder::Value)
    }

    /// Builds the state and places every job in the given order.
    pub fn with_order(s: &Snapshot, order: JobOrder) -> Planner {
        // Names resolved once through a hash map: a dense fleet has millions of windows to index.
        let node_index: std::collections::HashMap<&NodeId, usize> = s
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (&n.spec.id, i))
            .collect();
        let station_index: BTreeMap<&StationId, usize> = s
            .stations
            .iter()
            .enumerate()
            .map(|(i, st)| (&st.id, i))
            .collect();
        let mut ids = IdGenerator::seeded(s.id_seed);
        let mut nodes: Vec<NodeRt> = s
            .nodes
            .iter()
            .map(|n| {
                let model = NodeModel::from_spec(&n.spec, n.altitude_km);
                let initial = NodeState {
                    energy_wh: n.state_of_charge.clamp(0.0, 1.0) * n.spec.power.battery_capacity_wh,
                    temp_k: n.temp_c + odc_budget::ZERO_CELSIUS_K,
                };
                let budget = NodeBudget::new(
                    model,
                    &n.illumination,
                    s.now,
                    s.horizon_end,
                    s.options.budget_step_s,
                    initial,
                );
                let slots = budget.slots();
                NodeRt {
                    id: n.spec.id.clone(),
                    models: n.spec.accelerator.models.clone(),
                    budget,
                    busy_power_w: n.spec.accelerator.busy_power_w,
                    contacts: Vec::new(),
                    longest_contact: Duration::ZERO,
                    isl: Vec::new(),
                    batches: Vec::new(),
                    storage: vec![n.storage_used_bytes as f64; slots + 1],
                    storage_cap: n.spec.storage_bytes as f64,
                    alive: true,
                }
            })
            .collect();
        let mut contacts = Vec::new();
        let mut windows: Vec<(Instant, Instant, usize, usize)> = s
            .contacts
            .iter()
            .filter_map(|w| {
                Some((
                    w.start,
                    w.end,
                    *station_index.get(&w.station)?,
                    *node_index.get(&w.node)?,
                ))
            })
            .collect();
        windows.sort_unstable();
        for (start, end, station, node) in windows {
            let (start, end) = (start.max(s.now), end.min(s.horizon_end));
            if end <= start {
                continue;
            }
            let spec = &s.nodes[node].spec;
            let st = &s.stations[station];
            let radio_up = spec.radios.iter().map(|r| r.uplink_bps).fold(0.0, f64::max);
            let radio_down = spec
                .radios
                .iter()
                .map(|r| r.downlink_bps)
                .fold(0.0, f64::max);
            nodes[node].contacts.push(contacts.len());
            nodes[node].longest_contact = nodes[node].longest_contact.max(end - start);
            contacts.push(ContactState {
                id: ids.contact(s.now),
                station,
                node,
                start,
                end,
                up_rate: st.uplink_bps.min(radio_up) / 8.0,
                down_rate: st.downlink_bps.min(radio_down) / 8.0,
                up_used: 0.0,
                down_used: 0.0,
                antenna: None,
                usable: true,
            });
        }
        let mut isl = Vec::new();
        if s.options.use_isl {
            let mut windows: Vec<(Instant, Instant, usize, usize)> = s
                .isl
                .iter()
                .filter(|w| w.end > s.now && w.start < s.horizon_end)
                .filter_map(|w| {
                    Some((
                        w.start,
                        w.end,
                        *node_index.get(&w.a)?,
                        *node_index.get(&w.b)?,
                    ))
                })
                .collect();
            windows.sort_unstable();
            let rates: Vec<f64> = s
                .nodes
                .iter()
                .map(|n| {
                    n.spec
                        .isl_terminals
                        .iter()
                        .map(|t| t.rate_bps)
                        .fold(0.0, f64::max)
                })
                .collect();
            for (start, end, a, b) in windows {
                let (start, end) = (start.max(s.now), end.min(s.horizon_end));
                if end <= start || a == b {
                    continue;
                }
                let rate = rates[a].min(rates[b]) / 8.0;
                if rate <= 0.0 {
                    continue;
                }
                nodes[a].isl.push(isl.len());
                nodes[b].isl.push(isl.len());
                isl.push(IslState {
                    a,
                    b,
                    start,
                    end,
                    rate,
                    used: 0.0,
                    usable: true,
                });
            }
        }
        let stations = s
            .stations
            .iter()
            .map(|st| StationRt {
                id: st.id.clone(),
                setup: secs(st.setup_s),
                antennas: vec![Vec::new(); st.antennas.max(1) as usize],
            })
            .collect();
        let tenants = s
            .tenants
            .iter()
            .map(|t| {
                let rt = TenantRt {
                    quota: Some(t.tenant.quota),
                    used: t.used,
                    weight: f64::from(t.tenant.share_weight.max(1)),
                    granted_s: 0.0,
                };
                (t.tenant.id, rt)
            })
            .collect();
        let previous_node = s
            .jobs
            .iter()
            .filter_map(|j| {
                let p = j.placement.as_ref()?;
                (s.previous.as_ref().is_some_and(|prev| prev.id == p.plan)
                    || j.state.rank() >= Some(3))
                .then(|| (j.id, p.node.clone()))
            })
            .collect();
        let (parent, generation) = match &s.previous {
            Some(prev) => (Some(prev.id), prev.generation + 1),
            None => (None, 1),
        };
        let mut planner = Planner {
            now: s.now,
            earliest: s.now,
            horizon_end: s.horizon_end,
            plan_id: s.plan_id,
            parent,
            generation,
            ids,
            options: s.options,
            nodes,
            stations,
            contacts,
            isl,
            tenants,
            jobs: s.jobs.iter().map(|j| (j.id, j.clone())).collect(),
            previous_node,
            order: Vec::new(),
            up_cursor: vec![0; s.nodes.len()],
            up_key: vec![None; s.nodes.len()],
            hosts_by_model: BTreeMap::new(),
            bookings: BTreeMap::new(),
            left_out: BTreeMap::new(),
            budget_step_ms: s.options.budget_step_s.max(1) * 1000,
            job_order: order,
        };
        for (i, n) in planner.nodes.iter().enumerate() {
            for m in n.models.keys() {
                planner.hosts_by_model.entry(m.clone()).or_default().push(i);
            }
        }
        for n in 0..planner.nodes.len() {
            planner.refresh_key(n);
        }
        let order = planner.order_jobs();
        for id in &order {
            planner.place(*id);
        }
        planner.order = order;
        planner
    }

    /// Places one job, or records why not.
    fn place(&mut self, id: JobId) {
        let Some(job) = self.jobs.get(&id).cloned() else {
            return;
        };
        if job.spec.deadline <= self.earliest {
            self.left_out.insert(id, LeftOutReason::DeadlinePassed);
            return;
        }
        let rank = job.state.rank().unwrap_or(0);
        let fixed_node = if rank >= 3 {
            let node = job
                .placement
                .as_ref()
                .and_then(|p| self.nodes.iter().position(|n| n.id == p.node));
            match node {
                Some(n) if self.nodes[n].alive => Some(n),
                // Its node is gone with the input: start again from the ground.
                _ => None,
            }
        } else {
            None
        };
        let hosts: Vec<usize> = match fixed_node {
            Some(n) => vec![n],
            None => self
                .hosts_by_model
                .get(&job.spec.model)
                .map(|list| {
                    list.iter()
                        .copied()
                        .filter(|&n| self.nodes[n].alive)
                        .collect()
                })
                .unwrap_or_default(),
        };
        if hosts.is_empty() {
            self.left_out.insert(id, LeftOutReason::ModelUnavailable);
            return;
        }
        if let Some(resource) = self.quota_problem(&job) {
            self.left_out.insert(
                id,
                LeftOutReason::QuotaExhausted {
                    resource: resource.into(),
                },
            );
            return;
        }
        let candidates = match fixed_node {
            Some(n) => vec![n],
            None => self.candidates(&job, &hosts),
        };
        let mut best: Option<Candidate> = None;
        let mut failure = LeftOutReason::DeadlineUnreachable;
        let previous = self.previous_node.get(&id).cloned();
        for n in candidates {
            match self.evaluate(&job, n, fixed_node.is_some() && rank >= 3) {
                Ok(c) => {
                    let is_previous = previous.as_ref() == Some(&self.nodes[n].id);
                    let better = match &best {
                        None => true,
                        Some(b) => {
                            let b_prev = previous.as_ref() == Some(&self.nodes[b.booking.node].id);
                            // The previous node wins while it meets the deadline (little churn).
                            (is_previous && !b_prev)
                                || (is_previous == b_prev
                                    && c.booking.delivered < b.booking.delivered)
                        }
                    };
                    if better {
                        best = Some(c);
                    }
                    if self.options.first_come_first_served {
                        break;
                    }
                }
                Err(reason) => {
                    if reason < failure || failure == LeftOutReason::DeadlineUnreachable {
                        failure = reason;
                    }
                }
            }
        }
        match best {
            Some(c) => self.commit(id, c),
            None => {
                self.left_out.insert(id, failure);
            }
        }
    }

    fn quota_problem(&self, job: &Job) -> Option<&'static str> {
        let t = self.tenants.get(&job.spec.tenant)?;
        let quota = t.quota.as_ref()?;
        let compute = self.compute_estimate_s(job);
        // Energy binds as accelerator time does: at the busy power of a node that runs the model.
        let busy_w = self
            .nodes
            .iter()
            .find(|n| n.models.contains_key(&job.spec.model))
            .map_or(0.0, |n| n.busy_power_w);
        let extra = Usage {
            accelerator_s: compute,
            energy_wh: compute * busy_w / 3600.0,
            uplink_bytes: job.spec.input.size_bytes,
            downlink_bytes: job.spec.output_bound_bytes,
        };
        t.used.plus(&extra).exceeds(quota)
    }

    /// The hosts with the earliest uplink opportunity, plus the job's previous node.
    fn candidates(&mut self, job: &Job, hosts: &[usize]) -> Vec<usize> {
        let mut keyed: Vec<(Instant, usize)> = hosts
            .iter()
            .filter_map(|&n| self.up_key[n].map(|key| (key, n)))
            .collect();
        let k = self.options.candidates.max(1).min(keyed.len());
        if k > 0 && k < keyed.len() {
            keyed.select_nth_unstable(k - 1);
            keyed.truncate(k);
        }
        keyed.sort();
        let mut out: Vec<usize> = keyed.into_iter().map(|(_, n)| n).collect();
        if let Some(prev) = self.previous_node.get(&job.id)
            && let Some(n) = hosts.iter().copied().find(|&n| &self.nodes[n].id == prev)
            && !out.contains(&n)
        {
            out.push(n);
        }
        out
    }

    /// Recomputes node n's uplink cursor (first contact with any room left) and its candidate key: that
    /// contact's start, or the end of the node's accelerator backlog if later (a node booked far ahead is a worse
    /// bet than its next contact suggests). Called whenever the node's contacts or batches change.
    fn refresh_key(&mut self, n: usize) {
        let list = &self.nodes[n].contacts;
        let mut i = self.up_cursor[n];
        while let Some(&c) = list.get(i) {
            let k = &self.contacts[c];
            if k.usable && k.up_used + MIN_JOB_BYTES <= k.up_rate * (k.end - k.start).as_secs_f64()
            {
                break;
            }
            i += 1;
        }
        self.up_cursor[n] = i;
        let backlog = self.nodes[n]
            .batches
            .last()
            .map(|b| b.end)
            .unwrap_or(self.earliest);
        self.up_key[n] = match list.get(i) {
            Some(&c) if self.nodes[n].alive => Some(self.contacts[c].start.max(backlog)),
            _ => None,
        };
    }

    /// Nodes whose uplink opportunities or accelerator a booking touches.
    fn touched_nodes(&self, b: &Booking) -> Vec<usize> {
        let mut out = vec![b.node];
        for l in b.up.iter().chain(b.down.iter()) {
            if let Leg::Up { contact, .. } | Leg::Down { contact, .. } = *l {
                out.push(self.contacts[contact].node);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether every pass the legs need and nobody holds yet can be booked together: an uplink and a downlink
    /// may each find an antenna free on their own yet collide with each other at a one-antenna station.
    fn can_reserve_all<'l>(&self, legs: impl Iterator<Item = &'l Leg>) -> bool {
        let mut pending: Vec<usize> = legs
            .filter_map(|l| match *l {
                Leg::Up { contact, .. } | Leg::Down { contact, .. }
                    if self.contacts[contact].antenna.is_none() =>
                {
                    Some(contact)
                }
                _ => None,
            })
            .collect();
        pending.sort_unstable();
        pending.dedup();
        if pending.len() < 2 {
            return true;
        }
        let mut trial: BTreeMap<usize, Vec<Vec<(Instant, Instant)>>> = BTreeMap::new();
        for c in pending {
            let k = &self.contacts[c];
            let st = &self.stations[k.station];
            let antennas = trial
                .entry(k.station)
                .or_insert_with(|| st.antennas.clone());
            let free = antennas.iter().position(|booked| {
                let i = booked.partition_point(|&(_, e)| e + st.setup <= k.start);
                booked.get(i).is_none_or(|&(s, _)| s >= k.end + st.setup)
            });
            match free {
                Some(a) => {
                    let list = &mut antennas[a];
                    let at = list.partition_point(|&(s, _)| s < k.start);
                    list.insert(at, (k.start, k.end));
                }
                None => return false,
            }
        }
        true
    }

    fn antenna_free(&self, c: usize) -> Option<u32> {
        let contact = &self.contacts[c];
        if let Some(a) = contact.antenna {
            return Some(a);
        }
        let st = &self.stations[contact.station];
        st.antennas
            .iter()
            .position(|booked| {
                let i = booked.partition_point(|&(_, e)| e + st.setup <= contact.start);
                booked
                    .get(i)
                    .is_none_or(|&(s, _)| s >= contact.end + st.setup)
            })
            .map(|a| a as u32)
    }

    /// The earliest direct uplink to node n of `bytes` available from `t`.
    fn direct_up(&self, n: usize, bytes: f64, t: Instant, by: Instant) -> Option<Leg> {
        self.direct(n, bytes, t, by, true)
    }

    /// The earliest direct downlink from node n of `bytes` ready at `t`.
    fn direct_down(&self, n: usize, bytes: f64, t: Instant, by: Instant) -> Option<Leg> {
        self.direct(n, bytes, t, by, false)
    }

    /// The earliest contact of node n, starting before `by`, that can carry `bytes` one way from `t`: room left,
    /// an antenna free, and the transfer done by the pass's end (behind what the pass already carries).
    fn direct(&self, n: usize, bytes: f64, t: Instant, by: Instant, up: bool) -> Option<Leg> {
        let node = &self.nodes[n];
        // Contacts are sorted by start; none lasts longer than the node's longest, so those starting before
        // t − longest have ended.
        let first = node
            .contacts
            .partition_point(|&c| self.contacts[c].start + node.longest_contact <= t);
        for &c in &node.contacts[first..] {
            let k = &self.contacts[c];
            if k.start >= by {
                break;
            }
            if !k.usable || k.end <= t {
                continue;
            }
            let (rate, used) = if up {
                (k.up_rate, k.up_used)
            } else {
                (k.down_rate, k.down_used)
            };
            if used + bytes > rate * (k.end - k.start).as_secs_f64() {
                continue;
            }
            let arrive = after(k.start, used + bytes, rate).max(after(t.max(k.start), bytes, rate));
            if arrive + LINK_MARGIN > k.end || self.antenna_free(c).is_none() {
                continue;
            }
            return Some(if up {
                Leg::Up {
                    contact: c,
                    bytes,
                    arrive,
                }
            } else {
                Leg::Down {
                    contact: c,
                    bytes,
                    arrive,
                }
            });
        }
        None
    }

    /// An ISL transfer from `from` over window w of `bytes` ready at `t`.
    fn isl_leg(&self, w: usize, from: usize, bytes: f64, t: Instant) -> Option<Leg> {
        let k = &self.isl[w];
        if !k.usable || k.end <= t {
            return None;
        }
        let to = if k.a == from { k.b } else { k.a };
        if !self.nodes[to].alive {
            return None;
        }
        let cap = k.rate * (k.end - k.start).as_secs_f64();
        if k.used + bytes > cap {
            return None;
        }
        let depart = t.max(k.start);
        let arrive = after(k.start, k.used + bytes, k.rate).max(after(depart, bytes, k.rate));
        (arrive + LINK_MARGIN <= k.end).then_some(Leg::Isl {
            window: w,
            from,
            to,
            bytes,
            depart,
            arrive,
        })
    }

    fn leg_arrival(leg: &Leg) -> Instant {
        match *leg {
            Leg::Up { arrive, .. } | Leg::Down { arrive, .. } | Leg::Isl { arrive, .. } => arrive,
        }
    }

    /// The earliest way up to node n: direct, or to a neighbour then one ISL hop.
    fn route_up(&self, n: usize, bytes: f64, by: Instant) -> Option<Vec<Leg>> {
        let direct = self.direct_up(n, bytes, self.earliest, by);
        let mut best = direct.map(|l| vec![l]);
        if !self.options.use_isl {
            return best;
        }
        let arrival = |r: &Option<Vec<Leg>>| {
            r.as_ref()
                .and_then(|r| r.last())
                .map(Self::leg_arrival)
                .unwrap_or(by)
        };
        // Only the first few links that could beat the direct route are worth a look: in a dense fleet a node
        // has thousands of ISL windows a day.
        let mut examined = 0;
        for &w in &self.nodes[n].isl {
            let k = &self.isl[w];
            if k.start >= arrival(&best) || examined >= ISL_WINDOWS_EXAMINED {
                break;
            }
            let m = if k.a == n { k.b } else { k.a };
            if !k.usable || !self.nodes[m].alive || k.end <= self.earliest {
                continue;
            }
            examined += 1;
            let Some(up) = self.direct_up(m, bytes, self.earliest, k.end) else {
                continue;
            };
            let Some(hop) = self.isl_leg(w, m, bytes, Self::leg_arrival(&up)) else {
                continue;
            };
            if Self::leg_arrival(&hop) < arrival(&best) {
                best = Some(vec![up, hop]);
            }
        }
        best
    }

    /// The earliest way down from node n: direct, or one ISL hop to the neighbour that sees a station first.
    fn route_down(&self, n: usize, bytes: f64, ready: Instant, by: Instant) -> Option<Vec<Leg>> {
        let direct = self.direct_down(n, bytes, ready, by);
        let mut best = direct.map(|l| vec![l]);
        if !self.options.use_isl {
            return best;
        }
        let arrival = |r: &Option<Vec<Leg>>| {
            r.as_ref()
                .and_then(|r| r.last())
                .map(Self::leg_arrival)
                .unwrap_or(by)
        };
        let list = &self.nodes[n].isl;
        // Windows that may still be open at `ready`: the list is sorted by start; ISL windows in LEO last well
        // under an hour, so start from those beginning up to an hour before.
        let from = list.partition_point(|&w| self.isl[w].start + Duration::from_hours(1) <= ready);
        let mut examined = 0;
        for &w in &list[from..] {
            let k = &self.isl[w];
            let limit = arrival(&best);
            if k.start >= limit || examined >= ISL_WINDOWS_EXAMINED {
                break;
            }
            if k.end <= ready || !k.usable {
                continue;
            }
            examined += 1;
            let Some(hop) = self.isl_leg(w, n, bytes, ready) else {
                continue;
            };
            let Leg::Isl {
                to,
                arrive: at_neighbour,
                ..
            } = hop
            else {
                continue;
            };
            let Some(down) = self.direct_down(to, bytes, at_neighbour, limit) else {
                continue;
            };
            if Self::leg_arrival(&down) < limit {
                best = Some(vec![hop, down]);
            }
        }
        best
    }

    /// The earliest complete placement of a job on node n.
    fn evaluate(
        &self,
        job: &Job,
        n: usize,
        input_on_board: bool,
    ) -> Result<Candidate, LeftOutReason> {
        let node = &self.nodes[n];
        let profile = node
            .models
            .get(&job.spec.model)
            .ok_or(LeftOutReason::ModelUnavailable)?;
        let deadline = job.spec.deadline.min(self.horizon_end);
        let input = job.spec.input.size_bytes as f64;
        let output = job.spec.output_bound_bytes as f64;
        let compute = secs(input / profile.input_bytes_per_s);
        let setup = secs(profile.batch_setup_s);
        let (up, ready_in) = if input_on_board {
            (Vec::new(), self.earliest)
        } else {
            let legs = self
                .route_up(n, input, deadline)
                .ok_or(LeftOutReason::DeadlineUnreachable)?;
            let at = legs.last().map(Self::leg_arrival).unwrap_or(self.earliest);
            (legs, at)
        };
        let mut failure = LeftOutReason::DeadlineUnreachable;
        // Slot options: join a batch of the same model and tenant, or open one; earliest finish first, then
        // retry later starts if the battery or temperature says no.
        let mut options: Vec<(Instant, Option<usize>, Instant, Instant)> = Vec::new();
        let first_batch = node.batches.partition_point(|b| b.start < ready_in);
        for (i, b) in node
            .batches
            .iter()
            .enumerate()
            .skip(first_batch)
            .take(BATCHES_EXAMINED)
        {
            if b.model != job.spec.model || b.tenant != job.spec.tenant {
                continue;
            }
            let end = b.end + compute;
            let next_start = node
                .batches
                .get(i + 1)
                .map(|x| x.start)
                .unwrap_or(self.horizon_end);
            if end <= next_start
                && end <= b.latest_end
                && (end - b.start).as_secs_f64() <= self.options.max_batch_s
            {
                options.push((end, Some(i), b.end, end));
            }
        }
        for delay_min in [0, 20, 60, 120, 240] {
            let from = ready_in + Duration::from_mins(delay_min);
            if let Some(s) = self.gap(n, from, setup + compute) {
                options.push((s + setup + compute, None, s, s + setup + compute));
            }
        }
        options.sort_by_key(|o| (o.0, o.1.is_none()));
        options.dedup_by_key(|o| (o.2, o.1));
        for (done, joins, busy_start, busy_end) in options {
            if done > deadline {
                break;
            }
            let Some(down) = self.route_down(n, output, done, deadline) else {
                continue;
            };
            let delivered = down.last().map(Self::leg_arrival).unwrap_or(done);
            if delivered > deadline || !self.can_reserve_all(up.iter().chain(down.iter())) {
                continue;
            }
            // Storage: the input from arrival until the run ends, the result until it leaves the node.
            let leaves = match down.first() {
                Some(Leg::Isl { arrive, .. }) => *arrive,
                Some(l) => Self::leg_arrival(l),
                None => done,
            };
            if !self.storage_fits(n, ready_in, done, input)
                || !self.storage_fits(n, done, leaves, output)
            {
                failure = failure.min(LeftOutReason::StorageFull);
                continue;
            }
            match node.budget.check_busy(busy_start, busy_end) {
                Ok(()) => {}
                Err(BudgetViolation::Energy { .. }) => {
                    failure = failure.min(LeftOutReason::EnergyLimited);
                    continue;
                }
                Err(BudgetViolation::Thermal { .. }) => {
                    failure = failure.min(LeftOutReason::ThermalLimited);
                    continue;
                }
                Err(BudgetViolation::OutsideHorizon) => continue,
            }
            let energy_wh = node.busy_power_w * (busy_end - busy_start).as_secs_f64() / 3600.0;
            let booking = Booking {
                node: n,
                batch: joins
                    .map(|i| node.batches[i].id)
                    .unwrap_or(BatchId::from_u128(0)),
                up: up.clone(),
                down,
                input_on_node: ready_in,
                result_ready: done,
                delivered,
                compute,
                input_bytes: if input_on_board { 0.0 } else { input },
                output_bytes: output,
                usage: Usage {
                    accelerator_s: (busy_end - busy_start).as_secs_f64(),
                    energy_wh,
                    uplink_bytes: if input_on_board {
                        0
                    } else {
                        job.spec.input.size_bytes
                    },
                    downlink_bytes: job.spec.output_bound_bytes,
                },
                tenant: job.spec.tenant,
                weight: job.spec.priority.weight(),
            };
            return Ok(Candidate {
                booking,
                joins,
                batch_start: busy_start,
                busy: (busy_start, busy_end),
            });
        }
        Err(failure)
    }

    /// The latest a result may be ready and still leave by the first leg of its booked way down.
    fn latest_ready(&self, down: &[Leg]) -> Instant {
        let secs = |bytes: f64, rate: f64| Duration::from_secs_f64(bytes / rate.max(1e-9));
        match down.first() {
            Some(&Leg::Down {
                contact,
                bytes,
                arrive,
            }) => arrive - secs(bytes, self.contacts[contact].down_rate),
            Some(&Leg::Isl {
                window,
                bytes,
                arrive,
                ..
            }) => arrive - secs(bytes, self.isl[window].rate),
            _ => self.horizon_end,
        }
    }

    /// The earliest start ≥ `from` of a free accelerator interval of length `len` on node n.
    fn gap(&self, n: usize, from: Instant, len: Duration) -> Option<Instant> {
        let batches = &self.nodes[n].batches;
        let mut start = from.max(self.earliest);
        let first = batches.partition_point(|b| b.end <= start);
        for b in &batches[first..] {
            if start + len <= b.start {
                break;
            }
            start = start.max(b.end);
        }
        (start + len <= self.horizon_end).then_some(start)
    }

    fn slot(&self, t: Instant) -> usize {
        ((t - self.now).as_millis().max(0) / self.budget_step_ms) as usize
    }

    fn storage_fits(&self, n: usize, a: Instant, b: Instant, bytes: f64) -> bool {
        let node = &self.nodes[n];
        let (first, last) = (self.slot(a), self.slot(b).min(node.storage.len() - 1));
        node.storage[first.min(last)..=last]
            .iter()
            .all(|&used| used + bytes <= node.storage_cap)
    }

    fn add_storage(&mut self, n: usize, a: Instant, b: Instant, bytes: f64) {
        let (first, last) = (self.slot(a), self.slot(b));
        let storage = &mut self.nodes[n].storage;
        let last = last.min(storage.len() - 1);
        for s in &mut storage[first.min(last)..=last] {
            *s = (*s + bytes).max(0.0);
        }
    }

    fn book_leg(&mut self, leg: &Leg, sign: f64) {
        match *leg {
            Leg::Up { contact, bytes, .. } => {
                self.contacts[contact].up_used += sign * bytes;
                if sign < 0.0 {
                    self.up_cursor[self.contacts[contact].node] = 0;
                }
                if sign > 0.0 {
                    self.reserve(contact);
                }
            }
            Leg::Down { contact, bytes, .. } => {
                self.contacts[contact].down_used += sign * bytes;
                if sign > 0.0 {
                    self.reserve(contact);
                }
            }
            Leg::Isl { window, bytes, .. } => self.isl[window].used += sign * bytes,
        }
    }

    fn reserve(&mut self, c: usize) {
        if self.contacts[c].antenna.is_some() {
            return;
        }
        if let Some(a) = self.antenna_free(c) {
            let (start, end) = (self.contacts[c].start, self.contacts[c].end);
            let list = &mut self.stations[self.contacts[c].station].antennas[a as usize];
            let at = list.partition_point(|&(s, _)| s < start);
            list.insert(at, (start, end));
            self.contacts[c].antenna = Some(a);
        }
    }

    fn commit(&mut self, id: JobId, mut c: Candidate) {
        let n = c.booking.node;
        for leg in c
            .booking
            .up
            .clone()
            .iter()
            .chain(c.booking.down.clone().iter())
        {
            self.book_leg(leg, 1.0);
        }
        // Checked in `evaluate`; adding it unconditionally keeps the prediction in step with the bookings.
        let watts = self.nodes[n].budget.model().busy_extra_w;
        self.nodes[n]
            .budget
            .force_add_load(c.busy.0, c.busy.1, watts);
        let latest_end = self.latest_ready(&c.booking.down);
        let batch = match c.joins {
            Some(i) => {
                let b = &mut self.nodes[n].batches[i];
                b.end = c.busy.1;
                b.latest_end = b.latest_end.min(latest_end);
                b.jobs.push(id);
                b.id
            }
            None => {
                let job = &self.jobs[&id];
                let b = BatchState {
                    id: self.ids.batch(self.now),
                    model: job.spec.model.clone(),
                    tenant: job.spec.tenant,
                    start: c.batch_start,
                    end: c.busy.1,
                    jobs: vec![id],
                    latest_end,
                };
                let batches = &mut self.nodes[n].batches;
                let at = batches.partition_point(|x| x.start < b.start);
                let bid = b.id;
                batches.insert(at, b);
                bid
            }
        };
        c.booking.batch = batch;
        let leaves = match c.booking.down.first() {
            Some(Leg::Isl { arrive, .. }) => *arrive,
            Some(l) => Self::leg_arrival(l),
            None => c.booking.result_ready,
        };
        self.add_storage(
            n,
            c.booking.input_on_node,
            c.booking.result_ready,
            c.booking.input_bytes,
        );
        self.add_storage(n, c.booking.result_ready, leaves, c.booking.output_bytes);
        if let Some(t) = self.tenants.get_mut(&c.booking.tenant) {
            t.used = t.used.plus(&c.booking.usage);
            t.granted_s += c.booking.usage.accelerator_s;
        }
        self.left_out.remove(&id);
        for n in self.touched_nodes(&c.booking) {
            self.refresh_key(n);
        }
        self.bookings.insert(id, c.booking);
    }

    /// Takes a job out of the plan and gives back everything it held.
    fn release(&mut self, id: JobId) {
        let Some(b) = self.bookings.remove(&id) else {
            return;
        };
        for leg in b.up.iter().chain(b.down.iter()) {
            self.book_leg(leg, -1.0);
        }
        let n = b.node;
        if let Some(i) = self.nodes[n].batches.iter().position(|x| x.id == b.batch) {
            let busy_end;
            let busy_start;
            {
                let batch = &mut self.nodes[n].batches[i];
                batch.jobs.retain(|j| *j != id);
                busy_end = batch.end;
                if batch.jobs.is_empty() {
                    busy_start = batch.start;
                } else {
                    batch.end = batch.end - b.compute;
                    busy_start = batch.end;
                }
            }
            if self.nodes[n].batches[i].jobs.is_empty() {
                self.nodes[n].batches.remove(i);
            }
            if self.nodes[n].alive {
                self.nodes[n].budget.remove_busy(busy_start, busy_end);
            }
        }
        let leaves = match b.down.first() {
            Some(Leg::Isl { arrive, .. }) => *arrive,
            Some(l) => Self::leg_arrival(l),
            None => b.result_ready,
        };
        self.add_storage(n, b.input_on_node, b.result_ready, -b.input_bytes);
        self.add_storage(n, b.result_ready, leaves, -b.output_bytes);
        if let Some(t) = self.tenants.get_mut(&b.tenant) {
            let u = &b.usage;
            t.used.accelerator_s -= u.accelerator_s;
            t.used.energy_wh -= u.energy_wh;
            t.used.uplink_bytes = t.used.uplink_bytes.saturating_sub(u.uplink_bytes);
            t.used.downlink_bytes = t.used.downlink_bytes.saturating_sub(u.downlink_bytes);
            t.granted_s -= u.accelerator_s;
        }
        for n in self.touched_nodes(&b) {
            self.refresh_key(n);
        }
    }

    fn touches(&self, b: &Booking, pred: &dyn Fn(&Leg) -> bool) -> bool {
        b.up.iter().chain(b.down.iter()).any(pred)
    }

    /// From now on no new booking starts before `at` (a repair made after the snapshot's time).
    pub fn advance(&mut self, at: Instant) {
        self.earliest = self.earliest.max(at);
    }

    /// The jobs this state has placed or left out (every job it knows).
    pub fn knows(&self, job: JobId) -> bool {
        self.jobs.contains_key(&job)
    }

    /// Repairs the plan after a change: releases what the change invalidates, re-places only the jobs it
    /// touched, and returns the successor plan. Cost grows with the jobs touched, not with the plan.
    pub fn apply(&mut self, change: &Change, plan_id: PlanId) -> PlanOutcome {
        let affected: Vec<JobId> = match change {
            Change::NodeLost(node) => {
                let Some(n) = self.nodes.iter().position(|x| &x.id == node) else {
                    return self.successor(plan_id);
                };
                self.nodes[n].alive = false;
                for &c in &self.nodes[n].contacts.clone() {
                    self.contacts[c].usable = false;
                }
                for &w in &self.nodes[n].isl.clone() {
                    self.isl[w].usable = false;
                }
                let contacts = &self.contacts;
                let isl = &self.isl;
                let via = |l: &Leg| match *l {
                    Leg::Up { contact, .. } | Leg::Down { contact, .. } => {
                        contacts[contact].node == n
                    }
                    Leg::Isl { window, .. } => isl[window].a == n || isl[window].b == n,
                };
                let affected: Vec<JobId> = self
                    .bookings
                    .iter()
                    .filter(|(_, b)| b.node == n || self.touches(b, &via))
                    .map(|(id, _)| *id)
                    .collect();
                // Inputs that were on the lost node are gone with it: those jobs start again from the ground.
                for id in &affected {
                    if let Some(job) = self.jobs.get_mut(id)
                        && job.placement.as_ref().is_some_and(|p| &p.node == node)
                        && job.state.rank().is_some_and(|r| r >= 3)
                    {
                        job.state = JobState::Accepted;
                        job.placement = None;
                    }
                }
                affected
            }
            Change::StationDown(station) => {
                let Some(s) = self.stations.iter().position(|x| &x.id == station) else {
                    return self.successor(plan_id);
                };
                for c in self.contacts.iter_mut().filter(|c| c.station == s) {
                    c.usable = false;
                }
                let contacts = &self.contacts;
                let via = |l: &Leg| match *l {
                    Leg::Up { contact, .. } | Leg::Down { contact, .. } => {
                        contacts[contact].station == s
                    }
                    Leg::Isl { .. } => false,
                };
                self.bookings
                    .iter()
                    .filter(|(_, b)| self.touches(b, &via))
                    .map(|(id, _)| *id)
                    .collect()
            }
            Change::JobCancelled(id) => {
                self.release(*id);
                self.jobs.remove(id);
                self.left_out.remove(id);
                self.order.retain(|j| j != id);
                Vec::new()
            }
            Change::JobsAdded(jobs) => {
                let mut added = Vec::with_capacity(jobs.len());
                for job in jobs {
                    if self.jobs.contains_key(&job.id) {
                        continue;
                    }
                    // A tenant the snapshot did not know has no quota here: intake has checked it.
                    self.jobs.insert(job.id, job.clone());
                    self.order.push(job.id);
                    added.push(job.id);
                }
                // Into what the plan left free, after everything already booked: earliest deadline first.
                added.sort_by_key(|id| self.jobs.get(id).map(|j| (j.spec.deadline, *id)));
                for n in 0..self.nodes.len() {
                    self.up_cursor[n] = 0;
                    self.refresh_key(n);
                }
                for id in added {
                    self.place(id);
                }
                return self.successor(plan_id);
            }
        };
        for id in &affected {
            self.release(*id);
        }
        // Free antenna reservations no booking uses any more, and re-rank every node (contacts may have gone).
        self.prune_reservations();
        for n in 0..self.nodes.len() {
            self.up_cursor[n] = 0;
            self.refresh_key(n);
        }
        let lost_node = matches!(change, Change::NodeLost(_));
        for id in self.order.clone() {
            if affected.contains(&id) {
                self.place(id);
                if lost_node && self.left_out.get(&id) == Some(&LeftOutReason::DeadlineUnreachable)
                {
                    self.left_out.insert(id, LeftOutReason::NodeLost);
                }
            }
        }
        self.successor(plan_id)
    }

    fn prune_reservations(&mut self) {
        let mut used: BTreeSet<usize> = BTreeSet::new();
        for b in self.bookings.values() {
            for l in b.up.iter().chain(b.down.iter()) {
                if let Leg::Up { contact, .. } | Leg::Down { contact, .. } = *l {
                    used.insert(contact);
                }
            }
        }
        for c in 0..self.contacts.len() {
            if let Some(a) = self.contacts[c].antenna
                && (!used.contains(&c) || !self.contacts[c].usable)
            {
                let (start, end) = (self.contacts[c].start, self.contacts[c].end);
                self.stations[self.contacts[c].station].antennas[a as usize]
                    .retain(|&r| r != (start, end));
                self.contacts[c].antenna = None;
            }
        }
    }

    fn successor(&mut self, plan_id: PlanId) -> PlanOutcome {
        self.parent = Some(self.plan_id);
        self.plan_id = plan_id;
        self.generation += 1;
        self.outcome()
    }

    /// The plan of the current state, with what it decided for each job.
    pub fn outcome(&self) -> PlanOutcome {
        let mut plan = Plan::first(self.plan_id, self.now, self.now, self.horizon_end);
        plan.parent = self.parent;
        plan.generation = self.generation;
        let mut stats = PlanStats {
            min_energy_margin_wh: f64::INFINITY,
            ..PlanStats::default()
        };
        for (c, k) in self.contacts.iter().enumerate() {
            if k.antenna.is_none() || !k.usable {
                continue;
            }
            let _ = c;
            plan.contacts.push(ContactReservation {
                id: k.id,
                station: self.stations[k.station].id.clone(),
                antenna: k.antenna.unwrap_or(0),
                node: self.nodes[k.node].id.clone(),
                start: k.start,
                end: k.end,
                uplink_bytes: k.up_used.round() as u64,
                downlink_bytes: k.down_used.round() as u64,
            });
            stats.uplink_bytes += k.up_used.round() as u64;
            stats.downlink_bytes += k.down_used.round() as u64;
        }
        for node in self.nodes.iter().filter(|n| n.alive) {
            for b in &node.batches {
                plan.batches.push(Batch {
                    id: b.id,
                    node: node.id.clone(),
                    tenant: b.tenant,
                    model: b.model.clone(),
                    jobs: b.jobs.clone(),
                    start: b.start,
                    end: b.end,
                    accelerator_s: (b.end - b.start).as_secs_f64(),
                    energy_wh: node.busy_power_w * (b.end - b.start).as_secs_f64() / 3600.0,
                });
            }
            stats.min_energy_margin_wh = stats
                .min_energy_margin_wh
                .min(node.budget.min_energy_wh() - node.budget.model().min_energy_wh);
        }
        plan.batches
            .sort_by_key(|b| (b.start, b.node.clone(), b.id));
        let mut jobs = BTreeMap::new();
        for (id, b) in &self.bookings {
            for (direction, legs) in [(Direction::Up, &b.up), (Direction::Down, &b.down)] {
                if legs.is_empty() {
                    continue;
                }
                let bytes = legs.first().map(|l| match *l {
                    Leg::Up { bytes, .. } | Leg::Down { bytes, .. } | Leg::Isl { bytes, .. } => {
                        bytes
                    }
                });
                let hops = legs.iter().map(|l| self.hop(l)).collect::<Vec<_>>();
                if hops.len() > 1 {
                    stats.isl_routes += 1;
                }
                plan.routes.push(Route {
                    job: *id,
                    direction,
                    bytes: bytes.unwrap_or(0.0).round() as u64,
                    hops,
                });
            }
            stats.weighted_delivered += b.weight;
            if self
                .previous_node
                .get(id)
                .is_some_and(|p| p != &self.nodes[b.node].id)
            {
                stats.moved += 1;
            }
            jobs.insert(
                *id,
                JobPlan {
                    node: self.nodes[b.node].id.clone(),
                    batch: b.batch,
                    input_on_node: b.input_on_node,
                    result_ready: b.result_ready,
                    delivered: b.delivered,
                    weight: b.weight,
                },
            );
        }
        stats.planned = jobs.len();
        stats.left_out = self.left_out.len();
        stats.contacts_reserved = plan.contacts.len();
        if !stats.min_energy_margin_wh.is_finite() {
            stats.min_energy_margin_wh = 0.0;
        }
        PlanOutcome {
            plan,
            jobs,
            left_out: self.left_out.clone(),
            stats,
        }
    }

    fn hop(&self, l: &Leg) -> Hop {
        match *l {
            Leg::Up {
                contact, arrive, ..
            } => {
                let k = &self.contacts[contact];
                Hop {
                    from: Endpoint::Station(self.stations[k.station].id.clone()),
                    to: Endpoint::Node(self.nodes[k.node].id.clone()),
                    start: k.start,
                    end: arrive,
                    contact: Some(k.id),
                }
            }
            Leg::Down {
                contact, arrive, ..
            } => {
                let k = &self.contacts[contact];
                Hop {
                    from: Endpoint::Node(self.nodes[k.node].id.clone()),
                    to: Endpoint::Station(self.stations[k.station].id.clone()),
                    start: k.start,
                    end: arrive,
                    contact: Some(k.id),
                }
            }
            Leg::Isl {
                from,
                to,
                depart,
                arrive,
                ..
            } => Hop {
                from: Endpoint::Node(self.nodes[from].id.clone()),
                to: Endpoint::Node(self.nodes[to].id.clone()),
                start: depart,
                end: arrive,
                contact: None,
            },
        }
    }
}
