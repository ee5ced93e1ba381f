//! The flight daemon: the flight core in a process, with its durable store, an accelerator backend, sensors and
//! the link's QUIC shell.
//!
//! One task owns the core and runs its loop: read the sensors, start what is due on the accelerator, finish runs,
//! take in what the ground delivered. After every step that changes the core, the store commits what changed
//! **before** anything the core wants sent leaves the process: an acknowledgement (a receipt, a report, a result)
//! is never sent for a state that a `kill -9` could still undo. When a pass over a station begins (one the node
//! predicted from its own elements, or a contact the plan in force books from the ground's), a second task dials
//! the ground and carries the node's session over QUIC until the pass ends.

use crate::core::{Action, FlightCore, RunOutput};
use crate::governor::GovernorConfig;
use crate::sensors::SensorSource;
use crate::store::{FlightStore, FlightStoreError};
use bytes::Bytes;
use odc_accel::{Accelerator, Batch, JobInput};
use odc_link::quic::{self, ContactEnd};
use odc_link::session::{Event, Priority, Session, SessionConfig};
use odc_link::{Credentials, Identity};
use odc_model::spec::NodeSpec;
use odc_model::time::{Clock, Duration, Instant, ScaledClock};
use odc_model::wire::{self, Envelope};
use rustls_pki_types::CertificateDer;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;

/// What can stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The store could not be read or written: the daemon stops rather than acknowledge what it could not keep.
    #[error("flight store: {0}; stopping (nothing uncommitted was acknowledged)")]
    Store(#[from] FlightStoreError),
    /// The link endpoint could not be opened.
    #[error("link: {0}")]
    Link(#[from] odc_link::LinkError),
    /// The accelerator could not load its model.
    #[error("accelerator: {0}")]
    Accelerator(String),
}

/// Passes (start, end) from a time on, and the end of the span they cover.
pub type PassSource =
    Box<dyn FnMut(Instant) -> Result<(Vec<(Instant, Instant)>, Instant), String> + Send>;

/// Everything a daemon runs with.
pub struct DaemonConfig {
    /// The node.
    pub spec: NodeSpec,
    /// The node's passes over the stations, in time order (when it dials the ground).
    pub passes: Vec<(Instant, Instant)>,
    /// The end of the span `passes` covers.
    pub passes_until: Instant,
    /// Computes the passes from a time on, and the end of the span they cover: called when less than half the
    /// span is left, so a node that runs for weeks keeps dialling.
    pub more_passes: PassSource,
    /// The ground's link address and identity.
    pub ground: (SocketAddr, Identity),
    /// The node's credentials.
    pub credentials: Credentials,
    /// The CA certificate.
    pub ca: CertificateDer<'static>,
    /// The store.
    pub store: FlightStore,
    /// The clock (real time, or accelerated for a local constellation).
    pub clock: ScaledClock,
    /// The sensors.
    pub sensors: Box<dyn SensorSource>,
    /// The accelerator, with its models loaded.
    pub backend: Box<dyn Accelerator>,
    /// Input shape the backend expects for each job (the tile classifier's bands, rows, columns).
    pub input_shape: Vec<usize>,
    /// Simulated time between sensor readings.
    pub sense_every: Duration,
}

/// What the daemon exposes on its metrics endpoint.
#[derive(Debug, Default, Clone)]
pub struct FlightGauges {
    /// Jobs by flight state.
    pub jobs: std::collections::BTreeMap<&'static str, u64>,
    /// Jobs queued.
    pub queue_depth: usize,
    /// Messages waiting for the ground.
    pub outbox_depth: usize,
    /// Frames held for relay.
    pub relay_depth: usize,
    /// Battery state of charge, 0..1.
    pub state_of_charge: f64,
    /// Temperature, °C.
    pub temp_c: f64,
    /// Whether a contact is open.
    pub in_contact: bool,
    /// Contacts opened since start.
    pub contacts: u64,
    /// Bytes sent and received over the ground link since start.
    pub link_bytes: (u64, u64),
    /// Batches run, and jobs in them, since start.
    pub batches: (u64, u64),
    /// The node's incarnation (restarts so far, plus one).
    pub incarnation: u64,
}

impl FlightGauges {
    /// The Prometheus text exposition.
    pub fn render(&self, node: &str) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, v: f64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{node=\"{node}\"}} {v}"
            );
        };
        gauge(
            "odc_flight_queue_depth",
            "Jobs queued.",
            self.queue_depth as f64,
        );
        gauge(
            "odc_flight_outbox_depth",
            "Messages waiting for the ground.",
            self.outbox_depth as f64,
        );
        gauge(
            "odc_flight_relay_depth",
            "Frames held for relay.",
            self.relay_depth as f64,
        );
        gauge(
            "odc_flight_state_of_charge",
            "Battery state of charge, 0..1.",
            self.state_of_charge,
        );
        gauge(
            "odc_flight_temperature_celsius",
            "Node temperature.",
            self.temp_c,
        );
        gauge(
            "odc_flight_in_contact",
            "Whether a ground contact is open.",
            f64::from(u8::from(self.in_contact)),
        );
        gauge(
            "odc_flight_contacts",
            "Ground contacts opened since start.",
            self.contacts as f64,
        );
        gauge(
            "odc_flight_link_sent_bytes",
            "Bytes sent over ground links since start.",
            self.link_bytes.0 as f64,
        );
        gauge(
            "odc_flight_link_received_bytes",
            "Bytes received over ground links since start.",
            self.link_bytes.1 as f64,
        );
        gauge(
            "odc_flight_batches",
            "Batches run since start.",
            self.batches.0 as f64,
        );
        gauge(
            "odc_flight_batch_jobs",
            "Jobs in batches run since start.",
            self.batches.1 as f64,
        );
        gauge(
            "odc_flight_incarnation",
            "Restarts so far, plus one.",
            self.incarnation as f64,
        );
        let _ = writeln!(
            out,
            "# HELP odc_flight_jobs Jobs held by the node, by state.\n# TYPE odc_flight_jobs gauge"
        );
        for (state, n) in &self.jobs {
            let _ = writeln!(
                out,
                "odc_flight_jobs{{node=\"{node}\",state=\"{state}\"}} {n}"
            );
        }
        out
    }
}

