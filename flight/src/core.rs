//! The flight core: everything a node decides, with no IO and no clock of its own.
//!
//! Fed: messages from the ground ([`FlightCore::handle_message`]), contact changes, sensor readings
//! ([`FlightCore::tick`]) and finished batches ([`FlightCore::batch_done`]). Gives back: messages to send
//! ([`FlightCore::poll_outgoing`]), batches to run ([`FlightCore::poll_action`]) and when it next wants to be woken
//! ([`FlightCore::poll_timeout`]).
//!
//! **Durability.** Everything in [`Durable`] is what a daemon commits before it acknowledges anything: a node that
//! restarts is rebuilt from it ([`FlightCore::recover`]) with a new incarnation; a batch that was running goes back
//! to the queue. Every job is keyed by id and every report is idempotent, so the ground may resend and the node
//! may report again: nothing runs twice and nothing is lost.
//!
//! **Relay.** Over inter-satellite links a node carries other nodes' traffic as [`Relay`] frames, store and
//! forward: a frame for a neighbour waits (durably) until an ISL to it is up, a frame for the ground until this
//! node's next contact. A node whose plan routes a result down through a neighbour hands it over that ISL instead
//! of waiting for its own pass. Relaying only ever speeds things up: the node keeps every result until the
//! ground's receipt and sends it directly at a later contact if the relayed copy has not been acknowledged by
//! then, and the ground treats a second copy as the duplicate it is.

use crate::governor::{Governor, GovernorAction, GovernorConfig, Verdict};
use odc_model::id::{JobId, ModelId, NodeId, TenantId};
use odc_model::job::{BlobRef, FailureReason, JobEvent, JobSpec};
use odc_model::plan::{Direction, Endpoint, Plan, PlanGate};
use odc_model::spec::NodeSpec;
use odc_model::telemetry::NodeTelemetry;
use odc_model::time::{Duration, Instant};
use odc_model::wire::{
    self, Envelope, Hello, JobUpdate, JobUpdates, Message, Relay, ResultChunk, Sender,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Where a job is on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FlightJobState {
    /// Input held, waiting for its slot.
    Queued,
    /// On the accelerator (never persisted as such: a restart puts it back in the queue).
    Running,
    /// Result held, waiting for the ground's receipt.
    Done,
    /// Failed here; waiting for the ground's receipt of the failure.
    Failed(FailureReason),
    /// The ground has closed it (delivered, cancelled, expired or failed): only its id is kept, so a resent input
    /// is recognised and never runs again.
    Closed,
}

impl FlightJobState {
    /// The state's name, for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            FlightJobState::Queued => "queued",
            FlightJobState::Running => "running",
            FlightJobState::Done => "done",
            FlightJobState::Failed(_) => "failed",
            FlightJobState::Closed => "closed",
        }
    }
}

/// One job as the node keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlightJob {
    /// What was asked.
    pub spec: JobSpec,
    /// The input, until the job has run.
    pub input: Option<Vec<u8>>,
    /// State here.
    pub state: FlightJobState,
    /// Runs started.
    pub attempts: u32,
    /// The result, until the ground has it.
    pub result: Option<Vec<u8>>,
    /// Accelerator time of the run that finished, s.
    pub accelerator_s: f64,
    /// Energy of the run that finished, Wh.
    pub energy_wh: f64,
}

/// What a node commits before acknowledging anything.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Durable {
    /// This node.
    pub node: NodeId,
    /// Bumped at every restart.
    pub incarnation: u64,
    /// The plan gate (generations only move forward).
    pub gate: PlanGate,
    /// The plan in force, this node's part.
    pub plan: Option<Plan>,
    /// Every job this node has held.
    pub jobs: BTreeMap<JobId, FlightJob>,
    /// Jobs the ground closed before their input arrived here.
    pub closed: BTreeSet<JobId>,
    /// Next envelope sequence number.
    pub seq: u64,
    /// Frames held for other nodes or for the ground (store and forward), oldest first.
    #[serde(default)]
    pub relay: VecDeque<Relay>,
}

