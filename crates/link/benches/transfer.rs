//! Bulk transfer on loopback: the session over the QUIC shell versus a raw quinn stream, same endpoints, same TLS,
//! same run. `cargo bench -p odc-link --bench transfer`.

use odc_link::quic;
use odc_link::session::{Event, Priority, Session, SessionConfig};
use odc_link::{Authority, Identity, LinkConfig, Role};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const MESSAGES: usize = 4;
const MESSAGE_BYTES: usize = 64 << 20;
const ROUNDS: usize = 5;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A raw quinn stream carrying the same bytes; with `keep`, the receiver collects each message into its own
/// buffer (as an application receiving blobs must), otherwise it drops the bytes as they arrive.
async fn raw_round(
    server: &quinn::Endpoint,
    client: &quinn::Endpoint,
    addr: SocketAddr,
    data: &[u8],
    keep: bool,
) -> Res<Duration> {
    let server = server.clone();
    let total = MESSAGES * data.len();
    let message = data.len();
    let rx = tokio::spawn(async move {
        let conn = server.accept().await.ok_or("closed")?.await?;
        let mut recv = conn.accept_uni().await?;
        let mut got = 0usize;
        let mut kept: Vec<Vec<u8>> = Vec::new();
        while let Some(chunk) = recv.read_chunk(1 << 20, true).await? {
            got += chunk.bytes.len();
            if keep {
                let mut bytes = &chunk.bytes[..];
                while !bytes.is_empty() {
                    if kept.last().is_none_or(|m| m.len() == message) {
                        kept.push(Vec::with_capacity(message));
                    }
                    let Some(m) = kept.last_mut() else { break };
                    let n = (message - m.len()).min(bytes.len());
                    m.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                }
            }
        }
        conn.close(0u32.into(), b"");
        Res::Ok(got)
    });
    let conn = client
        .connect(addr, &Identity::new(Role::Ground, "gs")?.dns_name())?
        .await?;
    let start = Instant::now();
    let mut send = conn.open_uni().await?;
    for _ in 0..MESSAGES {
        send.write_all(data).await?;
    }
    send.finish()?;
    let got = rx.await??;
    let took = start.elapsed();
    assert_eq!(got, total);
    Ok(took)
}

async fn session_round(
    server: &quinn::Endpoint,
    client: &quinn::Endpoint,
    addr: SocketAddr,
    data: &[u8],
    node: &Identity,
) -> Res<Duration> {
    let server = server.clone();
    let config = SessionConfig::default();
    let rx = tokio::spawn(async move {
        let link = quic::accept(server.accept().await.ok_or("closed")?).await?;
        let mut session = Session::new(config);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let mut done_tx = Some(done_tx);
        let mut got = 0usize;
        let mut count = 0usize;
        link.run(
            &mut session,
            &mut |e| {
                if let Event::Delivered { payload, .. } = e {
                    got += payload.len();
                    count += 1;
                    if count == MESSAGES
                        && let Some(tx) = done_tx.take()
                    {
                        let _ = tx.send(());
                    }
                }
            },
            async {
                let _ = done_rx.await;
            },
        )
        .await?;
        Res::Ok(got)
    });
    // Results wait in the outbox before the contact begins: queueing (and hashing) is not part of the transfer.
    let mut session = Session::new(config);
    for _ in 0..MESSAGES {
        session.send(Priority::Result(std::cmp::Reverse(5)), data.to_vec());
    }
    let link = quic::connect(client, addr, &Identity::new(Role::Ground, "gs")?, node).await?;
    let start = Instant::now();
    link.run(&mut session, &mut |_| {}, std::future::pending())
        .await?;
    let got = rx.await??;
    let took = start.elapsed();
    assert_eq!(got, MESSAGES * data.len());
    Ok(took)
}

fn main() -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let now = OffsetDateTime::now_utc();
        let (a, b) = (now - time::Duration::days(1), now + time::Duration::days(1));
        let ca = Authority::generate("bench", a, b)?;
        let node = Identity::node("sat-1")?;
        let ground = Identity::new(Role::Ground, "gs")?;
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = LinkConfig::default();
        let server = quic::server_endpoint(loopback, &ca.issue(&ground, a, b)?, &ca.cert_der()?, config)?;
        let client = quic::client_endpoint(loopback, &ca.issue(&node, a, b)?, &ca.cert_der()?, config)?;
        let addr = server.local_addr()?;
        let data: Vec<u8> = (0..MESSAGE_BYTES).map(|i| (i * 31 + i / 4093) as u8).collect();
        let mb = (MESSAGES * MESSAGE_BYTES) as f64 / 1e6;
        println!("bulk transfer on loopback, {mb:.0} MB per round ({MESSAGES} messages), {ROUNDS} rounds, alternating");
        let mut raw = Vec::new();
        let mut raw_kept = Vec::new();
        let mut ses = Vec::new();
        for _ in 0..ROUNDS {
            raw.push(raw_round(&server, &client, addr, &data, false).await?.as_secs_f64());
            raw_kept.push(raw_round(&server, &client, addr, &data, true).await?.as_secs_f64());
            ses.push(session_round(&server, &client, addr, &data, &node).await?.as_secs_f64());
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (r, k, s) = (median(&mut raw), median(&mut raw_kept), median(&mut ses));
        println!("raw quinn stream, bytes dropped:       {:>7.1} MB/s (median {:.3} s)", mb / r, r);
        println!("raw quinn stream, messages collected:  {:>7.1} MB/s (median {:.3} s)", mb / k, k);
        println!("session + QUIC shell, messages:        {:>7.1} MB/s (median {:.3} s)", mb / s, s);
        println!("session / raw (collected): {:.2}", k / s);
        println!("session / raw (dropped):   {:.2}", r / s);
        Res::Ok(())
    })
}
