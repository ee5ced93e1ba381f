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

    /// Brings a node's link up or down to match what it sees and what is broken.
    fn relink(&mut self, i: usize) {
        let now = self.now;
        let n = &self.nodes[i];
        let want = if now < n.blocked_until {
            None
        } else {
            n.in_view
                .iter()
                .copied()
                .find(|&s| now >= self.station_down_until[s])
        };
        if want == n.link {
            return;
        }
        let node_now = self.node_now(i);
        let id = self.nodes[i].spec.id.clone();
        if self.nodes[i].link.is_some() {
            let n = &mut self.nodes[i];
            n.ground_end.handle_contact(false);
            n.node_end.handle_contact(false);
            n.core.handle_contact(false, node_now);
            n.epoch += 1;
            n.link = None;
            self.ground.handle_contact(&id, None, now);
            self.close_contact_log(i);
        }
        if let Some(s) = want {
            let n = &mut self.nodes[i];
            n.link = Some(s);
            n.contact_open = Some((now, s));
            n.ground_end.handle_contact(true);
            n.node_end.handle_contact(true);
            self.ground
                .handle_contact(&id, Some(self.stations[s].id.clone()), now);
            self.nodes[i].core.handle_contact(true, node_now);
            self.flush_node(i);
            self.schedule_pump(i, now);
        }
    }

    fn close_contact_log(&mut self, i: usize) {
        let now = self.now;
        let n = &mut self.nodes[i];
        if let Some((start, station)) = n.contact_open.take() {
            n.report.contacts.push(ContactSpan {
                start_h: (start - self.start).as_secs_f64() / 3600.0,
                end_h: (now - self.start).as_secs_f64() / 3600.0,
                station,
            });
        }
    }

    fn schedule_pump(&mut self, i: usize, t: Instant) {
        let n = &mut self.nodes[i];
        if n.link.is_none() || n.pump_at.is_some_and(|p| p <= t) {
            return;
        }
        n.pump_at = Some(t);
        self.at(t, Ev::Pump(i));
    }

    /// One second of link time: frames both ways within the station's rates.
    fn pump(&mut self, i: usize) {
        if self.nodes[i].pump_at != Some(self.now) {
            return;
        }
        self.nodes[i].pump_at = None;
        let Some(s) = self.nodes[i].link else {
            return;
        };
        const SLICE_S: f64 = 1.0;
        // The session's clock: milliseconds since the run began.
        let now_ms = (self.now - self.start).as_secs_f64().mul_add(1000.0, 0.5) as i64;
        let station = &self.stations[s];
        let budgets = [
            (true, (station.uplink_bps / 8.0 * SLICE_S) as usize),
            (false, (station.downlink_bps / 8.0 * SLICE_S) as usize),
        ];
        let delay = Duration::from_secs_f64(SLICE_S)
            + Duration::from_millis(self.config.twin.link_delay_ms);
        let loss = self.config.twin.link_loss;
        let mut active = false;
        let tamper = Tamper {
            now: self.now,
            corrupt: self.nodes[i].corrupt,
            duplicate: self.nodes[i].duplicate,
        };
        for (to_node, budget) in budgets {
            let n = &mut self.nodes[i];
            let sender = if to_node {
                &mut n.ground_end
            } else {
                &mut n.node_end
            };
            let (frames, used) = draw_frames(
                sender,
                &mut self.rng,
                (now_ms, budget, loss),
                Some(tamper),
                &mut self.frames_sent,
                &mut self.frames_lost,
            );
            if to_node {
                self.bytes_up += used as u64;
            } else {
                self.bytes_down += used as u64;
            }
            if !frames.is_empty() {
                active = true;
                let epoch = self.nodes[i].epoch;
                self.at(
                    self.now + delay,
                    Ev::Frames {
                        node: i,
                        to_node,
                        epoch,
                        frames,
                    },
                );
            }
        }
        let n = &self.nodes[i];
        if active || n.ground_end.pending() > 0 || n.node_end.pending() > 0 {
            self.schedule_pump(i, self.now + Duration::from_secs_f64(SLICE_S));
        }
    }

    fn receive(&mut self, i: usize, to_node: bool, epoch: u64, frames: Vec<Vec<u8>>) {
        if self.nodes[i].epoch != epoch {
            // The contact ended (or the node restarted) while these were in the air.
            return;
        }
        let n = &mut self.nodes[i];
        let delivered = if to_node {
            deliver(&mut n.node_end, &mut n.ground_end, &frames)
        } else {
            deliver(&mut n.ground_end, &mut n.node_end, &frames)
        };
        let node_now = self.node_now(i);
        let id = self.nodes[i].spec.id.clone();
        for payload in delivered {
            let Ok(envelope) = wire::decode(&payload) else {
                continue;
            };
            if to_node {
                self.nodes[i].core.handle_message(envelope, node_now);
            } else {
                self.ground.handle_message(&id, envelope, self.now);
            }
        }
        self.flush_ground();
        self.flush_node(i);
        self.drive(i);
        self.schedule_pump(i, self.now);
    }

    /// Moves what the ground wants to send into the sessions, and hands results to tenants.
    fn flush_ground(&mut self) {
        while let Some((node, envelope)) = self.ground.poll_outgoing() {
            let Some(&i) = self.node_index.get(&node) else {
                continue;
            };
            if let Ok(bytes) = wire::encode(&envelope) {
                self.nodes[i]
                    .ground_end
                    .send(Priority::from(envelope.message.class()), bytes);
                self.schedule_pump(i, self.now);
            }
        }
        while let Some(d) = self.ground.poll_delivery() {
            *self.deliveries.entry(d.job).or_default() += 1;
            if let Some(&(class, tenant, arrived, deadline)) = self.expected.get(&d.job) {
                // Only real inference says anything about the tile.
                if self.config.twin.backend == BackendKind::Cpu
                    && let Some(label) = argmax(&d.result)
                {
                    self.checked += 1;
                    if label == usize::from(class) {
                        self.correct += 1;
                    }
                }
                let on_time = d.at <= deadline;
                self.latencies
                    .push((tenant, (d.at - arrived).as_secs_f64(), on_time));
            }
        }
    }

    fn flush_node(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let mut sent = false;
        while let Some(envelope) = n.core.poll_outgoing() {
            if let Ok(bytes) = wire::encode(&envelope) {
                n.node_end
                    .send(Priority::from(envelope.message.class()), bytes);
                sent = true;
            }
        }
        if sent {
            self.schedule_pump(i, self.now);
        }
        let peers: Vec<odc_model::id::NodeId> =
            self.nodes[i].core.isl_peers_pending().cloned().collect();
        for peer in peers {
            let link = self
                .node_index
                .get(&peer)
                .and_then(|p| self.isl_of[i].get(p))
                .copied();
            while let Some(envelope) = self.nodes[i].core.poll_isl_outgoing(&peer) {
                // A message for a neighbour with no link at all can only be dropped; its sender keeps what
                // matters and sends it another way.
                let (Some(l), Ok(bytes)) = (link, wire::encode(&envelope)) else {
                    continue;
                };
                let k = &mut self.isl[l];
                let end = if k.a == i { &mut k.a_end } else { &mut k.b_end };
                end.send(Priority::from(envelope.message.class()), bytes);
            }
            if let Some(l) = link {
                self.schedule_isl_pump(l, self.now);
            }
        }
    }

    /// An ISL window opens or closes between two nodes.
    fn isl_edge(&mut self, l: usize, up: bool) {
        let k = &mut self.isl[l];
        let was_open = k.open > 0;
        k.open = if up {
            k.open + 1
        } else {
            k.open.saturating_sub(1)
        };
        let open = k.open > 0;
        if open == was_open {
            return;
        }
        k.a_end.handle_contact(open);
        k.b_end.handle_contact(open);
        if !open {
            k.epoch += 1;
        }
        let (a, b) = (k.a, k.b);
        for (me, peer) in [(a, b), (b, a)] {
            let peer_id = self.nodes[peer].spec.id.clone();
            let node_now = self.node_now(me);
            self.nodes[me].core.handle_isl(&peer_id, open, node_now);
        }
        if open {
            self.flush_node(a);
            self.flush_node(b);
            self.schedule_isl_pump(l, self.now);
        }
    }

    fn schedule_isl_pump(&mut self, l: usize, t: Instant) {
        let k = &mut self.isl[l];
        if k.open == 0 || k.pump_at.is_some_and(|p| p <= t) {
            return;
        }
        k.pump_at = Some(t);
        self.at(t, Ev::IslPump(l));
    }

    /// One second of ISL time: frames both ways within the terminals' rate.
    fn isl_pump(&mut self, l: usize) {
        if self.isl[l].pump_at != Some(self.now) {
            return;
        }
        self.isl[l].pump_at = None;
        if self.isl[l].open == 0 {
            return;
        }
        const SLICE_S: f64 = 1.0;
        let now_ms = (self.now - self.start).as_secs_f64().mul_add(1000.0, 0.5) as i64;
        let budget = (self.isl[l].bytes_per_s * SLICE_S) as usize;
        let delay = Duration::from_secs_f64(SLICE_S)
            + Duration::from_millis(self.config.twin.link_delay_ms);
        let loss = self.config.twin.link_loss;
        let mut active = false;
        for to_b in [true, false] {
            let k = &mut self.isl[l];
            let sender = if to_b { &mut k.a_end } else { &mut k.b_end };
            let (frames, used) = draw_frames(
                sender,
                &mut self.rng,
                (now_ms, budget, loss),
                None,
                &mut self.frames_sent,
                &mut self.frames_lost,
            );
            self.bytes_isl += used as u64;
            if !frames.is_empty() {
                active = true;
                let epoch = self.isl[l].epoch;
                self.at(
                    self.now + delay,
                    Ev::IslFrames {
                        link: l,
                        to_b,
                        epoch,
                        frames,
                    },
                );
            }
        }
        let k = &self.isl[l];
        if active || k.a_end.pending() > 0 || k.b_end.pending() > 0 {
            self.schedule_isl_pump(l, self.now + Duration::from_secs_f64(SLICE_S));
        }
    }

    fn isl_receive(&mut self, l: usize, to_b: bool, epoch: u64, frames: Vec<Vec<u8>>) {
        if self.isl[l].epoch != epoch {
            return;
        }
        let k = &mut self.isl[l];
        let delivered = if to_b {
            deliver(&mut k.b_end, &mut k.a_end, &frames)
        } else {
            deliver(&mut k.a_end, &mut k.b_end, &frames)
        };
        let to = if to_b { self.isl[l].b } else { self.isl[l].a };
        let node_now = self.node_now(to);
        for payload in delivered {
            if let Ok(envelope) = wire::decode(&payload) {
                self.nodes[to].core.handle_isl_message(envelope, node_now);
            }
        }
        self.flush_node(to);
        self.drive(to);
        self.schedule_isl_pump(l, self.now);
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

    /// Integrates a node's battery and temperature up to now with the load it carried.
    fn advance_physics(&mut self, i: usize) {
        let step = self.config.twin.physics_step_s;
        let n = &mut self.nodes[i];
        let load = n.model.base_load_w + if n.busy { n.model.busy_extra_w } else { 0.0 };
        while n.physics_at < self.now {
            let dt = (self.now - n.physics_at).as_secs_f64().min(step);
            let mid = n.physics_at + Duration::from_secs_f64(dt / 2.0);
            let sun = n.illumination.fraction_at(mid);
            let (energy, _) = n.model.battery_step(n.energy_wh, sun, load, dt);
            n.temp_k = n.model.thermal_step(n.temp_k, sun, load, dt);
            n.energy_wh = energy;
            n.physics_at += Duration::from_secs_f64(dt);
        }
    }

    /// Every physics step: integrate, read the sensors into the flight cores, let the ground expire and replan.
    fn physics(&mut self) {
        let step = Duration::from_secs_f64(self.config.twin.physics_step_s);
        let sample =
            (self.now - self.start).as_secs_f64() % 600.0 < self.config.twin.physics_step_s;
        for i in 0..self.nodes.len() {
            self.advance_physics(i);
            let hours = (self.now - self.start).as_secs_f64() / 3600.0;
            let n = &mut self.nodes[i];
            let soc = n.energy_wh / n.spec.power.battery_capacity_wh;
            let temp_c = n.temp_k - ZERO_CELSIUS_K;
            n.report.min_soc = n.report.min_soc.min(soc);
            n.report.max_temp_c = n.report.max_temp_c.max(temp_c);
            if soc < n.spec.power.min_state_of_charge - 1e-6 && n.report.soc_breach.is_none() {
                n.report.soc_breach = Some(hours);
            }
            if temp_c > n.spec.thermal.max_temp_c + 1e-6 && n.report.temp_breach.is_none() {
                n.report.temp_breach = Some(hours);
            }
            if sample {
                n.report.samples.push(Sample {
                    hours,
                    soc,
                    temp_c,
                    busy: n.busy,
                });
            }
            // The governor hears the reading (and may preempt), and due work may start.
            self.drive(i);
        }
        self.ground.tick(self.now);
        self.schedule_planned_isl();
        self.flush_ground();
        if self.now + step <= self.end {
            self.at(self.now + step, Ev::Physics);
        }
    }

    fn fault(&mut self, k: usize, begins: bool) {
        let f = self.faults[k].clone();
        let node = f.node.min(self.nodes.len().saturating_sub(1));
        let station = f.station.min(self.stations.len().saturating_sub(1));
        let until = self.now + Duration::from_secs_f64(f.minutes * 60.0);
        if begins {
            let who = self
                .nodes
                .get(node)
                .map_or(String::new(), |n| n.spec.id.as_str().to_string());
            let st = self
                .stations
                .get(station)
                .map_or(String::new(), |s| s.id.as_str().to_string());
            self.fault_log.push((self.now, f.describe(&who, &st)));
        }
        if self.nodes.is_empty() {
            return;
        }
        match (f.kind, begins) {
            (FaultKind::DropLink, true) => {
                self.nodes[node].blocked_until = until;
                self.relink(node);
                self.at(until, Ev::FaultEnd(k));
            }
            (FaultKind::DropLink, false) => self.relink(node),
            (FaultKind::StationDown, _) => {
                if self.stations.is_empty() {
                    return;
                }
                // At the fault's end `station_down_until` has passed: the station is back.
                if begins {
                    self.station_down_until[station] = until;
                    self.at(until, Ev::FaultEnd(k));
                }
                let id = self.stations[station].id.clone();
                self.ground.station_status(&id, !begins, self.now);
                for i in 0..self.nodes.len() {
                    if self.nodes[i].in_view.contains(&station) {
                        self.relink(i);
                    }
                }
                self.flush_ground();
            }
            (FaultKind::Restart, true) => self.restart(node),
            (FaultKind::ClockSkew, true) => {
                self.nodes[node].skew = self.nodes[node].skew + Duration::from_secs_f64(f.seconds);
                self.drive(node);
            }
            (FaultKind::Corrupt, true) => self.nodes[node].corrupt = (until, f.rate),
            (FaultKind::Duplicate, true) => self.nodes[node].duplicate = (until, f.rate),
            (FaultKind::Brownout, true) => {
                self.advance_physics(node);
                let n = &mut self.nodes[node];
                n.energy_wh = (n.energy_wh - f.wh).max(0.0);
                n.brownout_at = n.brownout_at.or(Some(self.now));
            }
            _ => {}
        }
    }

    /// A node reboots: its durable state goes through serialisation (as a store would keep it), everything else
    /// is lost; both ends of its link session start afresh.
    fn restart(&mut self, i: usize) {
        self.advance_physics(i);
        let node_now = self.node_now(i);
        let spec = self.nodes[i].spec.clone();
        let id = spec.id.clone();
        let bytes = match rmp_serde::to_vec_named(self.nodes[i].core.durable()) {
            Ok(b) => b,
            Err(_) => return,
        };
        let Ok(durable) = rmp_serde::from_slice::<odc_flight::Durable>(&bytes) else {
            return;
        };
        let link = self.nodes[i].link;
        let n = &mut self.nodes[i];
        n.core = FlightCore::recover(durable, spec, GovernorConfig::default(), node_now);
        give_seal(&self.keyring, &mut n.core);
        n.running = None;
        n.busy = false;
        n.wake_at = None;
        n.ground_end = Session::new(self.session);
        n.node_end = Session::new(self.session);
        n.epoch += 1;
        self.ground.link_reset(&id);
        if link.is_some() {
            let n = &mut self.nodes[i];
            n.ground_end.handle_contact(true);
            n.node_end.handle_contact(true);
            n.core.handle_contact(true, node_now);
            self.flush_node(i);
            self.schedule_pump(i, self.now);
        }
        // Its ISL sessions start afresh too; the links that are open come back up for the new core.
        let links: Vec<(usize, usize)> = self.isl_of[i].iter().map(|(&p, &l)| (p, l)).collect();
        for (peer, l) in links {
            let k = &mut self.isl[l];
            k.a_end = Session::new(self.session);
            k.b_end = Session::new(self.session);
            k.epoch += 1;
            k.pump_at = None;
            if k.open > 0 {
                k.a_end.handle_contact(true);
                k.b_end.handle_contact(true);
                let peer_id = self.nodes[peer].spec.id.clone();
                self.nodes[i].core.handle_isl(&peer_id, true, node_now);
                self.flush_node(i);
                self.schedule_isl_pump(l, self.now);
            }
        }
        self.drive(i);
    }

    fn finish(mut self) -> Outcome {
        let mut violations = Vec::new();
        let jobs: Vec<odc_model::job::Job> = self.ground.jobs().cloned().collect();
        let mut per_tenant: Vec<TenantReport> = self
            .tenants
            .iter()
            .map(|t| TenantReport {
                name: t.name.clone(),
                ..TenantReport::default()
            })
            .collect();
        let tenant_of: BTreeMap<TenantId, usize> = self
            .tenants
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i))
            .collect();
        for job in &jobs {
            let t = tenant_of.get(&job.spec.tenant).copied().unwrap_or(0);
            let r = &mut per_tenant[t];
            r.accepted += 1;
            match &job.state {
                JobState::Delivered => {
                    r.delivered += 1;
                    if job
                        .history
                        .last()
                        .is_some_and(|h| h.at <= job.spec.deadline)
                    {
                        r.on_time += 1;
                    }
                }
                JobState::Failed { .. } => r.failed += 1,
                JobState::Expired => r.expired += 1,
                JobState::Cancelled => r.cancelled += 1,
                _ => r.open += 1,
            }
            if job.spec.deadline <= self.end && !job.state.is_terminal() {
                violations.push(format!(
                    "job {} lost: {} at the end although its deadline {} passed",
                    job.id,
                    job.state.name(),
                    job.spec.deadline
                ));
            }
        }
        for (job, n) in &self.deliveries {
            if *n > 1 {
                violations.push(format!("job {job} delivered {n} times"));
            }
        }
        for (job, n) in &self.completions {
            if *n > 1 {
                violations.push(format!("job {job} ran to completion {n} times"));
            }
        }
        let mut billed: BTreeMap<JobId, usize> = BTreeMap::new();
        for rec in self.ground.ledger() {
            *billed.entry(rec.job).or_default() += 1;
            if let Some(&t) = tenant_of.get(&rec.tenant) {
                per_tenant[t].accelerator_s += rec.usage.accelerator_s;
                per_tenant[t].energy_wh += rec.usage.energy_wh;
                per_tenant[t].uplink_bytes += rec.usage.uplink_bytes;
                per_tenant[t].downlink_bytes += rec.usage.downlink_bytes;
            }
        }
        for (job, n) in &billed {
            if *n > 1 {
                violations.push(format!("job {job} billed {n} times"));
            }
        }
        for job in &jobs {
            let delivered = job.state == JobState::Delivered;
            if delivered != billed.contains_key(&job.id) {
                violations.push(format!(
                    "job {} is {} but billed {} times",
                    job.id,
                    job.state.name(),
                    billed.get(&job.id).unwrap_or(&0)
                ));
            }
        }
        for n in &mut self.nodes {
            n.report.governor = n
                .core
                .governor_actions()
                .iter()
                .map(|a| {
                    (
                        (a.at - self.start).as_secs_f64() / 3600.0,
                        a.kind.clone(),
                        a.reason.clone(),
                    )
                })
                .collect();
            // A limit may only be crossed when a fault forced it, and the governor must then have held work back:
            // no batch started below the battery minimum.
            if let Some(h) = n.report.soc_breach {
                let at = self.start + Duration::from_secs_f64(h * 3600.0);
                if n.brownout_at.is_none_or(|b| b > at) {
                    violations.push(format!(
                        "{}: battery below its minimum at {h:.2} h with no fault to blame",
                        n.report.name
                    ));
                }
            }
            if n.started_below_floor > 0 {
                violations.push(format!(
                    "{}: {} batches started with the battery below its minimum",
                    n.report.name, n.started_below_floor
                ));
            }
            if let Some(h) = n.report.temp_breach {
                violations.push(format!(
                    "{}: temperature above its maximum at {h:.2} h",
                    n.report.name
                ));
            }
        }
        let mut hasher = Sha256::new();
        for job in &jobs {
            hasher.update(job.id.to_string().as_bytes());
            hasher.update(job.state.name().as_bytes());
            for h in &job.history {
                hasher.update(h.event.name().as_bytes());
                hasher.update(h.at.unix_ms().to_le_bytes());
            }
        }
        for rec in self.ground.ledger() {
            hasher.update(rec.job.to_string().as_bytes());
            hasher.update(rec.usage.accelerator_s.to_le_bytes());
        }
        for n in &self.nodes {
            for g in &n.report.governor {
                hasher.update(g.0.to_le_bytes());
                hasher.update(g.1.as_bytes());
            }
        }
        let trace_hash: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        for (tenant, seconds, _) in &self.latencies {
            if let Some(r) = per_tenant.get_mut(*tenant) {
                r.latencies_s.push(*seconds);
            }
        }
        let report = RunReport {
            scenario_start: self.start.to_string(),
            hours: self.config.hours,
            seed: self.config.seed,
            backend: format!("{:?}", self.config.twin.backend).to_lowercase(),
            nodes: self.nodes.into_iter().map(|n| n.report).collect(),
            stations: self
                .stations
                .iter()
                .map(|s| s.id.as_str().to_string())
                .collect(),
            tenants: per_tenant,
            submitted: self.arrivals.len(),
            refused: self.refused.into_iter().collect(),
            replans: self.ground.replans().iter().filter(|r| r.full).count(),
            repairs: self.ground.replans().iter().filter(|r| !r.full).count(),
            frames_sent: self.frames_sent,
            frames_lost: self.frames_lost,
            bytes_up: self.bytes_up,
            bytes_down: self.bytes_down,
            bytes_isl: self.bytes_isl,
            relayed_inputs: self.ground.relay_counts().0,
            relayed_results: self.ground.relay_counts().1,
            results_checked: self.checked,
            results_correct: self.correct,
            faults: self
                .fault_log
                .iter()
                .map(|(t, d)| ((*t - self.start).as_secs_f64() / 3600.0, d.clone()))
                .collect(),
            violations: violations.clone(),
            trace_hash: trace_hash.clone(),
        };
        Outcome {
            report,
            violations,
            trace_hash,
        }
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
