//! The world loop: the real ground core, a real flight core per node, a real link session pair per node and the
//! real planner, driven by simulated time. The clock jumps from one event to the next; links pass frames only
//! while a node sees a station that is up, at that station's data rates, with delay and loss; the battery and the
//! temperature of every node are integrated from the loads the accelerator actually ran. Inter-satellite links
//! are session pairs too, carrying the relay traffic the flight cores hand them. A node's optical terminal links
//! only where it is pointed, so a link opens for the ISL windows the plan in force routes traffic through (each
//! as the ephemeris computed it), not for every neighbour that happens to be in range.
//!
//! **Determinism.** Every random draw comes from the scenario's seed; events at the same instant run in the order
//! they were scheduled; containers iterate in key order. The same seed gives the same trace, byte for byte.

use crate::faults::{Fault, FaultKind};
use crate::report::{BatchSpan, ContactSpan, NodeReport, RunReport, Sample, TenantReport};
use crate::scenario::{BackendKind, TwinConfig, TwinError};
use odc_accel::{Accelerator, JobInput};
use odc_budget::{Illumination, NodeModel, ZERO_CELSIUS_K};
use odc_flight::{Action, FlightCore, GovernorConfig, RunOutput, Sensors};
use odc_ground_core::{GroundConfig, GroundCore, NodeInfo};
use odc_link::session::{Event as LinkEvent, Priority, Session, SessionConfig};
use odc_model::id::{JobId, ModelId, SplitMix64, TenantId};
use odc_model::job::{BlobRef, JobSpec, JobState, Priority as JobPriority};
use odc_model::plan::Endpoint;
use odc_model::spec::{ModelProfile, NodeSpec, StationSpec};
use odc_model::tenant::Tenant;
use odc_model::time::{Duration, Instant};
use odc_model::wire::{self, Sender};
use odc_planner::scenario::{JobsConfig, ScenarioConfig, ScenarioFiles};
use odc_planner::{ContactWindow, PlannerOptions};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};

mod links;
mod outcome;
mod physics;

/// The model every twin workload runs.
pub const MODEL: &str = odc_accel::model::TILE_CLASSIFIER;

enum Ev {
    Arrival(usize),
    Contact {
        node: usize,
        station: usize,
        up: bool,
    },
    Pump(usize),
    Frames {
        node: usize,
        to_node: bool,
        epoch: u64,
        frames: Vec<Vec<u8>>,
    },
    Wake(usize),
    Isl {
        link: usize,
        up: bool,
    },
    IslPump(usize),
    IslFrames {
        link: usize,
        to_b: bool,
        epoch: u64,
        frames: Vec<Vec<u8>>,
    },
    BatchDone {
        node: usize,
        run: u64,
    },
    Physics,
    Fault(usize),
    FaultEnd(usize),
}

struct Arrival {
    at: Instant,
    tenant: TenantId,
    class: u8,
    seed: u64,
    deadline: Instant,
    priority: u8,
}

struct Running {
    run: u64,
    started: Instant,
    done_at: Instant,
    outputs: Vec<RunOutput>,
    busy_s: f64,
    energy_wh: f64,
}

struct NodeSim {
    spec: NodeSpec,
    model: NodeModel,
    illumination: Illumination,
    core: FlightCore,
    energy_wh: f64,
    temp_k: f64,
    busy: bool,
    physics_at: Instant,
    ground_end: Session,
    node_end: Session,
    epoch: u64,
    in_view: BTreeSet<usize>,
    link: Option<usize>,
    pump_at: Option<Instant>,
    wake_at: Option<Instant>,
    running: Option<Running>,
    skew: Duration,
    blocked_until: Instant,
    corrupt: (Instant, f64),
    duplicate: (Instant, f64),
    brownout_at: Option<Instant>,
    /// Batches started while the battery was below its minimum (the governor must never let one).
    started_below_floor: usize,
    report: NodeReport,
    contact_open: Option<(Instant, usize)>,
}

