//! What the ground's API tests share: a ground core with one node and two tenants, the API over a real store
//! (or one whose writes fail on demand), and calls through the router.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use odc_budget::Illumination;
use odc_ground::api::{DEFAULT_MAX_BODY_BYTES, Ground, JobView, router, token_hash};
use odc_ground::store::{SqliteStore, Store, TenantRecord};
use odc_ground::{GroundConfig, GroundCore, NodeInfo};
use odc_model::id::{IdGenerator, ModelId, NodeId, StationId};
use odc_model::spec::{ModelProfile, NodeSpec, StationSpec};
use odc_model::tenant::{Quota, Tenant};
use odc_model::time::{Clock as _, Duration, Instant, SimClock};
use odc_planner::PlannerOptions;
use std::sync::Arc;
use tower::ServiceExt as _;

pub fn t0() -> Instant {
    Instant::from_unix_ms(1_780_000_000_000)
}

pub struct Api<S: Store = SqliteStore> {
    pub app: axum::Router,
    pub ground: Arc<Ground<S>>,
    pub _dir: tempfile::TempDir,
}

pub fn tenant(ids: &mut IdGenerator, name: &str) -> Tenant {
    Tenant {
        id: ids.tenant(t0()),
        name: name.into(),
        quota: Quota {
            accelerator_s: 10_000.0,
            energy_wh: 1_000.0,
            uplink_bytes: 1 << 30,
            downlink_bytes: 1 << 30,
            period: Duration::from_hours(24),
        },
        share_weight: 1,
    }
}

/// Tenants a and b, and a ground core with one node (model `m`) and one station that knows them.
pub fn core() -> (Tenant, Tenant, GroundCore) {
    core_with(Vec::new())
}

/// The same, with these passes of the node over the station.
pub fn core_with(contacts: Vec<odc_planner::ContactWindow>) -> (Tenant, Tenant, GroundCore) {
    let mut ids = IdGenerator::seeded(5);
    let a = tenant(&mut ids, "a");
    let b = tenant(&mut ids, "b");
    let mut spec = NodeSpec::leo_default(NodeId::new("n1").expect("id"), 1);
    spec.accelerator.models.insert(
        ModelId::new("m").expect("id"),
        ModelProfile {
            input_bytes_per_s: 1_000.0,
            batch_setup_s: 1.0,
        },
    );
    let station =
        StationSpec::with_defaults(StationId::new("gs").expect("id"), 0.0, 0.0, 0.0, 10.0);
    let core = GroundCore::new(GroundConfig {
        nodes: vec![NodeInfo {
            spec,
            altitude_km: 550.0,
            illumination: Illumination::always_sunlit(),
            initial_soc: 0.9,
        }],
        stations: vec![station],
        contacts,
        isl: Default::default(),
        tenants: vec![a.clone(), b.clone()],
        horizon_end: t0() + Duration::from_hours(24),
        plan_ahead: Duration::from_hours(12),
        replan_every: Duration::from_mins(10),
        planner: PlannerOptions::default(),
        seed: 1,
    });
    (a, b, core)
}

pub async fn api() -> Api {
    let (a, b, core) = core();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with(&dir, &a, &b).await;
    let clock = Arc::new(SimClock::new(t0()));
    let ground = Ground::start(core, store, clock, &[token_hash("token-op")])
        .await
        .expect("start");
    Api {
        app: router(ground.clone(), DEFAULT_MAX_BODY_BYTES),
        ground,
        _dir: dir,
    }
}

/// A store in `dir` that knows tenants a and b by the tokens `token-a` and `token-b`.
pub async fn store_with(dir: &tempfile::TempDir, a: &Tenant, b: &Tenant) -> SqliteStore {
    let store = SqliteStore::open(&dir.path().join("ground.db"))
        .await
        .expect("store");
    for (t, token) in [(a, "token-a"), (b, "token-b")] {
        store
            .put_tenant(
                &TenantRecord {
                    tenant: t.clone(),
                    token_hash: token_hash(token),
                },
                &[],
            )
            .await
            .expect("tenant");
    }
    store
}

