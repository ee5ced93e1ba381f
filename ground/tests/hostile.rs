//! The ground's HTTP server under hostile clients, over real TCP: anonymous large bodies are refused before they
//! are read (memory stays bounded, no `100 Continue`), slowloris connections and idle keep-alives are closed by
//! the timeouts, a connection flood from one address is refused past its cap while a tenant elsewhere is served,
//! metrics scrapers without a token get nothing, requests past the concurrency cap are shed, and every refusal is
//! JSON with a stable code. Counts are kept small so the suite runs in seconds.

mod common;

use common::*;
use odc_ground::api::{Ground, serve};
use odc_ground::http::HttpLimits;
use odc_ground::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// Limits small enough to reach in a test.
fn limits() -> HttpLimits {
    HttpLimits {
        max_connections: 200,
        max_connections_per_address: 60,
        header_timeout: Duration::from_secs(1),
        body_idle_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
        upload_timeout: Duration::from_secs(20),
        max_concurrent_requests: 4,
        max_upload_bytes: 89 << 20,
        ..HttpLimits::default()
    }
}

/// The API served on a loopback port with `limits`; the ground (to keep) and the address.
async fn served<S: Store>(api: &Api<S>, limits: HttpLimits) -> SocketAddr {
    let ground: Arc<Ground<S>> = api.ground.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = serve(listener, ground, &limits, std::future::pending()).await;
    });
    addr
}

/// A connection to `addr` from the loopback address `from` (127.0.0.x).
async fn connect_from(from: [u8; 4], addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(addr).await
}

/// Sends a whole request and reads one response: (status, body).
async fn request(stream: &mut TcpStream, text: &str) -> (u16, String) {
    stream.write_all(text.as_bytes()).await.expect("send");
    read_response(stream).await.expect("a response")
}

/// Reads one HTTP/1.1 response with a Content-Length body.
async fn read_response(stream: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
            return Some((status, body));
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the server closes the connection within `within` (reads return end of stream or an error).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 1024];
    let until = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut sink)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// This process's resident memory, bytes.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