/// An inter-satellite link between two nodes: a session at each end, open while an ISL window is.
struct IslLink {
    a: usize,
    b: usize,
    /// a's end: sends to b, receives from b.
    a_end: Session,
    b_end: Session,
    epoch: u64,
    /// Windows open now (the ephemeris may report overlapping ones).
    open: u32,
    pump_at: Option<Instant>,
    bytes_per_s: f64,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Everything the report shows.
    pub report: RunReport,
    /// Invariants that did not hold (empty when the run is correct).
    pub violations: Vec<String>,
    /// SHA-256 over the run's observable history (job transitions, billing, deliveries, governor actions).
    pub trace_hash: String,
}

/// A twin ready to run.
pub struct World {
    config: TwinConfig,
    start: Instant,
    end: Instant,
    now: Instant,
    queue: BTreeMap<(Instant, u64), Ev>,
    seq: u64,
    ground: GroundCore,
    nodes: Vec<NodeSim>,
    /// Every core's relay seal (ed25519, drawn from the seed): frames relayed over ISLs are proven end to end.
    keyring: odc_link::Keyring,
    node_index: BTreeMap<odc_model::id::NodeId, usize>,
    stations: Vec<StationSpec>,
    station_down_until: Vec<Instant>,
    rng: SplitMix64,
    backend: Box<dyn Accelerator>,
    model: ModelId,
    arrivals: Vec<Arrival>,
    tenants: Vec<Tenant>,
    faults: Vec<Fault>,
    expected: BTreeMap<JobId, (u8, usize, Instant, Instant)>,
    refused: BTreeMap<String, usize>,
    deliveries: BTreeMap<JobId, usize>,
    completions: BTreeMap<JobId, usize>,
    correct: usize,
    checked: usize,
    latencies: Vec<(usize, f64, bool)>,
    frames_sent: u64,
    frames_lost: u64,
    bytes_up: u64,
    bytes_down: u64,
    fault_log: Vec<(Instant, String)>,
    session: SessionConfig,
    isl: Vec<IslLink>,
    /// Per node: its ISL links, by peer.
    isl_of: Vec<BTreeMap<usize, usize>>,
    /// Line-of-sight windows of every pair (lower index first), by start.
    isl_windows: BTreeMap<(usize, usize), Vec<(Instant, Instant)>>,
    /// Windows already scheduled to open, by pair and start.
    isl_scheduled: BTreeSet<(usize, usize, Instant)>,
    /// Replans seen, to notice a new plan.
    plans_seen: usize,
    bytes_isl: u64,
}

fn session_config() -> SessionConfig {
    SessionConfig {
        // A second of link time per pump: no retransmission before an acknowledgement could be back.
        retransmit_ms: 10_000,
        ..SessionConfig::default()
    }
}