pub async fn call<S: Store>(
    api: &Api<S>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b)),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let resp = api.app.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, bytes)
}

pub fn submission(key: &str, input: &[u8]) -> String {
    serde_json::json!({
        "model": "m",
        "input": base64::engine::general_purpose::STANDARD.encode(input),
        "output_bound_bytes": 64,
        "deadline": (t0() + Duration::from_hours(6)).to_rfc3339(),
        "priority": 5,
        "idempotency_key": key,
    })
    .to_string()
}

pub async fn submit<S: Store>(api: &Api<S>, token: &str, key: &str) -> JobView {
    let (status, body) = call(
        api,
        "POST",
        "/v1/jobs",
        Some(token),
        Some(submission(key, b"tile")),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).expect("job view")
}

pub fn code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("<not an error body: {}>", String::from_utf8_lossy(body)))
}

/// A store whose writes fail on demand (a full disk), reads passing through to a real one.
pub struct FlakyStore {
    pub inner: SqliteStore,
    pub fail: Arc<std::sync::atomic::AtomicBool>,
    /// Milliseconds each job write takes (a slow disk).
    pub slow_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl FlakyStore {
    fn check(&self) -> Result<(), odc_ground::store::StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(odc_ground::store::StoreError::Database(sqlx::Error::Io(
                std::io::Error::other("no space left on device"),
            )));
        }
        Ok(())
    }
}