/// What the contact task tells the core's task.
enum FromLink {
    /// The link is up; `reset` when the ground restarted since the last contact.
    Up { reset: bool },
    /// A message from the ground.
    Message(Envelope),
    /// The contact is over (or never began), and hands the session back.
    Down(ContactDone),
}

/// A contact in progress: how to end it (`None` once asked to).
struct Contact {
    stop: Option<oneshot::Sender<()>>,
}

/// What a contact hands back.
struct ContactDone {
    session: Session,
    rx: UnboundedReceiver<(Priority, Bytes)>,
    ground_session: u64,
    bytes: (u64, u64),
    ok: bool,
}

/// A batch on the accelerator.
struct Running {
    run: u64,
    done_at: Instant,
    outputs: Vec<RunOutput>,
    busy_s: f64,
    energy_wh: f64,
}

/// Session limits on the ground link (the ground's are the same).
fn session_config() -> SessionConfig {
    SessionConfig {
        retransmit_ms: 10_000,
        ..SessionConfig::default()
    }
}

/// Runs the node until `stop` resolves (or the store fails). `gauges` is refreshed as the node runs.
pub async fn run(
    mut config: DaemonConfig,
    gauges: Arc<Mutex<FlightGauges>>,
    stop: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let clock = config.clock;
    let now = clock.now();
    let mut core = match config.store.load()? {
        Some(durable) => {
            FlightCore::recover(durable, config.spec.clone(), GovernorConfig::default(), now)
        }
        None => FlightCore::new(config.spec.clone(), GovernorConfig::default()),
    };
    // The new incarnation is durable before anything is said under it.
    commit(&config.store, &mut core)?;
    tracing::info!(node = %core.node(), incarnation = core.durable().incarnation, jobs = core.durable().jobs.len(), "flight node up");
    let endpoint = quic::client_endpoint(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        &config.credentials,
        &config.ca,
        quic::LinkConfig {
            idle_timeout: std::time::Duration::from_secs(3),
        },
    )?;
    let me = config.credentials.identity.clone();
    let session_id = quic::new_session_id();
    let (out_tx, out_rx) = unbounded_channel::<(Priority, Bytes)>();
    let mut parked: Option<(Session, UnboundedReceiver<(Priority, Bytes)>)> =
        Some((Session::new(session_config()), out_rx));
    let mut ground_session = 0u64;
    let (link_tx, mut link_rx) = unbounded_channel::<FromLink>();
    let mut contact: Option<Contact> = None;
    let mut dial_at = now;
    let mut running: Option<Running> = None;
    let mut next_sense = now;
    let mut busy_since_sense = false;
    let mut refresh_passes_at = halfway(now, config.passes_until);
    let mut stats = FlightGauges::default();
    tokio::pin!(stop);
    loop {
        let now = clock.now();
        let mut touched = false;
        // Sensors.
        if now >= next_sense {
            let reading = config
                .sensors
                .read(now, busy_since_sense || running.is_some());
            busy_since_sense = running.is_some();
            core.tick(reading, now);
            stats.state_of_charge = reading.state_of_charge;
            stats.temp_c = reading.temp_c;
            next_sense = now + config.sense_every;
            touched = true;
        }
        // A finished run.
        if running.as_ref().is_some_and(|r| r.done_at <= now)
            && let Some(r) = running.take()
        {
            stats.batches.0 += 1;
            stats.batches.1 += r.outputs.len() as u64;
            core.batch_done(r.run, r.outputs, r.busy_s, r.energy_wh, now);
            touched = true;
        }
        // What is due.
        while let Some(action) = core.poll_action(now) {
            touched = true;
            match action {
                Action::Run(mut req) => {
                    let inputs: Vec<JobInput> = std::mem::take(&mut req.jobs)
                        .into_iter()
                        .map(|(job, data)| JobInput {
                            job,
                            tenant: req.tenant,
                            shape: config.input_shape.clone(),
                            data,
                        })
                        .collect();
                    let batch = Batch {
                        model: req.model.clone(),
                        tenant: req.tenant,
                        inputs,
                        budget: req.budget,
                    };
                    // A batch is at most a few dozen inputs: milliseconds on the CPU, run in place.
                    match config.backend.run(&batch) {
                        Ok(result) => {
                            let seconds = req.estimate.as_secs_f64();
                            busy_since_sense = true;
                            running = Some(Running {
                                run: req.run,
                                done_at: now + Duration::from_secs_f64(seconds),
                                outputs: result
                                    .outputs
                                    .into_iter()
                                    .map(|o| RunOutput {
                                        job: o.job,
                                        result: o.result.map_err(|e| e.to_string()),
                                    })
                                    .collect(),
                                busy_s: seconds,
                                energy_wh: config.spec.accelerator.busy_power_w * seconds / 3600.0,
                            });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, run = req.run, "the accelerator refused a batch");
                            core.batch_failed(req.run, now);
                        }
                    }
                }
                Action::Preempt { run } => {
                    if running.as_ref().is_some_and(|r| r.run == run) {
                        running = None;
                    }
                }
            }
        }
        // Passes ahead: computed again when half the span is used.
        if now >= refresh_passes_at {
            refresh_passes_at = match (config.more_passes)(now) {
                Ok((passes, until)) => {
                    tracing::info!(passes = passes.len(), until = %until, "passes computed ahead");
                    config.passes = passes;
                    config.passes_until = until;
                    halfway(now, until)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the passes ahead could not be computed");
                    now + Duration::from_hours(1)
                }
            };
        }
        // Passes: dial at the start of one, hang up at its end.
        // In a pass it predicted itself, or in a contact the plan in force books (the ground's prediction, from
        // the freshest element sets operators uploaded).
        let in_pass = config.passes.iter().any(|&(a, b)| a <= now && now < b)
            || core
                .durable()
                .plan
                .iter()
                .flat_map(|p| p.contacts.iter())
                .any(|c| &c.node == core.node() && c.start <= now && now < c.end);
        if in_pass && contact.is_none() && now >= dial_at {
            if let Some((session, rx)) = parked.take() {
                let (stop_tx, stop_rx) = oneshot::channel();
                tokio::spawn(contact_task(
                    endpoint.clone(),
                    config.ground.clone(),
                    me.clone(),
                    session_id,
                    ground_session,
                    session,
                    rx,
                    link_tx.clone(),
                    stop_rx,
                ));
                contact = Some(Contact {
                    stop: Some(stop_tx),
                });
            }
        } else if !in_pass && let Some(stop) = contact.as_mut().and_then(|c| c.stop.take()) {
            let _ = stop.send(());
        }
        if touched {
            commit(&config.store, &mut core)?;
        }
        flush(&mut core, &out_tx);
        stats.jobs.clear();
        for j in core.durable().jobs.values() {
            *stats.jobs.entry(j.state.name()).or_default() += 1;
        }
        stats.queue_depth = core.queue_depth();
        stats.outbox_depth = core.outbox_depth();
        stats.relay_depth = core.relay_depth();
        stats.in_contact = contact.is_some();
        stats.incarnation = core.durable().incarnation;
        if let Ok(mut g) = gauges.lock() {
            *g = stats.clone();
        }
        // Sleep until the next thing: a wake-up of the core, a run's end, a reading, a pass edge.
        let mut wake = next_sense.min(refresh_passes_at);
        if let Some(t) = core.poll_timeout(now) {
            wake = wake.min(t);
        }
        if let Some(r) = &running {
            wake = wake.min(r.done_at);
        }
        let plan_edges = core
            .durable()
            .plan
            .iter()
            .flat_map(|p| p.contacts.iter())
            .filter(|c| &c.node == core.node())
            .flat_map(|c| [c.start, c.end]);
        if let Some(edge) = config
            .passes
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .chain(plan_edges)
            .filter(|&t| t > now)
            .min()
        {
            wake = wake.min(edge);
        }
        if in_pass && contact.is_none() {
            wake = wake.min(dial_at);
        }
        let sleep = clock
            .wall_until(wake)
            .max(std::time::Duration::from_millis(1));
        tokio::select! {
            biased;
            () = &mut stop => break,
            message = link_rx.recv() => {
                let now = clock.now();
                match message {
                    Some(FromLink::Up { reset }) => {
                        if reset {
                            core.link_reset();
                        }
                        stats.contacts += 1;
                        core.handle_contact(true, now);
                    }
                    Some(FromLink::Message(envelope)) => core.handle_message(envelope, now),
                    Some(FromLink::Down(d)) => {
                        contact = None;
                        stats.link_bytes.0 += d.bytes.0;
                        stats.link_bytes.1 += d.bytes.1;
                        ground_session = d.ground_session;
                        parked = Some((d.session, d.rx));
                        if !d.ok {
                            // The ground did not answer: dial again a little later (simulated time).
                            dial_at = now + Duration::from_secs(30);
                        }
                        core.handle_contact(false, now);
                    }
                    None => {}
                }
                // Committed before the receipts and reports it caused go out.
                commit(&config.store, &mut core)?;
                flush(&mut core, &out_tx);
            }
            () = tokio::time::sleep(sleep) => {}
        }
    }
    if let Some(stop) = contact.take().and_then(|mut c| c.stop.take()) {
        let _ = stop.send(());
        // The contact hangs up; its session is not kept across processes.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), link_rx.recv()).await;
    }
    commit(&config.store, &mut core)?;
    endpoint.wait_idle().await;
    Ok(())
}

