//! The tenant API: HTTP/JSON over axum, a thin shell around the ground core and the store.
//!
//! Every request names its caller with `Authorization: Bearer <token>`; tokens are held only as BLAKE3 hashes.
//! A tenant sees only its own jobs: another tenant's job answers exactly as a job that does not exist. Errors are
//! JSON `{"code": …, "message": …}` with a stable code. A submission is acknowledged only once the job is
//! durable: submissions queue for a writer task that commits them in batches (group commit), one transaction for
//! many requests, and each request waits for its batch.

mod doc;
mod guard;
mod operators;

pub use guard::router_with;
pub use operators::{NewOperator, OperatorToken, OperatorView};

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
    /// `quota_exceeded`, `conflict`, `not_ready`, `store_unavailable`, `internal`.
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

/// What a tenant submits.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The model to run.
    #[schema(pattern = r"^[a-z0-9._-]{1,64}$")]
    pub model: String,
    /// The input, base64 (standard alphabet, padded; not empty).
    #[schema(
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$"
    )]
    pub input: String,
    /// Largest result accepted, bytes.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "odc_model::tenant::whole_u64")]
    pub output_bound_bytes: u64,
    /// Deliver by, RFC 3339 (give this or `within_s`).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline: Option<Instant>,
    /// Deliver within this many seconds of the ground's receipt, by the ground's clock (give this or `deadline`).
    #[serde(default)]
    #[schema(exclusive_minimum = 0.0, maximum = 31_622_400.0)]
    pub within_s: Option<f64>,
    /// 0 (lowest) to 9; 5 if absent. Orders the tenant's own jobs; between tenants only fair shares count.
    #[serde(default, deserialize_with = "whole_u8_opt")]
    #[schema(minimum = 0, maximum = 9)]
    pub priority: Option<u8>,
    /// The same key with the same request again returns the same job instead of a second one (a different
    /// request with a used key is refused, 409 `idempotency_conflict`). 1-128 printable ASCII characters.
    #[schema(pattern = r"^[!-~]{1,128}$")]
    pub idempotency_key: String,
}

/// A submission whose input is the request body itself (`POST /v1/jobs/upload`): the fields of
/// [`SubmitRequest`] but the input, as query parameters. Saves base64's third and its decoding on large inputs.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The model to run.
    #[param(pattern = r"^[a-z0-9._-]{1,64}$")]
    pub model: String,
    /// Largest result accepted, bytes.
    #[param(minimum = 1)]
    pub output_bound_bytes: u64,
    /// Deliver by, RFC 3339 (give this or `within_s`).
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    pub deadline: Option<Instant>,
    /// Deliver within this many seconds of the ground's receipt (give this or `deadline`).
    #[serde(default)]
    #[param(exclusive_minimum = 0.0, maximum = 31_622_400.0)]
    pub within_s: Option<f64>,
    /// 0 (lowest) to 9; 5 if absent. Orders the tenant's own jobs; between tenants only fair shares count.
    #[serde(default)]
    #[param(minimum = 0, maximum = 9)]
    pub priority: Option<u8>,
    /// The same key with the same request again returns the same job instead of a second one (a different
    /// request with a used key is refused, 409 `idempotency_conflict`). 1-128 printable ASCII characters.
    #[param(pattern = r"^[!-~]{1,128}$")]
    pub idempotency_key: String,
}

impl SubmitRequest {
    /// Its fields but the input, and the input.
    fn split(self) -> (UploadParams, String) {
        (
            UploadParams {
                model: self.model,
                output_bound_bytes: self.output_bound_bytes,
                deadline: self.deadline,
                within_s: self.within_s,
                priority: self.priority,
                idempotency_key: self.idempotency_key,
            },
            self.input,
        )
    }
}

/// A job as a tenant sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    /// Its id.
    #[schema(value_type = String)]
    pub id: JobId,
    /// State name (`accepted`, `planned`, … `delivered`, `failed`, `expired`, `cancelled`).
    pub state: String,
    /// Why it failed, if it did.
    pub failure: Option<String>,
    /// The model.
    pub model: String,
    /// Input digest (BLAKE3, hex) and size.
    pub input_digest: String,
    /// Input size, bytes.
    pub input_bytes: u64,
    /// When it was submitted.
    #[schema(value_type = String, format = DateTime)]
    pub submitted_at: Instant,
    /// Deliver by.
    #[schema(value_type = String, format = DateTime)]
    pub deadline: Instant,
    /// Its idempotency key.
    pub idempotency_key: String,
}

impl JobView {
    fn of(job: &Job) -> JobView {
        JobView {
            id: job.id,
            state: job.state.name().to_string(),
            failure: match &job.state {
                JobState::Failed { reason } => Some(format!("{reason:?}")),
                _ => None,
            },
            model: job.spec.model.as_str().to_string(),
            input_digest: job.spec.input.digest.to_hex(),
            input_bytes: job.spec.input.size_bytes,
            submitted_at: job.history.first().map_or(Instant::EPOCH, |h| h.at),
            deadline: job.spec.deadline,
            idempotency_key: job.spec.idempotency_key.clone(),
        }
    }
}

/// A tenant's consumption against its quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageView {
    /// When the current accounting period began (periods are consecutive windows of the quota's period from the
    /// Unix epoch: a day-long period is a UTC day).
    #[schema(value_type = String, format = DateTime)]
    pub period_start: Instant,
    /// When it ends: usage counts from zero again.
    #[schema(value_type = String, format = DateTime)]
    pub period_end: Instant,
    /// Used by jobs delivered in this period.
    pub used: Usage,
    /// Reserved by open jobs.
    pub reserved: Usage,
    /// The quota.
    pub quota: Quota,
}

/// A list of jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobView>,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<u64>,
}

struct Pending {
    write: JobWrite,
    audit: AuditEntry,
    done: oneshot::Sender<Result<(), String>>,
}

/// What the core produced that must leave it: results to store, then messages for nodes (in that order: a node
/// hears that its result arrived only once the result is durable).
#[derive(Default)]
struct Outbound {
    /// Job records a restart must not forget (an input sent, a node's report, an expiry).
    jobs: Vec<Job>,
    deliveries: Vec<DeliveryWrite>,
    messages: Vec<(NodeId, Envelope)>,
    /// The highest plan generation issued: stored before any message that may carry it leaves.
    generation: u64,
}