impl Store for FlakyStore {
    async fn put_tenant(
        &self,
        r: &TenantRecord,
        audit: &[odc_ground::store::AuditEntry],
    ) -> Result<(), odc_ground::store::StoreError> {
        self.check()?;
        self.inner.put_tenant(r, audit).await
    }
    async fn tenant_by_token(
        &self,
        h: [u8; 32],
    ) -> Result<Option<TenantRecord>, odc_ground::store::StoreError> {
        self.inner.tenant_by_token(h).await
    }
    async fn tenants(&self) -> Result<Vec<TenantRecord>, odc_ground::store::StoreError> {
        self.inner.tenants().await
    }
    async fn put_jobs(
        &self,
        jobs: &[odc_ground::store::JobWrite],
        audit: &[odc_ground::store::AuditEntry],
    ) -> Result<(), odc_ground::store::StoreError> {
        let slow = self.slow_ms.load(std::sync::atomic::Ordering::SeqCst);
        if slow > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(slow)).await;
        }
        self.check()?;
        self.inner.put_jobs(jobs, audit).await
    }
    async fn job(
        &self,
        id: odc_model::id::JobId,
    ) -> Result<Option<odc_model::job::Job>, odc_ground::store::StoreError> {
        self.inner.job(id).await
    }
    async fn jobs_of(
        &self,
        t: odc_model::id::TenantId,
        before: Option<odc_model::id::JobId>,
        limit: u32,
    ) -> Result<Vec<odc_model::job::Job>, odc_ground::store::StoreError> {
        self.inner.jobs_of(t, before, limit).await
    }
    async fn open_jobs(
        &self,
    ) -> Result<Vec<(odc_model::job::Job, Vec<u8>)>, odc_ground::store::StoreError> {
        self.inner.open_jobs().await
    }
    async fn open_job_records(
        &self,
    ) -> Result<Vec<odc_model::job::Job>, odc_ground::store::StoreError> {
        self.inner.open_job_records().await
    }
    async fn inputs(
        &self,
        ids: &[odc_model::id::JobId],
    ) -> Result<Vec<(odc_model::id::JobId, Option<Vec<u8>>)>, odc_ground::store::StoreError> {
        self.inner.inputs(ids).await
    }
    async fn put_deliveries(
        &self,
        deliveries: &[odc_ground::store::DeliveryWrite],
    ) -> Result<(), odc_ground::store::StoreError> {
        self.check()?;
        self.inner.put_deliveries(deliveries).await
    }
    async fn result(
        &self,
        id: odc_model::id::JobId,
    ) -> Result<Option<Vec<u8>>, odc_ground::store::StoreError> {
        self.inner.result(id).await
    }
    async fn usage_of(
        &self,
        t: odc_model::id::TenantId,
    ) -> Result<Vec<odc_model::tenant::UsageRecord>, odc_ground::store::StoreError> {
        self.inner.usage_of(t).await
    }
    async fn put_fleet_change(
        &self,
        kind: &str,
        key: &str,
        value: &str,
        audit: &odc_ground::store::AuditEntry,
    ) -> Result<(), odc_ground::store::StoreError> {
        self.check()?;
        self.inner.put_fleet_change(kind, key, value, audit).await
    }
    async fn fleet_changes(
        &self,
    ) -> Result<Vec<(String, String, String)>, odc_ground::store::StoreError> {
        self.inner.fleet_changes().await
    }
    async fn audit_page(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, odc_ground::store::AuditEntry)>, odc_ground::store::StoreError> {
        self.inner.audit_page(before, limit).await
    }
    async fn audit_log(
        &self,
    ) -> Result<Vec<odc_ground::store::AuditEntry>, odc_ground::store::StoreError> {
        self.inner.audit_log().await
    }
    async fn job_for_key(
        &self,
        tenant: odc_model::id::TenantId,
        key: &str,
    ) -> Result<Option<odc_ground::store::KeyedJob>, odc_ground::store::StoreError> {
        self.inner.job_for_key(tenant, key).await
    }
    async fn idempotency_keys(
        &self,
    ) -> Result<Vec<(odc_model::id::TenantId, String)>, odc_ground::store::StoreError> {
        self.inner.idempotency_keys().await
    }
    async fn raise_counter(
        &self,
        name: &str,
        value: u64,
    ) -> Result<(), odc_ground::store::StoreError> {
        self.check()?;
        self.inner.raise_counter(name, value).await
    }
    async fn counter(&self, name: &str) -> Result<u64, odc_ground::store::StoreError> {
        self.inner.counter(name).await
    }
    async fn purge(
        &self,
        now: odc_model::time::Instant,
        retention: &odc_ground::store::Retention,
        batch: u32,
    ) -> Result<odc_ground::store::Purged, odc_ground::store::StoreError> {
        self.check()?;
        self.inner.purge(now, retention, batch).await
    }
    async fn reclaim(&self) -> Result<u64, odc_ground::store::StoreError> {
        self.inner.reclaim().await
    }
    async fn quarantined(
        &self,
    ) -> Result<Vec<odc_ground::store::Quarantined>, odc_ground::store::StoreError> {
        self.inner.quarantined().await
    }
    async fn put_operator(
        &self,
        record: &odc_ground::store::OperatorRecord,
        audit: &[odc_ground::store::AuditEntry],
    ) -> Result<(), odc_ground::store::StoreError> {
        self.check()?;
        self.inner.put_operator(record, audit).await
    }
    async fn operators(
        &self,
    ) -> Result<Vec<odc_ground::store::OperatorRecord>, odc_ground::store::StoreError> {
        self.inner.operators().await
    }
}

/// The API over a [`FlakyStore`] (tenants a and b, the operator token, these passes), with its switches and clock.
pub struct Flaky {
    pub api: Api<FlakyStore>,
    pub a: Tenant,
    pub fail: Arc<std::sync::atomic::AtomicBool>,
    pub slow_ms: Arc<std::sync::atomic::AtomicU64>,
    pub clock: Arc<SimClock>,
}

