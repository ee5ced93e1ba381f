//! The HTTP server under the APIs, built to face the open network: connections capped in all and per client
//! address, headers (and idle keep-alives) timed out by hyper, request bodies timed out between chunks and in all,
//! requests past the concurrency cap shed with a JSON 503, handlers given a time limit. Nothing here knows the
//! routes; `api` adds authentication (before any body is read) and per-route body limits.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bounds the server keeps to, whatever its clients do.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Connections open at once, in all; past it a new connection is closed at once.
    pub max_connections: usize,
    /// Connections open at once from one client address (one client cannot take every slot).
    pub max_connections_per_address: usize,
    /// Time to send a request's headers, and the longest a kept-alive connection may sit idle.
    pub header_timeout: Duration,
    /// Longest pause between two chunks of a request body.
    pub body_idle_timeout: Duration,
    /// Time to handle a request (body included) on every route but the upload.
    pub request_timeout: Duration,
    /// Time to handle an upload (body included): large inputs over slow links take longer.
    pub upload_timeout: Duration,
    /// Requests handled at once; past it a request is answered 503 `overloaded` at once.
    pub max_concurrent_requests: usize,
    /// Largest body of a JSON submission (`POST /v1/jobs`: the input in base64).
    pub max_json_submit_bytes: usize,
    /// Largest body of every other JSON request.
    pub max_json_bytes: usize,
    /// Largest element-set upload (`POST /v1/ops/orbits`).
    pub max_orbits_bytes: usize,
    /// Largest input uploaded as the body (`POST /v1/jobs/upload`).
    pub max_upload_bytes: usize,
    /// Upload bytes being received at once, over all requests (what uploads may hold in memory together).
    pub max_upload_bytes_in_flight: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            max_connections: 4096,
            max_connections_per_address: 512,
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            upload_timeout: Duration::from_secs(600),
            max_concurrent_requests: 1024,
            max_json_submit_bytes: 1 << 20,
            max_json_bytes: 64 << 10,
            max_orbits_bytes: 4 << 20,
            max_upload_bytes: crate::api::DEFAULT_MAX_BODY_BYTES,
            max_upload_bytes_in_flight: 512 << 20,
        }
    }
}

/// What the server refused, for `/metrics`.
#[derive(Debug, Default)]
pub struct HttpCounters {
    /// Connections closed at once because the server was at its cap.
    pub connections_refused: AtomicU64,
    /// Connections closed at once because their address was at its cap.
    pub connections_refused_address: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Requests shed because the server was handling its most.
    pub requests_shed: AtomicU64,
    /// Requests that ran out of time.
    pub requests_timed_out: AtomicU64,
}

/// Counters of the running server (one per process: the server is one per process too).
pub fn counters() -> &'static HttpCounters {
    static COUNTERS: std::sync::OnceLock<HttpCounters> = std::sync::OnceLock::new();
    COUNTERS.get_or_init(HttpCounters::default)
}

/// A JSON error in the APIs' shape, for answers given below the handlers.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "code": code, "message": message })),
    )
        .into_response()
}

/// Answers what the guard layers refused: a request shed (503 `overloaded`) or out of time (408/503).
pub async fn refused(e: tower::BoxError) -> Response {
    if e.is::<tower::load_shed::error::Overloaded>() {
        counters().requests_shed.fetch_add(1, Ordering::Relaxed);
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is handling as many requests as it takes; retry shortly",
        )
    } else if e.is::<tower::timeout::error::Elapsed>() {
        counters()
            .requests_timed_out
            .fetch_add(1, Ordering::Relaxed);
        error(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took longer than the server allows",
        )
    } else {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        )
    }
}

/// Open connections per client address, for the per-address cap.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection's hold on its address's count, given back when the connection ends.
struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: IpAddr, most: usize) -> Option<AddressSlot> {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = t.entry(ip).or_default();
        if *n >= most {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut t = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = t.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.ip);
            }
        }
    }
}

/// A connection's place: the server-wide permit and the address's.
struct Admitted {
    _all: OwnedSemaphorePermit,
    _address: AddressSlot,
}

/// Serves `app` on `listener` until `shutdown` resolves; connections then finish the request in hand.
pub async fn serve<L>(
    mut listener: L,
    app: axum::Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let all = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .max_headers(64)
        .max_buf_size(64 << 10);
    let service = hyper_util::service::TowerToHyperService::new(app);
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let Ok(all_permit) = all.clone().try_acquire_owned() else {
            counters()
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            drop(io);
            continue;
        };
        let Some(slot) = per_address.take(peer.ip(), limits.max_connections_per_address) else {
            counters()
                .connections_refused_address
                .fetch_add(1, Ordering::Relaxed);
            drop(io);
            continue;
        };
        let admitted = Admitted {
            _all: all_permit,
            _address: slot,
        };
        let connection = builder.serve_connection(TokioIo::new(io), service.clone());
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            counters().connections_open.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = connection.await {
                tracing::debug!(target: "odc::http", %peer, error = %e, "connection ended");
            }
            counters().connections_open.fetch_sub(1, Ordering::Relaxed);
            drop(admitted);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The upload bytes being received, over all requests: an upload takes its declared size before its body is
/// read, and is refused (503 `overloaded`) if that would pass the cap.
#[derive(Clone)]
pub struct UploadBudget {
    kib: Arc<Semaphore>,
    most_kib: u32,
}

impl UploadBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> UploadBudget {
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        UploadBudget {
            kib: Arc::new(Semaphore::new(kib as usize)),
            most_kib: kib,
        }
    }

    /// Takes room for `bytes`, if there is room now.
    pub fn take(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.most_kib.max(1));
        self.kib.clone().try_acquire_many_owned(kib).ok()
    }
}
