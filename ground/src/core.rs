//! The ground core: everything the control plane decides, with no IO and no clock of its own.
//!
//! It accepts jobs against tenant quotas ([`GroundCore::submit`]), plans and replans with the planner
//! ([`GroundCore::tick`]), sends each node its plan and its inputs while it is in contact, applies what nodes
//! report through the one job state machine, delivers results to tenants and meters usage exactly once per job
//! (at delivery). Every report is applied idempotently, so a node may report again after a restart or a lost
//! receipt and nothing changes twice.

use odc_budget::Illumination;
use odc_model::id::{IdGenerator, JobId, ModelId, NodeId, StationId, TenantId};
use odc_model::job::{
    BlobRef, FailureReason, Job, JobEvent, JobSpec, JobSpecError, JobState, Outcome,
};
use odc_model::plan::{Direction, Endpoint, Plan};
use odc_model::spec::{NodeSpec, StationSpec};
use odc_model::telemetry::NodeTelemetry;
use odc_model::tenant::{Tenant, Usage, UsageRecord};
use odc_model::time::{Duration, Instant};
use odc_model::wire::{
    self, Envelope, InputChunk, JobUpdate, JobUpdates, Message, PlanUpdate, Relay, ResultChunk,
    Sender,
};
use odc_planner::scenario::OrbitGeometry;
use odc_planner::{ContactWindow, IslWindow, NodeInput, PlannerOptions, Snapshot, TenantInput};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A node as the ground knows it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Its spec.
    pub spec: NodeSpec,
    /// Mean altitude, km.
    pub altitude_km: f64,
    /// Its sunlight over the horizon (from the ephemeris).
    pub illumination: Illumination,
    /// State of charge assumed before any telemetry.
    pub initial_soc: f64,
}

/// What the ground is set up with: the fleet, the ground network, the geometry, the tenants.
#[derive(Debug, Clone)]
pub struct GroundConfig {
    /// Nodes.
    pub nodes: Vec<NodeInfo>,
    /// Stations.
    pub stations: Vec<StationSpec>,
    /// Passes of every node over every station.
    pub contacts: Vec<ContactWindow>,
    /// ISL windows (shared with every snapshot the ground plans from).
    pub isl: std::sync::Arc<Vec<IslWindow>>,
    /// Tenants.
    pub tenants: Vec<Tenant>,
    /// End of what the ground can plan (the geometry's horizon).
    pub horizon_end: Instant,
    /// How far ahead each plan looks.
    pub plan_ahead: Duration,
    /// Least time between two replans triggered by new jobs.
    pub replan_every: Duration,
    /// Planner options.
    pub planner: PlannerOptions,
    /// Seed for ids.
    pub seed: u64,
}

/// Why a submission was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubmitError {
    /// No such tenant.
    #[error("unknown tenant")]
    UnknownTenant,
    /// The spec is invalid.
    #[error(transparent)]
    Spec(#[from] JobSpecError),
    /// The input bytes do not match the spec's digest or size.
    #[error("input does not match its declared digest and size")]
    InputMismatch,
    /// The tenant's quota would be exceeded.
    #[error("quota exceeded: {0}")]
    Quota(String),
    /// No node of the fleet runs the model: the job could never be planned.
    #[error("no node of the fleet runs model {0}")]
    UnknownModel(ModelId),
    /// The deadline is further ahead than the ground accepts.
    #[error("the deadline is more than {days} days ahead (the most this ground accepts)")]
    DeadlineTooFar {
        /// The limit, days.
        days: f64,
    },
}

/// How far ahead a deadline may be by default: a job must not hold its reservation (and its place in every plan)
/// for longer.
pub const DEFAULT_MAX_DEADLINE_AHEAD: Duration = Duration::from_mins(30 * 24 * 60);

/// A result handed to its tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The job.
    pub job: JobId,
    /// Its tenant.
    pub tenant: TenantId,
    /// The result.
    pub result: Vec<u8>,
    /// When.
    pub at: Instant,
}

struct GroundJob {
    job: Job,
    input: Vec<u8>,
    node: Option<NodeId>,
    /// The node its input was sent to: from then on it stays there (moving it could run it twice).
    sent_to: Option<NodeId>,
    /// When the plan expects the result on the ground.
    planned_delivery: Option<Instant>,
    reserved: Usage,
    /// When its input was handed to a neighbour to relay over an ISL.
    relayed_at: Option<Instant>,
}

/// How long an input handed to a relay is given to reach its node before the ground sends it directly.
pub const RELAY_GRACE: Duration = Duration::from_mins(90);

#[derive(Default)]
struct LinkState {
    /// Incarnation of the node as last heard.
    incarnation: u64,
    /// Station in contact now, if any.
    station: Option<StationId>,
    /// Plan generation sent over the current link session.
    plan_sent: u64,
    /// Inputs sent over the current link session.
    inputs_sent: BTreeSet<JobId>,
    /// Plan generation relayed to the node through neighbours.
    plan_relayed: u64,
    telemetry: Option<NodeTelemetry>,
    /// When the node was last heard from (directly).
    last_heard: Option<Instant>,
    /// Its recent telemetry, oldest first.
    history: VecDeque<NodeTelemetry>,
}

/// Telemetry snapshots kept per node (a node reports at every contact: days of them).
pub const TELEMETRY_KEPT: usize = 500;

/// What the ground knows of one node, for operators.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodeStatus {
    /// The node.
    pub node: NodeId,
    /// The station it is in contact through now, if any.
    pub station: Option<StationId>,
    /// Its incarnation as last heard (0: never heard).
    pub incarnation: u64,
    /// When it was last heard from.
    pub last_heard: Option<Instant>,
    /// Its last telemetry.
    pub telemetry: Option<NodeTelemetry>,
    /// Open jobs placed on it.
    pub jobs: usize,
    /// Its next pass (station, start, end) from now.
    pub next_pass: Option<(StationId, Instant, Instant)>,
    /// Passes that ended since it was last heard from.
    pub missed_passes: usize,
}

/// How serious an alarm is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Needs attention.
    Warning,
    /// Needs action now.
    Critical,
}

/// A condition an operator must see.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Alarm {
    /// How serious.
    pub severity: Severity,
    /// Stable code: battery_low, overheating, node_silent, node_lost, station_down, jobs_expired, relay_forged (and the
    /// service's own).
    pub code: String,
    /// What it is about (a node, a station, a tenant).
    pub subject: String,
    /// What is wrong, in words.
    pub message: String,
}

/// A replan to run off the core: the snapshot to plan from, and what the commit checks.
#[derive(Debug, Clone)]
pub struct PlanTask {
    /// What to plan from.
    pub snapshot: Snapshot,
    /// The plan in force when the snapshot was taken.
    based_on: Option<odc_model::id::PlanId>,
    /// Jobs given to the planner.
    jobs: usize,
    /// Why.
    reason: String,
}

/// Figures of a replan, for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplanRecord {
    /// When.
    pub at: Instant,
    /// Plan generation.
    pub generation: u64,
    /// Jobs given to the planner.
    pub jobs: usize,
    /// Jobs it placed.
    pub planned: usize,
    /// Why it ran.
    pub reason: String,
}

