//! The tenant and operator APIs: HTTP/JSON over axum, a thin shell around the ground core and the store. This
//! module holds the service (`Ground`) and who calls it; `guard` stands before the handlers, `tenant` and `ops`
//! (with `operators`) are the handlers, `writer` takes what they and the core produce to the store, `monitor`
//! counts and exposes, `doc` completes the OpenAPI document.
//!
//! Every request names its caller with `Authorization: Bearer <token>`; tokens are held only as BLAKE3 hashes.
//! A tenant sees only its own jobs: another tenant's job answers exactly as a job that does not exist. Errors are
//! JSON `{"code": …, "message": …}` with a stable code. A submission is acknowledged only once the job is
//! durable: submissions queue for a writer task that commits them in batches (group commit), one transaction for
//! many requests, and each request waits for its batch.

mod doc;
mod guard;
mod keys;
mod monitor;
mod operators;
mod ops;
mod tenant;
mod writer;

pub use guard::router_with;
pub use operators::{NewOperator, OperatorToken, OperatorView};
pub use ops::{
    AuditView, CreatedTenant, NewTenant, PlanSummary, QuotaChange, StationStatus, TenantChange,
    TenantView,
};
pub use tenant::{JobList, JobView, SubmitRequest, UploadParams, UsageView};

use monitor::*;
use ops::*;
use tenant::*;
use writer::*;

use crate::core::{Alarm, GroundCore, NodeStatus, Severity, SubmitError};
use crate::dispatch::{Links, NodeSide};
use crate::http::HttpLimits;
use crate::metrics::{ApiMetrics, gauge};
use crate::orbits::{OrbitBook, OrbitUpload};
use crate::store::{AuditEntry, DeliveryWrite, JobWrite, Role, Store, StoreError, TenantRecord};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use base64::Engine as _;
use guard::{Body, Q};
use odc_model::id::{JobId, ModelId, NodeId, TenantId};
use odc_model::job::{BlobRef, Job, JobSpec, JobState, Priority};
use odc_model::tenant::{Quota, Tenant, Usage};
use odc_model::time::{Clock, Duration, Instant};
use odc_model::wire::Envelope;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use tokio::sync::{mpsc, oneshot};

/// Largest request body accepted by default (a 64 MiB input, base64-encoded, and its fields).
pub const DEFAULT_MAX_BODY_BYTES: usize = 90 << 20;
/// Most submissions committed in one transaction.
const MAX_BATCH: usize = 512;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A tenant.
    Tenant(TenantId),
    /// A named operator with its role.
    Operator(Operator),
}

/// An operator as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Its name (the audit log's `operator:<name>`).
    pub name: Arc<str>,
    /// What it may do.
    pub role: Role,
}

impl Operator {
    /// How the audit log names it.
    fn who(&self) -> String {
        format!("operator:{}", self.name)
    }
}

/// The name the bootstrap operator token (the service's operator token file) signs in as, with the admin role.
pub const BOOTSTRAP_OPERATOR: &str = "admin";

/// The hash under which a bearer token is kept.
pub fn token_hash(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

/// An API error: HTTP status, a stable code, a readable message.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// HTTP status.
    #[serde(skip)]
    #[schema(ignore)]
    pub status: StatusCode,
    /// Stable, machine-readable: `unauthenticated`, `forbidden`, `not_found`, `bad_request`, `invalid_job`,
    /// `quota_exceeded`, `conflict`, `not_ready`, `result_expired`, `store_unavailable`, `internal`.
    #[schema(value_type = String)]
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A job that does not exist, or is not the caller's: the same answer for both.
    fn no_such_job() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such job")
    }

    fn store(e: StoreError) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("nothing was changed: {e}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

/// Runs a plan task on a thread of its own at a lower scheduling priority, so that on a busy machine requests and
/// node contacts get the processor before planning does (planning takes longer under load, a tenant does not).
async fn plan_aside(task: crate::core::PlanTask) -> Result<crate::core::PlanDone, String> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("odc-planner".into())
        .spawn(move || {
            lower_priority();
            let _ = tx.send(task.run());
        })
        .map_err(|e| format!("no thread for the planner: {e}"))?;
    rx.await
        .map_err(|_| "the planner stopped without a plan (it panicked)".to_string())
}