impl Outbound {
    /// Takes everything the core has for the outside.
    fn drain(core: &mut GroundCore) -> Outbound {
        let mut out = Outbound {
            jobs: core.take_dirty(),
            generation: core.generation(),
            ..Outbound::default()
        };
        while let Some(d) = core.poll_delivery() {
            let job = core.job(d.job).cloned();
            let usage = core.ledger().iter().rev().find(|r| r.job == d.job).cloned();
            if let (Some(job), Some(usage)) = (job, usage) {
                out.deliveries.push(DeliveryWrite {
                    job,
                    result: d.result,
                    usage,
                });
            }
        }
        while let Some(m) = core.poll_outgoing() {
            out.messages.push(m);
        }
        out
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
    /// The highest plan generation handed to the writer task (which stores it).
    generation_out: std::sync::atomic::AtomicU64,
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
        tokio::spawn(outbound_loop(
            store.clone(),
            links.clone(),
            metrics.clone(),
            storing.clone(),
            out_rx,
        ));
        let mut core = core;
        core.plan_in_background(true);
        Ok(Arc::new(Ground {
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
        }))
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
            core.tick(now);
            (self.drain(&mut core), core.take_plan_task())
        };
        self.send_out(out);
        let Some(task) = task else {
            return;
        };
        let plan_id = task.snapshot.plan_id;
        let started = std::time::Instant::now();
        let planned = tokio::task::spawn_blocking(move || {
            let outcome = odc_planner::plan(&task.snapshot);
            (task, outcome)
        })
        .await;
        let out = {
            let mut core = relock(&self.core);
            match planned {
                Ok((task, outcome)) => {
                    core.commit_plan(task, outcome, self.clock.now());
                    self.metrics
                        .plan_seconds
                        .store(started.elapsed().as_secs_f64().to_bits(), Ordering::Relaxed);
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

    /// Asks for a full replan at the next tick (at most one a minute, as every replan).
    pub fn replan_soon(&self, reason: &str) {
        let now = self.clock.now();
        relock(&self.core).request_replan(now, reason);
    }

    /// Takes everything the core has for the outside, noting (under the core's lock, so no request sees the job
    /// delivered first) which results are still to be stored.
    fn drain(&self, core: &mut GroundCore) -> Outbound {
        let out = Outbound::drain(core);
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

/// Commits queued writes in batches: one transaction for everything waiting, then every waiter is told.
async fn commit_loop<S: Store>(
    store: Arc<S>,
    mut rx: mpsc::Receiver<Pending>,
    metrics: Arc<ApiMetrics>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut writes = Vec::with_capacity(batch.len());
        let mut audits = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        for p in batch.drain(..) {
            writes.push(p.write);
            audits.push(p.audit);
            waiters.push(p.done);
        }
        let outcome = store
            .put_jobs(&writes, &audits)
            .await
            .map_err(|e| e.to_string());
        metrics
            .commit_failing
            .store(outcome.is_err(), Ordering::Relaxed);
        if outcome.is_ok() {
            metrics.commits.fetch_add(1, Ordering::Relaxed);
            metrics
                .committed_jobs
                .fetch_add(writes.len() as u64, Ordering::Relaxed);
        }
        for w in waiters {
            let _ = w.send(outcome.clone());
        }
    }
}

/// What an operator asks for when creating a tenant.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Display name (1 to 100 characters, not only spaces).
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// Its quota per period.
    pub quota: Quota,
    /// Fair-share weight, 1 to 10,000 (1 if absent).
    #[serde(default, deserialize_with = "whole_u32_opt")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub share_weight: Option<u32>,
}

/// A tenant just created, with its bearer token (shown this once: only its hash is kept).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedTenant {
    /// The account.
    pub tenant: Tenant,
    /// The bearer token.
    pub token: String,
}

/// A tenant as an operator sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantView {
    /// The account.
    pub tenant: Tenant,
    /// Used by delivered jobs.
    pub used: Usage,
    /// Reserved by open jobs.
    pub reserved: Usage,
}

impl<S: Store> Ground<S> {
    /// The calling operator, if its role is at least `role`.
    fn operator_with(&self, headers: &HeaderMap, role: Role) -> Result<Operator, ApiError> {
        match self.caller(headers)? {
            Principal::Operator(o) if o.role >= role => Ok(o),
            Principal::Operator(o) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this takes an operator with the {} role; {} is a {}",
                    role.name(),
                    o.name,
                    o.role.name()
                ),
            )),
            Principal::Tenant(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "operator endpoints take an operator's token",
            )),
        }
    }

    /// The calling operator, any role: what reads take.
    fn operator_caller(&self, headers: &HeaderMap) -> Result<Operator, ApiError> {
        self.operator_with(headers, Role::Viewer)
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

#[utoipa::path(post, path = "/v1/ops/tenants", tag = "operator", request_body = NewTenant, security(("bearer" = [])), responses((status = 201, body = CreatedTenant), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, description = "Not an operator token", body = ApiError)))]
async fn create_tenant<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<CreatedTenant>), ApiError> {
    let who = g.operator_with(&headers, Role::Operator)?;
    let req: NewTenant =
        parse_object(&body).map_err(|e| bad_request(format!("the body is not a tenant: {e}")))?;
    check_name(&req.name)?;
    let now = g.clock.now();
    let tenant = Tenant {
        id: g.core()?.new_tenant_id(now),
        name: req.name,
        quota: req.quota,
        share_weight: match req.share_weight {
            None => 1,
            Some(w @ 1..=MAX_SHARE_WEIGHT) => w,
            Some(_) => return Err(bad_request("`share_weight` must be 1 to 10000")),
        },
    };
    check_quota(&tenant.quota)?;
    let token = new_token();
    g.add_tenant(
        TenantRecord {
            tenant: tenant.clone(),
            token_hash: token_hash(&token),
        },
        &[operator_action(now, &who, "tenant.create", tenant.id)],
    )
    .await
    .map_err(ApiError::store)?;
    g.core()?.add_tenant(tenant.clone());
    Ok((StatusCode::CREATED, Json(CreatedTenant { tenant, token })))
}