/// The ground core.
pub struct GroundCore {
    config: GroundConfig,
    /// Per model, the first node's throughput (bytes/s), batch set-up (s) and busy power (W): what reservations
    /// are estimated from.
    profiles: BTreeMap<ModelId, (f64, f64, f64)>,
    ids: IdGenerator,
    tenants: BTreeMap<TenantId, (Tenant, Usage, Usage)>,
    jobs: BTreeMap<JobId, GroundJob>,
    keys: BTreeMap<(TenantId, String), JobId>,
    links: BTreeMap<NodeId, LinkState>,
    down_stations: BTreeSet<StationId>,
    lost_nodes: BTreeSet<NodeId>,
    plan: Option<Plan>,
    /// Jobs the plan in force puts on each node, by expected delivery (rebuilt at every replan).
    planned_on: BTreeMap<NodeId, Vec<(Instant, JobId)>>,
    /// Each node's part of the plan in force (split once per replan, not once per contact).
    parts: BTreeMap<NodeId, Plan>,
    /// Jobs whose input the plan in force sends up through each relay node, with the node that runs them.
    up_via: BTreeMap<NodeId, Vec<(JobId, NodeId)>>,
    /// Open jobs by deadline, for expiry without scanning every job.
    deadlines: BTreeSet<(Instant, JobId)>,
    replan_due: Option<(Instant, String)>,
    last_replan: Option<Instant>,
    outgoing: VecDeque<(NodeId, Envelope)>,
    deliveries: VecDeque<Delivery>,
    ledger: Vec<UsageRecord>,
    replans: Vec<ReplanRecord>,
    seq: u64,
    /// Inputs handed to relays, and results that came down through one.
    relay_counts: (u64, u64),
    /// Jobs accepted but not yet durable: no plan includes them until they are.
    held: BTreeSet<JobId>,
    /// Passes a node may miss in a row before it is taken for lost (`None`: never).
    lose_after: Option<usize>,
    /// Jobs whose record changed in a way a restart must not forget (input sent, node reports, expiry).
    dirty: BTreeSet<JobId>,
    /// Seals what the ground relays to nodes and checks what nodes relay down; none: nothing goes either way over
    /// ISLs (a node could not tell the ground's frames from a neighbour's, nor the ground a node's).
    seal: Option<std::sync::Arc<dyn wire::RelaySeal>>,
    /// Frames carried down in a node's name whose seal did not prove it, by the node that carried them.
    relay_forged: BTreeMap<NodeId, u64>,
    /// How far ahead of its submission a job's deadline may be.
    max_deadline_ahead: Duration,
    /// Whether replans run off the core (see [`GroundCore::plan_in_background`]).
    background_planning: bool,
    /// A replan due, ready to be taken and run elsewhere.
    ready_task: Option<PlanTask>,
    /// The replan being made (by the id its plan will have), if any: one at a time.
    planning_in_flight: Option<odc_model::id::PlanId>,
    /// The start of the accounting period each tenant's `used` figures count from.
    periods: BTreeMap<TenantId, Instant>,
    /// The highest plan generation issued or seen held by a node: every new plan is numbered above it, so nodes
    /// (which apply only newer generations) take the plans of a restarted ground.
    generation_floor: u64,
}

impl GroundCore {
    /// A ground with no jobs yet.
    pub fn new(config: GroundConfig) -> GroundCore {
        let tenants = config
            .tenants
            .iter()
            .map(|t| (t.id, (t.clone(), Usage::default(), Usage::default())))
            .collect();
        let links = config
            .nodes
            .iter()
            .map(|n| (n.spec.id.clone(), LinkState::default()))
            .collect();
        let mut profiles = BTreeMap::new();
        for n in &config.nodes {
            for (model, p) in &n.spec.accelerator.models {
                profiles.entry(model.clone()).or_insert((
                    p.input_bytes_per_s,
                    p.batch_setup_s,
                    n.spec.accelerator.busy_power_w,
                ));
            }
        }
        GroundCore {
            profiles,
            ids: IdGenerator::seeded(config.seed ^ 0x6772_6f75_6e64),
            tenants,
            jobs: BTreeMap::new(),
            keys: BTreeMap::new(),
            links,
            down_stations: BTreeSet::new(),
            lost_nodes: BTreeSet::new(),
            plan: None,
            planned_on: BTreeMap::new(),
            parts: BTreeMap::new(),
            up_via: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            replan_due: None,
            last_replan: None,
            outgoing: VecDeque::new(),
            deliveries: VecDeque::new(),
            ledger: Vec::new(),
            replans: Vec::new(),
            seq: 1,
            relay_counts: (0, 0),
            held: BTreeSet::new(),
            lose_after: None,
            dirty: BTreeSet::new(),
            seal: None,
            relay_forged: BTreeMap::new(),
            generation_floor: 0,
            max_deadline_ahead: DEFAULT_MAX_DEADLINE_AHEAD,
            periods: BTreeMap::new(),
            background_planning: false,
            ready_task: None,
            planning_in_flight: None,
            config,
        }
    }

    /// Takes ids from this generator from now on (services give a secure one: a seeded generator's ids can be
    /// worked out from one of them).
    pub fn use_ids(&mut self, ids: IdGenerator) {
        self.ids = ids;
    }

    /// Refuses jobs whose deadline is further than `ahead` from their submission.
    pub fn set_max_deadline_ahead(&mut self, ahead: Duration) {
        self.max_deadline_ahead = ahead;
    }

    /// Numbers every later plan above `generation` (the highest one a previous run of this ground issued).
    pub fn raise_generation_floor(&mut self, generation: u64) {
        self.generation_floor = self.generation_floor.max(generation);
    }

    /// The highest plan generation issued so far (what a restart must number its plans above).
    pub fn generation(&self) -> u64 {
        self.generation_floor
            .max(self.plan.as_ref().map_or(0, |p| p.generation))
    }

    /// Gives the ground its seal: from then on it relays inputs and plans through neighbours (sealed) and takes
    /// in what nodes relay down (when their seal proves them).
    pub fn set_relay_seal(&mut self, seal: std::sync::Arc<dyn wire::RelaySeal>) {
        self.seal = Some(seal);
    }

    /// Frames carried down in another node's name whose seal did not prove it, by carrier: each is a forgery or
    /// an alteration by the carrier or one before it.
    pub fn relay_forged(&self) -> &BTreeMap<NodeId, u64> {
        &self.relay_forged
    }

    /// A tenant submits a job with its input. The job is accepted (quota reserved) or refused with a reason.
    pub fn submit(
        &mut self,
        spec: JobSpec,
        input: Vec<u8>,
        now: Instant,
    ) -> Result<JobId, SubmitError> {
        if let Some(&id) = self.keys.get(&(spec.tenant, spec.idempotency_key.clone())) {
            return Ok(id);
        }
        if !self.tenants.contains_key(&spec.tenant) {
            return Err(SubmitError::UnknownTenant);
        }
        self.roll_periods(now);
        let Some((tenant, used, reserved)) = self.tenants.get(&spec.tenant) else {
            return Err(SubmitError::UnknownTenant);
        };
        spec.validate(now)?;
        if spec.deadline > now + self.max_deadline_ahead {
            return Err(SubmitError::DeadlineTooFar {
                days: self.max_deadline_ahead.as_secs_f64() / 86_400.0,
            });
        }
        if !self.profiles.contains_key(&spec.model) {
            return Err(SubmitError::UnknownModel(spec.model));
        }
        if BlobRef::of(&input) != spec.input {
            return Err(SubmitError::InputMismatch);
        }
        let estimate = self.estimate(&spec);
        if let Some(resource) = used.plus(reserved).plus(&estimate).exceeds(&tenant.quota) {
            return Err(SubmitError::Quota(resource.to_string()));
        }
        let id = self.ids.job(now);
        let mut job = Job::new(id, spec.clone(), now);
        let _ = job.apply(&JobEvent::Accept, now);
        if let Some(t) = self.tenants.get_mut(&spec.tenant) {
            t.2 = t.2.plus(&estimate);
        }
        self.keys
            .insert((spec.tenant, spec.idempotency_key.clone()), id);
        self.deadlines.insert((spec.deadline, id));
        self.jobs.insert(
            id,
            GroundJob {
                job,
                input,
                node: None,
                sent_to: None,
                planned_delivery: None,
                reserved: estimate,
                relayed_at: None,
            },
        );
        self.want_replan(now + self.config.replan_every, "new jobs");
        Ok(id)
    }

