//! The QUIC shell over loopback under tokio's paused clock: transfers resume across contacts hours apart, and
//! every certificate that is unknown, expired or bound to another identity is refused.

use odc_link::quic::{self, close_code};
use odc_link::session::{Event, Priority, Session, SessionConfig};
use odc_link::{Authority, ContactEnd, Credentials, Identity, LinkConfig, LinkError, Role};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;

mod common;
use common::{authority, ground, issue};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

struct Pair {
    server: quinn::Endpoint,
    client: quinn::Endpoint,
    addr: SocketAddr,
}

fn pair(
    ca_server: &Authority,
    server_creds: &Credentials,
    ca_client: &Authority,
    client_creds: &Credentials,
) -> Result<Pair, Box<dyn std::error::Error>> {
    let config = LinkConfig::default();
    let server = quic::server_endpoint(loopback(), server_creds, &ca_server.cert_der()?, config)?;
    let client = quic::client_endpoint(loopback(), client_creds, &ca_client.cert_der()?, config)?;
    let addr = server.local_addr()?;
    Ok(Pair {
        server,
        client,
        addr,
    })
}

/// Connects `claim` with the given credentials; returns the client's and the server's outcome.
async fn try_link(
    p: &Pair,
    server_name: &Identity,
    claim: &Identity,
) -> (Result<(), LinkError>, Result<(), LinkError>) {
    let server = p.server.clone();
    let accepting = tokio::spawn(async move {
        let Some(incoming) = server.accept().await else {
            return Err(LinkError::Protocol("endpoint closed".into()));
        };
        // The link is handed back (not dropped) so the connection stays up until the client has its answer.
        quic::accept(incoming).await
    });
    let client = quic::connect(&p.client, p.addr, server_name, claim)
        .await
        .map(|_| ());
    let server = match tokio::time::timeout(Duration::from_secs(30), accepting).await {
        Ok(Ok(r)) => r.map(|_| ()),
        _ => Err(LinkError::Protocol("server did not finish".into())),
    };
    (client, server)
}

