//! The operator API: tenants' accounts, the audit log, the plan, nodes and their telemetry, alarms, stations and element sets.

use super::*;

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
    pub(crate) fn operator_with(
        &self,
        headers: &HeaderMap,
        role: Role,
    ) -> Result<Operator, ApiError> {
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
    pub(crate) fn operator_caller(&self, headers: &HeaderMap) -> Result<Operator, ApiError> {
        self.operator_with(headers, Role::Viewer)
    }
}

#[utoipa::path(post, path = "/v1/ops/tenants", tag = "operator", request_body = NewTenant, security(("bearer" = [])), responses((status = 201, body = CreatedTenant), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, description = "Not an operator token", body = ApiError)))]
pub(crate) async fn create_tenant<S: Store>(
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
pub(crate) fn operator_action(
    at: Instant,
    who: &Operator,
    action: &str,
    tenant: TenantId,
) -> AuditEntry {
    AuditEntry {
        at,
        who: who.who(),
        action: action.into(),
        target: tenant.to_string(),
    }
}

/// A tenant's display name: 1 to 100 characters, not all blank.
/// The largest fair-share weight a tenant may have.
pub(crate) const MAX_SHARE_WEIGHT: u32 = 10_000;

pub(crate) fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(bad_request("`name` must be 1 to 100 characters"));
    }
    Ok(())
}

/// A quota the planner and the intake can work with: finite, non-negative figures over a positive period.
pub(crate) fn check_quota(q: &Quota) -> Result<(), ApiError> {
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
    for (name, v) in [
        ("uplink_bytes", q.uplink_bytes),
        ("downlink_bytes", q.downlink_bytes),
    ] {
        if v > i64::MAX as u64 {
            return Err(bad_request(format!(
                "quota `{name}` must be at most 2^63 - 1, not {v}"
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
pub(crate) async fn update_tenant<S: Store>(
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
pub(crate) async fn rotate_token<S: Store>(
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
pub(crate) async fn list_tenants<S: Store>(
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

/// One audit entry as an operator reads it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditView {
    /// Its number in the log (the cursor: `before` this for the entries older than it).
    pub seq: u64,
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

#[utoipa::path(get, path = "/v1/ops/audit", tag = "operator", params(("limit" = Option<u32>, Query, description = "The latest this many (1,000 if absent; 1 to 10,000)", minimum = 1, maximum = 10_000), ("before" = Option<u64>, Query, description = "Only entries older than this `seq` (the first `seq` of the page after)")), security(("bearer" = [])), responses((status = 200, description = "A page of state-changing actions, oldest first: the latest `limit` before `before`", body = Vec<AuditView>), (status = 400, description = "A bad `limit` or `before`", body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub(crate) async fn audit<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Q(q): Q<ListQuery>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    g.operator_caller(&headers)?;
    let limit = match q.limit {
        None => 1000,
        Some(n @ 1..=10_000) => n as u32,
        Some(_) => return Err(bad_request("`limit` must be 1 to 10000")),
    };
    let before = match q.before.as_deref() {
        None => None,
        Some(b) => Some(
            b.parse::<i64>()
                .ok()
                .and_then(|b| u64::try_from(b).ok())
                .ok_or_else(|| bad_request("`before` must be an audit entry's `seq`"))?,
        ),
    };
    let log = g
        .store
        .audit_page(before, limit)
        .await
        .map_err(ApiError::store)?;
    Ok(Json(
        log.into_iter()
            .map(|(seq, a)| AuditView {
                seq,
                at: a.at,
                who: a.who,
                action: a.action,
                target: a.target,
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/ops/plan", tag = "operator", security(("bearer" = [])), responses((status = 200, description = "The plan in force (JSON form of odc-model's Plan), or null before the first", body = Object), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub(crate) async fn plan<S: Store>(
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

/// The plan in force in a few figures: what the console shows without downloading the plan.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanSummary {
    /// Its generation.
    pub generation: u64,
    /// When it was made.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Instant,
    /// The span it covers.
    #[schema(value_type = String, format = DateTime)]
    pub horizon_start: Instant,
    /// The span it covers.
    #[schema(value_type = String, format = DateTime)]
    pub horizon_end: Instant,
    /// Batches planned.
    pub batches: usize,
    /// Contact reservations.
    pub contacts: usize,
    /// Routes.
    pub routes: usize,
}

#[utoipa::path(get, path = "/v1/ops/plan/summary", tag = "operator", security(("bearer" = [])), responses((status = 200, description = "The plan in force in a few figures, or null before the first", body = Option<PlanSummary>)))]
pub(crate) async fn plan_summary<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
) -> Result<Json<Option<PlanSummary>>, ApiError> {
    g.operator_caller(&headers)?;
    let core = g.core()?;
    Ok(Json(core.plan().map(|p| PlanSummary {
        generation: p.generation,
        created_at: p.created_at,
        horizon_start: p.horizon_start,
        horizon_end: p.horizon_end,
        batches: p.batches.len(),
        contacts: p.contacts.len(),
        routes: p.routes.len(),
    })))
}

#[utoipa::path(get, path = "/v1/ops/nodes", tag = "operator", security(("bearer" = [])), responses((status = 200, description = "Every node: contact, incarnation, last telemetry (charge, temperatures, queue), open jobs, next pass, passes missed", body = [Object]), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub(crate) async fn nodes<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
) -> Result<Json<Vec<NodeStatus>>, ApiError> {
    g.operator_caller(&headers)?;
    let now = g.clock.now();
    Ok(Json(g.core()?.node_status(now)))
}

#[utoipa::path(get, path = "/v1/ops/nodes/{id}/telemetry", tag = "operator", params(("id" = String, Path, description = "Node id")), security(("bearer" = [])), responses((status = 200, description = "The node's recent telemetry, oldest first: charge, temperatures, utilisation, queue and outbox, storage, eclipse, plan generation", body = [Object]), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub(crate) async fn telemetry<S: Store>(
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
pub(crate) async fn alarms<S: Store>(
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
pub(crate) struct StationView {
    #[serde(flatten)]
    spec: odc_model::spec::StationSpec,
    up: bool,
}

#[utoipa::path(get, path = "/v1/ops/stations", tag = "operator", security(("bearer" = [])), responses((status = 200, description = "Every station with its position, rates and whether it is up", body = [Object]), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub(crate) async fn stations<S: Store>(
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
pub(crate) async fn station_status<S: Store>(
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
pub(crate) struct EpochView {
    node: NodeId,
    epoch: Instant,
    age_days: f64,
}

#[utoipa::path(get, path = "/v1/ops/orbits", tag = "operator", security(("bearer" = [])), responses((status = 200, description = "Each node's element epoch in force and its age", body = [Object]), (status = 404, description = "This service has no element sets (its fleet came without a catalog)", body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub(crate) async fn orbits<S: Store>(
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

pub(crate) fn no_orbits() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "this service keeps no element sets (its fleet has no catalog)",
    )
}

#[utoipa::path(post, path = "/v1/ops/orbits", tag = "operator", request_body(content = String, description = "TLE text (2- or 3-line records) or an OMM JSON document", content_type = "text/plain"), security(("bearer" = [])), responses((status = 200, description = "What happened to each record: accepted (fresher epochs, now in force; flagged when far from now), stale (refused: not fresher), unknown satellites, unparsable records", body = Object), (status = 422, description = "No usable element set in the text", body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub(crate) async fn upload_orbits<S: Store>(
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
