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
pub use crate::gauges::FlightGauges;
use crate::governor::GovernorConfig;
use crate::sensors::SensorSource;
use crate::store::{FlightStore, FlightStoreError};
use bytes::Bytes;
use odc_accel::{Accelerator, Batch, JobInput};
use odc_link::quic::{self, ContactEnd};
use odc_link::session::{Event, Priority, Session, SessionConfig};
use odc_link::{Credentials, Identity};
use odc_model::id::NodeId;
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
    /// The node's credentials cannot seal relayed frames.
    #[error("credentials: {0}")]
    Credentials(#[from] odc_link::PkiError),
}

/// When a node can link, over a span: its passes over the stations and its ISL windows with neighbours.
#[derive(Debug, Clone, Default)]
pub struct Windows {
    /// Passes (start, end), in time order.
    pub passes: Vec<(Instant, Instant)>,
    /// ISL windows (neighbour, start, end).
    pub isl: Vec<(NodeId, Instant, Instant)>,
    /// The end of the span they cover.
    pub until: Instant,
}

/// Computes the windows from a time on.
pub type WindowSource = Box<dyn FnMut(Instant) -> Result<Windows, String> + Send>;

/// Everything a daemon runs with.
pub struct DaemonConfig {
    /// The node.
    pub spec: NodeSpec,
    /// When the node can link (when it dials the ground, and its neighbours).
    pub windows: Windows,
    /// Computes the windows from a time on: called when less than half the span is left, so a node that runs for
    /// weeks keeps dialling.
    pub more_windows: WindowSource,
    /// Neighbours it links with over ISLs, and where to reach each (it dials those with a greater id; the others
    /// dial it).
    pub neighbours: Vec<(NodeId, SocketAddr)>,
    /// Where neighbours dial in (`None`: no ISL terminal).
    pub isl_listen: Option<SocketAddr>,
    /// The local address the links this node dials leave from (port 0: any).
    pub link_bind: SocketAddr,
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

/// Who a link reaches: the ground, or a neighbour over an ISL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    /// The ground, through a station in a pass.
    Ground,
    /// A neighbouring node, over an inter-satellite link.
    Node(NodeId),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Ground => f.write_str("ground"),
            Peer::Node(n) => write!(f, "{n}"),
        }
    }
}

/// What the contact tasks (and the ISL listener) tell the core's task.
enum FromLink {
    /// A link is up; `reset` when the peer restarted since the last contact.
    Up { peer: Peer, reset: bool },
    /// A message from a peer.
    Message { peer: Peer, envelope: Envelope },
    /// A contact is over (or never began), and hands the session back.
    Down { peer: Peer, done: ContactDone },
    /// A neighbour dialled in over an ISL.
    Incoming(NodeId, quic::Link),
}

/// One peer's end of the links, kept between contacts.
struct PeerLink {
    /// The session and its queue, or `None` while a contact holds them.
    parked: Option<(Session, UnboundedReceiver<(Priority, Bytes)>)>,
    /// Messages for the peer.
    tx: UnboundedSender<(Priority, Bytes)>,
    /// The peer's session number when last linked.
    known_session: u64,
    /// Ends the contact in progress (`None` once asked to, or when there is none).
    stop: Option<oneshot::Sender<()>>,
    /// Whether a contact is in progress.
    active: bool,
    /// Not before this (after a failed dial).
    dial_at: Instant,
    /// Where to dial it (`None`: it dials this node).
    addr: Option<(SocketAddr, Identity)>,
    /// A link the peer opened while an older contact still held the session (the peer restarted): it takes over
    /// when the older one hands the session back.
    waiting: Option<quic::Link>,
}

impl PeerLink {
    fn new(addr: Option<(SocketAddr, Identity)>, now: Instant) -> PeerLink {
        let (tx, rx) = unbounded_channel();
        PeerLink {
            parked: Some((Session::new(session_config()), rx)),
            tx,
            known_session: 0,
            stop: None,
            active: false,
            dial_at: now,
            addr,
            waiting: None,
        }
    }
}

/// How a contact's link is made.
enum Dial {
    /// This node dials.
    Out {
        endpoint: quinn::Endpoint,
        addr: SocketAddr,
        server: Identity,
        me: Identity,
        session_id: u64,
    },
    /// The peer dialled in.
    In(quic::Link),
}