impl World {
    /// Builds the world of a scenario: geometry from the ephemeris, the cores, the sessions, the workload.
    pub fn new(config: TwinConfig, files: &ScenarioFiles) -> Result<World, TwinError> {
        let scenario = ScenarioConfig {
            start: config.start,
            hours: config.hours,
            seed: config.seed,
            constellation: config.constellation.clone(),
            stations: config.stations.clone(),
            node: config.node.clone(),
            tenants: config.tenants.clone(),
            jobs: JobsConfig {
                count: 0,
                models: vec![MODEL.to_string()],
                input_bytes: [1, 1],
                output_bytes: [1, 1],
                deadline_hours: [1.0, 1.0],
            },
            isl_range_km: config.isl_range_km,
        };
        let (snapshot, _) = odc_planner::scenario::build(&scenario, files)?;
        let model = ModelId::new(MODEL).map_err(|e| TwinError::Invalid(e.to_string()))?;
        let tile_bytes = odc_accel::tiles::TILE_BYTES as f64;
        let profile = ModelProfile {
            input_bytes_per_s: config.twin.tiles_per_s * tile_bytes,
            batch_setup_s: config.twin.batch_setup_s,
        };
        let start = config.start;
        let end = start + Duration::from_secs_f64(config.hours * 3600.0);
        let mut nodes = Vec::new();
        let mut infos = Vec::new();
        for n in &snapshot.nodes {
            let mut spec = n.spec.clone();
            spec.accelerator.models.insert(model.clone(), profile);
            let node_model = NodeModel::from_spec(&spec, n.altitude_km);
            infos.push(NodeInfo {
                spec: spec.clone(),
                altitude_km: n.altitude_km,
                illumination: n.illumination.clone(),
                initial_soc: n.state_of_charge,
            });
            let name = spec.id.as_str().to_string();
            nodes.push(NodeSim {
                core: FlightCore::new(spec.clone(), GovernorConfig::default()),
                model: node_model,
                illumination: n.illumination.clone(),
                energy_wh: n.state_of_charge * spec.power.battery_capacity_wh,
                temp_k: n.temp_c + ZERO_CELSIUS_K,
                busy: false,
                physics_at: start,
                ground_end: Session::new(session_config()),
                node_end: Session::new(session_config()),
                epoch: 0,
                in_view: BTreeSet::new(),
                link: None,
                pump_at: None,
                wake_at: None,
                running: None,
                skew: Duration::ZERO,
                blocked_until: start,
                corrupt: (start, 0.0),
                duplicate: (start, 0.0),
                brownout_at: None,
                started_below_floor: 0,
                report: NodeReport {
                    name,
                    min_soc: 1.0,
                    max_temp_c: f64::MIN,
                    ..NodeReport::default()
                },
                contact_open: None,
                spec,
            });
        }
        let node_index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.spec.id.clone(), i))
            .collect();
        let tenants: Vec<Tenant> = snapshot.tenants.iter().map(|t| t.tenant.clone()).collect();
        let keyring = odc_link::Keyring::from_seed(
            config.seed,
            std::iter::once(Sender::Ground)
                .chain(nodes.iter().map(|n| Sender::Node(n.spec.id.clone()))),
        );
        for n in &mut nodes {
            give_seal(&keyring, &mut n.core);
        }
        let mut ground = GroundCore::new(GroundConfig {
            nodes: infos,
            stations: snapshot.stations.clone(),
            contacts: snapshot.contacts.clone(),
            isl: snapshot.isl.clone(),
            tenants: tenants.clone(),
            horizon_end: end,
            plan_ahead: Duration::from_secs_f64(config.twin.plan_ahead_hours * 3600.0),
            replan_every: Duration::from_secs_f64(config.twin.replan_minutes * 60.0),
            planner: PlannerOptions::default(),
            seed: config.seed,
        });
        if let Some(seal) = keyring.seal_for(&Sender::Ground) {
            ground.set_relay_seal(std::sync::Arc::new(seal));
        }
        let mut backend: Box<dyn Accelerator> = match config.twin.backend {
            BackendKind::Cpu => Box::new(odc_accel::cpu::CandleBackend::cpu(
                nodes
                    .first()
                    .map_or(10.0, |n| n.spec.accelerator.idle_power_w),
                nodes
                    .first()
                    .map_or(100.0, |n| n.spec.accelerator.busy_power_w),
            )),
            BackendKind::Modeled => {
                let mut spec = nodes
                    .first()
                    .map(|n| n.spec.accelerator.clone())
                    .ok_or_else(|| TwinError::Invalid("the constellation is empty".into()))?;
                spec.models.insert(model.clone(), profile);
                Box::new(odc_accel::modeled::ModeledBackend::new(spec))
            }
        };
        backend
            .load(&odc_accel::ModelArtifact::tile_classifier())
            .map_err(|e| TwinError::Accelerator(e.to_string()))?;
        let mut rng = SplitMix64::new(config.seed ^ 0x7477_696e);
        let arrivals = workload(&config, &tenants, &mut rng, start);
        let stations = snapshot.stations.clone();
        let mut world = World {
            station_down_until: vec![start; stations.len()],
            faults: config.faults.clone(),
            session: session_config(),
            start,
            end,
            now: start,
            queue: BTreeMap::new(),
            seq: 0,
            ground,
            nodes,
            keyring,
            node_index,
            stations,
            rng,
            backend,
            model,
            arrivals,
            tenants,
            expected: BTreeMap::new(),
            refused: BTreeMap::new(),
            deliveries: BTreeMap::new(),
            completions: BTreeMap::new(),
            correct: 0,
            checked: 0,
            latencies: Vec::new(),
            frames_sent: 0,
            frames_lost: 0,
            bytes_up: 0,
            bytes_down: 0,
            fault_log: Vec::new(),
            isl: Vec::new(),
            isl_of: Vec::new(),
            isl_windows: BTreeMap::new(),
            isl_scheduled: BTreeSet::new(),
            plans_seen: 0,
            bytes_isl: 0,
            config,
        };
        world.isl_of = vec![BTreeMap::new(); world.nodes.len()];
        world.schedule_geometry(&snapshot.contacts);
        world.index_isl(&snapshot.isl);
        for k in 0..world.arrivals.len() {
            world.at(world.arrivals[k].at, Ev::Arrival(k));
        }
        for k in 0..world.faults.len() {
            let at = start + Duration::from_secs_f64(world.faults[k].at_hours * 3600.0);
            world.at(at, Ev::Fault(k));
        }
        world.at(start, Ev::Physics);
        Ok(world)
    }

    fn schedule_geometry(&mut self, contacts: &[ContactWindow]) {
        let station_of: BTreeMap<_, _> = self
            .stations
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        for c in contacts {
            let (Some(&node), Some(&station)) =
                (self.node_index.get(&c.node), station_of.get(&c.station))
            else {
                continue;
            };
            self.at(
                c.start.max(self.start),
                Ev::Contact {
                    node,
                    station,
                    up: true,
                },
            );
            self.at(
                c.end,
                Ev::Contact {
                    node,
                    station,
                    up: false,
                },
            );
        }
    }

    fn index_isl(&mut self, windows: &[odc_planner::IslWindow]) {
        for w in windows {
            let (Some(&a), Some(&b)) = (self.node_index.get(&w.a), self.node_index.get(&w.b))
            else {
                continue;
            };
            if a != b && w.end > self.start {
                self.isl_windows
                    .entry((a.min(b), a.max(b)))
                    .or_default()
                    .push((w.start, w.end));
            }
        }
        for list in self.isl_windows.values_mut() {
            list.sort_unstable();
        }
    }

    /// After a replan: point the terminals for every ISL hop of the new plan (the whole window the hop lies in).
    fn schedule_planned_isl(&mut self) {
        let count = self.ground.replans().len();
        if count == self.plans_seen {
            return;
        }
        self.plans_seen = count;
        let mut wanted = Vec::new();
        if let Some(plan) = self.ground.plan() {
            for r in &plan.routes {
                for h in r.hops.iter().filter(|h| h.contact.is_none()) {
                    if let (Endpoint::Node(a), Endpoint::Node(b)) = (&h.from, &h.to)
                        && let (Some(&a), Some(&b)) =
                            (self.node_index.get(a), self.node_index.get(b))
                    {
                        wanted.push(((a.min(b), a.max(b)), h.start));
                    }
                }
            }
        }
        for (pair, at) in wanted {
            let Some(list) = self.isl_windows.get(&pair) else {
                continue;
            };
            let k = list.partition_point(|w| w.1 < at);
            let Some(&(start, end)) = list.get(k).filter(|w| w.0 <= at) else {
                continue;
            };
            if !self.isl_scheduled.insert((pair.0, pair.1, start)) {
                continue;
            }
            let link = self.isl_link(pair.0, pair.1);
            self.at(start.max(self.now), Ev::Isl { link, up: true });
            self.at(end, Ev::Isl { link, up: false });
        }
    }

    /// The link between two nodes, made on first use.
    fn isl_link(&mut self, a: usize, b: usize) -> usize {
        if let Some(&l) = self.isl_of[a].get(&b) {
            return l;
        }
        let rate = |i: usize| {
            self.nodes[i]
                .spec
                .isl_terminals
                .iter()
                .map(|t| t.rate_bps)
                .fold(0.0, f64::max)
        };
        let bytes_per_s = rate(a).min(rate(b)) / 8.0;
        self.isl.push(IslLink {
            a,
            b,
            a_end: Session::new(self.session),
            b_end: Session::new(self.session),
            epoch: 0,
            open: 0,
            pump_at: None,
            bytes_per_s,
        });
        let l = self.isl.len() - 1;
        self.isl_of[a].insert(b, l);
        self.isl_of[b].insert(a, l);
        l
    }

    fn at(&mut self, t: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.insert((t.max(self.now), self.seq), ev);
    }

    /// Runs to the end of the scenario; `progress` is told the fraction done now and then.
    pub fn run(mut self, progress: &mut dyn FnMut(f64)) -> Outcome {
        let total = (self.end - self.start).as_secs_f64().max(1.0);
        let mut last_report = self.start;
        while let Some(((t, _), ev)) = self.queue.pop_first() {
            if t > self.end {
                break;
            }
            self.now = t;
            self.handle(ev);
            if (t - last_report).as_secs_f64() >= 600.0 {
                last_report = t;
                progress((t - self.start).as_secs_f64() / total);
            }
        }
        self.now = self.end;
        for i in 0..self.nodes.len() {
            self.advance_physics(i);
            self.close_contact_log(i);
        }
        progress(1.0);
        self.finish()
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Arrival(k) => self.arrive(k),
            Ev::Contact { node, station, up } => {
                if up {
                    self.nodes[node].in_view.insert(station);
                } else {
                    self.nodes[node].in_view.remove(&station);
                }
                self.relink(node);
            }
            Ev::Pump(node) => self.pump(node),
            Ev::Frames {
                node,
                to_node,
                epoch,
                frames,
            } => self.receive(node, to_node, epoch, frames),
            Ev::Wake(node) => {
                if self.nodes[node].wake_at == Some(self.now) {
                    self.nodes[node].wake_at = None;
                    self.drive(node);
                }
            }
            Ev::Isl { link, up } => self.isl_edge(link, up),
            Ev::IslPump(link) => self.isl_pump(link),
            Ev::IslFrames {
                link,
                to_b,
                epoch,
                frames,
            } => self.isl_receive(link, to_b, epoch, frames),
            Ev::BatchDone { node, run } => self.batch_done(node, run),
            Ev::Physics => self.physics(),
            Ev::Fault(k) => self.fault(k, true),
            Ev::FaultEnd(k) => self.fault(k, false),
        }
    }

    fn node_now(&self, i: usize) -> Instant {
        self.now + self.nodes[i].skew
    }

    fn arrive(&mut self, k: usize) {
        let a = &self.arrivals[k];
        let class = odc_accel::tiles::Class::ALL[usize::from(a.class) % 4];
        let input = match self.config.twin.backend {
            BackendKind::Cpu => odc_accel::tiles::tile_bytes(class, a.seed),
            // The modeled backend never looks at the values: any finite tile of the right size will do, and
            // drawing real ones would dominate large runs.
            BackendKind::Modeled => cheap_tile(a.seed),
        };
        let spec = JobSpec {
            tenant: a.tenant,
            model: self.model.clone(),
            input: BlobRef::of(&input),
            output_bound_bytes: self.config.workload.output_bound_bytes,
            deadline: a.deadline,
            priority: JobPriority::new(a.priority).unwrap_or(JobPriority::MAX),
            idempotency_key: format!("arrival-{k}"),
        };
        let tenant_index = self
            .tenants
            .iter()
            .position(|t| t.id == a.tenant)
            .unwrap_or(0);
        let (class_id, at, deadline) = (a.class, a.at, a.deadline);
        match self.ground.submit(spec, input, self.now) {
            Ok(id) => {
                self.expected
                    .insert(id, (class_id, tenant_index, at, deadline));
            }
            Err(e) => *self.refused.entry(e.to_string()).or_default() += 1,
        }
        self.flush_ground();
    }

    /// The node's sensors read the physics now (a daemon reads them when it decides, never a stale value).
    fn sense(&mut self, i: usize) {
        self.advance_physics(i);
        let node_now = self.node_now(i);
        let n = &mut self.nodes[i];
        let sensors = Sensors {
            state_of_charge: n.energy_wh / n.spec.power.battery_capacity_wh,
            temp_c: n.temp_k - ZERO_CELSIUS_K,
            in_eclipse: n.illumination.fraction_at(self.now) < 0.5,
        };
        n.core.tick(sensors, node_now);
    }

    /// Lets a node start what is due, and schedules its next wake-up.
    fn drive(&mut self, i: usize) {
        self.sense(i);
        loop {
            let node_now = self.node_now(i);
            let Some(action) = self.nodes[i].core.poll_action(node_now) else {
                break;
            };
            match action {
                Action::Run(mut req) => {
                    self.advance_physics(i);
                    let n = &mut self.nodes[i];
                    if n.energy_wh
                        < n.spec.power.min_state_of_charge * n.spec.power.battery_capacity_wh - 1e-6
                    {
                        n.started_below_floor += 1;
                    }
                    let inputs: Vec<JobInput> = std::mem::take(&mut req.jobs)
                        .into_iter()
                        .map(|(job, data)| JobInput {
                            job,
                            tenant: req.tenant,
                            shape: vec![
                                odc_accel::tiles::BANDS,
                                odc_accel::tiles::SIDE,
                                odc_accel::tiles::SIDE,
                            ],
                            data,
                        })
                        .collect();
                    let batch = odc_accel::Batch {
                        model: req.model.clone(),
                        tenant: req.tenant,
                        inputs,
                        budget: std::time::Duration::from_secs(3600),
                    };
                    match self.backend.run(&batch) {
                        Ok(result) => {
                            let seconds = req.estimate.as_secs_f64();
                            let n = &mut self.nodes[i];
                            let outputs = result
                                .outputs
                                .into_iter()
                                .map(|o| RunOutput {
                                    job: o.job,
                                    result: o.result.map_err(|e| e.to_string()),
                                })
                                .collect();
                            let done_at = self.now + Duration::from_secs_f64(seconds);
                            n.running = Some(Running {
                                run: req.run,
                                started: self.now,
                                done_at,
                                outputs,
                                busy_s: seconds,
                                energy_wh: n.spec.accelerator.busy_power_w * seconds / 3600.0,
                            });
                            n.busy = true;
                            self.at(
                                done_at,
                                Ev::BatchDone {
                                    node: i,
                                    run: req.run,
                                },
                            );
                        }
                        Err(_) => self.nodes[i].core.batch_failed(req.run, node_now),
                    }
                }
                Action::Preempt { run } => {
                    if self.nodes[i].running.as_ref().is_some_and(|r| r.run == run) {
                        self.advance_physics(i);
                        let n = &mut self.nodes[i];
                        if let Some(r) = n.running.take() {
                            n.report.batches.push(BatchSpan {
                                start_h: (r.started - self.start).as_secs_f64() / 3600.0,
                                end_h: (self.now - self.start).as_secs_f64() / 3600.0,
                                jobs: r.outputs.len(),
                                preempted: true,
                            });
                        }
                        n.busy = false;
                    }
                }
            }
        }
        self.flush_node(i);
        let node_now = self.node_now(i);
        if let Some(t) = self.nodes[i].core.poll_timeout(node_now) {
            // The core just declined to act at `now`, so a wake-up must lie ahead: never spin at one instant.
            let t = (t - self.nodes[i].skew).max(self.now + Duration::from_millis(1));
            let n = &mut self.nodes[i];
            if n.wake_at.is_none_or(|w| t < w) {
                n.wake_at = Some(t);
                self.at(t, Ev::Wake(i));
            }
        }
    }

    fn batch_done(&mut self, i: usize, run: u64) {
        if !self.nodes[i]
            .running
            .as_ref()
            .is_some_and(|r| r.run == run && r.done_at == self.now)
        {
            return;
        }
        self.advance_physics(i);
        let node_now = self.node_now(i);
        let n = &mut self.nodes[i];
        n.busy = false;
        let Some(r) = n.running.take() else {
            return;
        };
        for o in &r.outputs {
            let running = n
                .core
                .durable()
                .jobs
                .get(&o.job)
                .is_some_and(|j| j.state == odc_flight::FlightJobState::Running);
            if running && o.result.is_ok() {
                *self.completions.entry(o.job).or_default() += 1;
            }
        }
        n.report.batches.push(BatchSpan {
            start_h: (r.started - self.start).as_secs_f64() / 3600.0,
            end_h: (self.now - self.start).as_secs_f64() / 3600.0,
            jobs: r.outputs.len(),
            preempted: false,
        });
        n.core
            .batch_done(run, r.outputs, r.busy_s, r.energy_wh, node_now);
        self.flush_node(i);
        self.drive(i);
    }
}