/// The moment half of the span from `from` to `until` is used.
fn halfway(from: Instant, until: Instant) -> Instant {
    from + Duration::from_secs_f64((until - from).as_secs_f64().max(0.0) / 2.0)
}

/// Commits what changed in the core.
fn commit(store: &FlightStore, core: &mut FlightCore) -> Result<(), FlightStoreError> {
    let changed = core.take_changed();
    store.save(core.durable(), &changed)
}

/// Moves what the core wants sent into the link's queue (only ever after a commit).
fn flush(core: &mut FlightCore, out: &UnboundedSender<(Priority, Bytes)>) {
    while let Some(envelope) = core.poll_outgoing() {
        match wire::encode(&envelope) {
            Ok(bytes) => {
                let _ = out.send((Priority::from(envelope.message.class()), Bytes::from(bytes)));
            }
            Err(e) => tracing::warn!(error = %e, "a message for the ground does not encode"),
        }
    }
    // This node relays nothing over ISLs here (no terminal in a local constellation): frames held for a
    // neighbour stay in the core's relay store until they expire or the ground is reached.
}

#[allow(clippy::too_many_arguments)]
async fn contact_task(
    endpoint: quinn::Endpoint,
    ground: (SocketAddr, Identity),
    me: Identity,
    session_id: u64,
    known_ground: u64,
    session: Session,
    rx: UnboundedReceiver<(Priority, Bytes)>,
    to_core: UnboundedSender<FromLink>,
    stop: oneshot::Receiver<()>,
) {
    let done = contact(
        endpoint,
        ground,
        me,
        session_id,
        known_ground,
        session,
        rx,
        to_core.clone(),
        stop,
    )
    .await;
    let _ = to_core.send(FromLink::Down(done));
}