/// An audit entry for an operator's change to a tenant.
fn operator_action(at: Instant, who: &Operator, action: &str, tenant: TenantId) -> AuditEntry {
    AuditEntry {
        at,
        who: who.who(),
        action: action.into(),
        target: tenant.to_string(),
    }
}

/// A tenant's display name: 1 to 100 characters, not all blank.
/// The largest fair-share weight a tenant may have.
const MAX_SHARE_WEIGHT: u32 = 10_000;

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(bad_request("`name` must be 1 to 100 characters"));
    }
    Ok(())
}

/// A quota the planner and the intake can work with: finite, non-negative figures over a positive period.
fn check_quota(q: &Quota) -> Result<(), ApiError> {
    for (name, v) in [
        ("accelerator_s", q.accelerator_s),
        ("energy_wh", q.energy_wh),
    ] {
        if !v.is_finite() || v < 0.0 {
            return Err(bad_request(format!(
                "quota `{name}` must be a finite number of at least 0, not {v}"
            )));
        }
    }
    if q.period <= Duration::ZERO {
        return Err(bad_request(
            "quota `period` must be positive (milliseconds)",
        ));
    }
    Ok(())
}

/// What an operator changes in a tenant's account: only the fields given; the rest stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantChange {
    /// New display name (1 to 100 characters, not only spaces).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    /// Quota figures to change.
    #[serde(default)]
    pub quota: Option<QuotaChange>,
    /// New fair-share weight (1 to 10,000).
    #[serde(default, deserialize_with = "whole_u32_opt")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub share_weight: Option<u32>,
}

/// Quota figures to change; those absent stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaChange {
    /// Accelerator time per period, seconds.
    #[serde(default)]
    #[schema(minimum = 0.0)]
    pub accelerator_s: Option<f64>,
    /// Accelerator energy per period, Wh.
    #[serde(default)]
    #[schema(minimum = 0.0)]
    pub energy_wh: Option<f64>,
    /// Bytes sent up per period.
    #[serde(default, deserialize_with = "odc_model::tenant::whole_u64_opt")]
    pub uplink_bytes: Option<u64>,
    /// Bytes sent down per period.
    #[serde(default, deserialize_with = "odc_model::tenant::whole_u64_opt")]
    pub downlink_bytes: Option<u64>,
    /// Length of the accounting period, milliseconds.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub period: Option<Duration>,
}

impl TenantChange {
    /// The account with this change made, or why the change cannot be made.
    fn apply(self, mut tenant: Tenant) -> Result<Tenant, ApiError> {
        if self.name.is_none() && self.quota.is_none() && self.share_weight.is_none() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "nothing_to_change",
                "the change names nothing to change (give `name`, `quota` or `share_weight`)",
            ));
        }
        if let Some(name) = self.name {
            check_name(&name)?;
            tenant.name = name;
        }
        if let Some(w) = self.share_weight {
            if w > MAX_SHARE_WEIGHT || w == 0 {
                return Err(bad_request("`share_weight` must be 1 to 10000"));
            }
            tenant.share_weight = w;
        }
        if let Some(q) = self.quota {
            let t = &mut tenant.quota;
            t.accelerator_s = q.accelerator_s.unwrap_or(t.accelerator_s);
            t.energy_wh = q.energy_wh.unwrap_or(t.energy_wh);
            t.uplink_bytes = q.uplink_bytes.unwrap_or(t.uplink_bytes);
            t.downlink_bytes = q.downlink_bytes.unwrap_or(t.downlink_bytes);
            t.period = q.period.unwrap_or(t.period);
        }
        check_quota(&tenant.quota)?;
        Ok(tenant)
    }
}

#[utoipa::path(patch, path = "/v1/ops/tenants/{id}", tag = "operator", params(("id" = String, Path, description = "Tenant id")), request_body = TenantChange, security(("bearer" = [])), responses((status = 200, description = "The account as it is now; jobs already accepted stay accepted, new submissions meet the new quota", body = TenantView), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 503, description = "Not stored: nothing changed", body = ApiError)))]
async fn update_tenant<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Json<TenantView>, ApiError> {
    let who = g.operator_with(&headers, Role::Operator)?;
    let change: TenantChange = parse_object(&body)
        .map_err(|e| bad_request(format!("the body is not a tenant change: {e}")))?;
    let _one_change = g.tenant_admin.lock().await;
    let (tenant, hash) = g.tenant_account(&id)?;
    let tenant = change.apply(tenant)?;
    let now = g.clock.now();
    // Durable first: a restart rebuilds the account from the store.
    g.store
        .put_tenant(
            &TenantRecord {
                tenant: tenant.clone(),
                token_hash: hash,
            },
            &[operator_action(now, &who, "tenant.update", tenant.id)],
        )
        .await
        .map_err(ApiError::store)?;
    let mut core = g.core()?;
    core.update_tenant(tenant.clone(), now);
    let (used, reserved) = core.usage(tenant.id).unwrap_or_default();
    Ok(Json(TenantView {
        tenant,
        used,
        reserved,
    }))
}

#[utoipa::path(post, path = "/v1/ops/tenants/{id}/token", tag = "operator", params(("id" = String, Path, description = "Tenant id")), security(("bearer" = [])), responses((status = 200, description = "A new token, shown this once; the old one is refused from now on", body = CreatedTenant), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 503, description = "Not stored: the old token still holds", body = ApiError)))]
async fn rotate_token<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<CreatedTenant>, ApiError> {
    let who = g.operator_with(&headers, Role::Operator)?;
    let _one_change = g.tenant_admin.lock().await;
    let (tenant, _) = g.tenant_account(&id)?;
    let token = new_token();
    let now = g.clock.now();
    g.add_tenant(
        TenantRecord {
            tenant: tenant.clone(),
            token_hash: token_hash(&token),
        },
        &[operator_action(now, &who, "tenant.token_rotate", tenant.id)],
    )
    .await
    .map_err(ApiError::store)?;
    Ok(Json(CreatedTenant { tenant, token }))
}