/// A batch the node asks its accelerator to run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    /// Identifies this run in [`FlightCore::batch_done`].
    pub run: u64,
    /// The model.
    pub model: ModelId,
    /// The tenant all jobs belong to.
    pub tenant: TenantId,
    /// Jobs and their inputs, in run order.
    pub jobs: Vec<(JobId, Vec<u8>)>,
    /// Longest it may take.
    pub budget: std::time::Duration,
    /// What the node expects it to take.
    pub estimate: std::time::Duration,
}

/// What the node wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run a batch.
    Run(RunRequest),
    /// Stop the running batch now (the governor preempted it); its jobs are back in the queue.
    Preempt {
        /// The run stopped.
        run: u64,
    },
}

/// One job's outcome from the accelerator.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// The job.
    pub job: JobId,
    /// Output bytes, or why it failed.
    pub result: Result<Vec<u8>, String>,
}

/// Readings the node's sensors give.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sensors {
    /// Battery state of charge, 0..1.
    pub state_of_charge: f64,
    /// Node temperature, °C.
    pub temp_c: f64,
    /// Whether the node is in Earth's shadow.
    pub in_eclipse: bool,
}

struct Running {
    run: u64,
    jobs: Vec<JobId>,
}

/// The flight core of one node.
pub struct FlightCore {
    durable: Durable,
    spec: NodeSpec,
    governor: Governor,
    running: Option<Running>,
    next_run: u64,
    link_up: bool,
    outgoing: VecDeque<Envelope>,
    actions: VecDeque<Action>,
    /// Results handed to the link since the last restart (the link resends what it has not delivered).
    results_sent: BTreeSet<JobId>,
    sensors: Option<Sensors>,
    retry_at: Option<Instant>,
    /// When the plan says each job's batch starts.
    slot_of: BTreeMap<JobId, Instant>,
    busy_since_tick: f64,
    last_tick: Option<Instant>,
    /// Neighbours with an ISL up now.
    isl_up: BTreeSet<NodeId>,
    /// Envelopes for each neighbour.
    isl_outgoing: BTreeMap<NodeId, VecDeque<Envelope>>,
    /// The neighbour the plan sends each job's result down through, and the station it is bound for.
    down_via: BTreeMap<JobId, (NodeId, Endpoint)>,
    /// Results handed to a neighbour, and when.
    relayed: BTreeMap<JobId, Instant>,
    /// Relay frames refused (store full, too many hops, expired, undecodable).
    relay_dropped: u64,
    /// Frames relayed to this node in the ground's name whose seal did not prove it (forged or altered).
    relay_forged: u64,
    /// Proves this node's relayed results and checks the ground's relayed frames; none: nothing is taken in or sent
    /// down over ISLs (transit for others still works: it needs no proof).
    seal: Option<std::sync::Arc<dyn wire::RelaySeal>>,
    /// Jobs changed since the daemon last saved (see [`FlightCore::take_changed`]).
    changed: BTreeSet<JobId>,
}

/// Largest batch a node runs.
pub const MAX_BATCH: usize = 32;
/// How long a deferred batch waits before the governor is asked again.
const RETRY: Duration = Duration::from_secs(60);
/// How long a result handed to a neighbour is given to reach the ground before the node sends it itself (about
/// an orbit: the neighbour's planned pass comes well within it).
pub const RELAY_GRACE: Duration = Duration::from_mins(90);
/// Most ISL hops a relayed frame may take (a loop guard).
pub const MAX_RELAY_HOPS: u8 = 4;
/// Share of a node's storage that frames held for others may use.
const RELAY_STORAGE_SHARE: u64 = 10;

impl FlightCore {
    /// A fresh node (first boot).
    pub fn new(spec: NodeSpec, governor: GovernorConfig) -> FlightCore {
        let durable = Durable {
            node: spec.id.clone(),
            incarnation: 1,
            gate: PlanGate::default(),
            plan: None,
            jobs: BTreeMap::new(),
            closed: BTreeSet::new(),
            seq: 1,
            relay: VecDeque::new(),
        };
        FlightCore::from_durable(durable, spec, governor)
    }