#[allow(clippy::too_many_arguments)]
async fn contact(
    endpoint: quinn::Endpoint,
    ground: (SocketAddr, Identity),
    me: Identity,
    session_id: u64,
    known_ground: u64,
    mut session: Session,
    mut rx: UnboundedReceiver<(Priority, Bytes)>,
    to_core: UnboundedSender<FromLink>,
    stop: oneshot::Receiver<()>,
) -> ContactDone {
    let link = match quic::connect_session(&endpoint, ground.0, &ground.1, &me, session_id).await {
        Ok(link) => link,
        Err(e) => {
            tracing::warn!(error = %e, "cannot reach the ground");
            return ContactDone {
                session,
                rx,
                ground_session: known_ground,
                bytes: (0, 0),
                ok: false,
            };
        }
    };
    let ground_session = link.session_id();
    let reset = known_ground != 0 && ground_session != known_ground;
    if reset {
        // The ground restarted: its end of the session is gone, so ours starts afresh too.
        session = Session::new(session_config());
    }
    let conn = link.connection().clone();
    let _ = to_core.send(FromLink::Up { reset });
    let tx = to_core.clone();
    let mut on_event = move |event: Event| {
        if let Event::Delivered { payload, .. } = event {
            match wire::decode(&payload) {
                Ok(envelope) => {
                    let _ = tx.send(FromLink::Message(envelope));
                }
                Err(e) => tracing::warn!(error = %e, "a message from the ground does not decode"),
            }
        }
    };
    let stop = async {
        let _ = stop.await;
    };
    let end = link
        .run_interactive(&mut session, &mut on_event, &mut rx, stop)
        .await;
    let stats = conn.stats();
    let ok = match end {
        Ok(ContactEnd::Stopped) | Ok(ContactEnd::Lost) => true,
        Err(e) => {
            tracing::warn!(error = %e, "the contact ended on an error");
            false
        }
    };
    ContactDone {
        session,
        rx,
        ground_session,
        bytes: (stats.udp_tx.bytes, stats.udp_rx.bytes),
        ok,
    }
}
