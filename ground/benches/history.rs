//! The ground's memory over a long history: a million jobs submitted through the tenant API and delivered by a
//! node, with resident memory read at every tenth of the run. What the ground holds must follow the jobs open at
//! the time, not the jobs it has seen.
//!
//! Everything is the service as deployed, on loopback: `odc_ground::http::serve` takes keep-alive clients'
//! `POST /v1/jobs` (1 KiB inputs, durable in SQLite with `synchronous = FULL`), the ground plans on its own
//! thread, and a node linked over QUIC with mutual TLS (`accept_links`) answers every input it is sent with a
//! result, which the ground stores, bills and acknowledges. The node stays in view of its station for the whole
//! run (a memory benchmark: passes would only make it longer); the simulated clock moves a minute per tick so
//! replans follow each other. Submissions pause while more than `WINDOW` jobs are open, so the open set stays
//! the same size from the first checkpoint to the last.
//!
//! `cargo bench -p odc-ground --bench history [-- JOBS CLIENTS]` (defaults 1000000, 8).

use base64::Engine as _;
use odc_budget::Illumination;
use odc_ground::api::{Ground, router, token_hash};
use odc_ground::dispatch::accept_links;
use odc_ground::http::HttpLimits;
use odc_ground::store::{SqliteStore, Store, TenantRecord};
use odc_ground::{GroundConfig, GroundCore, NodeInfo};
use odc_link::quic;
use odc_link::session::{Event, Priority, Session, SessionConfig};
use odc_link::{Authority, Identity, LinkConfig, Role};
use odc_model::id::{IdGenerator, NodeId, StationId};
use odc_model::job::BlobRef;
use odc_model::spec::{NodeSpec, StationSpec};
use odc_model::tenant::{Quota, Tenant};
use odc_model::time::{Clock as _, Duration, Instant, SimClock};
use odc_model::wire::{self, Envelope, Hello, Message, PROTOCOL, ResultChunk, Sender};
use odc_planner::{ContactWindow, PlannerOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::TcpStream;

mod common;
use common::call;

/// Most jobs submitted and not yet delivered at any time.
const WINDOW: u64 = 4_000;

/// A figure of this process from `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// The size of the store's files (database and write-ahead log), MiB.
fn store_mib(dir: &std::path::Path) -> f64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len() as f64)
                .sum::<f64>()
        })
        .unwrap_or(0.0)
        / (1 << 20) as f64
}

/// The node: answers every input it is sent with a result, from its first contact to the end of the run, and
/// counts the deliveries the ground acknowledges.
async fn node(
    ca: Arc<Authority>,
    ground_addr: std::net::SocketAddr,
    now: Instant,
    results: Arc<AtomicU64>,
) {
    let (a, b) = validity();
    let me = Identity::node("n1").expect("id");
    let creds = ca.issue(&me, a, b).expect("credentials");
    let endpoint = quic::client_endpoint(
        "127.0.0.1:0".parse().expect("addr"),
        &creds,
        &ca.cert_der().expect("der"),
        LinkConfig::default(),
    )
    .expect("endpoint");
    let ground = Identity::new(Role::Ground, "ground").expect("id");
    let link = quic::connect_session(&endpoint, ground_addr, &ground, &me, 1)
        .await
        .expect("link");
    let node = NodeId::new("n1").expect("id");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let seq = AtomicU64::new(1);
    let envelope = |message: Message| Envelope {
        version: PROTOCOL,
        sender: Sender::Node(node.clone()),
        incarnation: 1,
        seq: seq.fetch_add(1, Ordering::Relaxed),
        sent_at: now,
        message,
    };
    let hello = envelope(Message::Hello(Hello {
        node: node.clone(),
        software: "bench".into(),
        plan_generation: 0,
        last_seq_received: 0,
    }));
    let _ = tx.send((
        Priority::Command,
        wire::encode(&hello).expect("encodes").into(),
    ));
    let reply = tx.clone();
    let mut on_event = move |event: Event| {
        let Event::Delivered { payload, .. } = event else {
            return;
        };
        let chunk = match wire::decode(&payload).map(|e| e.message) {
            Ok(Message::InputChunk(chunk)) => chunk,
            Ok(Message::JobUpdates(u)) => {
                // The ground says a result is in only once it is durable and billed.
                let delivered = u
                    .updates
                    .iter()
                    .filter(|u| u.event == odc_model::job::JobEvent::Deliver)
                    .count();
                results.fetch_add(delivered as u64, Ordering::Relaxed);
                return;
            }
            _ => return,
        };
        let result = chunk.data[..16.min(chunk.data.len())].to_vec();
        let out = envelope(Message::ResultChunk(ResultChunk {
            job: chunk.job,
            output: BlobRef::of(&result),
            offset: 0,
            data: result,
            accelerator_s: 0.01,
            energy_wh: 0.001,
        }));
        if let Ok(bytes) = wire::encode(&out) {
            let _ = reply.send((Priority::Result(std::cmp::Reverse(5)), bytes.into()));
        }
    };
    let mut session = Session::new(SessionConfig::default());
    let end = link
        .run_interactive(&mut session, &mut on_event, &mut rx, std::future::pending())
        .await;
    eprintln!("the node's contact ended: {end:?}");
}

