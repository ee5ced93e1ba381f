//! What stands before the handlers: the caller is authenticated from the headers alone, before any body is read
//! (an anonymous client gets its 401 without `100 Continue` and without the server reading what it sends); each
//! route has its own body limit; uploads take room in a shared budget before their body is read; requests are
//! capped in number and in time; unknown routes and methods are answered in JSON.

use super::{ApiError, Ground, Principal};
use crate::http::{self, HttpLimits, UploadBudget};
use crate::store::Store;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::handler::Handler as _;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tower::ServiceBuilder;

/// Who may call a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Anyone: the console page and the OpenAPI document (neither holds data).
    Nobody,
    /// A tenant's token.
    Tenant,
    /// An operator's token.
    Operator,
    /// Some valid token (a path that names no route).
    Anyone,
}

fn needs(path: &str) -> Needs {
    match path {
        "/console" | "/openapi.json" => Needs::Nobody,
        "/metrics" => Needs::Operator,
        p if p.starts_with("/v1/ops/") || p == "/v1/ops" => Needs::Operator,
        p if p.starts_with("/v1/jobs") || p == "/v1/usage" => Needs::Tenant,
        _ => Needs::Anyone,
    }
}

impl<S: Store> Ground<S> {
    /// The caller, from exactly one `Authorization` header (two would leave it unclear who is calling).
    fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "give one Authorization header, not several",
            ));
        }
        self.caller(headers)
    }
}

/// Refuses a request whose headers do not name a caller allowed on its path, before its body is read.
async fn authenticate<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    request: Request,
    next: Next,
) -> Response {
    let needs = needs(request.uri().path());
    if needs == Needs::Nobody {
        return next.run(request).await;
    }
    let who = match g.authenticate(request.headers()) {
        Ok(who) => who,
        Err(e) => return e.into_response(),
    };
    match (needs, who) {
        (Needs::Tenant, Principal::Operator(_)) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "tenant endpoints take a tenant's token",
        )
        .into_response(),
        (Needs::Operator, Principal::Tenant(_)) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "operator endpoints take an operator's token",
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

/// What an upload may send, and the budget it takes room in.
#[derive(Clone)]
struct UploadGate {
    budget: UploadBudget,
    most: u64,
}

/// Takes an upload's declared size from the shared budget before its body is read; refuses one over the route's
/// limit (413, naming it) or one that would pass the budget (503 `overloaded`).
async fn upload_room(State(gate): State<UploadGate>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > gate.most) {
        return too_large(gate.most);
    }
    // Without a length (a chunked body) the most it may be is taken.
    let Some(_room) = gate.budget.take(declared.unwrap_or(gate.most)) else {
        return http::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is receiving as many upload bytes as it holds at once; retry shortly",
        );
    };
    next.run(request).await
}

/// 413 naming the limit.
pub(super) fn too_large(limit: u64) -> Response {
    http::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!("the body is larger than this route takes ({limit} bytes)"),
    )
}

/// A request body that could not be read: too large (413, naming the route's limit), too slow (408) or broken.
pub(super) fn body_error(e: axum::extract::rejection::BytesRejection, limit: usize) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if s.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the body stopped arriving; send it without long pauses",
            );
        }
        source = s.source();
    }
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than this route takes ({limit} bytes)"),
        );
    }
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        format!("the body could not be read: {}", e.body_text()),
    )
}