#[utoipa::path(get, path = "/v1/ops/tenants", tag = "operator", security(("bearer" = [])), responses((status = 200, body = Vec<TenantView>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn list_tenants<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
) -> Result<Json<Vec<TenantView>>, ApiError> {
    g.operator_caller(&headers)?;
    let core = g.core()?;
    Ok(Json(
        core.tenants()
            .map(|(t, used, reserved)| TenantView {
                tenant: t.clone(),
                used,
                reserved,
            })
            .collect(),
    ))
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

/// Times and counts every request by its route template.
async fn track<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    matched: Option<MatchedPath>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let route = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    g.metrics.observe(&route, status, seconds);
    tracing::info!(
        target: "odc::api",
        %method,
        route = %route,
        status,
        ms = seconds * 1e3,
        "request"
    );
    response
}

/// Prometheus text exposition: jobs by state, tenants, plan generation and replans (read from the core now),
/// API requests and latency, group commits.
async fn metrics<S: Store>(State(g): State<Arc<Ground<S>>>) -> Result<Response, ApiError> {
    let mut out = {
        // What is read from the core is read at most once per `CORE_METRICS_EVERY`, however many scrape: a scrape
        // then costs a copy of text, and the core's lock is not taken for it.
        let mut cached = relock(&g.core_metrics);
        match &*cached {
            Some((at, text)) if at.elapsed() < CORE_METRICS_EVERY => text.clone(),
            _ => {
                let text = core_metrics(&g)?;
                *cached = Some((std::time::Instant::now(), text.clone()));
                text
            }
        }
    };
    g.metrics.render(&mut out);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

/// How often `/metrics` reads the core at most.
const CORE_METRICS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The gauges read from the core (jobs by state, tenants, contacts, relays, lost nodes, alarms, plans).
fn core_metrics<S: Store>(g: &Ground<S>) -> Result<String, ApiError> {
    let mut out = String::new();
    {
        let core = g.core()?;
        let mut by_state: std::collections::BTreeMap<&'static str, f64> =
            std::collections::BTreeMap::new();
        for j in core.jobs() {
            *by_state.entry(j.state.name()).or_default() += 1.0;
        }
        let states: Vec<(String, f64)> = by_state
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        gauge(
            &mut out,
            "odc_ground_jobs",
            "Jobs held by the ground core, by state.",
            "state",
            &states,
        );
        gauge(
            &mut out,
            "odc_ground_tenants",
            "Tenants.",
            "",
            &[(String::new(), core.tenants().count() as f64)],
        );
        gauge(
            &mut out,
            "odc_ground_nodes_in_contact",
            "Nodes with a link open now.",
            "",
            &[(String::new(), g.links.in_contact() as f64)],
        );
        let (inputs, results) = core.relay_counts();
        gauge(
            &mut out,
            "odc_ground_relayed",
            "Inputs handed to a neighbour to relay over an ISL, and results that came down through one.",
            "what",
            &[
                ("inputs".into(), inputs as f64),
                ("results".into(), results as f64),
            ],
        );
        gauge(
            &mut out,
            "odc_ground_nodes_lost",
            "Nodes taken for lost (silent through their passes).",
            "",
            &[(String::new(), core.lost_nodes().count() as f64)],
        );
        let mut by_code: std::collections::BTreeMap<String, f64> =
            std::collections::BTreeMap::new();
        for a in core.alarms(g.clock.now()) {
            *by_code.entry(a.code).or_default() += 1.0;
        }
        gauge(
            &mut out,
            "odc_ground_alarms",
            "Alarms raised now, by code.",
            "code",
            &by_code.into_iter().collect::<Vec<_>>(),
        );
        let generation = core.plan().map_or(0, |p| p.generation);
        gauge(
            &mut out,
            "odc_ground_plan_generation",
            "Generation of the plan in force.",
            "",
            &[(String::new(), generation as f64)],
        );
        gauge(
            &mut out,
            "odc_ground_replans",
            "Replans since start.",
            "",
            &[(String::new(), core.replans().len() as f64)],
        );
    }
    Ok(out)
}

/// One audit entry as an operator reads it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditView {
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Instant,
    /// Who: `tenant:<id>` or `operator`.
    pub who: String,
    /// What: `submit`, `cancel`, `tenant.create`.
    pub action: String,
    /// What it was done to.
    pub target: String,
}

