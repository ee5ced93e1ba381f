//! Durable job submissions per second over HTTP on loopback: the tenant API served by axum on a TCP port, the
//! embedded SQLite store in a temporary directory (WAL, `synchronous = FULL`: every acknowledged job is on disk),
//! and concurrent keep-alive clients in the same process, each timing every request.
//!
//! `cargo bench -p odc-ground --bench submit [-- CLIENTS JOBS_PER_CLIENT INPUT_BYTES [tls] [binary]]` (defaults
//! 64, 500, 1024, plain HTTP, JSON with base64 inputs); `tls` serves HTTPS with a certificate from a fresh
//! constellation CA, clients trusting it; `binary` sends each input as the body of `POST /v1/jobs/upload`.

use base64::Engine as _;
use odc_budget::Illumination;
use odc_ground::api::{DEFAULT_MAX_BODY_BYTES, Ground, router, token_hash};
use odc_ground::store::{SqliteStore, Store, TenantRecord};
use odc_ground::{GroundConfig, GroundCore, NodeInfo};
use odc_model::id::{IdGenerator, ModelId, NodeId, StationId};
use odc_model::spec::{ModelProfile, NodeSpec, StationSpec};
use odc_model::tenant::{Quota, Tenant};
use odc_model::time::{Duration, Instant, SimClock};
use odc_planner::PlannerOptions;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client connection: plain TCP or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

fn t0() -> Instant {
    Instant::from_unix_ms(1_780_000_000_000)
}

/// Reads what the stream has into `buf`; a closed connection is an error.
async fn read_more<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// One HTTP/1.1 request on a kept-alive connection; the status code.
async fn post<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    request: &[u8],
) -> std::io::Result<u16> {
    stream.write_all(request).await?;
    buf.clear();
    let end = loop {
        read_more(stream, buf).await?;
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < end + 4 + length {
        read_more(stream, buf).await?;
    }
    Ok(head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let clients = args.first().copied().unwrap_or(64);
    let per_client = args.get(1).copied().unwrap_or(500);
    let input_bytes = args.get(2).copied().unwrap_or(1024);
    let tls = std::env::args().any(|a| a == "tls");
    let binary = std::env::args().any(|a| a == "binary");

    let mut ids = IdGenerator::seeded(1);
    let tenant = Tenant {
        id: ids.tenant(t0()),
        name: "load".into(),
        quota: Quota {
            accelerator_s: f64::MAX,
            energy_wh: f64::MAX,
            uplink_bytes: u64::MAX,
            downlink_bytes: u64::MAX,
            period: Duration::from_hours(24),
        },
        share_weight: 1,
    };
    let mut spec = NodeSpec::leo_default(NodeId::new("n1").expect("id"), 1);
    spec.accelerator.models.insert(
        ModelId::new("m").expect("id"),
        ModelProfile {
            input_bytes_per_s: 1e6,
            batch_setup_s: 1.0,
        },
    );
    let core = GroundCore::new(GroundConfig {
        nodes: vec![NodeInfo {
            spec,
            altitude_km: 550.0,
            illumination: Illumination::always_sunlit(),
            initial_soc: 0.9,
        }],
        stations: vec![StationSpec::with_defaults(
            StationId::new("gs").expect("id"),
            0.0,
            0.0,
            0.0,
            10.0,
        )],
        contacts: Vec::new(),
        isl: Default::default(),
        tenants: vec![tenant.clone()],
        horizon_end: t0() + Duration::from_hours(24),
        plan_ahead: Duration::from_hours(12),
        replan_every: Duration::from_mins(10),
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
                tenant: tenant.clone(),
                token_hash: token_hash("load-token"),
            },
            &[],
        )
        .await
        .expect("tenant");
    let ground = Ground::start(core, store, Arc::new(SimClock::new(t0())), &[])
        .await
        .expect("start");
    let app = router(ground.clone(), DEFAULT_MAX_BODY_BYTES);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connector = if tls {
        let now = time::OffsetDateTime::now_utc();
        let (from, to) = (
            now - time::Duration::hours(1),
            now + time::Duration::days(1),
        );
        let ca = odc_link::Authority::generate("bench", from, to).expect("ca");
        let (cert, key) = ca
            .issue_api(&["127.0.0.1".into()], from, to, dir.path())
            .expect("api certificate");
        let config = odc_ground::tls::server_config(&cert, &key).expect("tls config");
        let listener = odc_ground::tls::TlsListener::new(listener, config).expect("tls");
        tokio::spawn(async move {
            let _ = odc_ground::http::serve(
                listener,
                app,
                &odc_ground::http::HttpLimits::default(),
                std::future::pending(),
            )
            .await;
        });
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().expect("der")).expect("root");
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Some(tokio_rustls::TlsConnector::from(Arc::new(client)))
    } else {
        tokio::spawn(async move {
            let _ = odc_ground::http::serve(
                listener,
                app,
                &odc_ground::http::HttpLimits::default(),
                std::future::pending(),
            )
            .await;
        });
        None
    };

    let raw = vec![7u8; input_bytes];
    let input = base64::engine::general_purpose::STANDARD.encode(&raw);
    let deadline = (t0() + Duration::from_hours(6)).to_rfc3339();
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let input = input.clone();
        let raw = raw.clone();
        let deadline = deadline.clone();
        let connector = connector.clone();
        tasks.push(tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.set_nodelay(true).expect("nodelay");
            let mut stream: Box<dyn Stream> = match connector {
                Some(c) => {
                    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
                    Box::new(c.connect(name, tcp).await.expect("TLS handshake"))
                }
                None => Box::new(tcp),
            };
            let mut buf = Vec::new();
            let mut latencies = Vec::with_capacity(per_client);
            let mut failures = 0usize;
            for k in 0..per_client {
                let request = if binary {
                    let mut r = format!(
                        "POST /v1/jobs/upload?model=m&output_bound_bytes=64&deadline={deadline}&idempotency_key=c{c}-{k} HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer load-token\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
                        raw.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(&raw);
                    r
                } else {
                    let body = format!(
                        r#"{{"model":"m","input":"{input}","output_bound_bytes":64,"deadline":"{deadline}","idempotency_key":"c{c}-{k}"}}"#
                    );
                    format!(
                        "POST /v1/jobs HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer load-token\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .into_bytes()
                };
                let t = std::time::Instant::now();
                match post(&mut stream, &mut buf, &request).await {
                    Ok(201) => latencies.push(t.elapsed()),
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await.expect("client");
        latencies.extend(l);
        failures += f;
    }
    let wall = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let stored = ground.store().open_jobs().await.expect("count").len();
    println!(
        "{clients} clients × {per_client} submissions of {input_bytes} B inputs ({}) over {} on loopback, SQLite synchronous=FULL",
        if binary {
            "as the body"
        } else {
            "base64 in JSON"
        },
        if tls {
            "HTTPS (HTTP/1.1, TLS 1.3)"
        } else {
            "HTTP/1.1"
        }
    );
    println!(
        "{} acknowledged, {failures} failed, {stored} in the store; {:.0} durable submissions/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        latencies.len() as f64 / wall,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}