    /// A tenant cancels its job (refused once the job has run).
    pub fn cancel(&mut self, tenant: TenantId, id: JobId, now: Instant) -> Result<(), String> {
        let Some(j) = self
            .jobs
            .get_mut(&id)
            .filter(|j| j.job.spec.tenant == tenant)
        else {
            return Err("no such job".into());
        };
        j.job
            .apply(&JobEvent::Cancel, now)
            .map_err(|e| e.why.to_string())?;
        let node = j.node.clone();
        self.release(id);
        if let Some(node) = node {
            self.send_event(&node, id, JobEvent::Cancel, now);
        }
        self.want_replan(now, "cancellation");
        Ok(())
    }

    /// What a job is expected to consume (reserved against the quota until it is delivered or closed).
    fn estimate(&self, spec: &JobSpec) -> Usage {
        let (seconds, wh) =
            self.profiles
                .get(&spec.model)
                .map_or((0.0, 0.0), |&(rate, setup, busy_w)| {
                    // As if it ran alone, set-up included: the most it can be billed, so a job accepted against its
                    // quota is never left out for quota by the planner later.
                    let t = setup + spec.input.size_bytes as f64 / rate.max(1.0);
                    (t, t * busy_w / 3600.0)
                });
        Usage {
            accelerator_s: seconds,
            energy_wh: wh,
            uplink_bytes: spec.input.size_bytes,
            downlink_bytes: spec.output_bound_bytes,
        }
    }

    /// Asks for a replan at `at` (or sooner if one is already asked for); replans are a minute apart at least.
    fn want_replan(&mut self, at: Instant, reason: &str) {
        let at = self
            .last_replan
            .map_or(at, |last| at.max(last + Duration::from_mins(1)));
        match &self.replan_due {
            Some((t, _)) if *t <= at => {}
            _ => self.replan_due = Some((at, reason.to_string())),
        }
    }

    /// A station became unavailable (or available again): plans stop (or start) using it.
    pub fn station_status(&mut self, station: &StationId, up: bool, now: Instant) {
        let changed = if up {
            self.down_stations.remove(station)
        } else {
            self.down_stations.insert(station.clone())
        };
        if changed {
            self.want_replan(now, "station status");
        }
    }

    /// Starts a new accounting period for every tenant whose period has ended: usage counts from zero again
    /// (what open jobs reserve carries over).
    fn roll_periods(&mut self, now: Instant) {
        for (id, (tenant, used, _)) in &mut self.tenants {
            let start = period_start(now, tenant.quota.period);
            let current = self.periods.entry(*id).or_insert(start);
            if *current != start {
                *current = start;
                *used = Usage::default();
            }
        }
    }