#[utoipa::path(get, path = "/v1/ops/audit", tag = "operator", params(("limit" = Option<u32>, Query, description = "Only the latest this many (1 to 100,000)", minimum = 1, maximum = 100_000)), security(("bearer" = [])), responses((status = 200, description = "State-changing actions, oldest first (all, or the latest `limit`)", body = Vec<AuditView>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn audit<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Q(q): Q<ListQuery>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    g.operator_caller(&headers)?;
    let log = match q.limit {
        Some(n @ 1..=100_000) => g.store.audit_latest(n as u32).await,
        Some(_) => return Err(bad_request("`limit` must be 1 to 100000")),
        None => g.store.audit_log().await,
    }
    .map_err(ApiError::store)?;
    Ok(Json(
        log.into_iter()
            .map(|a| AuditView {
                at: a.at,
                who: a.who,
                action: a.action,
                target: a.target,
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/ops/plan", tag = "operator", security(("bearer" = [])), responses((status = 200, description = "The plan in force (JSON form of odc-model's Plan), or null before the first", body = Object), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn plan<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    g.operator_caller(&headers)?;
    let text = {
        let core = g.core()?;
        serde_json::to_string(&core.plan()).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })?
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

#[utoipa::path(get, path = "/v1/ops/nodes", tag = "operator", security(("bearer" = [])), responses((status = 200, description = "Every node: contact, incarnation, last telemetry (charge, temperatures, queue), open jobs, next pass, passes missed", body = [Object]), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn nodes<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
) -> Result<Json<Vec<NodeStatus>>, ApiError> {
    g.operator_caller(&headers)?;
    let now = g.clock.now();
    Ok(Json(g.core()?.node_status(now)))
}

#[utoipa::path(get, path = "/v1/ops/nodes/{id}/telemetry", tag = "operator", params(("id" = String, Path, description = "Node id")), security(("bearer" = [])), responses((status = 200, description = "The node's recent telemetry, oldest first: charge, temperatures, utilisation, queue and outbox, storage, eclipse, plan generation", body = [Object]), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn telemetry<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    g.operator_caller(&headers)?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such node");
    let node = NodeId::new(&id).map_err(|_| not_found())?;
    let core = g.core()?;
    let history: Vec<&odc_model::telemetry::NodeTelemetry> =
        core.telemetry(&node).ok_or_else(not_found)?.collect();
    Ok(Json(history).into_response())
}

#[utoipa::path(get, path = "/v1/ops/alarms", tag = "operator", security(("bearer" = [])), responses((status = 200, description = "Conditions needing attention: battery_low, overheating, node_silent, station_down, jobs_expired, store_failing", body = [Object]), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn alarms<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
) -> Result<Json<Vec<Alarm>>, ApiError> {
    g.operator_caller(&headers)?;
    let now = g.clock.now();
    let mut out = g.core()?.alarms(now);
    if g.metrics.commit_failing.load(Ordering::Relaxed) {
        out.push(Alarm {
            severity: Severity::Critical,
            code: "store_failing".into(),
            subject: "store".into(),
            message: "submissions cannot be made durable: new jobs are refused (503) until the store takes writes again"
                .into(),
        });
    }
    for q in relock(&g.quarantined).iter() {
        out.push(Alarm {
            severity: Severity::Warning,
            code: "store_record_damaged".into(),
            subject: format!("{}/{}", q.table, q.key),
            message: format!(
                "a stored record did not decode and was set aside in the quarantine table: {}",
                q.why
            ),
        });
    }
    let dropped = crate::logs::dropped();
    if dropped > 0 {
        out.push(Alarm {
            severity: Severity::Warning,
            code: "logs_dropped".into(),
            subject: "logs".into(),
            message: format!("{dropped} log lines could not be written (is the log's disk full?)"),
        });
    }
    if g.metrics.store_retrying.load(Ordering::Relaxed) {
        out.push(Alarm {
            severity: Severity::Critical,
            code: "store_failing".into(),
            subject: "store".into(),
            message:
                "delivered results cannot be stored; nodes are not told they arrived until they are"
                    .into(),
        });
    }
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.code.cmp(&b.code)));
    Ok(Json(out))
}

/// A station as operators see it.
#[derive(Debug, Clone, Serialize)]
struct StationView {
    #[serde(flatten)]
    spec: odc_model::spec::StationSpec,
    up: bool,
}

#[utoipa::path(get, path = "/v1/ops/stations", tag = "operator", security(("bearer" = [])), responses((status = 200, description = "Every station with its position, rates and whether it is up", body = [Object]), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn stations<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    g.operator_caller(&headers)?;
    let views: Vec<StationView> = g
        .core()?
        .stations()
        .map(|(spec, up)| StationView {
            spec: spec.clone(),
            up,
        })
        .collect();
    Ok(Json(views).into_response())
}

/// A change of a station's status.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StationStatus {
    /// Whether the station can be used.
    pub up: bool,
}

#[utoipa::path(post, path = "/v1/ops/stations/{id}/status", tag = "operator", params(("id" = String, Path, description = "Station id")), request_body = StationStatus, security(("bearer" = [])), responses((status = 200, description = "The station as it is now", body = Object), (status = 404, body = ApiError), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn station_status<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let who = g.operator_with(&headers, Role::Operator)?;
    let change: StationStatus = parse_object(&body)
        .map_err(|e| bad_request(format!("the body is not a station status: {e}")))?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such station");
    let station = odc_model::id::StationId::new(&id).map_err(|_| not_found())?;
    let now = g.clock.now();
    let spec = g
        .core()?
        .stations()
        .find(|(s, _)| s.id == station)
        .map(|(s, _)| s.clone())
        .ok_or_else(not_found)?;
    // Durable first: a restart replays it.
    g.store
        .put_fleet_change(
            "station",
            station.as_str(),
            if change.up { "up" } else { "down" },
            &AuditEntry {
                at: now,
                who: who.who(),
                action: if change.up {
                    "station.up"
                } else {
                    "station.down"
                }
                .into(),
                target: station.to_string(),
            },
        )
        .await
        .map_err(ApiError::store)?;
    g.core()?.station_status(&station, change.up, now);
    let view = StationView {
        spec,
        up: change.up,
    };
    Ok(Json(view).into_response())
}

/// A node's element epoch in force.
#[derive(Debug, Clone, Serialize)]
struct EpochView {
    node: NodeId,
    epoch: Instant,
    age_days: f64,
}

#[utoipa::path(get, path = "/v1/ops/orbits", tag = "operator", security(("bearer" = [])), responses((status = 200, description = "Each node's element epoch in force and its age", body = [Object]), (status = 404, description = "This service has no element sets (its fleet came without a catalog)", body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn orbits<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
) -> Result<Json<Vec<EpochView>>, ApiError> {
    g.operator_caller(&headers)?;
    let now = g.clock.now();
    let book = relock(&g.orbits);
    let book = book.as_ref().ok_or_else(no_orbits)?;
    Ok(Json(
        book.epochs()
            .into_iter()
            .map(|(node, epoch)| EpochView {
                node,
                epoch,
                age_days: (now - epoch).as_secs_f64() / 86_400.0,
            })
            .collect(),
    ))
}

fn no_orbits() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "this service keeps no element sets (its fleet has no catalog)",
    )
}

#[utoipa::path(post, path = "/v1/ops/orbits", tag = "operator", request_body(content = String, description = "TLE text (2- or 3-line records) or an OMM JSON document", content_type = "text/plain"), security(("bearer" = [])), responses((status = 200, description = "What happened to each record: accepted (fresher epochs, now in force; flagged when far from now), stale (refused: not fresher), unknown satellites, unparsable records", body = Object), (status = 422, description = "No usable element set in the text", body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn upload_orbits<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<OrbitUpload>, ApiError> {
    let who = g.operator_with(&headers, Role::Operator)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| bad_request("the body is not UTF-8 text (TLE or OMM JSON)"))?;
    let now = g.clock.now();
    if relock(&g.orbits).is_none() {
        return Err(no_orbits());
    }
    // Well-formed text with no usable element set in it: the request is understood, its content refused.
    let parsed = OrbitBook::check(text).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_orbits",
            e.to_string(),
        )
    })?;
    // Durable before it takes effect: a restart replays every upload in order (older epochs lose again).
    g.store
        .put_fleet_change(
            "orbits",
            "",
            text,
            &AuditEntry {
                at: now,
                who: who.who(),
                action: "orbits.upload".into(),
                target: format!("{} element set(s)", parsed.catalog.satellites.len()),
            },
        )
        .await
        .map_err(ApiError::store)?;
    let report = g.apply_orbits(&[text], now).await?;
    Ok(Json(report))
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
    paths(submit, upload, list, status, cancel, result, usage, create_tenant, list_tenants, update_tenant, rotate_token, operators::create_operator, operators::list_operators, operators::rotate_operator_token, audit, plan, nodes, alarms, stations, station_status, orbits, upload_orbits, telemetry),
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