    /// A node restarted from what it had committed: a new incarnation; a batch that was running is requeued.
    pub fn recover(
        mut durable: Durable,
        spec: NodeSpec,
        governor: GovernorConfig,
        now: Instant,
    ) -> FlightCore {
        durable.incarnation += 1;
        let mut requeued = Vec::new();
        for (id, job) in durable.jobs.iter_mut() {
            if job.state == FlightJobState::Running {
                job.state = FlightJobState::Queued;
                requeued.push((*id, job.attempts));
            }
        }
        let mut core = FlightCore::from_durable(durable, spec, governor);
        for (job, attempt) in requeued {
            let node = core.durable.node.clone();
            core.report(job, JobEvent::Requeue { node, attempt }, now);
        }
        core
    }

    fn from_durable(durable: Durable, spec: NodeSpec, governor: GovernorConfig) -> FlightCore {
        let mut core = FlightCore {
            governor: Governor::new(governor, &spec),
            spec,
            running: None,
            next_run: 1,
            link_up: false,
            outgoing: VecDeque::new(),
            actions: VecDeque::new(),
            results_sent: BTreeSet::new(),
            sensors: None,
            retry_at: None,
            slot_of: BTreeMap::new(),
            busy_since_tick: 0.0,
            last_tick: None,
            isl_up: BTreeSet::new(),
            isl_outgoing: BTreeMap::new(),
            down_via: BTreeMap::new(),
            relayed: BTreeMap::new(),
            relay_dropped: 0,
            relay_forged: 0,
            seal: None,
            changed: BTreeSet::new(),
            durable,
        };
        core.index_plan();
        core
    }

    /// What must survive a restart (a daemon commits it before acknowledging; the twin clones it).
    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    /// Jobs whose record changed since the last call: what a daemon writes (with the rest of [`Durable`], which
    /// is small) before it acknowledges anything.
    pub fn take_changed(&mut self) -> Vec<JobId> {
        std::mem::take(&mut self.changed).into_iter().collect()
    }

    /// This node's id.
    pub fn node(&self) -> &NodeId {
        &self.durable.node
    }

    /// Governor decisions so far.
    pub fn governor_actions(&self) -> &[GovernorAction] {
        self.governor.actions()
    }