#[tokio::test(start_paused = true)]
async fn good_certificates_link_up_and_name_the_peer_and_session() -> TestResult {
    let ca = authority()?;
    let node = Identity::node("sat-7")?;
    let p = pair(&ca, &issue(&ca, &ground())?, &ca, &issue(&ca, &node)?)?;
    let server = p.server.clone();
    let accepting = tokio::spawn(async move {
        let incoming = server.accept().await.ok_or("closed")?;
        quic::accept_session(incoming, 42)
            .await
            .map_err(|e| e.to_string())
    });
    let link = quic::connect_session(&p.client, p.addr, &ground(), &node, 0xfeed_beef).await?;
    assert_eq!(link.peer(), &ground());
    assert_eq!(link.session_id(), 42);
    let accepted = accepting.await??;
    assert_eq!(accepted.peer(), &node);
    // The server learns which session the client speaks for (a restarted node names a new one).
    assert_eq!(accepted.session_id(), 0xfeed_beef);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_certificate_from_another_authority_is_refused() -> TestResult {
    let ca = authority()?;
    let rogue = authority()?;
    let node = Identity::node("sat-1")?;
    // The client's certificate comes from a CA the server does not trust.
    let p = pair(&ca, &issue(&ca, &ground())?, &ca, &issue(&rogue, &node)?)?;
    let (client, server) = try_link(&p, &ground(), &node).await;
    assert!(client.is_err(), "client linked with an unknown certificate");
    assert!(server.is_err(), "server accepted an unknown certificate");
    // The server's certificate comes from a CA the client does not trust.
    let p = pair(&ca, &issue(&rogue, &ground())?, &ca, &issue(&ca, &node)?)?;
    let (client, _) = try_link(&p, &ground(), &node).await;
    assert!(
        client.is_err(),
        "client trusted a server from an unknown CA"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_expired_certificate_is_refused() -> TestResult {
    let ca = authority()?;
    let node = Identity::node("sat-1")?;
    let now = OffsetDateTime::now_utc();
    let expired = ca.issue(
        &node,
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    )?;
    let p = pair(&ca, &issue(&ca, &ground())?, &ca, &expired)?;
    let (client, server) = try_link(&p, &ground(), &node).await;
    assert!(
        client.is_err() && server.is_err(),
        "an expired client certificate was accepted"
    );
    let expired_ground = ca.issue(
        &ground(),
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    )?;
    let p = pair(&ca, &expired_ground, &ca, &issue(&ca, &node)?)?;
    let (client, _) = try_link(&p, &ground(), &node).await;
    assert!(
        client.is_err(),
        "an expired server certificate was accepted"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_certificate_for_another_identity_is_refused() -> TestResult {
    let ca = authority()?;
    let node2 = Identity::node("sat-2")?;
    let p = pair(&ca, &issue(&ca, &ground())?, &ca, &issue(&ca, &node2)?)?;
    // Holding sat-2's certificate while claiming to be sat-1.
    let (client, server) = try_link(&p, &ground(), &Identity::node("sat-1")?).await;
    assert!(
        matches!(server, Err(LinkError::IdentityMismatch { .. })),
        "{server:?}"
    );
    match client {
        Err(LinkError::Connection(quinn::ConnectionError::ApplicationClosed(c))) => {
            assert_eq!(c.error_code, quinn::VarInt::from_u32(close_code::IDENTITY));
        }
        other => panic!("client should see the refusal, got {other:?}"),
    }
    // A station's certificate cannot speak for a node of the same id.
    let station = Identity::new(Role::Station, "sat-2")?;
    let (_, server) = try_link(&p, &ground(), &station).await;
    assert!(
        matches!(server, Err(LinkError::IdentityMismatch { .. })),
        "{server:?}"
    );
    // The client reaching for a different ground service refuses the server's certificate.
    let (client, _) = try_link(&p, &Identity::new(Role::Ground, "elsewhere")?, &node2).await;
    assert!(
        client.is_err(),
        "client accepted a server certificate for another name"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_client_never_sends_early_data() -> TestResult {
    let ca = authority()?;
    let node = Identity::node("sat-3")?;
    let p = pair(&ca, &issue(&ca, &ground())?, &ca, &issue(&ca, &node)?)?;
    let (client, server) = try_link(&p, &ground(), &node).await;
    assert!(client.is_ok() && server.is_ok());
    // A second connection could resume the TLS session, but 0-RTT stays off.
    let server = p.server.clone();
    let _accepting = tokio::spawn(async move { server.accept().await.map(|i| i.accept()) });
    let connecting = p.client.connect(p.addr, &ground().dns_name())?;
    assert!(connecting.into_0rtt().is_err(), "0-RTT offered");
    Ok(())
}

/// Forty messages (one of 4 MiB, the rest 256 KiB) cross contacts of a few messages each, three hours apart on the
/// paused clock; every message arrives once, byte-identical, and the transfer needed several contacts.
#[tokio::test(start_paused = true)]
async fn transfers_resume_across_contacts_hours_apart() -> TestResult {
    let ca = authority()?;
    let node = Identity::node("sat-4")?;
    let p = pair(&ca, &issue(&ca, &ground())?, &ca, &issue(&ca, &node)?)?;
    let config = SessionConfig::default();
    let mut sender = Session::new(config);
    let mut expected = BTreeMap::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..40usize {
        let len = if i == 0 { 4 << 20 } else { 256 << 10 };
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let id = sender.send(
            Priority::Result(std::cmp::Reverse((i % 10) as u8)),
            bytes.clone(),
        );
        expected.insert(id, bytes);
    }
    let mut receiver = Session::new(config);
    let mut received: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut acknowledged = 0usize;
    let mut contacts = 0;
    let started = tokio::time::Instant::now();
    while received.len() < expected.len() {
        contacts += 1;
        assert!(contacts <= 40, "transfer did not finish");
        let server = p.server.clone();
        let cut = Arc::new(Notify::new());
        let cut_rx = cut.clone();
        let mut rx_session = std::mem::replace(&mut receiver, Session::new(config));
        let ground_side = tokio::spawn(async move {
            let incoming = server.accept().await.ok_or("endpoint closed")?;
            let link = quic::accept(incoming).await.map_err(|e| e.to_string())?;
            let mut got = Vec::new();
            let mut in_contact = 0;
            // The ground ends the contact after four whole messages (mid-way through others).
            let end = link
                .run(
                    &mut rx_session,
                    &mut |e| {
                        if let Event::Delivered { id, payload } = e {
                            got.push((id, payload));
                            in_contact += 1;
                            if in_contact == 4 {
                                cut_rx.notify_one();
                            }
                        }
                    },
                    cut_rx.notified(),
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((rx_session, got, end))
        });
        let link = quic::connect(&p.client, p.addr, &ground(), &node).await?;
        let end = link
            .run(
                &mut sender,
                &mut |e| {
                    if let Event::Acknowledged(_) = e {
                        acknowledged += 1;
                    }
                },
                std::future::pending(),
            )
            .await?;
        assert_eq!(
            end,
            ContactEnd::Lost,
            "the node's side ends when the ground hangs up"
        );
        let (rx_session, got, ground_end) = ground_side.await??;
        assert_eq!(ground_end, ContactEnd::Stopped);
        receiver = rx_session;
        for (id, payload) in got {
            assert!(
                received.insert(id, payload).is_none(),
                "message {id} delivered twice"
            );
        }
        // Loss of signal: the next pass is three hours away.
        tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    }
    assert_eq!(received, expected, "every message byte-identical");
    assert!(
        contacts >= 5,
        "only {contacts} contacts: the cut did not happen mid-transfer"
    );
    assert!(acknowledged <= expected.len());
    assert!(started.elapsed() >= Duration::from_secs(3 * 3600 * (contacts as u64)));
    Ok(())
}

/// A peer answers what it is told during the same contact: the ground echoes each of the node's requests, the
/// replies arriving before the contact ends.
#[tokio::test(start_paused = true)]
async fn replies_go_out_in_the_same_contact() -> TestResult {
    let ca = authority()?;
    let node = Identity::node("sat-9")?;
    let p = pair(&ca, &issue(&ca, &ground())?, &ca, &issue(&ca, &node)?)?;
    let config = SessionConfig::default();
    let server = p.server.clone();
    let ground_side = tokio::spawn(async move {
        let incoming = server.accept().await.ok_or("endpoint closed")?;
        let link = quic::accept(incoming).await.map_err(|e| e.to_string())?;
        let mut session = Session::new(config);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        link.run_interactive(
            &mut session,
            &mut |e| {
                if let Event::Delivered { payload, .. } = e {
                    let mut reply = b"echo:".to_vec();
                    reply.extend_from_slice(&payload);
                    let _ = tx.send((Priority::Command, bytes::Bytes::from(reply)));
                }
            },
            &mut rx,
            std::future::pending(),
        )
        .await
        .map_err(|e| e.to_string())
    });
    let mut session = Session::new(config);
    for i in 0..5u8 {
        session.send(Priority::Command, vec![i; 10]);
    }
    let done = Arc::new(Notify::new());
    let mut replies = Vec::new();
    let link = quic::connect(&p.client, p.addr, &ground(), &node).await?;
    let end = link
        .run(
            &mut session,
            &mut |e| {
                if let Event::Delivered { payload, .. } = e {
                    replies.push(payload);
                    if replies.len() == 5 {
                        done.notify_one();
                    }
                }
            },
            done.notified(),
        )
        .await?;
    assert_eq!(end, ContactEnd::Stopped);
    replies.sort();
    let expected: Vec<Vec<u8>> = (0..5u8)
        .map(|i| {
            let mut r = b"echo:".to_vec();
            r.extend_from_slice(&[i; 10]);
            r
        })
        .collect();
    assert_eq!(replies, expected);
    let ground_end = ground_side.await??;
    assert_eq!(ground_end, ContactEnd::Lost, "the node hung up");
    Ok(())
}
