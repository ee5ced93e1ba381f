//! The tenant API: submissions (JSON or the input as the body) checked, made durable and idempotent by key with the request's fingerprint; a tenant's jobs, results and usage; cancellation durable before it takes effect.

use super::*;

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

/// A page of jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobView>,
    /// Where the next (older) page starts: pass it as `before`. Absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    pub(crate) limit: Option<u64>,
    /// A job id: only jobs older than it.
    pub(crate) before: Option<String>,
}

pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

#[utoipa::path(post, path = "/v1/jobs", tag = "tenant", request_body = SubmitRequest, security(("bearer" = [])), responses((status = 201, description = "Accepted and durable", body = JobView), (status = 200, description = "The job this idempotency key already names", body = JobView), (status = 400, body = ApiError), (status = 422, description = "Invalid job", body = ApiError), (status = 429, description = "Quota exceeded", body = ApiError), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError), (status = 503, description = "Not durable: not accepted", body = ApiError)))]
pub(crate) async fn submit<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let tenant = g.tenant_caller(&headers)?;
    // Its fields are all scalars: an object is all that must be checked, without building a JSON tree of the input.
    let req: SubmitRequest = parse_flat_object(&body)
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
pub(crate) async fn upload<S: Store>(
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
pub(crate) fn whole_u32_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<u32>, D::Error> {
    odc_model::tenant::whole_u64_opt(d)?
        .map(|v| {
            u32::try_from(v).map_err(|_| serde::de::Error::custom("expected at most 2^32 - 1"))
        })
        .transpose()
}

/// A small whole number from JSON (`7` or `7.0`), or null.
pub(crate) fn whole_u8_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    odc_model::tenant::whole_u64_opt(d)?
        .map(|v| u8::try_from(v).map_err(|_| serde::de::Error::custom("expected 0 to 255")))
        .transpose()
}

/// A JSON object of scalar fields from `body` as `T` (an array at the top, which serde would take as the fields
/// in order, is refused; arrays inside fail the fields' types).
pub(crate) fn parse_flat_object<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, serde_json::Error> {
    use serde::de::Error as _;
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice(body),
        _ => Err(serde_json::Error::custom("expected a JSON object")),
    }
}

/// A JSON object from `body` as `T`: serde would also take an array of the fields in order, which no client of
/// this API means and the document does not allow.
pub(crate) fn parse_object<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    check_objects(&value)?;
    serde_json::from_value(value)
}

/// Refuses arrays where an object's fields are expected: every array in our request bodies is a list of values,
/// never of fields, so an array of nulls or of an object's fields is refused wherever it is.
pub(crate) fn check_objects(v: &serde_json::Value) -> Result<(), serde_json::Error> {
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
pub(crate) fn request_fingerprint(req: &UploadParams, input: &BlobRef) -> [u8; 32] {
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
pub(crate) fn check_fingerprint(stored: Option<[u8; 32]>, now: [u8; 32]) -> Result<(), ApiError> {
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
pub(crate) async fn accept<S: Store>(
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
    if !in_core && g.seen_keys.may_contain(tenant, &spec.idempotency_key) {
        // A key the core no longer holds (its job closed and was forgotten, or closed before the service last
        // started) is in the store; a key the filter never saw is new, and costs no read.
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
    g.seen_keys.insert(tenant, &job.spec.idempotency_key);
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

#[utoipa::path(get, path = "/v1/jobs", tag = "tenant", params(("limit" = Option<u32>, Query, description = "At most this many (100 if absent; 1 to 1000)", minimum = 1, maximum = 1000), ("before" = Option<String>, Query, description = "A job id: only jobs older than it (the `next` of the previous page)", pattern = "^job_[0-7][0-9A-HJKMNP-TV-Z]{25}$")), security(("bearer" = [])), responses((status = 200, body = JobList), (status = 400, description = "A bad `limit` or `before`", body = ApiError), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError)))]
pub(crate) async fn list<S: Store>(
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
    let before = match q.before.as_deref() {
        None => None,
        Some(b) => Some(JobId::from_str(b).map_err(|_| bad_request("`before` must be a job id"))?),
    };
    // The store has every acknowledged job, as one page of its index; the core has the current state of those
    // still open.
    let stored = g
        .store
        .jobs_of(tenant, before, limit as u32)
        .await
        .map_err(ApiError::store)?;
    let next = (stored.len() == limit as usize)
        .then(|| stored.last().map(|j| j.id.to_string()))
        .flatten();
    let jobs = {
        let core = g.core()?;
        stored
            .iter()
            .map(|j| {
                let current = core.job(j.id).unwrap_or(j);
                let mut view = JobView::of(current);
                if g.still_storing(current) {
                    view.state = JobState::Downlinked.name().to_string();
                }
                view
            })
            .collect()
    };
    Ok(Json(JobList { jobs, next }))
}

#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "tenant", params(("id" = String, Path, description = "Job id")), security(("bearer" = [])), responses((status = 200, body = JobView), (status = 404, description = "No such job (or another tenant's)", body = ApiError), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError)))]
pub(crate) async fn status<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let tenant = g.tenant_caller(&headers)?;
    Ok(Json(JobView::of(&g.own_job(tenant, &id).await?)))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "tenant", params(("id" = String, Path, description = "Job id")), security(("bearer" = [])), responses((status = 200, body = JobView), (status = 404, body = ApiError), (status = 409, description = "Already run", body = ApiError), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError), (status = 503, body = ApiError)))]
pub(crate) async fn cancel<S: Store>(
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
            // Already durable (committed above): memory keeps open jobs only.
            core.forget_closed(&[job.id]);
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

#[utoipa::path(get, path = "/v1/jobs/{id}/result", tag = "tenant", params(("id" = String, Path, description = "Job id")), security(("bearer" = [])), responses((status = 200, description = "The result bytes", content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = ApiError), (status = 409, description = "Not delivered yet", body = ApiError), (status = 410, description = "Delivered, and deleted since: kept only for the retention period", body = ApiError), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError)))]
pub(crate) async fn result<S: Store>(
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
            // Delivered and stored (a result still being stored shows the job downlinked): retention deleted it.
            ApiError::new(
                StatusCode::GONE,
                "result_expired",
                "the result was kept for the retention period after delivery and has been deleted",
            )
        })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

#[utoipa::path(get, path = "/v1/usage", tag = "tenant", security(("bearer" = [])), responses((status = 200, body = UsageView), (status = 401, description = "No or bad token", body = ApiError), (status = 403, description = "Not a tenant token", body = ApiError)))]
pub(crate) async fn usage<S: Store>(
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