/// A uniform draw in [0, 1).
fn unit(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Frame faults on a link: corruption and duplication, each until an instant and at a rate.
#[derive(Clone, Copy)]
struct Tamper {
    now: Instant,
    corrupt: (Instant, f64),
    duplicate: (Instant, f64),
}

/// One direction of one slice of link time: frames drawn from `sender` (at `now_ms`, within `budget` bytes), each
/// lost with probability `loss`, then corrupted or duplicated as `tamper` says. The frames that arrive, and the
/// bytes sent.
fn draw_frames(
    sender: &mut Session,
    rng: &mut SplitMix64,
    (now_ms, budget, loss): (i64, usize, f64),
    tamper: Option<Tamper>,
    sent: &mut u64,
    lost: &mut u64,
) -> (Vec<Vec<u8>>, usize) {
    let mut frames = Vec::new();
    let mut used = 0usize;
    while used < budget {
        let Some(mut f) = sender.poll_transmit(now_ms) else {
            break;
        };
        used += f.len();
        *sent += 1;
        if unit(rng) < loss {
            *lost += 1;
            continue;
        }
        if let Some(t) = tamper {
            if t.now < t.corrupt.0 && unit(rng) < t.corrupt.1 && !f.is_empty() {
                let at = (rng.next_u64() as usize) % f.len();
                f[at] ^= 0x5a;
            }
            if t.now < t.duplicate.0 && unit(rng) < t.duplicate.1 {
                frames.push(f.clone());
            }
        }
        frames.push(f);
    }
    (frames, used)
}

/// Feeds frames to a session end and returns the messages it delivered; the other end's events (acknowledged
/// sends) are drained. A corrupt frame is refused by the session and simply not acknowledged.
fn deliver(receiver: &mut Session, other: &mut Session, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    for f in frames {
        let _ = receiver.handle_frame(f);
    }
    let mut delivered = Vec::new();
    while let Some(e) = receiver.poll_event() {
        if let LinkEvent::Delivered { payload, .. } = e {
            delivered.push(payload);
        }
    }
    while other.poll_event().is_some() {}
    delivered
}

/// Gives a node core its seal from the keyring (at the start and after each restart).
fn give_seal(keyring: &odc_link::Keyring, core: &mut FlightCore) {
    if let Some(seal) = keyring.seal_for(&Sender::Node(core.node().clone())) {
        core.set_relay_seal(std::sync::Arc::new(seal));
    }
}

/// Jobs arriving uniformly over the spread, each with a tenant, a tile class and seed, a deadline and a priority.
fn workload(
    config: &TwinConfig,
    tenants: &[Tenant],
    rng: &mut SplitMix64,
    start: Instant,
) -> Vec<Arrival> {
    let w = &config.workload;
    let mut unit = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let mut arrivals: Vec<Arrival> = (0..w.jobs)
        .map(|k| {
            let at = start + Duration::from_secs_f64(unit() * w.spread_hours * 3600.0);
            let span = w.deadline_hours[0] + unit() * (w.deadline_hours[1] - w.deadline_hours[0]);
            let weights: u32 = tenants.iter().map(|t| t.share_weight.max(1)).sum();
            let mut pick = (unit() * f64::from(weights.max(1))) as u32;
            let mut tenant = tenants[0].id;
            for t in tenants {
                if pick < t.share_weight.max(1) {
                    tenant = t.id;
                    break;
                }
                pick -= t.share_weight.max(1);
            }
            Arrival {
                at,
                tenant,
                class: (unit() * 4.0) as u8 % 4,
                seed: config.seed.wrapping_mul(1_000_003).wrapping_add(k as u64),
                deadline: at + Duration::from_secs_f64(span * 3600.0),
                priority: (unit() * 10.0) as u8 % 10,
            }
        })
        .collect();
    arrivals.sort_by_key(|a| a.at);
    arrivals
}

/// A tile-sized input of finite values in [0, 1), fast to make.
fn cheap_tile(seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(odc_accel::tiles::TILE_BYTES);
    while out.len() < odc_accel::tiles::TILE_BYTES {
        let r = rng.next_u64();
        for half in [r as u32, (r >> 32) as u32] {
            let v = (half >> 8) as f32 / (1u32 << 24) as f32;
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out.truncate(odc_accel::tiles::TILE_BYTES);
    out
}

/// The class a classifier's output vector votes for.
fn argmax(bytes: &[u8]) -> Option<usize> {
    let values = odc_accel::f32s(bytes);
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}