/// Retries a write with a growing pause until the store takes it, raising `store_failing` meanwhile.
async fn until_stored<F, W>(metrics: &ApiMetrics, what: &str, mut write: W)
where
    W: FnMut() -> F,
    F: Future<Output = Result<(), StoreError>>,
{
    let mut pause = std::time::Duration::from_millis(50);
    while let Err(e) = write().await {
        if let StoreError::Unstorable { key, why } = &e {
            // Retrying cannot help, and would hold up every write behind it.
            metrics.unstorable.fetch_add(1, Ordering::Relaxed);
            tracing::error!(key, why, "{what} cannot be stored at all; left out");
            break;
        }
        metrics.store_retrying.store(true, Ordering::Relaxed);
        metrics.store_failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "{what} could not be stored; retrying");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(5));
    }
    metrics.store_retrying.store(false, Ordering::Relaxed);
}

/// The writer of what the core produced: job records and each delivery are committed (retried, with a growing pause, until the
/// store takes it), then the messages behind it go to their nodes.
async fn outbound_loop<S: Store>(
    store: Arc<S>,
    links: Arc<Links>,
    metrics: Arc<ApiMetrics>,
    storing: Arc<Mutex<std::collections::HashSet<JobId>>>,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
) {
    let mut generation_stored = 0;
    while let Some(out) = rx.recv().await {
        if out.generation > generation_stored {
            // A restarted ground numbers its plans above this, so nodes that hold these plans take its next ones.
            until_stored(&metrics, "the plan generation", || {
                store.raise_counter(PLAN_GENERATION, out.generation)
            })
            .await;
            generation_stored = out.generation;
        }
        if !out.jobs.is_empty() {
            let writes: Vec<JobWrite> = out
                .jobs
                .iter()
                .map(|job| JobWrite {
                    job: job.clone(),
                    input: None,
                    fingerprint: None,
                })
                .collect();
            until_stored(&metrics, "job records", || store.put_jobs(&writes, &[])).await;
        }
        if !out.deliveries.is_empty() {
            until_stored(&metrics, "delivered results", || {
                store.put_deliveries(&out.deliveries)
            })
            .await;
            let mut s = relock(&storing);
            for d in &out.deliveries {
                s.remove(&d.job.id);
            }
        }
        for (node, envelope) in &out.messages {
            links.send(node, envelope);
        }
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

#[utoipa::path(post, path = "/v1/jobs", tag = "tenant", request_body = SubmitRequest, security(("bearer" = [])), responses((status = 201, description = "Accepted and durable", body = JobView), (status = 200, description = "The job this idempotency key already names", body = JobView), (status = 400, body = ApiError), (status = 422, description = "Invalid job", body = ApiError), (status = 429, description = "Quota exceeded", body = ApiError), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError), (status = 503, description = "Not durable: not accepted", body = ApiError)))]
async fn submit<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let tenant = g.tenant_caller(&headers)?;
    let req: SubmitRequest = parse_object(&body)
        .map_err(|e| bad_request(format!("the body is not a job submission: {e}")))?;
    let (req, input) = req.split();
    // Trailing bits past the last whole byte are ignored (RFC 4648 lets a decoder take them), so every string the
    // documented pattern allows is an input.
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let input = LENIENT
        .decode(input.as_bytes())
        .map_err(|e| bad_request(format!("`input` is not base64: {e}")))?;
    accept(&g, tenant, req, input).await
}

#[utoipa::path(post, path = "/v1/jobs/upload", tag = "tenant", params(UploadParams), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The input, as it is"), security(("bearer" = [])), responses((status = 201, description = "Accepted and durable", body = JobView), (status = 200, description = "The job this idempotency key already names", body = JobView), (status = 400, body = ApiError), (status = 422, description = "Invalid job", body = ApiError), (status = 429, description = "Quota exceeded", body = ApiError), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError), (status = 503, description = "Not durable: not accepted", body = ApiError)))]
async fn upload<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    params: Result<Query<UploadParams>, axum::extract::rejection::QueryRejection>,
    Body(body): Body,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let tenant = g.tenant_caller(&headers)?;
    let Query(req) = params.map_err(|e| {
        bad_request(format!(
            "the query is not a job submission: {}",
            e.body_text()
        ))
    })?;
    // Without a copy when the body arrived in one piece.
    accept(&g, tenant, req, body.into()).await
}

/// A whole number from JSON (`7` or `7.0`) that fits 32 bits, or null.
fn whole_u32_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    odc_model::tenant::whole_u64_opt(d)?
        .map(|v| {
            u32::try_from(v).map_err(|_| serde::de::Error::custom("expected at most 2^32 - 1"))
        })
        .transpose()
}

/// A small whole number from JSON (`7` or `7.0`), or null.
fn whole_u8_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    odc_model::tenant::whole_u64_opt(d)?
        .map(|v| u8::try_from(v).map_err(|_| serde::de::Error::custom("expected 0 to 255")))
        .transpose()
}

/// A JSON object from `body` as `T`: serde would also take an array of the fields in order, which no client of
/// this API means and the document does not allow.
fn parse_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    check_objects(&value)?;
    serde_json::from_value(value)
}