/// What a contact hands back.
struct ContactDone {
    session: Session,
    rx: UnboundedReceiver<(Priority, Bytes)>,
    peer_session: u64,
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
    // Relayed frames are proven end to end with the node's own link key and checked against the CA.
    core.set_relay_seal(Arc::new(odc_link::PkiSeal::new(
        &config.credentials,
        config.ca.clone(),
        config.ground.1.clone(),
    )?));
    // The new incarnation is durable before anything is said under it.
    commit(&config.store, &mut core)?;
    tracing::info!(node = %core.node(), incarnation = core.durable().incarnation, jobs = core.durable().jobs.len(), "flight node up");
    let endpoint = quic::client_endpoint(
        config.link_bind,
        &config.credentials,
        &config.ca,
        quic::LinkConfig {
            idle_timeout: std::time::Duration::from_secs(3),
        },
    )?;
    let me = config.credentials.identity.clone();
    let session_id = quic::new_session_id();
    let (link_tx, mut link_rx) = unbounded_channel::<FromLink>();
    let mut peers: std::collections::BTreeMap<Peer, PeerLink> = std::collections::BTreeMap::new();
    peers.insert(
        Peer::Ground,
        PeerLink::new(Some(config.ground.clone()), now),
    );
    for (n, addr) in &config.neighbours {
        // The node with the smaller id dials, so each pair makes one link.
        let dial = (n.as_str() > core.node().as_str())
            .then(|| Identity::node(n.as_str()).map(|id| (*addr, id)))
            .transpose()
            .map_err(|e| DaemonError::Link(e.into()))?;
        peers.insert(Peer::Node(n.clone()), PeerLink::new(dial, now));
    }
    let listener = match config.isl_listen {
        Some(bind) if !config.neighbours.is_empty() => {
            let server = quic::server_endpoint(
                bind,
                &config.credentials,
                &config.ca,
                quic::LinkConfig {
                    idle_timeout: std::time::Duration::from_secs(3),
                },
            )?;
            Some(tokio::spawn(accept_neighbours(
                server,
                session_id,
                config.neighbours.iter().map(|(n, _)| n.clone()).collect(),
                link_tx.clone(),
            )))
        }
        _ => None,
    };
    let mut running: Option<Running> = None;
    let mut next_sense = now;
    let mut busy_since_sense = false;
    let mut refresh_at = halfway(now, config.windows.until);
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
        // Windows ahead: computed again when half the span is used.
        if now >= refresh_at {
            refresh_at = match (config.more_windows)(now) {
                Ok(w) => {
                    tracing::info!(passes = w.passes.len(), isl = w.isl.len(), until = %w.until, "windows computed ahead");
                    let until = w.until;
                    config.windows = w;
                    halfway(now, until)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the windows ahead could not be computed");
                    now + Duration::from_hours(1)
                }
            };
        }
        // Links: dial at the start of a window, hang up at its end. The ground is in reach in a pass the node
        // predicted itself or in a contact the plan in force books (the ground's prediction, from the freshest
        // element sets operators uploaded).
        for (peer, link) in peers.iter_mut() {
            let open = match peer {
                Peer::Ground => {
                    config
                        .windows
                        .passes
                        .iter()
                        .any(|&(a, b)| a <= now && now < b)
                        || core
                            .durable()
                            .plan
                            .iter()
                            .flat_map(|p| p.contacts.iter())
                            .any(|c| &c.node == core.node() && c.start <= now && now < c.end)
                }
                Peer::Node(n) => config
                    .windows
                    .isl
                    .iter()
                    .any(|(m, a, b)| m == n && *a <= now && now < *b),
            };
            // Only the dialling side starts a contact here; the other waits for the peer to dial in.
            if open && !link.active && now >= link.dial_at && link.addr.is_some() {
                if let (Some((addr, server)), Some((session, rx))) =
                    (link.addr.clone(), link.parked.take())
                {
                    let (stop_tx, stop_rx) = oneshot::channel();
                    let dial = Dial::Out {
                        endpoint: endpoint.clone(),
                        addr,
                        server,
                        me: me.clone(),
                        session_id,
                    };
                    tokio::spawn(contact_task(
                        peer.clone(),
                        dial,
                        link.known_session,
                        session,
                        rx,
                        link_tx.clone(),
                        stop_rx,
                    ));
                    link.stop = Some(stop_tx);
                    link.active = true;
                }
            } else if !open && let Some(stop) = link.stop.take() {
                let _ = stop.send(());
            }
        }
        if touched {
            commit(&config.store, &mut core)?;
        }
        flush(&mut core, &peers);
        stats.jobs.clear();
        for j in core.durable().jobs.values() {
            *stats.jobs.entry(j.state.name()).or_default() += 1;
        }
        stats.queue_depth = core.queue_depth();
        stats.outbox_depth = core.outbox_depth();
        stats.relay_depth = core.relay_depth();
        stats.relay_forged = core.relay_forged();
        stats.in_contact = peers.get(&Peer::Ground).is_some_and(|l| l.active);
        stats.incarnation = core.durable().incarnation;
        stats.plan_generation = core.durable().gate.applied_generation;
        if let Ok(mut g) = gauges.lock() {
            *g = stats.clone();
        }
        // Sleep until the next thing: a wake-up of the core, a run's end, a reading, a window's edge, a redial.
        let mut wake = next_sense.min(refresh_at);
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
        let isl_edges = config.windows.isl.iter().flat_map(|&(_, a, b)| [a, b]);
        if let Some(edge) = config
            .windows
            .passes
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .chain(plan_edges)
            .chain(isl_edges)
            .filter(|&t| t > now)
            .min()
        {
            wake = wake.min(edge);
        }
        if let Some(redial) = peers
            .values()
            .filter(|l| !l.active && l.dial_at > now)
            .map(|l| l.dial_at)
            .min()
        {
            wake = wake.min(redial);
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
                    Some(FromLink::Up { peer, reset }) => match &peer {
                        Peer::Ground => {
                            if reset {
                                core.link_reset();
                            }
                            stats.contacts += 1;
                            core.handle_contact(true, now);
                        }
                        Peer::Node(n) => {
                            stats.isl.0 += 1;
                            core.handle_isl(n, true, now);
                        }
                    },
                    Some(FromLink::Message { peer, envelope }) => match peer {
                        Peer::Ground => core.handle_message(envelope, now),
                        Peer::Node(_) => {
                            stats.isl.1 += 1;
                            core.handle_isl_message(envelope, now);
                        }
                    },
                    Some(FromLink::Down { peer, done }) => {
                        if let Some(link) = peers.get_mut(&peer) {
                            link.active = false;
                            link.stop = None;
                            link.known_session = done.peer_session;
                            link.parked = Some((done.session, done.rx));
                            if !done.ok {
                                // The peer did not answer: dial again a little later (simulated time).
                                link.dial_at = now + Duration::from_secs(30);
                            }
                        }
                        // A newer link the peer opened meanwhile takes the session over (its Up follows).
                        if let Some(link) = peers.get_mut(&peer)
                            && let Some(incoming) = link.waiting.take()
                        {
                            start_incoming(&peer, link, incoming, &link_tx);
                        }
                        if peer == Peer::Ground {
                            stats.link_bytes.0 += done.bytes.0;
                            stats.link_bytes.1 += done.bytes.1;
                        }
                        match &peer {
                            Peer::Ground => core.handle_contact(false, now),
                            Peer::Node(n) => core.handle_isl(n, false, now),
                        }
                    }
                    Some(FromLink::Incoming(n, incoming)) => {
                        let peer = Peer::Node(n);
                        if let Some(link) = peers.get_mut(&peer) {
                            if link.active {
                                // The peer dialled again (it restarted, or lost the old link first): the old
                                // contact ends, and this one takes the session when it is handed back.
                                if let Some(stop) = link.stop.take() {
                                    let _ = stop.send(());
                                }
                                link.waiting = Some(incoming);
                            } else {
                                start_incoming(&peer, link, incoming, &link_tx);
                            }
                        }
                    }
                    None => {}
                }
                // Committed before the receipts and reports it caused go out.
                commit(&config.store, &mut core)?;
                flush(&mut core, &peers);
            }
            () = tokio::time::sleep(sleep) => {}
        }
    }
    if let Some(l) = listener {
        l.abort();
    }
    for link in peers.values_mut() {
        if let Some(stop) = link.stop.take() {
            let _ = stop.send(());
        }
    }
    // The contacts hang up; sessions are not kept across processes.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while peers.values().any(|l| l.active) {
            match link_rx.recv().await {
                Some(FromLink::Down { peer, .. }) => {
                    if let Some(l) = peers.get_mut(&peer) {
                        l.active = false;
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    commit(&config.store, &mut core)?;
    endpoint.wait_idle().await;
    Ok(())
}

/// Starts a contact over a link a neighbour opened, with the peer's parked session.
fn start_incoming(
    peer: &Peer,
    link: &mut PeerLink,
    incoming: quic::Link,
    to_core: &UnboundedSender<FromLink>,
) {
    let Some((session, rx)) = link.parked.take() else {
        incoming.connection().close(
            quinn::VarInt::from_u32(quic::close_code::DONE),
            b"already linked",
        );
        return;
    };
    let (stop_tx, stop_rx) = oneshot::channel();
    tokio::spawn(contact_task(
        peer.clone(),
        Dial::In(incoming),
        link.known_session,
        session,
        rx,
        to_core.clone(),
        stop_rx,
    ));
    link.stop = Some(stop_tx);
    link.active = true;
}

/// Accepts neighbours' ISL links and hands each to the core's task; a peer that is not a neighbour is refused.
async fn accept_neighbours(
    server: quinn::Endpoint,
    session_id: u64,
    neighbours: Vec<NodeId>,
    to_core: UnboundedSender<FromLink>,
) {
    while let Some(incoming) = server.accept().await {
        let to_core = to_core.clone();
        let neighbours = neighbours.clone();
        tokio::spawn(async move {
            match quic::accept_session(incoming, session_id).await {
                Ok(link) => {
                    let peer = link.peer().clone();
                    match neighbours
                        .iter()
                        .find(|n| peer.role() == odc_link::Role::Node && n.as_str() == peer.id())
                    {
                        Some(n) => {
                            let _ = to_core.send(FromLink::Incoming(n.clone(), link));
                        }
                        None => {
                            tracing::warn!(peer = %peer.dns_name(), "an ISL from a node that is not a neighbour; closed");
                            link.connection().close(
                                quinn::VarInt::from_u32(quic::close_code::IDENTITY),
                                b"not a neighbour",
                            );
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "an ISL was refused"),
            }
        });
    }
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

/// Moves what the core wants sent into the links' queues (only ever after a commit).
fn flush(core: &mut FlightCore, peers: &std::collections::BTreeMap<Peer, PeerLink>) {
    let send = |peer: &Peer, envelope: &Envelope| match wire::encode(envelope) {
        Ok(bytes) => {
            if let Some(link) = peers.get(peer) {
                let _ = link
                    .tx
                    .send((Priority::from(envelope.message.class()), Bytes::from(bytes)));
            }
        }
        Err(e) => tracing::warn!(%peer, error = %e, "a message does not encode"),
    };
    while let Some(envelope) = core.poll_outgoing() {
        send(&Peer::Ground, &envelope);
    }
    let pending: Vec<NodeId> = core.isl_peers_pending().cloned().collect();
    for n in pending {
        let peer = Peer::Node(n.clone());
        while let Some(envelope) = core.poll_isl_outgoing(&n) {
            // A frame for a node that is not a neighbour here is dropped: its sender keeps what matters and
            // sends it another way.
            if peers.contains_key(&peer) {
                send(&peer, &envelope);
            }
        }
    }
}

async fn contact_task(
    peer: Peer,
    dial: Dial,
    known_session: u64,
    session: Session,
    rx: UnboundedReceiver<(Priority, Bytes)>,
    to_core: UnboundedSender<FromLink>,
    stop: oneshot::Receiver<()>,
) {
    let done = contact(
        &peer,
        dial,
        known_session,
        session,
        rx,
        to_core.clone(),
        stop,
    )
    .await;
    let _ = to_core.send(FromLink::Down { peer, done });
}

async fn contact(
    peer: &Peer,
    dial: Dial,
    known_session: u64,
    mut session: Session,
    mut rx: UnboundedReceiver<(Priority, Bytes)>,
    to_core: UnboundedSender<FromLink>,
    stop: oneshot::Receiver<()>,
) -> ContactDone {
    let link = match dial {
        Dial::In(link) => link,
        Dial::Out {
            endpoint,
            addr,
            server,
            me,
            session_id,
        } => match quic::connect_session(&endpoint, addr, &server, &me, session_id).await {
            Ok(link) => link,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot reach the peer");
                return ContactDone {
                    session,
                    rx,
                    peer_session: known_session,
                    bytes: (0, 0),
                    ok: false,
                };
            }
        },
    };
    let peer_session = link.session_id();
    let reset = known_session != 0 && peer_session != known_session;
    if reset {
        // The peer restarted: its end of the session is gone, so ours starts afresh too.
        session = Session::new(session_config());
    }
    let conn = link.connection().clone();
    let _ = to_core.send(FromLink::Up {
        peer: peer.clone(),
        reset,
    });
    let tx = to_core.clone();
    let from = peer.clone();
    let mut on_event = move |event: Event| {
        if let Event::Delivered { payload, .. } = event {
            match wire::decode(&payload) {
                Ok(envelope) => {
                    let _ = tx.send(FromLink::Message {
                        peer: from.clone(),
                        envelope,
                    });
                }
                Err(e) => tracing::warn!(peer = %from, error = %e, "a message does not decode"),
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
            tracing::warn!(%peer, error = %e, "the contact ended on an error");
            false
        }
    };
    ContactDone {
        session,
        rx,
        peer_session,
        bytes: (stats.udp_tx.bytes, stats.udp_rx.bytes),
        ok,
    }
}