    /// Jobs waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.count(|s| matches!(s, FlightJobState::Queued))
    }

    /// Results and failures waiting for the ground's receipt.
    pub fn outbox_depth(&self) -> usize {
        self.count(|s| matches!(s, FlightJobState::Done | FlightJobState::Failed(_)))
    }

    fn count(&self, f: impl Fn(&FlightJobState) -> bool) -> usize {
        self.durable.jobs.values().filter(|j| f(&j.state)).count()
    }

    /// Whether a batch is on the accelerator.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The link to the ground came up or went down. At the start of a contact the node says hello, reports its
    /// health, and reports every job the ground has not closed (the ground ignores what it already knows).
    pub fn handle_contact(&mut self, up: bool, now: Instant) {
        self.link_up = up;
        if !up {
            return;
        }
        let hello = Hello {
            node: self.durable.node.clone(),
            software: concat!("odc-flight ", env!("CARGO_PKG_VERSION")).to_string(),
            plan_generation: self.durable.gate.applied_generation,
            last_seq_received: 0,
        };
        self.send(Message::Hello(hello), now);
        self.send_telemetry(now);
        let node = self.durable.node.clone();
        let mut updates = Vec::new();
        let mut results = Vec::new();
        for (id, job) in &self.durable.jobs {
            let event = match &job.state {
                FlightJobState::Queued => JobEvent::Enqueue { node: node.clone() },
                FlightJobState::Running => JobEvent::Start {
                    node: node.clone(),
                    attempt: job.attempts,
                },
                FlightJobState::Done => {
                    let relayed_lately =
                        self.relayed.get(id).is_some_and(|&t| now < t + RELAY_GRACE);
                    if !self.results_sent.contains(id) && !relayed_lately {
                        results.push(*id);
                    }
                    continue;
                }
                FlightJobState::Failed(reason) => JobEvent::Fail {
                    reason: reason.clone(),
                },
                FlightJobState::Closed => continue,
            };
            updates.push(JobUpdate {
                job: *id,
                event,
                at: now,
            });
        }
        if !updates.is_empty() {
            self.send(Message::JobUpdates(JobUpdates { updates }), now);
        }
        for id in results {
            // A relayed copy that has had its time: this node sends its own.
            self.relayed.remove(&id);
            self.send_result(id, now);
        }
        self.forward_held(now);
    }

    /// The transport session to the ground was lost (the ground restarted): results it carried may not have
    /// arrived, so every result the ground has not acknowledged goes again at the next contact.
    pub fn link_reset(&mut self) {
        self.results_sent.clear();
    }

    /// An ISL to a neighbour came up or went down. When it comes up, frames held for the neighbour cross, and so
    /// do results the plan routes down through it.
    pub fn handle_isl(&mut self, peer: &NodeId, up: bool, now: Instant) {
        if !up {
            self.isl_up.remove(peer);
            return;
        }
        self.isl_up.insert(peer.clone());
        self.forward_held(now);
        let due: Vec<JobId> = self
            .down_via
            .iter()
            .filter(|(_, (via, _))| via == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.relay_result(id, now);
        }
    }

    /// A message from a neighbour over an ISL (delivered once by that link). Only relay frames travel there.
    pub fn handle_isl_message(&mut self, envelope: Envelope, now: Instant) {
        if let Message::Relay(relay) = envelope.message {
            self.take_relay(relay, now);
        }
    }

    /// The next message for a neighbour, if any.
    pub fn poll_isl_outgoing(&mut self, peer: &NodeId) -> Option<Envelope> {
        self.isl_outgoing.get_mut(peer)?.pop_front()
    }

    /// Neighbours with messages waiting.
    pub fn isl_peers_pending(&self) -> impl Iterator<Item = &NodeId> {
        self.isl_outgoing
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(p, _)| p)
    }

    /// Frames held for others now.
    pub fn relay_depth(&self) -> usize {
        self.durable.relay.len()
    }

    /// Relay frames refused so far (store full, too many hops, expired or undecodable).
    pub fn relay_dropped(&self) -> u64 {
        self.relay_dropped
    }

    /// Frames relayed to this node in the ground's name whose seal did not prove it, so far.
    pub fn relay_forged(&self) -> u64 {
        self.relay_forged
    }

    /// Gives the node its seal: from then on it takes in the ground's frames relayed by neighbours (when their
    /// seal proves them) and sends its results down through neighbours (sealed).
    pub fn set_relay_seal(&mut self, seal: std::sync::Arc<dyn wire::RelaySeal>) {
        self.seal = Some(seal);
    }

    /// A relay frame reached this node: taken in when it is for this node, held for forwarding otherwise.
    fn take_relay(&mut self, relay: Relay, now: Instant) {
        if relay.destination == Endpoint::Node(self.durable.node.clone()) {
            // Only the ground's traffic is carried to a node, and only as the ground sealed it: the neighbours
            // that carried it could have made or changed it.
            let proven = self
                .seal
                .as_ref()
                .map(|s| s.verify(&Sender::Ground, &relay.frame, &relay.seal));
            match (wire::decode(&relay.frame), proven) {
                (Ok(inner), Some(Ok(()))) if inner.sender == Sender::Ground => {
                    self.handle_message(inner, now)
                }
                (Ok(_), Some(Err(_))) => self.relay_forged += 1,
                _ => self.relay_dropped += 1,
            }
            return;
        }
        let held: u64 = self
            .durable
            .relay
            .iter()
            .map(|r| r.frame.len() as u64)
            .sum();
        let room = self.spec.storage_bytes / RELAY_STORAGE_SHARE;
        if relay.hops >= MAX_RELAY_HOPS
            || relay.expires_at <= now
            || held + relay.frame.len() as u64 > room
        {
            self.relay_dropped += 1;
            return;
        }
        self.durable.relay.push_back(relay);
        self.forward_held(now);
    }

    /// Hands every held frame whose next hop is reachable now to that link; drops the expired ones.
    fn forward_held(&mut self, now: Instant) {
        if self.durable.relay.is_empty() {
            return;
        }
        let mut keep = VecDeque::new();
        for mut r in std::mem::take(&mut self.durable.relay) {
            if r.expires_at <= now {
                self.relay_dropped += 1;
                continue;
            }
            let next = match &r.destination {
                Endpoint::Node(n) if self.isl_up.contains(n) => Some(Some(n.clone())),
                Endpoint::Station(_) if self.link_up => Some(None),
                _ => None,
            };
            match next {
                Some(peer) => {
                    r.hops += 1;
                    let envelope = self.envelope(Message::Relay(r), now);
                    match peer {
                        Some(p) => self.isl_outgoing.entry(p).or_default().push_back(envelope),
                        None => self.outgoing.push_back(envelope),
                    }
                }
                None => keep.push_back(r),
            }
        }
        self.durable.relay = keep;
    }

    /// A message from the ground (already authenticated and delivered once by the link).
    pub fn handle_message(&mut self, envelope: Envelope, now: Instant) {
        match envelope.message {
            Message::PlanUpdate(update)
                if update.plan.validate().is_ok()
                    && self.durable.gate.admit(update.plan.generation) =>
            {
                self.durable.plan = Some(update.plan.for_node(&self.durable.node));
                self.index_plan();
            }
            Message::InputChunk(chunk) => self.take_input(chunk.job, chunk.spec, chunk.data, now),
            Message::JobUpdates(updates) => {
                for u in updates.updates {
                    self.take_ground_event(u.job, &u.event);
                }
            }
            Message::Relay(relay) => self.take_relay(relay, now),
            _ => {}
        }
    }

    fn take_input(&mut self, id: JobId, spec: JobSpec, data: Vec<u8>, now: Instant) {
        if self.durable.jobs.contains_key(&id) || self.durable.closed.contains(&id) {
            // Seen before (a resend after a lost receipt or a restart): never queued twice.
            return;
        }
        let node = self.durable.node.clone();
        if BlobRef::of(&data) != spec.input {
            self.durable.jobs.insert(
                id,
                FlightJob {
                    spec,
                    input: None,
                    state: FlightJobState::Failed(FailureReason::InputCorrupt),
                    attempts: 0,
                    result: None,
                    accelerator_s: 0.0,
                    energy_wh: 0.0,
                },
            );
            self.report(
                id,
                JobEvent::Fail {
                    reason: FailureReason::InputCorrupt,
                },
                now,
            );
            return;
        }
        self.durable.jobs.insert(
            id,
            FlightJob {
                spec,
                input: Some(data),
                state: FlightJobState::Queued,
                attempts: 0,
                result: None,
                accelerator_s: 0.0,
                energy_wh: 0.0,
            },
        );
        self.report(id, JobEvent::Uplink { node: node.clone() }, now);
        self.report(id, JobEvent::Enqueue { node }, now);
    }

    fn take_ground_event(&mut self, id: JobId, event: &JobEvent) {
        let closes = matches!(
            event,
            JobEvent::Downlink { .. }
                | JobEvent::Deliver
                | JobEvent::Cancel
                | JobEvent::Expire
                | JobEvent::Fail { .. }
        );
        if !closes {
            return;
        }
        self.changed.insert(id);
        if let Some(job) = self.durable.jobs.get_mut(&id) {
            // A running job finishes, and its result is dropped when it comes back.
            job.state = FlightJobState::Closed;
            job.input = None;
            job.result = None;
        } else {
            // Closed before its input ever arrived: remember the id so a late input is never run.
            self.durable.closed.insert(id);
        }
    }

    /// Sensor readings at `now`. The governor may preempt the running batch; accelerator use is accounted.
    pub fn tick(&mut self, sensors: Sensors, now: Instant) {
        if let Some(last) = self.last_tick
            && self.running.is_some()
        {
            self.busy_since_tick += (now - last).as_secs_f64().max(0.0);
        }
        self.last_tick = Some(now);
        self.sensors = Some(sensors);
        if let Some(r) = &self.running
            && let Verdict::Preempt(why) = self.governor.check_running(&sensors, now)
        {
            let run = r.run;
            self.governor.record(now, GovernorAction::preempt(now, why));
            self.requeue_running(now);
            self.actions.push_back(Action::Preempt { run });
        }
    }

    fn requeue_running(&mut self, now: Instant) {
        let Some(r) = self.running.take() else {
            return;
        };
        let node = self.durable.node.clone();
        for id in r.jobs {
            if let Some(job) = self.durable.jobs.get_mut(&id)
                && job.state == FlightJobState::Running
            {
                job.state = FlightJobState::Queued;
                let attempt = job.attempts;
                self.report(
                    id,
                    JobEvent::Requeue {
                        node: node.clone(),
                        attempt,
                    },
                    now,
                );
            }
        }
    }

    /// The next thing the node wants done at `now`: start a batch when one is due and the governor allows.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        if self.running.is_some() || self.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        self.retry_at = None;
        let sensors = self.sensors?;
        // The due job that comes first in the plan (then by deadline), and the queued jobs of its tenant and model
        // that are due too.
        let due = |id: &JobId, job: &FlightJob| -> Option<(Instant, Instant, JobId)> {
            if job.state != FlightJobState::Queued || job.input.is_none() {
                return None;
            }
            let slot = self.slot_of.get(id).copied().unwrap_or(now);
            (slot <= now).then_some((slot, job.spec.deadline, *id))
        };
        let first = self
            .durable
            .jobs
            .iter()
            .filter_map(|(id, j)| due(id, j))
            .min()?;
        let lead = &self.durable.jobs[&first.2].spec;
        let (tenant, model) = (lead.tenant, lead.model.clone());
        let mut members: Vec<(Instant, Instant, JobId)> = self
            .durable
            .jobs
            .iter()
            .filter(|(_, j)| j.spec.tenant == tenant && j.spec.model == model)
            .filter_map(|(id, j)| due(id, j))
            .collect();
        members.sort();
        members.truncate(MAX_BATCH);
        let per_job: Vec<f64> = members
            .iter()
            .map(|m| {
                self.governor
                    .job_seconds(&model, self.durable.jobs[&m.2].spec.input.size_bytes)
            })
            .collect();
        let setup = self.governor.setup_seconds(&model);
        match self.governor.admit(&sensors, setup, &per_job, now) {
            Verdict::Run(n) => {
                members.truncate(n.max(1));
                if n < per_job.len() {
                    self.governor
                        .record(now, GovernorAction::throttle(now, n, per_job.len()));
                }
            }
            Verdict::Defer(why) => {
                self.governor.record(now, GovernorAction::defer(now, why));
                self.retry_at = Some(now + RETRY);
                return None;
            }
            Verdict::Preempt(_) => return None,
        }
        let estimate_s = setup + per_job.iter().take(members.len()).sum::<f64>();
        let node = self.durable.node.clone();
        let run = self.next_run;
        self.next_run += 1;
        let mut jobs = Vec::with_capacity(members.len());
        for (_, _, id) in &members {
            if let Some(job) = self.durable.jobs.get_mut(id) {
                job.state = FlightJobState::Running;
                job.attempts += 1;
                let attempt = job.attempts;
                jobs.push((*id, job.input.clone().unwrap_or_default()));
                self.report(
                    *id,
                    JobEvent::Start {
                        node: node.clone(),
                        attempt,
                    },
                    now,
                );
            }
        }
        self.running = Some(Running {
            run,
            jobs: jobs.iter().map(|j| j.0).collect(),
        });
        Some(Action::Run(RunRequest {
            run,
            model,
            tenant,
            jobs,
            budget: std::time::Duration::from_secs_f64(estimate_s * 2.0 + 10.0),
            estimate: std::time::Duration::from_secs_f64(estimate_s),
        }))
    }

    /// A batch finished: results go to the outbox (committed before anything is acknowledged).
    pub fn batch_done(
        &mut self,
        run: u64,
        outputs: Vec<RunOutput>,
        busy_s: f64,
        energy_wh: f64,
        now: Instant,
    ) {
        let Some(r) = self.running.take_if(|r| r.run == run) else {
            return;
        };
        let n = outputs.len().max(1) as f64;
        for out in outputs {
            let Some(job) = self.durable.jobs.get_mut(&out.job) else {
                continue;
            };
            if job.state != FlightJobState::Running {
                // Closed by the ground while it ran: the result is not wanted.
                continue;
            }
            job.input = None;
            match out.result {
                Ok(bytes) => {
                    job.state = FlightJobState::Done;
                    job.accelerator_s = busy_s / n;
                    job.energy_wh = energy_wh / n;
                    let output = BlobRef::of(&bytes);
                    let limit = job.spec.output_bound_bytes;
                    if output.size_bytes > limit {
                        let reason = FailureReason::OutputTooLarge {
                            limit_bytes: limit,
                            actual_bytes: output.size_bytes,
                        };
                        job.state = FlightJobState::Failed(reason.clone());
                        self.report(out.job, JobEvent::Fail { reason }, now);
                        continue;
                    }
                    job.result = Some(bytes);
                    let event = JobEvent::Finish {
                        output,
                        accelerator_s: job.accelerator_s,
                        energy_wh: job.energy_wh,
                    };
                    self.report(out.job, event, now);
                    self.send_result(out.job, now);
                }
                Err(message) => {
                    let reason = FailureReason::ExecutionError { message };
                    job.state = FlightJobState::Failed(reason.clone());
                    self.report(out.job, JobEvent::Fail { reason }, now);
                }
            }
        }
        // Anything of the run the backend did not return (an overrun) goes back to the queue.
        for id in r.jobs {
            if let Some(job) = self.durable.jobs.get_mut(&id)
                && job.state == FlightJobState::Running
            {
                job.state = FlightJobState::Queued;
                let attempt = job.attempts;
                let node = self.durable.node.clone();
                self.report(id, JobEvent::Requeue { node, attempt }, now);
            }
        }
    }

    /// The run was stopped from outside (a backend error for the whole batch): its jobs go back to the queue.
    pub fn batch_failed(&mut self, run: u64, now: Instant) {
        if self.running.as_ref().is_some_and(|r| r.run == run) {
            self.requeue_running(now);
            self.retry_at = Some(now + RETRY);
        }
    }

    /// The next message for the ground.
    pub fn poll_outgoing(&mut self) -> Option<Envelope> {
        self.outgoing.pop_front()
    }

    /// When the node next wants `poll_action` called (a batch slot or a governor retry), if ever.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        // Without a sensor reading nothing may start; the next reading (`tick`) is the wake-up.
        if self.running.is_some() || self.sensors.is_none() {
            return None;
        }
        if let Some(t) = self.retry_at {
            return Some(t);
        }
        self.durable
            .jobs
            .iter()
            .filter(|(_, j)| j.state == FlightJobState::Queued && j.input.is_some())
            .map(|(id, _)| self.slot_of.get(id).copied().unwrap_or(now).max(now))
            .min()
    }

    fn index_plan(&mut self) {
        self.slot_of.clear();
        self.down_via.clear();
        let Some(plan) = &self.durable.plan else {
            return;
        };
        let me = Endpoint::Node(self.durable.node.clone());
        for b in plan.batches.iter().filter(|b| b.node == self.durable.node) {
            for j in &b.jobs {
                self.slot_of.insert(*j, b.start);
            }
        }
        for r in plan
            .routes
            .iter()
            .filter(|r| r.direction == Direction::Down)
        {
            if let (Some(first), Some(last)) = (r.hops.first(), r.hops.last())
                && first.from == me
                && let Endpoint::Node(via) = &first.to
                && matches!(last.to, Endpoint::Station(_))
            {
                self.down_via.insert(r.job, (via.clone(), last.to.clone()));
            }
        }
    }

    fn report(&mut self, job: JobId, event: JobEvent, now: Instant) {
        // Every change to a job's record here comes with a report of it (the ground's closing receipts are the
        // exception, marked where they are taken): this is where the daemon learns what to save.
        self.changed.insert(job);
        let update = JobUpdate {
            job,
            event,
            at: now,
        };
        // Consecutive events travel together.
        if let Some(Envelope {
            message: Message::JobUpdates(u),
            ..
        }) = self.outgoing.back_mut()
            && u.updates.len() < 256
        {
            u.updates.push(update);
            return;
        }
        self.send(
            Message::JobUpdates(JobUpdates {
                updates: vec![update],
            }),
            now,
        );
    }

    fn send_result(&mut self, id: JobId, now: Instant) {
        // Out of contact, with the plan routing the result through a neighbour: over the ISL when it is up, else
        // held until it is (or until this node's own next contact, whichever comes first).
        if !self.link_up && self.down_via.contains_key(&id) {
            self.relay_result(id, now);
            return;
        }
        if self.results_sent.contains(&id) {
            return;
        }
        let Some(chunk) = self.result_chunk(id) else {
            return;
        };
        self.results_sent.insert(id);
        self.send(Message::ResultChunk(chunk), now);
    }

    /// Hands a result to the neighbour the plan routes it through, if that ISL is up. Also done for a result
    /// already queued for a contact that may have closed before it went: the ground takes the first copy.
    fn relay_result(&mut self, id: JobId, now: Instant) {
        if self.relayed.contains_key(&id) {
            return;
        }
        let Some((via, station)) = self.down_via.get(&id).cloned() else {
            return;
        };
        if !self.isl_up.contains(&via) {
            return;
        }
        // Without a seal the ground could not tell this result from one a neighbour made: it goes directly.
        let Some(seal) = self.seal.clone() else {
            return;
        };
        let (Some(chunk), Some(deadline)) = (
            self.result_chunk(id),
            self.durable.jobs.get(&id).map(|j| j.spec.deadline),
        ) else {
            return;
        };
        let inner = self.envelope(Message::ResultChunk(chunk), now);
        let Ok(frame) = wire::encode(&inner) else {
            return;
        };
        let relay = Relay {
            // The ground: the planned station, though any the neighbour meets will do.
            destination: station,
            expires_at: deadline,
            hops: 1,
            seal: seal.seal(&frame),
            frame,
        };
        let envelope = self.envelope(Message::Relay(relay), now);
        self.isl_outgoing
            .entry(via)
            .or_default()
            .push_back(envelope);
        self.relayed.insert(id, now);
    }

    /// A held result as a message, with the figures the ground bills.
    fn result_chunk(&self, id: JobId) -> Option<ResultChunk> {
        let job = self.durable.jobs.get(&id)?;
        let bytes = job.result.as_ref()?;
        Some(ResultChunk {
            job: id,
            output: BlobRef::of(bytes),
            offset: 0,
            data: bytes.clone(),
            accelerator_s: job.accelerator_s,
            energy_wh: job.energy_wh,
        })
    }

    fn send_telemetry(&mut self, now: Instant) {
        let s = self.sensors.unwrap_or(Sensors {
            state_of_charge: 0.0,
            temp_c: 0.0,
            in_eclipse: false,
        });
        let busy = self.busy_since_tick;
        let t = NodeTelemetry {
            node: self.durable.node.clone(),
            incarnation: self.durable.incarnation,
            at: now,
            state_of_charge: s.state_of_charge,
            battery_temp_c: s.temp_c,
            node_temp_c: s.temp_c,
            accelerator_temp_c: s.temp_c,
            accelerator_utilization: busy.min(1.0),
            queue_depth: self.queue_depth() as u32,
            outbox_depth: self.outbox_depth() as u32,
            storage_used_bytes: self
                .durable
                .jobs
                .values()
                .map(|j| {
                    j.input.as_ref().map_or(0, |i| i.len() as u64)
                        + j.result.as_ref().map_or(0, |r| r.len() as u64)
                })
                .sum(),
            storage_capacity_bytes: self.spec.storage_bytes,
            in_eclipse: s.in_eclipse,
            plan_generation: self.durable.gate.applied_generation,
        };
        self.send(Message::Telemetry(t), now);
    }

    fn send(&mut self, message: Message, now: Instant) {
        let envelope = self.envelope(message, now);
        self.outgoing.push_back(envelope);
    }

    fn envelope(&mut self, message: Message, now: Instant) -> Envelope {
        let seq = self.durable.seq;
        self.durable.seq += 1;
        Envelope {
            version: odc_model::wire::PROTOCOL,
            sender: Sender::Node(self.durable.node.clone()),
            incarnation: self.durable.incarnation,
            seq,
            sent_at: now,
            message,
        }
    }
}