    /// Time passes: expire jobs past their deadline, and replan when due.
    pub fn tick(&mut self, now: Instant) {
        self.roll_periods(now);
        let mut expired = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if self.jobs.get(&id).is_some_and(|j| {
                !j.job.state.is_terminal() && !matches!(j.job.state, JobState::Downlinked)
            }) {
                expired.push(id);
            }
        }
        for id in expired {
            if let Some(j) = self.jobs.get_mut(&id)
                && j.job.apply(&JobEvent::Expire, now).is_ok()
            {
                self.dirty.insert(id);
                let node = j.node.clone();
                self.release(id);
                if let Some(node) = node {
                    self.send_event(&node, id, JobEvent::Expire, now);
                }
            }
        }
        if let Some(limit) = self.lose_after {
            let lost: Vec<NodeId> = self
                .missed_passes(now)
                .into_iter()
                .filter(|(n, m)| *m >= limit && !self.lost_nodes.contains(*n))
                .map(|(n, _)| n.clone())
                .collect();
            if !lost.is_empty() {
                self.lost_nodes.extend(lost);
                self.want_replan(now, "node lost");
            }
        }
        if self.planning_in_flight.is_none()
            && self.replan_due.as_ref().is_some_and(|(t, _)| *t <= now)
        {
            let reason = self.replan_due.take().map(|r| r.1).unwrap_or_default();
            if self.background_planning {
                self.ready_task = self.plan_task(now, &reason);
                self.planning_in_flight = self.ready_task.as_ref().map(|t| t.snapshot.plan_id);
            } else {
                self.replan(now, &reason);
            }
        }
    }

    /// Asks for a full replan at `now` (or a minute after the last one).
    pub fn request_replan(&mut self, now: Instant, reason: &str) {
        self.want_replan(now, reason);
    }

    /// Plans off the caller's thread from now on: [`GroundCore::tick`] no longer plans when a replan is due but
    /// readies a [`PlanTask`] (taken with [`GroundCore::take_plan_task`]) for the service to run elsewhere and
    /// hand back with [`GroundCore::commit_plan`]. The twin and tests keep planning inline.
    pub fn plan_in_background(&mut self, on: bool) {
        self.background_planning = on;
    }

    /// The replan a tick found due, to run off the core's lock.
    pub fn take_plan_task(&mut self) -> Option<PlanTask> {
        self.ready_task.take()
    }

    /// Gives up a task that will not come back (its planner failed): the next tick may start another.
    pub fn abandon_plan(&mut self, task_plan: odc_model::id::PlanId, now: Instant) {
        if self.planning_in_flight == Some(task_plan) {
            self.planning_in_flight = None;
            self.want_replan(now, "a replan failed");
        }
    }

    /// When the ground next wants `tick`: a replan or the next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadline = self.deadlines.first().map(|d| d.0);
        [deadline, self.replan_due.as_ref().map(|r| r.0)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Plans again now from everything known, on the caller's thread.
    pub fn replan(&mut self, now: Instant, reason: &str) {
        if let Some(task) = self.plan_task(now, reason) {
            let outcome = odc_planner::plan(&task.snapshot);
            self.planning_in_flight = Some(task.snapshot.plan_id);
            self.commit_plan(task, outcome, now);
        }
    }

    /// What a replan starts from: a snapshot of everything known now (the one step of a replan that needs the
    /// core; planning itself needs only the snapshot).
    fn plan_task(&mut self, now: Instant, reason: &str) -> Option<PlanTask> {
        self.last_replan = Some(now);
        let horizon_end = (now + self.config.plan_ahead).min(self.config.horizon_end);
        if horizon_end <= now {
            return None;
        }
        let jobs: Vec<Job> = self
            .jobs
            .values()
            .filter(|j| {
                // A job whose input is aboard (or on its way to) a lost node waits for that node: sending it
                // elsewhere could run it twice.
                let aboard = j.sent_to.as_ref().or(j
                    .node
                    .as_ref()
                    .filter(|_| j.job.state.rank().is_some_and(|r| r >= 3)));
                !j.job.state.is_terminal()
                    && !matches!(j.job.state, JobState::Downlinked)
                    && !self.held.contains(&j.job.id)
                    && !aboard.is_some_and(|n| self.lost_nodes.contains(n))
            })
            .map(|j| {
                let mut job = j.job.clone();
                if let (JobState::Planned, Some(node)) = (&job.state, &j.sent_to) {
                    // Its input is on the way to that node: plan it there.
                    let _ = job.apply(&JobEvent::Uplink { node: node.clone() }, now);
                }
                job
            })
            .collect();
        let in_horizon = |s: Instant, e: Instant| e > now && s < horizon_end;
        let snapshot = Snapshot {
            now,
            horizon_end,
            plan_id: self.ids.plan(now),
            id_seed: self.config.seed ^ now.unix_ms() as u64,
            previous: self.plan.clone(),
            nodes: self
                .config
                .nodes
                .iter()
                .filter(|n| !self.lost_nodes.contains(&n.spec.id))
                .map(|n| {
                    let t = self
                        .links
                        .get(&n.spec.id)
                        .and_then(|l| l.telemetry.as_ref());
                    NodeInput {
                        spec: n.spec.clone(),
                        altitude_km: n.altitude_km,
                        state_of_charge: t.map_or(n.initial_soc, |t| t.state_of_charge),
                        temp_c: t.map_or(15.0, |t| t.node_temp_c),
                        storage_used_bytes: 0,
                        illumination: n.illumination.clone(),
                    }
                })
                .collect(),
            stations: self
                .config
                .stations
                .iter()
                .filter(|s| !self.down_stations.contains(&s.id))
                .cloned()
                .collect(),
            contacts: self
                .config
                .contacts
                .iter()
                .filter(|c| in_horizon(c.start, c.end) && !self.down_stations.contains(&c.station))
                .cloned()
                .collect(),
            isl: self.config.isl.clone(),
            tenants: self
                .tenants
                .values()
                .map(|(t, used, _)| TenantInput {
                    tenant: t.clone(),
                    used: *used,
                })
                .collect(),
            jobs,
            options: self.config.planner,
        };
        Some(PlanTask {
            based_on: self.plan.as_ref().map(|p| p.id),
            jobs: snapshot.jobs.len(),
            reason: reason.to_string(),
            snapshot,
        })
    }

    /// Puts a plan made from `task` in force, as of `now`. What changed since the snapshot is kept: a job that
    /// moved on (sent, run, cancelled) keeps its state, a job submitted meanwhile waits for the next replan.
    /// A task made before another plan came into force is dropped and a replan asked for.
    pub fn commit_plan(&mut self, task: PlanTask, outcome: odc_planner::PlanOutcome, now: Instant) {
        if self.planning_in_flight != Some(task.snapshot.plan_id) {
            return;
        }
        self.planning_in_flight = None;
        if task.based_on != self.plan.as_ref().map(|p| p.id) {
            self.want_replan(now, "a plan came into force while planning");
            return;
        }
        let mut outcome = outcome;
        if outcome.plan.generation <= self.generation_floor {
            outcome.plan.generation = self.generation_floor + 1;
        }
        self.generation_floor = outcome.plan.generation;
        let plan_id = outcome.plan.id;
        for (id, jp) in &outcome.jobs {
            if let Some(j) = self.jobs.get_mut(id) {
                j.planned_delivery = Some(jp.delivered);
                let pinned = j.sent_to.as_ref().is_some_and(|n| *n != jp.node);
                if matches!(j.job.state, JobState::Accepted | JobState::Planned) && !pinned {
                    let event = JobEvent::Plan {
                        plan: plan_id,
                        batch: jp.batch,
                        node: jp.node.clone(),
                    };
                    if j.job.apply(&event, now).is_ok() {
                        j.node = Some(jp.node.clone());
                    }
                }
            }
        }
        for id in outcome.left_out.keys() {
            if let Some(j) = self.jobs.get_mut(id)
                && j.job.state == JobState::Planned
                && j.sent_to.is_none()
                && let Some(p) = j.job.placement.as_ref().map(|p| p.plan)
                && j.job.apply(&JobEvent::Unplan { plan: p }, now).is_ok()
            {
                j.node = None;
                j.planned_delivery = None;
            }
        }
        self.replans.push(ReplanRecord {
            at: now,
            generation: outcome.plan.generation,
            jobs: task.jobs,
            planned: outcome.jobs.len(),
            reason: task.reason,
        });
        self.plan = Some(outcome.plan);
        self.planned_on.clear();
        for (id, j) in &self.jobs {
            if j.job.state == JobState::Planned
                && let Some(node) = &j.node
            {
                let at = j.planned_delivery.unwrap_or(j.job.spec.deadline);
                self.planned_on
                    .entry(node.clone())
                    .or_default()
                    .push((at, *id));
            }
        }
        for list in self.planned_on.values_mut() {
            list.sort();
        }
        self.parts = self.plan.as_ref().map(Plan::by_node).unwrap_or_default();
        self.up_via.clear();
        if let Some(plan) = &self.plan {
            for r in plan.routes.iter().filter(|r| r.direction == Direction::Up) {
                if let [first, .., last] = r.hops.as_slice()
                    && let (Endpoint::Node(relay), Endpoint::Node(target)) = (&first.to, &last.to)
                    && relay != target
                {
                    self.up_via
                        .entry(relay.clone())
                        .or_default()
                        .push((r.job, target.clone()));
                }
            }
        }
        let linked: Vec<NodeId> = self
            .links
            .iter()
            .filter(|(_, l)| l.station.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for node in linked {
            self.serve(&node, now);
        }
    }

    /// A node came into (or left) contact through a station.
    pub fn handle_contact(&mut self, node: &NodeId, station: Option<StationId>, _now: Instant) {
        if let Some(l) = self.links.get_mut(node) {
            l.station = station;
        }
    }

    /// Whether a node is part of the fleet this ground plans for.
    pub fn knows_node(&self, node: &NodeId) -> bool {
        self.links.contains_key(node)
    }

    /// Geometry for every node up to a later horizon (computed from `from` on): the plans may reach further.
    pub fn extend_horizon(
        &mut self,
        geometry: OrbitGeometry,
        from: Instant,
        end: Instant,
        now: Instant,
    ) {
        if end <= self.config.horizon_end {
            return;
        }
        self.config.horizon_end = end;
        // Passes long over are of no more use to any plan.
        let keep_after = now - Duration::from_hours(24);
        self.config.contacts.retain(|c| c.end > keep_after);
        self.update_orbits(geometry, from, now);
    }

    /// New orbit geometry for some nodes (fresh elements), computed from `from` on: their passes after `from` and
    /// their sunlight are replaced, and the plan is redone with them.
    pub fn update_orbits(&mut self, geometry: OrbitGeometry, from: Instant, now: Instant) {
        let changed: BTreeSet<NodeId> = geometry.nodes.iter().map(|g| g.node.clone()).collect();
        if changed.is_empty() {
            return;
        }
        self.config
            .contacts
            .retain(|c| !(changed.contains(&c.node) && c.end > from));
        self.config.contacts.extend(
            geometry
                .contacts
                .into_iter()
                .filter(|c| changed.contains(&c.node)),
        );
        self.config.contacts.sort_by_key(|c| (c.start, c.end));
        for g in geometry.nodes {
            if let Some(n) = self.config.nodes.iter_mut().find(|n| n.spec.id == g.node) {
                n.altitude_km = g.altitude_km;
                n.illumination = g.illumination;
            }
        }
        self.want_replan(now, "orbit update");
    }

    /// The end of the span the geometry covers.
    pub fn horizon_end(&self) -> Instant {
        self.config.horizon_end
    }

    /// A node's recent telemetry, oldest first (`None` for a node the ground does not know).
    pub fn telemetry(&self, node: &NodeId) -> Option<impl Iterator<Item = &NodeTelemetry>> {
        self.links.get(node).map(|l| l.history.iter())
    }

    /// Every node as the ground knows it at `now`.
    pub fn node_status(&self, now: Instant) -> Vec<NodeStatus> {
        self.config
            .nodes
            .iter()
            .map(|n| {
                let id = &n.spec.id;
                let link = self.links.get(id);
                let last_heard = link.and_then(|l| l.last_heard);
                let passes = self.config.contacts.iter().filter(|c| &c.node == id);
                let next_pass = passes
                    .clone()
                    .filter(|c| c.end > now)
                    .min_by_key(|c| c.start)
                    .map(|c| (c.station.clone(), c.start, c.end));
                let missed_passes = passes
                    .filter(|c| {
                        c.end <= now
                            && last_heard.is_none_or(|h| c.start > h)
                            && !self.down_stations.contains(&c.station)
                    })
                    .count();
                NodeStatus {
                    node: id.clone(),
                    station: link.and_then(|l| l.station.clone()),
                    incarnation: link.map_or(0, |l| l.incarnation),
                    last_heard,
                    telemetry: link.and_then(|l| l.telemetry.clone()),
                    jobs: self
                        .jobs
                        .values()
                        .filter(|j| !j.job.state.is_terminal() && j.node.as_ref() == Some(id))
                        .count(),
                    next_pass,
                    missed_passes,
                }
            })
            .collect()
    }

    /// The conditions operators must see now: nodes short of charge or hot (from their last telemetry), nodes
    /// silent through their passes, stations down, jobs that expired.
    pub fn alarms(&self, now: Instant) -> Vec<Alarm> {
        let mut out = Vec::new();
        let mut alarm = |severity, code: &str, subject: String, message: String| {
            out.push(Alarm {
                severity,
                code: code.into(),
                subject,
                message,
            });
        };
        let specs: BTreeMap<&NodeId, &NodeSpec> = self
            .config
            .nodes
            .iter()
            .map(|n| (&n.spec.id, &n.spec))
            .collect();
        for status in self.node_status(now) {
            let Some(spec) = specs.get(&status.node) else {
                continue;
            };
            if let Some(t) = &status.telemetry {
                let floor = spec.power.min_state_of_charge;
                if t.state_of_charge < floor + 0.05 {
                    let severity = if t.state_of_charge < floor {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    };
                    alarm(
                        severity,
                        "battery_low",
                        status.node.to_string(),
                        format!(
                            "state of charge {:.0}% at {} (floor {:.0}%)",
                            t.state_of_charge * 100.0,
                            t.at,
                            floor * 100.0
                        ),
                    );
                }
                let ceiling = spec.thermal.max_temp_c;
                if t.node_temp_c > ceiling - 5.0 {
                    let severity = if t.node_temp_c > ceiling {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    };
                    alarm(
                        severity,
                        "overheating",
                        status.node.to_string(),
                        format!(
                            "{:.1} °C at {} (limit {ceiling:.0} °C)",
                            t.node_temp_c, t.at
                        ),
                    );
                }
            }
            if self.lost_nodes.contains(&status.node) {
                alarm(
                    Severity::Critical,
                    "node_lost",
                    status.node.to_string(),
                    format!(
                        "silent through {} passes: plans leave it out; jobs aboard wait for it",
                        status.missed_passes
                    ),
                );
            } else if status.missed_passes >= 2 {
                let since = status
                    .last_heard
                    .map_or_else(|| "never heard".to_string(), |t| format!("last heard {t}"));
                alarm(
                    Severity::Warning,
                    "node_silent",
                    status.node.to_string(),
                    format!("silent through {} passes ({since})", status.missed_passes),
                );
            }
        }
        for station in &self.down_stations {
            alarm(
                Severity::Warning,
                "station_down",
                station.to_string(),
                "marked down: plans leave it out".into(),
            );
        }
        let mut expired: BTreeMap<TenantId, usize> = BTreeMap::new();
        for j in self.jobs.values() {
            if j.job.state == JobState::Expired {
                *expired.entry(j.job.spec.tenant).or_default() += 1;
            }
        }
        for (tenant, n) in expired {
            alarm(
                Severity::Warning,
                "jobs_expired",
                tenant.to_string(),
                format!("{n} job(s) passed their deadline undelivered"),
            );
        }
        for (carrier, n) in &self.relay_forged {
            alarm(
                Severity::Critical,
                "relay_forged",
                carrier.to_string(),
                format!(
                    "carried down {n} frame(s) in another node's name that its seal does not prove: refused; \
                     the carrier or a node before it forged or altered them"
                ),
            );
        }
        out
    }

    /// The stations, each with whether it is up.
    pub fn stations(&self) -> impl Iterator<Item = (&StationSpec, bool)> {
        self.config
            .stations
            .iter()
            .map(|s| (s, !self.down_stations.contains(&s.id)))
    }

    /// The station a node reaches the ground through at `now`: the pass it is in (of the stations that are up), or
    /// failing that the pass nearest in time (clocks of separate processes differ by a little at a pass's edges).
    /// `None` for a node the ground does not know or one with no pass at all.
    pub fn station_for(&self, node: &NodeId, now: Instant) -> Option<StationId> {
        let distance = |c: &ContactWindow| {
            if now < c.start {
                c.start - now
            } else if now > c.end {
                now - c.end
            } else {
                Duration::ZERO
            }
        };
        self.config
            .contacts
            .iter()
            .filter(|c| &c.node == node && !self.down_stations.contains(&c.station))
            .min_by_key(|c| distance(c))
            .map(|c| c.station.clone())
    }

    /// The link to a node was reset (its transport session was lost, e.g. at a restart): what was sent over it
    /// may not have arrived, so it will be sent again.
    pub fn link_reset(&mut self, node: &NodeId) {
        if let Some(l) = self.links.get_mut(node) {
            l.plan_sent = 0;
            l.inputs_sent.clear();
        }
    }

    /// Sends a linked node what it lacks: the plan in force, then the inputs of its planned jobs, earliest first.
    fn serve(&mut self, node: &NodeId, now: Instant) {
        let Some(plan) = &self.plan else {
            return;
        };
        let generation = plan.generation;
        let sent = self.links.get(node).map_or(u64::MAX, |l| l.plan_sent);
        if sent < generation {
            if let Some(part) = self.part_for(node) {
                self.send(node, Message::PlanUpdate(PlanUpdate { plan: part }), now);
            }
            if let Some(l) = self.links.get_mut(node) {
                l.plan_sent = generation;
            }
        }
        let due: Vec<JobId> = self
            .planned_on
            .get(node)
            .into_iter()
            .flatten()
            .map(|&(_, id)| id)
            .filter(|id| {
                self.jobs.get(id).is_some_and(|j| {
                    j.node.as_ref() == Some(node)
                        && j.job.state == JobState::Planned
                        && j.sent_to.as_ref().is_none_or(|n| n == node)
                        && j.relayed_at.is_none_or(|t| now >= t + RELAY_GRACE)
                })
            })
            .filter(|id| {
                self.links
                    .get(node)
                    .is_some_and(|l| !l.inputs_sent.contains(id))
            })
            .collect();
        for id in due {
            let Some(j) = self.jobs.get(&id) else {
                continue;
            };
            let chunk = InputChunk {
                job: id,
                spec: j.job.spec.clone(),
                offset: 0,
                data: j.input.clone(),
            };
            self.send(node, Message::InputChunk(chunk), now);
            if let Some(l) = self.links.get_mut(node) {
                l.inputs_sent.insert(id);
            }
            if let Some(j) = self.jobs.get_mut(&id) {
                j.sent_to = Some(node.clone());
                self.dirty.insert(id);
            }
        }
        self.serve_relayed(node, now);
    }

    /// Hands a linked node the inputs (and the plan) of neighbours the plan reaches through it over an ISL.
    fn serve_relayed(&mut self, relay: &NodeId, now: Instant) {
        let Some(list) = self.up_via.get(relay) else {
            return;
        };
        let due: Vec<(JobId, NodeId)> = list
            .iter()
            .filter(|(id, target)| {
                self.jobs.get(id).is_some_and(|j| {
                    j.node.as_ref() == Some(target)
                        && j.job.state == JobState::Planned
                        && j.sent_to.as_ref().is_none_or(|n| n == target)
                        && j.relayed_at.is_none()
                        && !j.input.is_empty()
                })
            })
            .cloned()
            .collect();
        for (id, target) in due {
            let generation = self.plan.as_ref().map_or(0, |p| p.generation);
            let behind = self
                .links
                .get(&target)
                .is_some_and(|l| l.plan_sent < generation && l.plan_relayed < generation);
            if behind && let Some(part) = self.part_for(&target) {
                let inner = self.envelope(Message::PlanUpdate(PlanUpdate { plan: part }), now);
                let expires = now + self.config.plan_ahead;
                if self.relay_to(relay, &target, &inner, expires, now)
                    && let Some(l) = self.links.get_mut(&target)
                {
                    l.plan_relayed = generation;
                }
            }
            let Some(j) = self.jobs.get(&id) else {
                continue;
            };
            let deadline = j.job.spec.deadline;
            let chunk = InputChunk {
                job: id,
                spec: j.job.spec.clone(),
                offset: 0,
                data: j.input.clone(),
            };
            let inner = self.envelope(Message::InputChunk(chunk), now);
            if self.relay_to(relay, &target, &inner, deadline, now)
                && let Some(j) = self.jobs.get_mut(&id)
            {
                j.sent_to = Some(target);
                self.dirty.insert(id);
                j.relayed_at = Some(now);
                self.relay_counts.0 += 1;
            }
        }
    }

    /// A node's part of the plan in force.
    fn part_for(&self, node: &NodeId) -> Option<Plan> {
        let plan = self.plan.as_ref()?;
        Some(
            self.parts
                .get(node)
                .cloned()
                .unwrap_or_else(|| plan.header()),
        )
    }

    /// Sends `inner` to `target` through the linked node `relay`; false if it cannot be framed.
    fn relay_to(
        &mut self,
        relay: &NodeId,
        target: &NodeId,
        inner: &Envelope,
        expires_at: Instant,
        now: Instant,
    ) -> bool {
        let Some(seal) = self.seal.clone() else {
            return false;
        };
        let Ok(frame) = wire::encode(inner) else {
            return false;
        };
        // The outer envelope adds well under a kilobyte; a frame too close to the limit goes directly instead.
        if frame.len() + 1024 > wire::MAX_FRAME_BYTES {
            return false;
        }
        let message = Message::Relay(Relay {
            destination: Endpoint::Node(target.clone()),
            expires_at,
            hops: 0,
            seal: seal.seal(&frame),
            frame,
        });
        let envelope = self.envelope(message, now);
        self.outgoing.push_back((relay.clone(), envelope));
        true
    }

    /// A message from a node (delivered once by the link).
    pub fn handle_message(&mut self, node: &NodeId, envelope: Envelope, now: Instant) {
        if let Some(l) = self.links.get_mut(node) {
            l.last_heard = Some(now);
        }
        if self.lost_nodes.remove(node) {
            self.want_replan(now, "node back");
        }
        match envelope.message {
            Message::Hello(hello) => {
                if hello.plan_generation > self.generation() && self.links.contains_key(node) {
                    // The node holds a plan numbered above ours (a ground whose store lost its last
                    // generation): it would refuse ours, so plan again above it.
                    self.generation_floor = hello.plan_generation;
                    self.want_replan(now, "a node holds a newer plan generation");
                }
                let Some(l) = self.links.get_mut(node) else {
                    return;
                };
                if envelope.incarnation != l.incarnation {
                    // A restarted node: whatever went over its old session must go again.
                    let restarted = l.incarnation != 0;
                    l.incarnation = envelope.incarnation;
                    l.plan_sent = hello.plan_generation;
                    l.inputs_sent.clear();
                    if restarted {
                        self.want_replan(now, "node restarted");
                    }
                } else {
                    l.plan_sent = l.plan_sent.max(hello.plan_generation);
                }
                self.serve(node, now);
            }
            Message::Telemetry(t) => {
                if let Some(l) = self.links.get_mut(node) {
                    if l.history.len() == TELEMETRY_KEPT {
                        l.history.pop_front();
                    }
                    l.history.push_back(t.clone());
                    l.telemetry = Some(t);
                }
            }
            Message::JobUpdates(updates) => {
                for u in updates.updates {
                    self.apply_report(node, u.job, u.event, now);
                }
            }
            Message::ResultChunk(chunk) => {
                let station = self.links.get(node).and_then(|l| l.station.clone());
                self.take_result(node, station, chunk, now)
            }
            Message::Relay(relay) => self.take_relayed(node, relay, now),
            _ => {}
        }
    }

    /// A frame a node carried down for a neighbour: applied as that neighbour's report, through the station the
    /// carrier is in contact with. Only reports travel this way (a hello belongs to the node's own link).
    fn take_relayed(&mut self, carrier: &NodeId, relay: Relay, now: Instant) {
        if !matches!(relay.destination, Endpoint::Station(_)) {
            return;
        }
        let Ok(inner) = wire::decode(&relay.frame) else {
            return;
        };
        let Sender::Node(origin) = &inner.sender else {
            return;
        };
        if origin == carrier || !self.links.contains_key(origin) {
            return;
        }
        let proven = self
            .seal
            .as_ref()
            .map(|s| s.verify(&inner.sender, &relay.frame, &relay.seal));
        match proven {
            Some(Ok(())) => {}
            Some(Err(_)) => {
                *self.relay_forged.entry(carrier.clone()).or_default() += 1;
                return;
            }
            None => return,
        }
        let origin = origin.clone();
        match inner.message {
            Message::JobUpdates(updates) => {
                for u in updates.updates {
                    self.apply_report(&origin, u.job, u.event, now);
                }
            }
            Message::ResultChunk(chunk) => {
                self.relay_counts.1 += 1;
                let station = self.links.get(carrier).and_then(|l| l.station.clone());
                self.take_result(&origin, station, chunk, now);
            }
            _ => {}
        }
    }

    /// If the ground has closed this job, tells the node again (its receipt may have been lost) and says so.
    fn closed_resend(&mut self, node: &NodeId, id: JobId, now: Instant) -> bool {
        let Some(state) = self
            .jobs
            .get(&id)
            .map(|j| &j.job.state)
            .filter(|s| s.is_terminal())
        else {
            return false;
        };
        let close = closing_event(state);
        self.send_event(node, id, close, now);
        true
    }

    fn apply_report(&mut self, node: &NodeId, id: JobId, event: JobEvent, now: Instant) {
        if self.closed_resend(node, id, now) {
            return;
        }
        let Some(j) = self.jobs.get_mut(&id) else {
            return;
        };
        if let JobEvent::Uplink { node: n }
        | JobEvent::Enqueue { node: n }
        | JobEvent::Start { node: n, .. } = &event
        {
            j.node = Some(n.clone());
        }
        if matches!(event, JobEvent::Enqueue { .. }) {
            // The node has committed the input: the ground's copy is no longer needed.
            j.input = Vec::new();
        }
        let failed = matches!(event, JobEvent::Fail { .. });
        let applied = j.job.apply(&event, now);
        if matches!(applied, Ok(Outcome::Applied { .. })) {
            self.dirty.insert(id);
        }
        if let Ok(Outcome::Applied { .. }) = applied
            && failed
        {
            self.release(id);
            self.send_event(
                node,
                id,
                JobEvent::Fail {
                    reason: failure_of(&self.jobs[&id].job.state),
                },
                now,
            );
        }
    }

    fn take_result(
        &mut self,
        node: &NodeId,
        station: Option<StationId>,
        chunk: ResultChunk,
        now: Instant,
    ) {
        let (id, output, data) = (chunk.job, chunk.output, chunk.data);
        if self.closed_resend(node, id, now) {
            return;
        }
        let Some(j) = self.jobs.get_mut(&id) else {
            return;
        };
        if BlobRef::of(&data) != output {
            // Corrupted on the way: the node still holds it and sends it again at the next contact.
            return;
        }
        let Some(station) = station.or_else(|| self.config.stations.first().map(|s| s.id.clone()))
        else {
            return;
        };
        if j.job.state.rank().is_some_and(|r| r < 6) {
            // The result overtook the node's Finish report: the result itself is the proof, and carries the run's
            // figures for billing.
            let _ = j.job.apply(
                &JobEvent::Finish {
                    output,
                    accelerator_s: chunk.accelerator_s,
                    energy_wh: chunk.energy_wh,
                },
                now,
            );
        }
        if j.job
            .apply(&JobEvent::Downlink { station, output }, now)
            .is_err()
        {
            return;
        }
        if j.job.apply(&JobEvent::Deliver, now).is_ok() {
            let usage = Usage {
                accelerator_s: j.job.accelerator_s,
                energy_wh: j.job.energy_wh,
                uplink_bytes: j.job.spec.input.size_bytes,
                downlink_bytes: output.size_bytes,
            };
            let tenant = j.job.spec.tenant;
            self.ledger.push(UsageRecord {
                job: id,
                tenant,
                node: j.node.clone(),
                at: now,
                usage,
            });
            self.deliveries.push_back(Delivery {
                job: id,
                tenant,
                result: data,
                at: now,
            });
            self.release(id);
            if let Some(t) = self.tenants.get_mut(&tenant) {
                t.1 = t.1.plus(&usage);
            }
        }
        self.send_event(node, id, JobEvent::Deliver, now);
    }

    /// Frees a closed job's reservation and its input.
    fn release(&mut self, id: JobId) {
        let Some(j) = self.jobs.get_mut(&id) else {
            return;
        };
        let r = std::mem::take(&mut j.reserved);
        j.input = Vec::new();
        if let Some(t) = self.tenants.get_mut(&j.job.spec.tenant) {
            t.2 = Usage {
                accelerator_s: (t.2.accelerator_s - r.accelerator_s).max(0.0),
                energy_wh: (t.2.energy_wh - r.energy_wh).max(0.0),
                uplink_bytes: t.2.uplink_bytes.saturating_sub(r.uplink_bytes),
                downlink_bytes: t.2.downlink_bytes.saturating_sub(r.downlink_bytes),
            };
        }
    }

    fn send_event(&mut self, node: &NodeId, job: JobId, event: JobEvent, now: Instant) {
        let update = JobUpdate {
            job,
            event,
            at: now,
        };
        if let Some((
            n,
            Envelope {
                message: Message::JobUpdates(u),
                ..
            },
        )) = self.outgoing.back_mut()
            && n == node
            && u.updates.len() < 256
        {
            u.updates.push(update);
            return;
        }
        self.send(
            node,
            Message::JobUpdates(JobUpdates {
                updates: vec![update],
            }),
            now,
        );
    }

    fn send(&mut self, node: &NodeId, message: Message, now: Instant) {
        let envelope = self.envelope(message, now);
        self.outgoing.push_back((node.clone(), envelope));
    }

    fn envelope(&mut self, message: Message, now: Instant) -> Envelope {
        let seq = self.seq;
        self.seq += 1;
        Envelope {
            version: odc_model::wire::PROTOCOL,
            sender: Sender::Ground,
            incarnation: 1,
            seq,
            sent_at: now,
            message,
        }
    }

    /// The next message for a node.
    pub fn poll_outgoing(&mut self) -> Option<(NodeId, Envelope)> {
        self.outgoing.pop_front()
    }

    /// The next result handed to a tenant.
    pub fn poll_delivery(&mut self) -> Option<Delivery> {
        self.deliveries.pop_front()
    }

    /// A fresh tenant id (time-sortable, from the ground's seeded generator).
    pub fn new_tenant_id(&mut self, now: Instant) -> TenantId {
        self.ids.tenant(now)
    }

    /// Every tenant with its usage and reservations.
    pub fn tenants(&self) -> impl Iterator<Item = (&Tenant, Usage, Usage)> {
        self.tenants.values().map(|(t, u, r)| (t, *u, *r))
    }

    /// Changes a known tenant's account (name, quota, share weight); its usage and reservations are kept, jobs
    /// already accepted stay accepted, and the next plan weighs it anew. False for an unknown tenant.
    pub fn update_tenant(&mut self, tenant: Tenant, now: Instant) -> bool {
        let Some(entry) = self.tenants.get_mut(&tenant.id) else {
            return false;
        };
        if entry.0 != tenant {
            entry.0 = tenant;
            self.want_replan(now, "tenant changed");
        }
        true
    }

    /// Adds a tenant (or replaces its account; its usage so far is kept).
    pub fn add_tenant(&mut self, tenant: Tenant) {
        let entry = self
            .tenants
            .entry(tenant.id)
            .or_insert_with(|| (tenant.clone(), Usage::default(), Usage::default()));
        entry.0 = tenant;
    }

    /// Rebuilds what a restarted ground had accepted: open jobs with their inputs (as the store kept them) and
    /// each tenant's usage so far. Reservations are estimated again; a replan follows at the next tick.
    pub fn restore(&mut self, jobs: Vec<(Job, Vec<u8>)>, used: &[(TenantId, Usage)], now: Instant) {
        self.roll_periods(now);
        for (tenant, usage) in used {
            if let Some(t) = self.tenants.get_mut(tenant) {
                t.1 = *usage;
            }
        }
        for (job, input) in jobs {
            if job.state.is_terminal() || self.jobs.contains_key(&job.id) {
                continue;
            }
            let estimate = self.estimate(&job.spec);
            if let Some(t) = self.tenants.get_mut(&job.spec.tenant) {
                t.2 = t.2.plus(&estimate);
            }
            self.keys
                .insert((job.spec.tenant, job.spec.idempotency_key.clone()), job.id);
            self.deadlines.insert((job.spec.deadline, job.id));
            // A planned job is stored only once its input was sent: it stays pinned to that node.
            let sent_to = (job.state == JobState::Planned)
                .then(|| job.placement.as_ref().map(|p| p.node.clone()))
                .flatten();
            self.jobs.insert(
                job.id,
                GroundJob {
                    node: job.placement.as_ref().map(|p| p.node.clone()),
                    job,
                    input,
                    sent_to,
                    planned_delivery: None,
                    reserved: estimate,
                    relayed_at: None,
                },
            );
        }
        self.want_replan(now, "restart");
    }

    /// Whether some node of the fleet runs this model (a job for any other could never be planned).
    pub fn runs_model(&self, model: &ModelId) -> bool {
        self.profiles.contains_key(model)
    }

    /// The job a tenant's idempotency key already names, if any.
    pub fn job_for_key(&self, tenant: TenantId, key: &str) -> Option<JobId> {
        self.keys.get(&(tenant, key.to_string())).copied()
    }

    /// One job, as the state machine has it.
    pub fn job(&self, id: JobId) -> Option<&Job> {
        self.jobs.get(&id).map(|j| &j.job)
    }

    /// A tenant's account, if known.
    pub fn tenant(&self, id: TenantId) -> Option<&Tenant> {
        self.tenants.get(&id).map(|t| &t.0)
    }

    /// Takes a node for lost once it has been silent through `passes` passes in a row (over stations that are up):
    /// plans then put nothing on it, and jobs whose input is aboard it wait for it. Heard again, it is back.
    /// `None` (the default, and the twin's) never takes a node for lost.
    pub fn lose_silent_nodes_after(&mut self, passes: Option<usize>) {
        self.lose_after = passes.filter(|&p| p > 0);
    }

    /// Nodes taken for lost.
    pub fn lost_nodes(&self) -> impl Iterator<Item = &NodeId> {
        self.lost_nodes.iter()
    }

    /// Passes each node has missed since it was last heard from (over stations that are up), by node.
    fn missed_passes(&self, now: Instant) -> BTreeMap<&NodeId, usize> {
        let mut missed: BTreeMap<&NodeId, usize> = BTreeMap::new();
        for c in &self.config.contacts {
            if c.end > now || self.down_stations.contains(&c.station) {
                continue;
            }
            let heard = self.links.get(&c.node).and_then(|l| l.last_heard);
            if heard.is_none_or(|h| c.start > h) {
                *missed.entry(&c.node).or_default() += 1;
            }
        }
        missed
    }

    /// Jobs whose record changed since the last call in a way a restart must not forget (an input sent to a node,
    /// a node's report, an expiry): the service stores them before the messages behind them leave.
    pub fn take_dirty(&mut self) -> Vec<Job> {
        let ids = std::mem::take(&mut self.dirty);
        ids.into_iter()
            .filter_map(|id| self.jobs.get(&id).map(|j| j.job.clone()))
            .collect()
    }

    /// Keeps a just-accepted job out of every plan until [`GroundCore::confirm`] says it is durable, so nothing
    /// is sent to a node for a job that a failed commit may still withdraw.
    pub fn hold(&mut self, id: JobId) {
        if self.jobs.contains_key(&id) {
            self.held.insert(id);
        }
    }

    /// A held job is durable: plans may take it from now on.
    pub fn confirm(&mut self, id: JobId, now: Instant) {
        if self.held.remove(&id) {
            // As any new job: planned at the next replan, at most `replan_every` away (a burst of submissions
            // must not make every minute a full replan).
            self.want_replan(now + self.config.replan_every, "new jobs");
        }
    }

    /// Lets a job held by [`GroundCore::hold`] into plans again without a replan (a change that was not made).
    pub fn release_hold(&mut self, id: JobId) {
        self.held.remove(&id);
    }

    /// Marks a job's record for the store (its state is the truth over what was written for it last).
    pub fn mark_dirty(&mut self, id: JobId) {
        if self.jobs.contains_key(&id) {
            self.dirty.insert(id);
        }
    }

    /// Whether a job is accepted but not yet durable.
    pub fn is_held(&self, id: JobId) -> bool {
        self.held.contains(&id)
    }

    /// Undoes an acceptance that could not be made durable (the store failed before the tenant was told): the
    /// job, its idempotency key and its reservation go, as if it had been refused. Only an `Accepted` job.
    pub fn withdraw(&mut self, id: JobId) -> bool {
        if !self
            .jobs
            .get(&id)
            .is_some_and(|j| j.job.state == JobState::Accepted)
        {
            return false;
        }
        self.release(id);
        self.held.remove(&id);
        if let Some(j) = self.jobs.remove(&id) {
            self.keys
                .remove(&(j.job.spec.tenant, j.job.spec.idempotency_key.clone()));
            self.deadlines.remove(&(j.job.spec.deadline, id));
        }
        true
    }

    /// Every job, for reports and checks.
    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.values().map(|j| &j.job)
    }

    /// The billing ledger: one record per delivered job.
    pub fn ledger(&self) -> &[UsageRecord] {
        &self.ledger
    }

    /// Replans so far.
    pub fn replans(&self) -> &[ReplanRecord] {
        &self.replans
    }

    /// Inputs handed to a neighbour to relay over an ISL, and results that came down through one.
    pub fn relay_counts(&self) -> (u64, u64) {
        self.relay_counts
    }

    /// The plan in force.
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// A tenant's consumption and what is reserved for its open jobs.
    pub fn usage(&self, tenant: TenantId) -> Option<(Usage, Usage)> {
        self.tenants.get(&tenant).map(|t| (t.1, t.2))
    }

    /// The start of a tenant's current accounting period, as of the last tick or submission.
    pub fn period_of(&self, tenant: TenantId) -> Option<Instant> {
        self.periods.get(&tenant).copied()
    }
}

/// The event the ground sends a node to close a job it holds.
/// The start of the accounting period that holds `now`: periods are consecutive windows of `period` counted from
/// the Unix epoch (a day-long period is a UTC day). A period of zero or less is one window that never ends.
pub fn period_start(now: Instant, period: Duration) -> Instant {
    let p = period.as_millis();
    if p <= 0 {
        return Instant::EPOCH;
    }
    Instant::from_unix_ms(now.unix_ms() - now.unix_ms().rem_euclid(p))
}

fn closing_event(state: &JobState) -> JobEvent {
    match state {
        JobState::Cancelled => JobEvent::Cancel,
        JobState::Expired => JobEvent::Expire,
        JobState::Failed { reason } => JobEvent::Fail {
            reason: reason.clone(),
        },
        _ => JobEvent::Deliver,
    }
}

fn failure_of(state: &JobState) -> FailureReason {
    match state {
        JobState::Failed { reason } => reason.clone(),
        _ => FailureReason::Other {
            message: "failed".into(),
        },
    }
}
