//! A tenant's latency while the ground replans 100,000 jobs and while scrapers hit `/metrics`, beside the same
//! tenant on a quiet ground, in one run: keep-alive clients alternate `GET /v1/usage` and `POST /v1/jobs` (1 KiB
//! inputs, durable in SQLite with `synchronous = FULL`) against the real server (`odc_ground::http::serve`) on
//! loopback, in four phases: quiet; full replans back to back; 8 scrapers with the operator token; both.
//!
//! `cargo bench -p odc-ground --bench replan_load [-- JOBS SECONDS_PER_PHASE CLIENTS]` (defaults 100000, 10, 8).

use base64::Engine as _;
use odc_ground::api::{Ground, router, token_hash};
use odc_ground::http::HttpLimits;
use odc_ground::store::{SqliteStore, Store, TenantRecord};
use odc_ground::{GroundConfig, GroundCore, NodeInfo};
use odc_model::id::IdGenerator;
use odc_model::tenant::{Quota, Tenant};
use odc_model::time::{Clock as _, Duration, SimClock};
use odc_planner::synthetic::{Size, snapshot};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::net::TcpStream;

mod common;
use common::call;

fn percentile(sorted: &[std::time::Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// Latencies of one phase: usage and submissions, in ms (p50, p99), and requests that failed.
struct Phase {
    usage: (f64, f64, usize),
    submit: (f64, f64, usize),
    failed: usize,
}

async fn phase(addr: std::net::SocketAddr, clients: usize, seconds: f64, tag: &str) -> Phase {
    let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    let input = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 1024]);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let input = input.clone();
        let tag = tag.replace(' ', "-");
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.set_nodelay(true).expect("nodelay");
            let mut buf = Vec::new();
            let (mut usage, mut submit, mut failed) = (Vec::new(), Vec::new(), 0usize);
            let usage_req = b"GET /v1/usage HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer load-token\r\n\r\n";
            let mut k = 0u64;
            while std::time::Instant::now() < until {
                let t = std::time::Instant::now();
                if call(&mut s, &mut buf, usage_req).await == 200 {
                    usage.push(t.elapsed());
                } else {
                    failed += 1;
                }
                let body = format!(
                    r#"{{"model":"resnet50","input":"{input}","output_bound_bytes":64,"within_s":21600,"idempotency_key":"{tag}-{c}-{k}"}}"#
                );
                k += 1;
                let req = format!(
                    "POST /v1/jobs HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer load-token\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let t = std::time::Instant::now();
                if call(&mut s, &mut buf, req.as_bytes()).await == 201 {
                    submit.push(t.elapsed());
                } else {
                    failed += 1;
                }
            }
            (usage, submit, failed)
        }));
    }
    let (mut usage, mut submit, mut failed) = (Vec::new(), Vec::new(), 0);
    for t in tasks {
        let (u, s, f) = t.await.expect("client");
        usage.extend(u);
        submit.extend(s);
        failed += f;
    }
    usage.sort();
    submit.sort();
    Phase {
        usage: (
            percentile(&usage, 0.5),
            percentile(&usage, 0.99),
            usage.len(),
        ),
        submit: (
            percentile(&submit, 0.5),
            percentile(&submit, 0.99),
            submit.len(),
        ),
        failed,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let jobs = args.first().copied().unwrap_or(100_000.0) as usize;
    let seconds = args.get(1).copied().unwrap_or(10.0);
    let clients = args.get(2).copied().unwrap_or(8.0) as usize;

    // A fleet and its open jobs from the planner's synthetic scenarios.
    let s = snapshot(
        7,
        Size {
            nodes: 24,
            stations: 6,
            tenants: 6,
            jobs,
            hours: 12,
        },
    );
    let now = s.now;
    let mut ids = IdGenerator::seeded(99);
    let load = Tenant {
        id: ids.tenant(now),
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
    let mut tenants: Vec<Tenant> = s.tenants.iter().map(|t| t.tenant.clone()).collect();
    tenants.push(load.clone());
    let mut core = GroundCore::new(GroundConfig {
        nodes: s
            .nodes
            .iter()
            .map(|n| NodeInfo {
                spec: n.spec.clone(),
                altitude_km: n.altitude_km,
                illumination: n.illumination.clone(),
                initial_soc: n.state_of_charge,
            })
            .collect(),
        stations: s.stations.clone(),
        contacts: s.contacts.clone(),
        isl: s.isl.clone(),
        tenants: tenants.clone(),
        horizon_end: s.horizon_end,
        plan_ahead: Duration::from_hours(12),
        replan_every: Duration::from_mins(10),
        planner: s.options,
        seed: 1,
    });
    core.restore(
        s.jobs.iter().map(|j| (j.clone(), Vec::new())).collect(),
        &[],
        now,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("ground.db"))
        .await
        .expect("store");
    store
        .put_tenant(
            &TenantRecord {
                tenant: load,
                token_hash: token_hash("load-token"),
            },
            &[],
        )
        .await
        .expect("tenant");
    let clock = Arc::new(SimClock::new(now));
    let ground = Ground::start(core, store, clock.clone(), &[token_hash("op-token")])
        .await
        .expect("start");
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
    // The first plan, so every later replan starts from one.
    ground.replan_soon("bench");
    let t = std::time::Instant::now();
    ground.tick(clock.now()).await;
    println!(
        "{jobs} open jobs, 24 nodes, 6 stations; first replan {:.2} s; {clients} clients, {seconds} s a phase",
        t.elapsed().as_secs_f64()
    );

    let replanning = Arc::new(AtomicBool::new(false));
    let scraping = Arc::new(AtomicBool::new(false));
    let replans = Arc::new(AtomicU64::new(0));
    let scrapes = Arc::new(AtomicU64::new(0));
    {
        let (ground, clock, on, n) = (
            ground.clone(),
            clock.clone(),
            replanning.clone(),
            replans.clone(),
        );
        tokio::spawn(async move {
            loop {
                if on.load(Ordering::Relaxed) {
                    // Replans are a minute apart at least: a simulated minute passes between them.
                    clock.advance(Duration::from_mins(1));
                    ground.replan_soon("bench");
                    ground.tick(clock.now()).await;
                    n.fetch_add(1, Ordering::Relaxed);
                } else {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        });
    }
    for _ in 0..8 {
        let (on, n) = (scraping.clone(), scrapes.clone());
        tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            let mut buf = Vec::new();
            let req =
                b"GET /metrics HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer op-token\r\n\r\n";
            loop {
                if on.load(Ordering::Relaxed) {
                    if call(&mut s, &mut buf, req).await == 200 {
                        n.fetch_add(1, Ordering::Relaxed);
                    } else {
                        s = TcpStream::connect(addr).await.expect("connect");
                    }
                } else {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        });
    }
    let mut quiet = None;
    for (name, replan, scrape) in [
        ("quiet", false, false),
        ("replanning", true, false),
        ("8 scrapers", false, true),
        ("both", true, true),
    ] {
        replanning.store(replan, Ordering::Relaxed);
        scraping.store(scrape, Ordering::Relaxed);
        let (r0, s0) = (
            replans.load(Ordering::Relaxed),
            scrapes.load(Ordering::Relaxed),
        );
        let p = phase(addr, clients, seconds, name).await;
        replanning.store(false, Ordering::Relaxed);
        scraping.store(false, Ordering::Relaxed);
        let (r, sc) = (
            replans.load(Ordering::Relaxed) - r0,
            scrapes.load(Ordering::Relaxed) - s0,
        );
        let q = *quiet.get_or_insert((p.usage.1, p.submit.1));
        println!(
            "{name:>11}: usage p50 {:.2} ms p99 {:.2} ms ({} req, p99 {:.2}× quiet) | submit p50 {:.2} ms p99 {:.2} ms ({} req, p99 {:.2}× quiet) | {} failed | {r} replans, {sc} scrapes",
            p.usage.0,
            p.usage.1,
            p.usage.2,
            p.usage.1 / q.0,
            p.submit.0,
            p.submit.1,
            p.submit.2,
            p.submit.1 / q.1,
            p.failed,
        );
        // Let a replan in flight finish before the next phase.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    }
}