pub async fn flaky(contacts: Vec<odc_planner::ContactWindow>) -> Flaky {
    let (a, b, core) = core_with(contacts);
    let dir = tempfile::tempdir().expect("tempdir");
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let store = FlakyStore {
        inner: store_with(&dir, &a, &b).await,
        fail: fail.clone(),
        slow_ms: slow_ms.clone(),
    };
    let clock = Arc::new(SimClock::new(t0()));
    let ground = Ground::start(core, store, clock.clone(), &[token_hash("token-op")])
        .await
        .expect("start");
    Flaky {
        api: Api {
            app: router(ground.clone(), DEFAULT_MAX_BODY_BYTES),
            ground,
            _dir: dir,
        },
        a,
        fail,
        slow_ms,
        clock,
    }
}

/// n1's pass over gs, half an hour after t0.
pub fn pass() -> odc_planner::ContactWindow {
    odc_planner::ContactWindow {
        station: StationId::new("gs").expect("id"),
        node: NodeId::new("n1").expect("id"),
        start: t0() + Duration::from_mins(30),
        end: t0() + Duration::from_mins(40),
    }
}

/// A message from n1 in its incarnation 1.
pub fn from_n1(seq: u64, message: odc_model::wire::Message) -> odc_model::wire::Envelope {
    odc_model::wire::Envelope {
        version: odc_model::wire::PROTOCOL,
        sender: odc_model::wire::Sender::Node(NodeId::new("n1").expect("id")),
        incarnation: 1,
        seq,
        sent_at: t0(),
        message,
    }
}

/// n1 says hello holding plans up to `plan_generation`.
pub fn hello(plan_generation: u64) -> odc_model::wire::Message {
    odc_model::wire::Message::Hello(odc_model::wire::Hello {
        node: NodeId::new("n1").expect("id"),
        software: "test".into(),
        plan_generation,
        last_seq_received: 0,
    })
}

/// Runs `job` on n1 through its pass (see [`pass`]): planned, the pass begins, n1 says hello and sends its result
/// down. Returns the result.
pub async fn deliver_through_pass<S: Store>(
    ground: &Ground<S>,
    clock: &SimClock,
    job: odc_model::id::JobId,
    seq: u64,
) -> Vec<u8> {
    use odc_ground::dispatch::NodeSide as _;
    use odc_model::wire::{Message, ResultChunk};
    let n1 = NodeId::new("n1").expect("id");
    ground.tick(clock.now()).await;
    let in_pass = clock.advance_to(t0() + Duration::from_mins(31));
    ground.tick(in_pass).await;
    ground.contact(&n1, true, false);
    ground.node_message(&n1, from_n1(seq, hello(0)));
    let result = vec![9u8; 16];
    let chunk = ResultChunk {
        job,
        output: odc_model::job::BlobRef::of(&result),
        offset: 0,
        data: result.clone(),
        accelerator_s: 1.0,
        energy_wh: 0.1,
    };
    ground.node_message(&n1, from_n1(seq + 1, Message::ResultChunk(chunk)));
    result
}

/// Asks `path` (with `token`) until `ok` holds of the JSON answer, for up to five seconds; the last answer.
pub async fn poll_json<S: Store>(
    api: &Api<S>,
    path: &str,
    token: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..200 {
        let (_, body) = call(api, "GET", path, Some(token), None).await;
        last = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        if ok(&last) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    last
}

/// A ground started again over the store in `dir` (as `odc ground` starts: secure ids, plan generations above the
/// stored one, open jobs and usage restored), with n1's pass.
pub async fn restarted(dir: tempfile::TempDir, clock: Arc<SimClock>) -> Api {
    let (_, _, mut core) = core_with(vec![pass()]);
    let store = SqliteStore::open(&dir.path().join("ground.db"))
        .await
        .expect("reopen");
    odc_ground::restore::restore(&mut core, &store, clock.now())
        .await
        .expect("restore");
    let ground = Ground::start(core, store, clock, &[token_hash("token-op")])
        .await
        .expect("restart");
    Api {
        app: router(ground.clone(), DEFAULT_MAX_BODY_BYTES),
        ground,
        _dir: dir,
    }
}