/// Refuses arrays where an object's fields are expected: every array in our request bodies is a list of values,
/// never of fields, so an array of nulls or of an object's fields is refused wherever it is.
fn check_objects(v: &serde_json::Value) -> Result<(), serde_json::Error> {
    use serde::de::Error as _;
    match v {
        serde_json::Value::Object(m) => m.values().try_for_each(check_objects),
        serde_json::Value::Array(_) => Err(serde_json::Error::custom(
            "an array where an object or a value is expected",
        )),
        _ => Ok(()),
    }
}

/// What identifies a submission's request, for idempotency: every field but the key, the input by its digest.
/// A deadline given as `within_s` is kept as given (the deadline it yields moves with the clock).
fn request_fingerprint(req: &UploadParams, input: &BlobRef) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"odc.submit.v1\0");
    h.update(req.model.as_bytes());
    h.update(b"\0");
    h.update(input.digest.to_hex().as_bytes());
    h.update(&input.size_bytes.to_le_bytes());
    h.update(&req.output_bound_bytes.to_le_bytes());
    match (req.deadline, req.within_s) {
        (Some(d), _) => {
            h.update(b"deadline");
            h.update(&d.unix_ms().to_le_bytes());
        }
        (None, Some(s)) => {
            h.update(b"within");
            h.update(&s.to_bits().to_le_bytes());
        }
        (None, None) => {}
    }
    h.update(&[req.priority.unwrap_or(5)]);
    *h.finalize().as_bytes()
}

/// A retry must be the same request as the one its key first made (a job stored before fingerprints were kept
/// has none to compare, and is taken as the same).
fn check_fingerprint(stored: Option<[u8; 32]>, now: [u8; 32]) -> Result<(), ApiError> {
    match stored {
        Some(f) if f != now => Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_conflict",
            "this idempotency key names a job made by a different request; use a new key for a new job",
        )),
        _ => Ok(()),
    }
}

/// Checks a submission, takes it into the core and answers once it is durable (or names the job its key
/// already made).
async fn accept<S: Store>(
    g: &Ground<S>,
    tenant: TenantId,
    req: UploadParams,
    input: Vec<u8>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let model = ModelId::new(&req.model).map_err(|e| bad_request(format!("`model`: {e}")))?;
    let priority = Priority::new(req.priority.unwrap_or(5))
        .ok_or_else(|| bad_request("`priority` must be 0 to 9"))?;
    let now = g.clock.now();
    let deadline = match (req.deadline, req.within_s) {
        (Some(d), None) => d,
        (None, Some(s)) if s.is_finite() && s > 0.0 && s <= 366.0 * 86_400.0 => {
            now + odc_model::time::Duration::from_secs_f64(s)
        }
        (None, Some(_)) => {
            return Err(bad_request("`within_s` must be above 0 and at most a year"));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_job",
                "give exactly one of `deadline` and `within_s`",
            ));
        }
    };
    let spec = JobSpec {
        tenant,
        model,
        input: BlobRef::of(&input),
        output_bound_bytes: req.output_bound_bytes,
        deadline,
        priority,
        idempotency_key: req.idempotency_key.clone(),
    };
    let fingerprint = request_fingerprint(&req, &spec.input);
    let in_core = g
        .core()?
        .job_for_key(tenant, &spec.idempotency_key)
        .is_some();
    if !in_core {
        // A key the core no longer holds (its job closed before the service last started) is in the store.
        let stored = g
            .store
            .job_for_key(tenant, &spec.idempotency_key)
            .await
            .map_err(ApiError::store)?;
        if let Some(keyed) = stored {
            check_fingerprint(keyed.fingerprint, fingerprint)?;
            return Ok((StatusCode::OK, Json(JobView::of(&keyed.job))));
        }
    }
    let mut first = None;
    let (job, new, wait) = {
        let mut core = g.core()?;
        let known = core.job_for_key(tenant, &spec.idempotency_key);
        let id = core.submit(spec, input.clone(), now).map_err(|e| match e {
            SubmitError::Quota(what) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                format!("quota exceeded: {what}"),
            ),
            SubmitError::UnknownTenant => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this tenant is not known to the ground core",
            ),
            SubmitError::UnknownModel(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_model",
                e.to_string(),
            ),
            SubmitError::DeadlineTooFar { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "deadline_too_far",
                e.to_string(),
            ),
            other => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_job",
                other.to_string(),
            ),
        })?;
        let job = core.job(id).cloned().ok_or_else(ApiError::no_such_job)?;
        let mut committing = relock(&g.committing);
        let wait = if known.is_none() {
            // Out of every plan until durable; a resubmission meanwhile waits on this commit.
            core.hold(id);
            let (tx, rx) = tokio::sync::watch::channel(None);
            committing.insert(id, rx);
            first = Some(tx);
            None
        } else if core.is_held(id) {
            committing.get(&id).cloned()
        } else {
            None
        };
        (job, known.is_none(), wait)
    };
    if !new {
        if let Some(mut rx) = wait {
            let durable = rx.wait_for(|v| v.is_some()).await.map(|v| *v == Some(true));
            if !matches!(durable, Ok(true)) {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the first submission with this key could not be made durable; retry the request",
                ));
            }
        }
        // The key's first request may have had other fields: the store has its fingerprint.
        let stored = g
            .store
            .job_for_key(tenant, &job.spec.idempotency_key)
            .await
            .map_err(ApiError::store)?;
        check_fingerprint(stored.and_then(|k| k.fingerprint), fingerprint)?;
        return Ok((StatusCode::OK, Json(JobView::of(&job))));
    }
    let audit = AuditEntry {
        at: now,
        who: format!("tenant:{tenant}"),
        action: "submit".into(),
        target: job.id.to_string(),
    };
    let write = JobWrite {
        job: job.clone(),
        input: Some(input),
        fingerprint: Some(fingerprint),
    };
    let committed = g.commit(write, audit).await;
    {
        let mut core = g.core()?;
        match &committed {
            Ok(()) => core.confirm(job.id, g.clock.now()),
            Err(e) => {
                tracing::warn!(target: "odc::api", job = %job.id, error = %e.message, "submission not durable; withdrawn");
                // Not durable, so not accepted: the core forgets it and the tenant may retry with the same key.
                core.withdraw(job.id);
            }
        }
        relock(&g.committing).remove(&job.id);
    }
    if let Some(tx) = first {
        let _ = tx.send(Some(committed.is_ok()));
    }
    committed?;
    Ok((StatusCode::CREATED, Json(JobView::of(&job))))
}