fn validity() -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (
        now - time::Duration::hours(1),
        now + time::Duration::days(7),
    )
}

/// Submits `count` jobs over one kept-alive connection, keys `c-k`; how many were accepted.
async fn submit(
    addr: std::net::SocketAddr,
    c: usize,
    from: u64,
    count: u64,
    input: Arc<str>,
) -> u64 {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut buf = Vec::new();
    let mut accepted = 0;
    for k in from..from + count {
        let body = format!(
            r#"{{"model":"resnet50","input":"{input}","output_bound_bytes":64,"within_s":21600,"idempotency_key":"{c}-{k}"}}"#
        );
        let req = format!(
            "POST /v1/jobs HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer load-token\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if call(&mut s, &mut buf, req.as_bytes()).await == 201 {
            accepted += 1;
        }
    }
    accepted
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let jobs = args.first().copied().unwrap_or(1_000_000);
    let clients = args.get(1).copied().unwrap_or(8) as usize;

    let t0 = Instant::from_unix_ms(1_780_000_000_000);
    let n1 = NodeId::new("n1").expect("id");
    let station =
        StationSpec::with_defaults(StationId::new("gs").expect("id"), 0.0, 0.0, 0.0, 10.0);
    let mut ids = IdGenerator::seeded(3);
    let load = Tenant {
        id: ids.tenant(t0),
        name: "load".into(),
        quota: Quota {
            accelerator_s: 1e15,
            energy_wh: 1e15,
            uplink_bytes: 1 << 60,
            downlink_bytes: 1 << 60,
            period: Duration::from_hours(24),
        },
        share_weight: 1,
    };
    let core = GroundCore::new(GroundConfig {
        nodes: vec![NodeInfo {
            spec: NodeSpec::leo_default(n1.clone(), 1),
            altitude_km: 550.0,
            illumination: Illumination::always_sunlit(),
            initial_soc: 0.9,
        }],
        stations: vec![station.clone()],
        contacts: vec![ContactWindow {
            station: station.id.clone(),
            node: n1,
            start: t0,
            end: t0 + Duration::from_hours(24 * 365),
        }],
        isl: Default::default(),
        tenants: vec![load.clone()],
        horizon_end: t0 + Duration::from_hours(24 * 365),
        plan_ahead: Duration::from_hours(2),
        replan_every: Duration::from_mins(1),
        planner: PlannerOptions::default(),
        seed: 1,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("ground.db"))
        .await
        .expect("store");
    store
        .put_tenant(
            &TenantRecord {
                tenant: load.clone(),
                token_hash: token_hash("load-token"),
            },
            &[],
        )
        .await
        .expect("tenant");
    let clock = Arc::new(SimClock::new(t0));
    let ground = Ground::start(core, store, clock.clone(), &[token_hash("op-token")])
        .await
        .expect("start");

    let (a, b) = validity();
    let ca = Arc::new(Authority::generate("bench", a, b).expect("ca"));
    let me = Identity::new(Role::Ground, "ground").expect("id");
    let endpoint = quic::server_endpoint(
        "127.0.0.1:0".parse().expect("addr"),
        &ca.issue(&me, a, b).expect("credentials"),
        &ca.cert_der().expect("der"),
        LinkConfig::default(),
    )
    .expect("endpoint");
    let quic_addr = endpoint.local_addr().expect("addr");
    tokio::spawn(accept_links(
        ground.clone(),
        endpoint,
        7,
        std::future::pending(),
    ));
    let app = router(ground.clone(), odc_ground::api::DEFAULT_MAX_BODY_BYTES);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = odc_ground::http::serve(
            listener,
            app,
            &HttpLimits::default(),
            std::future::pending(),
        )
        .await;
    });
    let results = Arc::new(AtomicU64::new(0));
    tokio::spawn(node(ca.clone(), quic_addr, t0, results.clone()));
    {
        let (ground, clock) = (ground.clone(), clock.clone());
        tokio::spawn(async move {
            loop {
                clock.advance(Duration::from_mins(1));
                ground.tick(clock.now()).await;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
    }

    let input: Arc<str> = base64::engine::general_purpose::STANDARD
        .encode(vec![7u8; 1024])
        .into();
    let started = std::time::Instant::now();
    println!(
        "{jobs} jobs, {clients} clients, at most {WINDOW} open; start: resident {:.1} MiB",
        status_mib("VmRSS:")
    );
    println!(
        "{:>9} {:>9} {:>8} {:>13} {:>13} {:>10} {:>8}",
        "submitted", "delivered", "open", "resident MiB", "peak MiB", "store MiB", "wall s"
    );
    let (mut submitted, mut next_report) = (0u64, jobs / 10);
    let per_round = (WINDOW / 2).max(clients as u64);
    while submitted < jobs {
        while submitted.saturating_sub(results.load(Ordering::Relaxed)) > WINDOW / 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let round = per_round.min(jobs - submitted);
        let each = round / clients as u64;
        let mut tasks = Vec::new();
        for c in 0..clients {
            let count = if c + 1 == clients {
                round - each * (clients as u64 - 1)
            } else {
                each
            };
            let input = input.clone();
            tasks.push(tokio::spawn(submit(addr, c, submitted, count, input)));
        }
        for t in tasks {
            let accepted = t.await.expect("client");
            submitted += accepted;
        }
        if submitted >= next_report || submitted == jobs {
            if submitted == jobs {
                while results.load(Ordering::Relaxed) < jobs
                    && started.elapsed().as_secs() < 24 * 3600
                {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                // The writer stores the last deliveries, and the next ticks forget them.
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            let delivered = results.load(Ordering::Relaxed);
            println!(
                "{submitted:>9} {delivered:>9} {:>8} {:>13.1} {:>13.1} {:>10.1} {:>8.0}",
                submitted - delivered.min(submitted),
                status_mib("VmRSS:"),
                status_mib("VmHWM:"),
                store_mib(dir.path()),
                started.elapsed().as_secs_f64()
            );
            next_report += jobs / 10;
        }
    }
    let billed = ground.store().usage_of(load.id).await.expect("usage").len();
    println!(
        "billed {billed} of {jobs} jobs; {:.0} jobs/s end to end; simulated {:.1} days",
        jobs as f64 / started.elapsed().as_secs_f64(),
        (clock.now() - t0).as_secs_f64() / 86_400.0
    );
}
