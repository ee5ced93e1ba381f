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
use odc_planner::{
    Change, ContactWindow, IslWindow, NodeInput, Planner, PlannerOptions, Snapshot, TenantInput,
};
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

/// Most forgotten jobs a node may ask about at once (the service looks each up in its store): a node reporting
/// a flood of unknown ids costs the store no more than this per round.
pub const MAX_LOOKUPS: usize = 4096;

/// Most input bytes asked of the store in one round while inputs live there: what a contact holds in memory at
/// once beyond what its link is sending.
pub const INPUT_ROUND_BYTES: u64 = 64 << 20;

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
    /// What it is billed.
    pub usage: UsageRecord,
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
    /// Stable code: battery_low, overheating, node_silent, node_lost, station_down, jobs_expired, relay_forged,
    /// report_foreign (and the
    /// service's own).
    pub code: String,
    /// What it is about (a node, a station, a tenant).
    pub subject: String,
    /// What is wrong, in words.
    pub message: String,
}

/// A replan to run off the core (a full one from a snapshot, or a repair of the plan in force), and what the
/// commit checks.
#[derive(Debug, Clone)]
pub struct PlanTask {
    work: Work,
    /// The id its plan will have.
    plan_id: odc_model::id::PlanId,
    /// The plan in force when the task was made.
    based_on: Option<odc_model::id::PlanId>,
    /// Jobs given to the planner.
    jobs: usize,
    /// Why.
    reason: String,
}

/// What a plan task does.
#[derive(Debug, Clone)]
enum Work {
    /// Plans from scratch.
    Full(Box<Snapshot>),
    /// Repairs the plan in force: its planner state, with new jobs placed and changes applied, no booking
    /// before `at`.
    Repair {
        planner: Box<Planner>,
        changes: Vec<Change>,
        at: Instant,
    },
}

/// A plan task done: its plan, and the planner state it came from (what later repairs start from).
pub struct PlanDone {
    plan_id: odc_model::id::PlanId,
    based_on: Option<odc_model::id::PlanId>,
    jobs: usize,
    reason: String,
    full: bool,
    planner: Box<Planner>,
    /// Each node's part of the plan, split here rather than under the core's lock.
    parts: BTreeMap<NodeId, Plan>,
    outcome: odc_planner::PlanOutcome,
}

impl PlanTask {
    /// The id its plan will have.
    pub fn id(&self) -> odc_model::id::PlanId {
        self.plan_id
    }

    /// Whether it plans from scratch (rather than repairing the plan in force).
    pub fn is_full(&self) -> bool {
        matches!(self.work, Work::Full(_))
    }

    /// Does the planning: pure computation, on whatever thread the caller likes.
    pub fn run(self) -> PlanDone {
        let full = self.is_full();
        let PlanTask {
            work,
            plan_id,
            based_on,
            jobs,
            reason,
        } = self;
        let (planner, outcome) = match work {
            Work::Full(snapshot) => {
                let (planner, outcome) = odc_planner::plan_state(&snapshot);
                (Box::new(planner), outcome)
            }
            Work::Repair {
                mut planner,
                changes,
                at,
            } => {
                planner.advance(at);
                let mut outcome = None;
                for change in &changes {
                    outcome = Some(planner.apply(change, plan_id));
                }
                let mut outcome = outcome.unwrap_or_else(|| planner.outcome());
                // However many changes went in, the successor of the plan in force.
                outcome.plan.parent = based_on;
                (planner, outcome)
            }
        };
        let parts = outcome.plan.by_node();
        PlanDone {
            plan_id,
            based_on,
            jobs,
            reason,
            full,
            planner,
            parts,
            outcome,
        }
    }
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
    /// Whether it planned from scratch (otherwise it repaired the plan in force).
    pub full: bool,
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
    /// Reports and results refused because they came from a node the job was not sent to, by that node.
    reports_foreign: BTreeMap<NodeId, u64>,
    /// How far ahead of its submission a job's deadline may be.
    max_deadline_ahead: Duration,
    /// Whether replans run off the core (see [`GroundCore::plan_in_background`]).
    background_planning: bool,
    /// A replan due, ready to be taken and run elsewhere.
    ready_task: Option<PlanTask>,
    /// The replan being made (by the id its plan will have), if any: one at a time.
    planning_in_flight: Option<odc_model::id::PlanId>,
    /// The planner state of the plan in force (none while a task holds it, or before the first plan): what a
    /// repair starts from.
    planner: Option<Box<Planner>>,
    /// Jobs accepted since the plan in force was made, for the next repair to place.
    to_place: BTreeSet<JobId>,
    /// Changes since the plan in force was made (a node lost, a station down, a job cancelled), for the next
    /// repair to apply.
    changes: Vec<Change>,
    /// Whether closed jobs, the ledger and replan records are kept in memory (the twin and tests read them); a
    /// service keeps only open jobs and forgets closed ones once they are durable ([`GroundCore::forget_closed`]).
    keep_history: bool,
    /// Jobs a node reported that this core does not hold (forgotten once closed, or never known): the service looks
    /// each up in its store and tells the node how the job ended ([`GroundCore::remind_closed`]).
    lookups: BTreeSet<(NodeId, JobId)>,
    /// Whether inputs live in the service's store rather than here: the core then holds an input only while it
    /// sends it ([`GroundCore::inputs_in_store`]).
    inputs_in_store: bool,
    /// Inputs a node in contact is due that the core does not hold, for the service to load.
    wanted_inputs: BTreeSet<JobId>,
    /// Inputs asked of the service and not yet provided.
    inputs_asked: BTreeSet<JobId>,
    /// The start of the accounting period each tenant's `used` figures count from.
    periods: BTreeMap<TenantId, Instant>,
    /// The highest plan generation issued or seen held by a node: every new plan is numbered above it, so nodes
    /// (which apply only newer generations) take the plans of a restarted ground.
    generation_floor: u64,
}

mod alarms;
mod intake;
mod plan;
mod reconcile;
mod serve;

pub use intake::period_start;

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
            reports_foreign: BTreeMap::new(),
            generation_floor: 0,
            max_deadline_ahead: DEFAULT_MAX_DEADLINE_AHEAD,
            periods: BTreeMap::new(),
            keep_history: true,
            lookups: BTreeSet::new(),
            inputs_in_store: false,
            wanted_inputs: BTreeSet::new(),
            inputs_asked: BTreeSet::new(),
            background_planning: false,
            ready_task: None,
            planning_in_flight: None,
            planner: None,
            to_place: BTreeSet::new(),
            changes: Vec::new(),
            config,
        }
    }
}