#[utoipa::path(get, path = "/v1/jobs", tag = "tenant", params(("limit" = Option<u32>, Query, description = "At most this many (100 if absent; 1 to 1000)", minimum = 1, maximum = 1000)), security(("bearer" = [])), responses((status = 200, body = JobList), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError)))]
async fn list<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Q(q): Q<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    let tenant = g.tenant_caller(&headers)?;
    let limit = match q.limit {
        None => 100,
        Some(n @ 1..=1000) => n,
        Some(_) => return Err(bad_request("`limit` must be 1 to 1000")),
    };
    // The store has every job (closed ones too); the core has the current state of the open ones.
    let stored = g
        .store
        .jobs_of(tenant, limit as u32)
        .await
        .map_err(ApiError::store)?;
    let mut by_id: std::collections::BTreeMap<JobId, JobView> =
        stored.iter().map(|j| (j.id, JobView::of(j))).collect();
    {
        let core = g.core()?;
        for j in core.jobs().filter(|j| j.spec.tenant == tenant) {
            let mut view = JobView::of(j);
            if g.still_storing(j) {
                view.state = JobState::Downlinked.name().to_string();
            }
            by_id.insert(j.id, view);
        }
    }
    // Ids sort by creation time: newest first.
    let mut jobs: Vec<JobView> = by_id.into_values().rev().collect();
    jobs.truncate(limit as usize);
    Ok(Json(JobList { jobs }))
}

#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "tenant", params(("id" = String, Path, description = "Job id")), security(("bearer" = [])), responses((status = 200, body = JobView), (status = 404, description = "No such job (or another tenant's)", body = ApiError), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError)))]
async fn status<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let tenant = g.tenant_caller(&headers)?;
    Ok(Json(JobView::of(&g.own_job(tenant, &id).await?)))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "tenant", params(("id" = String, Path, description = "Job id")), security(("bearer" = [])), responses((status = 200, body = JobView), (status = 404, body = ApiError), (status = 409, description = "Already run", body = ApiError), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError), (status = 503, body = ApiError)))]
async fn cancel<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let tenant = g.tenant_caller(&headers)?;
    let job = g.own_job(tenant, &id).await?;
    let now = g.clock.now();
    if job.state == JobState::Cancelled {
        // Cancelling again is answered as before, and changes (and audits) nothing.
        return Ok(Json(JobView::of(&job)));
    }
    let conflict = |why: &str| ApiError::new(StatusCode::CONFLICT, "conflict", why.to_string());
    if job.state.is_terminal() {
        return Err(conflict(&format!(
            "the job is {} and cannot be cancelled",
            job.state.name()
        )));
    }
    // Durable before it takes effect: the cancelled record is committed first, with the job held out of every
    // plan meanwhile; if the commit fails the core is left as it was.
    let (cancelled, was_held) = {
        let mut core = g.core()?;
        let current = core
            .job(job.id)
            .cloned()
            .ok_or_else(ApiError::no_such_job)?;
        let mut cancelled = current;
        cancelled
            .apply(&odc_model::job::JobEvent::Cancel, now)
            .map_err(|e| conflict(e.why))?;
        let was_held = core.is_held(job.id);
        core.hold(job.id);
        (cancelled, was_held)
    };
    let audit = AuditEntry {
        at: now,
        who: format!("tenant:{tenant}"),
        action: "cancel".into(),
        target: job.id.to_string(),
    };
    let committed = g
        .commit(
            JobWrite {
                job: cancelled.clone(),
                input: Some(Vec::new()),
                fingerprint: None,
            },
            audit,
        )
        .await;
    let mut core = g.core()?;
    if let Err(e) = committed {
        if !was_held {
            core.release_hold(job.id);
        }
        return Err(e);
    }
    match core.cancel(tenant, job.id, now) {
        Ok(()) => {
            core.release_hold(job.id);
            let view = core
                .job(job.id)
                .map_or_else(|| JobView::of(&cancelled), JobView::of);
            Ok(Json(view))
        }
        Err(why) => {
            // The job moved on while the cancel was committed (it ran): the core's record is the truth, and it
            // goes to the store over the cancelled one.
            core.release_hold(job.id);
            core.mark_dirty(job.id);
            let out = g.drain(&mut core);
            drop(core);
            g.send_out(out);
            Err(conflict(&why))
        }
    }
}

#[utoipa::path(get, path = "/v1/jobs/{id}/result", tag = "tenant", params(("id" = String, Path, description = "Job id")), security(("bearer" = [])), responses((status = 200, description = "The result bytes", content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = ApiError), (status = 409, description = "Not delivered yet", body = ApiError), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError)))]
async fn result<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = g.tenant_caller(&headers)?;
    let job = g.own_job(tenant, &id).await?;
    if job.state != JobState::Delivered {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_ready",
            format!(
                "the job is {}; a result exists once it is delivered",
                job.state.name()
            ),
        ));
    }
    let bytes = g
        .store
        .result(job.id)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| {
            // The core delivered it a moment ago and the writer has not committed the result yet.
            ApiError::new(
                StatusCode::CONFLICT,
                "not_ready",
                "the result is being stored; retry in a moment",
            )
        })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

#[utoipa::path(get, path = "/v1/usage", tag = "tenant", security(("bearer" = [])), responses((status = 200, body = UsageView), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError)))]
async fn usage<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
) -> Result<Json<UsageView>, ApiError> {
    let tenant = g.tenant_caller(&headers)?;
    let core = g.core()?;
    let (used, reserved) = core.usage(tenant).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this tenant is not known to the ground core",
        )
    })?;
    let quota = core.tenant(tenant).map(|t| t.quota).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this tenant is not known to the ground core",
        )
    })?;
    let now = g.clock.now();
    let period_start = crate::core::period_start(now, quota.period);
    // A period that ended since the core last rolled it counts from zero (the next tick rolls it).
    let used = if core.period_of(tenant).is_some_and(|p| p != period_start) {
        Usage::default()
    } else {
        used
    };
    Ok(Json(UsageView {
        period_start,
        period_end: period_start + quota.period,
        used,
        reserved,
        quota,
    }))
}