/// Lowers the calling thread's scheduling priority (nice 10); best effort.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    // SAFETY: setpriority reads no memory of ours; on Linux, `who = 0` with PRIO_PROCESS names the calling thread.
    unsafe {
        let _ = libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// The ground service's shared state: the core, the store, the clock and the callers it knows.
pub struct Ground<S: Store> {
    core: Mutex<GroundCore>,
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    principals: RwLock<HashMap<[u8; 32], Principal>>,
    commits: mpsc::Sender<Pending>,
    metrics: Arc<ApiMetrics>,
    links: Arc<Links>,
    outbound: mpsc::UnboundedSender<Outbound>,
    orbits: Mutex<Option<OrbitBook>>,
    /// Submissions accepted and not yet committed, with the outcome of their commit once known: a resubmission
    /// with the same key waits for it rather than being answered before the job is durable.
    committing: Mutex<HashMap<JobId, tokio::sync::watch::Receiver<Option<bool>>>>,
    /// Taken by every change to a tenant's account, so two changes cannot interleave their read and write.
    tenant_admin: tokio::sync::Mutex<()>,
    /// Jobs the core has delivered whose result the writer task has not stored yet.
    storing: Arc<Mutex<std::collections::HashSet<JobId>>>,
    /// Which idempotency keys may be in the store (so a new key costs no store read).
    seen_keys: keys::SeenKeys,
    /// Closed jobs the writer has made durable, for the core to forget (memory holds open jobs only).
    closed: Mutex<mpsc::UnboundedReceiver<Vec<JobId>>>,
    /// What the core asks of the store (inputs, forgotten jobs), for the fetch task.
    fetch: mpsc::UnboundedSender<Fetch>,
    /// The highest plan generation handed to the writer task (which stores it).
    generation_out: std::sync::atomic::AtomicU64,
    /// When `/metrics` last answered (scrapes are paced, one at a time).
    scrape_pace: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    /// The core's gauges as last read for `/metrics`, and when.
    core_metrics: Mutex<Option<(std::time::Instant, String)>>,
    /// Records the store set aside because they did not decode (each is alarmed).
    quarantined: Mutex<Vec<crate::store::Quarantined>>,
    /// The body limits of the router serving this ground, for the errors that name them.
    body_limits: std::sync::OnceLock<guard::BodyLimits>,
}

impl<S: Store> Ground<S> {
    /// A service over a core and a store; starts the group-commit writer (needs a Tokio runtime). Tenants and their
    /// token hashes come from the store; operator tokens are given.
    pub async fn start(
        core: GroundCore,
        store: S,
        clock: Arc<dyn Clock>,
        operator_token_hashes: &[[u8; 32]],
    ) -> Result<Arc<Ground<S>>, StoreError> {
        let store = Arc::new(store);
        let quarantined = store.quarantined().await?;
        let seen_keys = keys::SeenKeys::new();
        for (tenant, key) in store.idempotency_keys().await? {
            seen_keys.insert(tenant, &key);
        }
        let mut principals = HashMap::new();
        for t in store.tenants().await? {
            principals.insert(t.token_hash, Principal::Tenant(t.tenant.id));
        }
        for h in operator_token_hashes {
            principals.insert(
                *h,
                Principal::Operator(Operator {
                    name: BOOTSTRAP_OPERATOR.into(),
                    role: Role::Admin,
                }),
            );
        }
        for o in store.operators().await? {
            principals.insert(
                o.token_hash,
                Principal::Operator(Operator {
                    name: o.name.as_str().into(),
                    role: o.role,
                }),
            );
        }
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        let metrics = Arc::new(ApiMetrics::default());
        tokio::spawn(commit_loop(store.clone(), rx, metrics.clone()));
        let links = Arc::new(Links::default());
        let (outbound, out_rx) = mpsc::unbounded_channel();
        let storing = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let (closed_tx, closed_rx) = mpsc::unbounded_channel();
        tokio::spawn(outbound_loop(
            store.clone(),
            links.clone(),
            metrics.clone(),
            storing.clone(),
            out_rx,
            closed_tx,
        ));
        let mut core = core;
        core.plan_in_background(true);
        core.forget_history();
        core.inputs_in_store();
        let (fetch, fetch_rx) = mpsc::unbounded_channel();
        let ground = Arc::new(Ground {
            core: Mutex::new(core),
            store,
            clock,
            principals: RwLock::new(principals),
            commits: tx,
            metrics,
            links,
            outbound,
            orbits: Mutex::new(None),
            committing: Mutex::new(HashMap::new()),
            tenant_admin: tokio::sync::Mutex::new(()),
            storing,
            generation_out: std::sync::atomic::AtomicU64::new(0),
            body_limits: std::sync::OnceLock::new(),
            quarantined: Mutex::new(quarantined),
            core_metrics: Mutex::new(None),
            scrape_pace: tokio::sync::Mutex::new(None),
            closed: Mutex::new(closed_rx),
            fetch,
            seen_keys,
        });
        tokio::spawn(fetch_loop(Arc::downgrade(&ground), fetch_rx));
        Ok(ground)
    }

    /// Registers a tenant (durably, with its audit entries) with the hash of its token; a tenant registered again
    /// keeps only the new token: the old one is refused from then on.
    pub async fn add_tenant(
        &self,
        record: TenantRecord,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        self.store.put_tenant(&record, audit).await?;
        {
            let mut p = self
                .principals
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let id = Principal::Tenant(record.tenant.id);
            p.retain(|_, who| *who != id);
            p.insert(record.token_hash, id);
        }
        Ok(())
    }

    /// A tenant's account as the core holds it and the hash of its token in force; `not_found` for an id that
    /// names no tenant.
    fn tenant_account(&self, id: &str) -> Result<(Tenant, [u8; 32]), ApiError> {
        let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such tenant");
        let id = TenantId::from_str(id).map_err(|_| not_found())?;
        let tenant = self.core()?.tenant(id).cloned().ok_or_else(not_found)?;
        let hash = self
            .principals
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(_, who)| **who == Principal::Tenant(id))
            .map(|(h, _)| *h)
            .ok_or_else(not_found)?;
        Ok((tenant, hash))
    }

    /// Keeps the geometry ahead of the clock: once less than half of `hours` of passes remain, computes `hours`
    /// more from the element sets in force (off the async threads). Nothing without element sets.
    pub async fn extend_geometry(&self, hours: f64) {
        let now = self.clock.now();
        let span = Duration::from_secs_f64(hours * 3600.0);
        let Ok(end) = self.core().map(|c| c.horizon_end()) else {
            return;
        };
        if end - now > Duration::from_secs_f64(hours * 1800.0) {
            return;
        }
        let Some((catalog, stations)) = relock(&self.orbits)
            .as_ref()
            .map(|b| (b.catalog(), b.stations().to_vec()))
        else {
            return;
        };
        let new_end = now + span;
        let computed = tokio::task::spawn_blocking(move || {
            odc_planner::scenario::orbit_geometry(&catalog, &stations, now, new_end)
        })
        .await;
        match computed {
            Ok(Ok(geometry)) => {
                let out = {
                    let Ok(mut core) = self.core() else {
                        return;
                    };
                    core.extend_horizon(geometry, now, new_end, self.clock.now());
                    self.drain(&mut core)
                };
                tracing::info!(until = %new_end, "geometry extended");
                self.send_out(out);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "the geometry could not be extended"),
            Err(e) => tracing::warn!(error = %e, "the geometry task failed"),
        }
    }

    /// Applies uploads of element sets in order: fresher epochs replace those in force, and the satellites that
    /// moved get their passes and sunlight computed again (off the async threads) and the plan redone.
    async fn apply_orbits(&self, texts: &[&str], now: Instant) -> Result<OrbitUpload, ApiError> {
        let (report, changed, stations) = {
            let mut book = relock(&self.orbits);
            let book = book.as_mut().ok_or_else(no_orbits)?;
            let mut report = OrbitUpload::default();
            let mut moved: BTreeMap<u64, odc_ephemeris::Satellite> = BTreeMap::new();
            for text in texts {
                let Ok((r, changed)) = book.upload(text, now) else {
                    continue;
                };
                report.accepted.extend(r.accepted);
                report.stale.extend(r.stale);
                report.unknown.extend(r.unknown);
                report.rejected.extend(r.rejected);
                for sat in changed.satellites {
                    moved.insert(sat.norad_id, sat);
                }
            }
            let changed = odc_ephemeris::Catalog {
                satellites: moved.into_values().collect(),
            };
            (report, changed, book.stations().to_vec())
        };
        if changed.satellites.is_empty() {
            return Ok(report);
        }
        let end = self.core()?.horizon_end();
        let geometry = tokio::task::spawn_blocking(move || {
            odc_planner::scenario::orbit_geometry(&changed, &stations, now, end)
        })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| bad_request(format!("the new elements give no geometry: {e}")))?;
        let out = {
            let mut core = self.core()?;
            let now = self.clock.now();
            core.update_orbits(geometry, now, now);
            self.drain(&mut core)
        };
        self.send_out(out);
        Ok(report)
    }

    /// Replays the operators' fleet changes the store holds (station status, orbit uploads), after a restart.
    pub async fn replay_fleet_changes(&self) -> Result<(), StoreError> {
        let changes = self.store.fleet_changes().await?;
        let now = self.clock.now();
        let mut uploads = Vec::new();
        for (kind, key, value) in &changes {
            match kind.as_str() {
                "station" => {
                    if let (Ok(id), Ok(mut core)) =
                        (odc_model::id::StationId::new(key), self.core())
                    {
                        core.station_status(&id, value == "up", now);
                    }
                }
                "orbits" => uploads.push(value.as_str()),
                other => tracing::warn!(
                    kind = other,
                    "an unknown fleet change in the store; skipped"
                ),
            }
        }
        if !uploads.is_empty()
            && let Err(e) = self.apply_orbits(&uploads, now).await
        {
            tracing::warn!(error = %e.message, "stored orbit uploads could not be applied");
        }
        Ok(())
    }

    /// Gives the service the fleet's element sets and stations, so operators can upload fresher elements.
    pub fn set_orbits(&self, book: OrbitBook) {
        *relock(&self.orbits) = Some(book);
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Time passes: the core expires jobs and, when a replan is due, hands out a snapshot that is planned here
    /// off the async threads and without the core's lock (requests and node contacts go on meanwhile), then put
    /// in force under a short lock. What the core produced goes out (results stored, then messages).
    pub async fn tick(&self, now: Instant) {
        let (out, task) = {
            let mut core = relock(&self.core);
            {
                let mut closed = relock(&self.closed);
                while let Ok(ids) = closed.try_recv() {
                    core.forget_closed(&ids);
                }
            }
            core.tick(now);
            (self.drain(&mut core), core.take_plan_task())
        };
        self.send_out(out);
        let Some(task) = task else {
            return;
        };
        let plan_id = task.id();
        let full = task.is_full();
        let started = std::time::Instant::now();
        let planned = plan_aside(task).await;
        let out = {
            let mut core = relock(&self.core);
            match planned {
                Ok(done) => {
                    core.commit_plan(done, self.clock.now());
                    let seconds = started.elapsed().as_secs_f64().to_bits();
                    if full {
                        self.metrics.plan_seconds.store(seconds, Ordering::Relaxed);
                    } else {
                        self.metrics
                            .repair_seconds
                            .store(seconds, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "the planner failed; a replan is asked for again");
                    core.abandon_plan(plan_id, self.clock.now());
                }
            }
            self.drain(&mut core)
        };
        self.send_out(out);
    }

    /// Deletes what `retention` no longer keeps at the service's `now`, a batch at a time (requests and the
    /// writers go on between batches), then gives the space back to the file system. What went, and the bytes
    /// given back.
    pub async fn purge(
        &self,
        retention: &crate::store::Retention,
    ) -> Result<(crate::store::Purged, u64), StoreError> {
        const BATCH: u32 = 2_000;
        let now = self.clock.now();
        let mut all = crate::store::Purged::default();
        loop {
            let p = self.store.purge(now, retention, BATCH).await?;
            for (counter, n) in self
                .metrics
                .purged
                .iter()
                .zip([p.results, p.jobs, p.audit, p.usage])
            {
                counter.fetch_add(n, Ordering::Relaxed);
            }
            all.results += p.results;
            all.jobs += p.jobs;
            all.audit += p.audit;
            all.usage += p.usage;
            if [p.results, p.jobs, p.audit, p.usage]
                .iter()
                .all(|&n| n < u64::from(BATCH))
            {
                break;
            }
            tokio::task::yield_now().await;
        }
        let freed = if all.total() > 0 {
            self.store.reclaim().await?
        } else {
            0
        };
        self.metrics
            .reclaimed_bytes
            .fetch_add(freed, Ordering::Relaxed);
        Ok((all, freed))
    }

    /// Asks for a full replan at the next tick (at most one a minute, as every replan).
    pub fn replan_soon(&self, reason: &str) {
        let now = self.clock.now();
        relock(&self.core).request_replan(now, reason);
    }

    /// Takes everything the core has for the outside, noting (under the core's lock, so no request sees the job
    /// delivered first) which results are still to be stored.
    fn drain(&self, core: &mut GroundCore) -> Outbound {
        let out = Outbound::drain(core);
        if let Some(f) = Fetch::drain(core) {
            let _ = self.fetch.send(f);
        }
        if !out.deliveries.is_empty() {
            relock(&self.storing).extend(out.deliveries.iter().map(|d| d.job.id));
        }
        out
    }

    /// Whether the core has delivered this job and its result is not stored yet: its tenant sees it delivered only
    /// once it is, so that a delivered job's result can always be downloaded (until then it shows as downlinked).
    fn still_storing(&self, job: &Job) -> bool {
        job.state == JobState::Delivered && relock(&self.storing).contains(&job.id)
    }

    /// Hands what the core produced to the writer task (which keeps the order).
    fn send_out(&self, out: Outbound) {
        let new_generation = self
            .generation_out
            .fetch_max(out.generation, Ordering::Relaxed)
            < out.generation;
        if new_generation
            || !out.jobs.is_empty()
            || !out.deliveries.is_empty()
            || !out.messages.is_empty()
        {
            let _ = self.outbound.send(out);
        }
    }

    fn core(&self) -> Result<std::sync::MutexGuard<'_, GroundCore>, ApiError> {
        Ok(relock(&self.core))
    }

    fn caller(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let unauthenticated =
            |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", m);
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthenticated("an Authorization: Bearer token is required"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthenticated("the Authorization header must be `Bearer <token>`"))?;
        // Looked up by the token's hash: what a lookup's timing could tell is about the hash of the token tried,
        // never about a token held (the equivalent of comparing in constant time).
        self.principals
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&token_hash(token.trim()))
            .cloned()
            .ok_or_else(|| unauthenticated("the token is not valid"))
    }

    fn tenant_caller(&self, headers: &HeaderMap) -> Result<TenantId, ApiError> {
        match self.caller(headers)? {
            Principal::Tenant(t) => Ok(t),
            Principal::Operator(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "tenant endpoints take a tenant's token",
            )),
        }
    }

    /// The caller's job, or the same not-found for a missing job and another tenant's.
    /// A tenant's job: from the core while it is open, else from the store (a closed job leaves the core at a
    /// restart). Another tenant's job is answered exactly as a missing one.
    async fn own_job(&self, tenant: TenantId, id: &str) -> Result<Job, ApiError> {
        let id = JobId::from_str(id).map_err(|_| ApiError::no_such_job())?;
        let held = self.core()?.job(id).cloned();
        let job = match held {
            Some(job) => Some(job),
            None => self.store.job(id).await.map_err(ApiError::store)?,
        };
        let mut job = job
            .filter(|j| j.spec.tenant == tenant)
            .ok_or_else(ApiError::no_such_job)?;
        if self.still_storing(&job) {
            job.state = JobState::Downlinked;
        }
        Ok(job)
    }

    async fn commit(&self, write: JobWrite, audit: AuditEntry) -> Result<(), ApiError> {
        let (done, wait) = oneshot::channel();
        let unavailable =
            |m: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", m);
        self.commits
            .send(Pending { write, audit, done })
            .await
            .map_err(|_| unavailable("the store writer has stopped".into()))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(unavailable(format!(
                "the change is not durable ({e}); retry the request"
            ))),
            Err(_) => Err(unavailable("the store writer has stopped".into())),
        }
    }
}