async fn no_route() -> Response {
    http::error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn no_method() -> Response {
    http::error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// The body limits a router applies, for the handlers' error messages.
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyLimits {
    pub json: usize,
    pub submit: usize,
    pub orbits: usize,
    pub upload: usize,
}

/// The routes of the tenant and operator APIs behind their guards.
pub fn router_with<S: Store>(ground: Arc<Ground<S>>, limits: &HttpLimits) -> Router {
    use super::*;
    let sizes = BodyLimits {
        json: limits.max_json_bytes,
        submit: limits.max_json_submit_bytes,
        orbits: limits.max_orbits_bytes,
        upload: limits.max_upload_bytes,
    };
    let _ = ground.body_limits.set(sizes);
    let timed = |t| {
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(http::refused))
            .timeout(t)
    };
    let gate = UploadGate {
        budget: UploadBudget::new(limits.max_upload_bytes_in_flight),
        most: limits.max_upload_bytes as u64,
    };
    let uploads = Router::new()
        .route(
            "/v1/jobs/upload",
            post(
                upload::<S>
                    .layer(DefaultBodyLimit::max(sizes.upload))
                    .layer(from_fn_with_state(gate, upload_room)),
            ),
        )
        .layer(timed(limits.upload_timeout));
    let rest = Router::new()
        .route("/metrics", get(metrics::<S>))
        .route("/console", get(console))
        .route("/openapi.json", get(openapi))
        .route(
            "/v1/ops/tenants",
            post(create_tenant::<S>).get(list_tenants::<S>),
        )
        .route("/v1/ops/tenants/{id}", patch(update_tenant::<S>))
        .route("/v1/ops/tenants/{id}/token", post(rotate_token::<S>))
        .route(
            "/v1/ops/operators",
            post(super::operators::create_operator::<S>).get(super::operators::list_operators::<S>),
        )
        .route(
            "/v1/ops/operators/{name}/token",
            post(super::operators::rotate_operator_token::<S>),
        )
        .route("/v1/ops/audit", get(audit::<S>))
        .route("/v1/ops/plan", get(plan::<S>))
        .route("/v1/ops/plan/summary", get(plan_summary::<S>))
        .route("/v1/ops/nodes", get(nodes::<S>))
        .route("/v1/ops/nodes/{id}/telemetry", get(telemetry::<S>))
        .route(
            "/v1/ops/orbits",
            get(orbits::<S>).post(upload_orbits::<S>.layer(DefaultBodyLimit::max(sizes.orbits))),
        )
        .route("/v1/ops/alarms", get(alarms::<S>))
        .route("/v1/ops/stations", get(stations::<S>))
        .route("/v1/ops/stations/{id}/status", post(station_status::<S>))
        .route(
            "/v1/jobs",
            post(submit::<S>.layer(DefaultBodyLimit::max(sizes.submit))).get(list::<S>),
        )
        .route("/v1/jobs/{id}", get(status::<S>))
        .route("/v1/jobs/{id}/cancel", post(cancel::<S>))
        .route("/v1/jobs/{id}/result", get(result::<S>))
        .route("/v1/usage", get(usage::<S>))
        .layer(timed(limits.request_timeout));
    let routes = rest
        .merge(uploads)
        .layer(DefaultBodyLimit::max(sizes.json))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            limits.body_idle_timeout,
        ))
        .route_layer(from_fn_with_state(ground.clone(), track::<S>))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .with_state(ground.clone());
    // One cap over every route (a layer on the router would give each route a cap of its own).
    let capped = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(http::refused))
        .load_shed()
        .concurrency_limit(limits.max_concurrent_requests)
        .service(routes);
    Router::new()
        .fallback_service(capped)
        .layer(from_fn_with_state(ground, authenticate::<S>))
}

impl BodyLimits {
    /// The limit on a path's body.
    fn for_path(&self, path: &str) -> usize {
        match path {
            "/v1/jobs" => self.submit,
            "/v1/jobs/upload" => self.upload,
            "/v1/ops/orbits" => self.orbits,
            _ => self.json,
        }
    }
}

/// A request body, read whole within its route's limit; refusals are JSON errors naming the limit.
pub(super) struct Body(pub axum::body::Bytes);

impl<S: Store> axum::extract::FromRequest<Arc<Ground<S>>> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<Ground<S>>) -> Result<Body, ApiError> {
        let limit = state
            .body_limits
            .get()
            .map_or(0, |l| l.for_path(req.uri().path()));
        axum::body::Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| body_error(e, limit))
    }
}

/// Query parameters; a refusal is a JSON `bad_request` that says what is wrong.
pub(super) struct Q<T>(pub T);

impl<T, St> axum::extract::FromRequestParts<St> for Q<T>
where
    T: serde::de::DeserializeOwned,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &St,
    ) -> Result<Q<T>, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Q(q.0))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("the query is not right: {}", e.body_text()),
                )
            })
    }
}