fn json_code(body: &str) -> String {
    code(body.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_large_bodies_are_refused_before_they_are_read() {
    let api = api().await;
    let addr = served(&api, limits()).await;
    let before = resident_bytes();
    let mut peak = before;
    let mut clients = Vec::new();
    for k in 0..40u8 {
        clients.push(tokio::spawn(async move {
            let mut s = connect_from([127, 0, 0, 1], addr).await.expect("connect");
            let head = format!(
                "POST /v1/jobs/upload?model=m&output_bound_bytes=1&within_s=60&idempotency_key=x{k} HTTP/1.1\r\n\
                 Host: ground\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
                89u64 << 20
            );
            s.write_all(head.as_bytes()).await.expect("head");
            // The answer comes without the body being asked for: 401, never 100 Continue.
            let answer = read_response(&mut s).await.expect("an answer");
            // Then the body is pushed anyway, as a hostile client would: the server has stopped reading.
            let block = vec![0u8; 1 << 20];
            let mut pushed = 0u64;
            for _ in 0..89 {
                match tokio::time::timeout(Duration::from_secs(2), s.write_all(&block)).await {
                    Ok(Ok(())) => pushed += block.len() as u64,
                    _ => break,
                }
            }
            (answer, pushed)
        }));
    }
    for c in clients {
        let ((status, body), pushed) = c.await.expect("client");
        assert_eq!(status, 401, "anonymous: {body}");
        assert_eq!(json_code(&body), "unauthenticated");
        assert!(
            pushed < 32 << 20,
            "the server stopped taking the body ({pushed} bytes went)"
        );
        peak = peak.max(resident_bytes());
    }
    // 40 × 89 MiB were offered; the server held next to none of it.
    let grown = peak.saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "resident memory grew by {} MiB",
        grown >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_and_idle_keep_alives_are_closed_by_the_timeouts() {
    let api = api().await;
    let addr = served(&api, limits()).await;
    // Headers that never end.
    let mut partial = Vec::new();
    for _ in 0..50 {
        let mut s = connect_from([127, 0, 0, 3], addr).await.expect("connect");
        s.write_all(b"POST /v1/jobs HTTP/1.1\r\nHost: ground\r\nX-Slow: ")
            .await
            .expect("send");
        partial.push(s);
    }
    for s in &mut partial {
        assert!(
            closed_within(s, Duration::from_secs(5)).await,
            "partial headers are cut off"
        );
    }
    // A tenant's body that stops half way: a JSON 408, or the connection closed.
    let mut s = connect_from([127, 0, 0, 3], addr).await.expect("connect");
    s.write_all(
        b"POST /v1/jobs HTTP/1.1\r\nHost: ground\r\nAuthorization: Bearer token-a\r\n\
          Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":",
    )
    .await
    .expect("send");
    match tokio::time::timeout(Duration::from_secs(5), read_response(&mut s)).await {
        Ok(Some((status, body))) => {
            assert_eq!(status, 408, "{body}");
            assert_eq!(json_code(&body), "request_timeout");
        }
        Ok(None) => {}
        Err(_) => panic!("a half body held the connection open"),
    }
    // A kept-alive connection that goes quiet after a request.
    let mut s = connect_from([127, 0, 0, 3], addr).await.expect("connect");
    let (status, _) = request(
        &mut s,
        "GET /v1/usage HTTP/1.1\r\nHost: ground\r\nAuthorization: Bearer token-a\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "an idle keep-alive is closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_is_refused_past_its_cap_while_a_tenant_is_served() {
    let api = api().await;
    let l = limits();
    let per_address = l.max_connections_per_address;
    let addr = served(&api, l).await;
    let mut flood = Vec::new();
    for _ in 0..per_address + 40 {
        if let Ok(s) = connect_from([127, 0, 0, 4], addr).await {
            flood.push(s);
        }
    }
    // Past the cap, connections are closed at once; those within it stay (until the header timeout).
    let mut closed = 0;
    for s in &mut flood {
        if closed_within(s, Duration::from_millis(300)).await {
            closed += 1;
        }
    }
    assert!(
        closed >= 40,
        "{closed} of {} flood connections closed at once",
        flood.len()
    );
    // A tenant on another address is served meanwhile.
    let mut tenant = connect_from([127, 0, 0, 5], addr).await.expect("connect");
    let (status, body) = request(
        &mut tenant,
        "GET /v1/usage HTTP/1.1\r\nHost: ground\r\nAuthorization: Bearer token-a\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrapers_without_a_token_get_nothing_and_tenants_are_served() {
    let api = api().await;
    let addr = served(
        &api,
        HttpLimits {
            max_concurrent_requests: 64,
            ..limits()
        },
    )
    .await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut scrapers = Vec::new();
    for k in 0..8u8 {
        let stop = stop.clone();
        scrapers.push(tokio::spawn(async move {
            let mut s = connect_from([127, 0, 0, 6], addr).await.expect("connect");
            let auth = if k % 2 == 0 {
                ""
            } else {
                "Authorization: Bearer token-op\r\n"
            };
            let mut answers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, _) = request(
                    &mut s,
                    &format!("GET /metrics HTTP/1.1\r\nHost: ground\r\n{auth}\r\n"),
                )
                .await;
                answers.push(status);
                if status != 200 {
                    // Refused answers may close the connection.
                    s = connect_from([127, 0, 0, 6], addr).await.expect("connect");
                }
            }
            (k, answers)
        }));
    }
    let mut tenant = connect_from([127, 0, 0, 7], addr).await.expect("connect");
    for k in 0..50 {
        let (status, body) = request(
            &mut tenant,
            "GET /v1/usage HTTP/1.1\r\nHost: ground\r\nAuthorization: Bearer token-a\r\n\r\n",
        )
        .await;
        assert_eq!(status, 200, "usage {k}: {body}");
    }
    let job = submit(&api, "token-a", "during-scrapes").await;
    assert_eq!(job.state, "accepted");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in scrapers {
        let (k, answers) = s.await.expect("scraper");
        assert!(!answers.is_empty());
        let want = if k % 2 == 0 { 401 } else { 200 };
        assert!(
            answers.iter().all(|&a| a == want),
            "scraper {k}: {answers:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_concurrency_cap_are_shed_with_a_json_503() {
    let f = flaky(Vec::new()).await;
    // Every commit takes a second: four submissions fill the server.
    f.slow_ms.store(1_000, std::sync::atomic::Ordering::SeqCst);
    let addr = served(&f.api, limits()).await;
    let mut slow = Vec::new();
    for k in 0..4 {
        slow.push(tokio::spawn(async move {
            let mut s = connect_from([127, 0, 0, 8], addr).await.expect("connect");
            let body = submission(&format!("slow{k}"), b"tile");
            request(
                &mut s,
                &format!(
                    "POST /v1/jobs HTTP/1.1\r\nHost: ground\r\nAuthorization: Bearer token-a\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
            )
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut s = connect_from([127, 0, 0, 9], addr).await.expect("connect");
    let (status, body) = request(
        &mut s,
        "GET /v1/usage HTTP/1.1\r\nHost: ground\r\nAuthorization: Bearer token-a\r\n\r\n",
    )
    .await;
    assert_eq!((status, json_code(&body)), (503, "overloaded".to_string()));
    for r in slow {
        let (status, body) = r.await.expect("slow");
        assert_eq!(status, 201, "the admitted ones finish: {body}");
    }
    // Room again.
    let mut s = connect_from([127, 0, 0, 9], addr).await.expect("connect");
    let (status, _) = request(
        &mut s,
        "GET /v1/usage HTTP/1.1\r\nHost: ground\r\nAuthorization: Bearer token-a\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_json_with_a_stable_code() {
    let api = api().await;
    let addr = served(&api, limits()).await;
    let big_json = submission("big", &vec![1u8; 800_000]);
    let cases: Vec<(String, u16, &str)> = vec![
        (
            "GET /v1/nowhere HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer token-a\r\n\r\n".into(),
            404,
            "not_found",
        ),
        (
            "DELETE /v1/usage HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer token-a\r\n\r\n".into(),
            405,
            "method_not_allowed",
        ),
        (
            "GET /v1/jobs?limit=lots HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer token-a\r\n\r\n"
                .into(),
            400,
            "bad_request",
        ),
        (
            "GET /v1/usage HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer token-a\r\n\
             Authorization: Bearer token-b\r\n\r\n"
                .into(),
            400,
            "bad_request",
        ),
        (
            format!(
                "POST /v1/jobs HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer token-a\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{big_json}",
                big_json.len()
            ),
            413,
            "payload_too_large",
        ),
        (
            format!(
                "POST /v1/jobs/upload?model=m&output_bound_bytes=1&within_s=60&idempotency_key=u HTTP/1.1\r\n\
                 Host: g\r\nAuthorization: Bearer token-a\r\nContent-Length: {}\r\n\r\n",
                90u64 << 20
            ),
            413,
            "payload_too_large",
        ),
        (
            "GET /v1/ops/plan HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer token-a\r\n\r\n".into(),
            403,
            "forbidden",
        ),
        (
            "GET /v1/usage HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer token-op\r\n\r\n".into(),
            403,
            "forbidden",
        ),
        (
            "GET /v1/usage HTTP/1.1\r\nHost: g\r\nAuthorization: Basic abc\r\n\r\n".into(),
            401,
            "unauthenticated",
        ),
    ];
    for (text, status, code) in cases {
        let mut s = connect_from([127, 0, 0, 10], addr).await.expect("connect");
        let first_line = text.lines().next().unwrap_or_default().to_string();
        s.write_all(text.as_bytes()).await.expect("send");
        let (got, body) = read_response(&mut s).await.expect("a response");
        assert_eq!(
            (got, json_code(&body)),
            (status, code.to_string()),
            "{first_line}"
        );
        assert!(body.contains("\"message\""), "{first_line}: {body}");
    }
    // A JSON submission within its limit, and the limit named when over it.
    let big = submission("big", &vec![1u8; 800_000]);
    let (status, body) = call(&api, "POST", "/v1/jobs", Some("token-a"), Some(big)).await;
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("1048576"));
}