/// Takes a lock even if a thread panicked while holding it: the panic failed one request (answered 500 by the
/// server), and every later request and node contact must still be served rather than refused until a restart.
/// The state behind these locks is changed in steps that each leave it consistent.
fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| {
        m.clear_poison();
        poisoned.into_inner()
    })
}

/// The store counter that keeps the highest plan generation issued.
pub const PLAN_GENERATION: &str = "plan_generation";

/// Ids whose random part comes from the operating system's CSPRNG (through `rand`'s thread generator, ChaCha
/// seeded and reseeded from it): another tenant's job ids cannot be worked out from one's own.
pub fn secure_ids() -> odc_model::id::IdGenerator {
    odc_model::id::IdGenerator::secure(Arc::new(rand::random::<u128>))
}

/// A new random bearer token: 256 bits, hex, with a prefix that says what it is.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("odc_{hex}")
}

/// Serves the APIs on a bound listener until `shutdown` resolves; requests in flight then finish.
/// The listener may be plain TCP or [`crate::tls::TlsListener`] (HTTPS); `limits` bound what clients can take.
pub async fn serve<S: Store, L>(
    listener: L,
    ground: Arc<Ground<S>>,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    crate::http::serve(listener, router_with(ground, limits), limits, shutdown).await
}

/// The operator console: one self-contained page that reads the operator API with the token typed into it.
const CONSOLE: &str = include_str!("../console.html");

async fn console() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Everything the page needs is in it or behind this origin's API; it may not be framed.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        CONSOLE,
    )
        .into_response()
}

/// The OpenAPI document of the tenant and operator APIs.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "odc ground", description = "Tenant and operator APIs of the odc control plane."),
    paths(tenant::submit, tenant::upload, tenant::list, tenant::status, tenant::cancel, tenant::result, tenant::usage, ops::create_tenant, ops::list_tenants, ops::update_tenant, ops::rotate_token, operators::create_operator, operators::list_operators, operators::rotate_operator_token, ops::audit, ops::plan, ops::plan_summary, ops::nodes, ops::alarms, ops::stations, ops::station_status, ops::orbits, ops::upload_orbits, ops::telemetry),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of the tenant and operator APIs, as the server behaves (see [`doc::complete`]).
pub fn openapi_document() -> Result<serde_json::Value, serde_json::Error> {
    use utoipa::OpenApi as _;
    let mut doc = serde_json::to_value(ApiDoc::openapi())?;
    doc::complete(&mut doc);
    Ok(doc)
}

async fn openapi() -> Response {
    match openapi_document() {
        Ok(doc) => Json(doc).into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response(),
    }
}

/// The routes of the tenant and operator APIs behind their guards, with the default limits and uploads of up to
/// `max_upload_bytes`.
pub fn router<S: Store>(ground: Arc<Ground<S>>, max_upload_bytes: usize) -> Router {
    router_with(
        ground,
        &HttpLimits {
            max_upload_bytes,
            ..HttpLimits::default()
        },
    )
}

impl<S: Store> NodeSide for Ground<S> {
    fn links(&self) -> &Links {
        &self.links
    }

    fn knows(&self, node: &NodeId) -> bool {
        relock(&self.core).knows_node(node)
    }

    fn contact(&self, node: &NodeId, up: bool, restarted: bool) {
        let now = self.clock.now();
        let out = {
            let mut core = relock(&self.core);
            if restarted {
                core.link_reset(node);
            }
            let station = if up {
                core.station_for(node, now)
            } else {
                None
            };
            core.handle_contact(node, station, now);
            self.drain(&mut core)
        };
        self.metrics
            .contacts
            .fetch_add(u64::from(up), Ordering::Relaxed);
        self.send_out(out);
    }

    fn node_message(&self, node: &NodeId, envelope: Envelope) {
        let now = self.clock.now();
        let out = {
            let mut core = relock(&self.core);
            core.handle_message(node, envelope, now);
            self.drain(&mut core)
        };
        self.metrics.node_messages.fetch_add(1, Ordering::Relaxed);
        self.send_out(out);
    }
}
