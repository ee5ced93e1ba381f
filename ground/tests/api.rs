//! The tenant API over a real store: every tenant endpoint against every kind of caller (its owner, another
//! tenant, no token, a bad token, an operator), another tenant's job answering byte for byte like a missing one,
//! submissions durable before they are acknowledged and idempotent by key, and bad requests refused with a code.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt as _;
use odc_ground::api::{DEFAULT_MAX_BODY_BYTES, Ground, JobList, JobView, router, token_hash};
use odc_ground::store::{SqliteStore, Store};
use odc_model::id::IdGenerator;
use odc_model::time::{Duration, SimClock};
use std::sync::Arc;
use tower::ServiceExt as _;

#[tokio::test]
async fn every_tenant_endpoint_against_every_kind_of_caller() {
    let api = api().await;
    let job = submit(&api, "token-a", "k1").await;
    let to_cancel = submit(&api, "token-a", "k2").await;
    let missing = IdGenerator::seeded(99).job(t0());
    let endpoints: Vec<(&str, String, Option<String>)> = vec![
        ("POST", "/v1/jobs".into(), Some(submission("k3", b"more"))),
        (
            "POST",
            "/v1/jobs/upload?model=m&output_bound_bytes=64&within_s=3600&idempotency_key=k4".into(),
            Some("raw input bytes".into()),
        ),
        ("GET", "/v1/jobs".into(), None),
        ("GET", format!("/v1/jobs/{}", job.id), None),
        ("POST", format!("/v1/jobs/{}/cancel", to_cancel.id), None),
        ("GET", format!("/v1/jobs/{}/result", job.id), None),
        ("GET", "/v1/usage".into(), None),
    ];
    for (method, path, body) in &endpoints {
        let label = format!("{method} {path}");
        // No token, a bad token, an operator's token: refused before anything is looked up.
        for (token, status, expected) in [
            (None, StatusCode::UNAUTHORIZED, "unauthenticated"),
            (
                Some("token-zzz"),
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
            ),
            (Some("token-op"), StatusCode::FORBIDDEN, "forbidden"),
        ] {
            let (s, b) = call(&api, method, path, token, body.clone()).await;
            assert_eq!(
                (s, code(&b)),
                (status, expected.to_string()),
                "{label} with {token:?}"
            );
        }
        // Another tenant: a job of a's is exactly a missing job.
        let (s, b) = call(&api, method, path, Some("token-b"), body.clone()).await;
        let submits =
            *method == "POST" && (path == "/v1/jobs" || path.starts_with("/v1/jobs/upload?"));
        if path.contains("/v1/jobs/") && !submits {
            let missing_path = path
                .replace(&job.id.to_string(), &missing.to_string())
                .replace(&to_cancel.id.to_string(), &missing.to_string());
            let (ms, mb) = call(&api, method, &missing_path, Some("token-b"), body.clone()).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{label} as b");
            assert_eq!(
                (s, &b),
                (ms, &mb),
                "{label}: b sees a's job exactly as a missing one"
            );
        } else if *method == "GET" && path == "/v1/jobs" {
            let list: JobList = serde_json::from_slice(&b).expect("list");
            assert!(
                list.jobs
                    .iter()
                    .all(|j| j.id != job.id && j.id != to_cancel.id),
                "b lists none of a's jobs"
            );
        } else {
            assert!(s.is_success(), "{label} as b: {s}");
        }
        // The owner.
        let (s, b) = call(&api, method, path, Some("token-a"), body.clone()).await;
        let expected = match (*method, path.as_str()) {
            _ if submits => StatusCode::CREATED,
            (_, p) if p.ends_with("/result") => StatusCode::CONFLICT,
            _ => StatusCode::OK,
        };
        assert_eq!(s, expected, "{label} as a: {}", String::from_utf8_lossy(&b));
    }
    let (_, b) = call(&api, "GET", "/v1/jobs", Some("token-a"), None).await;
    let list: JobList = serde_json::from_slice(&b).expect("list");
    assert_eq!(list.jobs.len(), 4, "k1 to k4");
    let cancelled = list.jobs.iter().find(|j| j.id == to_cancel.id).expect("k2");
    assert_eq!(cancelled.state, "cancelled");
}

#[tokio::test]
async fn a_submission_is_durable_when_acknowledged_and_idempotent_by_key() {
    let api = api().await;
    let first = submit(&api, "token-a", "same").await;
    let stored = api.ground.store().open_jobs().await.expect("open jobs");
    assert!(
        stored
            .iter()
            .any(|(j, input)| j.id == first.id && input == b"tile"),
        "the acknowledged job and its input are in the store"
    );
    let (status, body) = call(
        &api,
        "POST",
        "/v1/jobs",
        Some("token-a"),
        Some(submission("same", b"tile")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the same key again");
    let again: JobView = serde_json::from_slice(&body).expect("view");
    assert_eq!(again.id, first.id);
    assert_eq!(api.ground.store().open_jobs().await.expect("open").len(), 1);
    let audit = api.ground.store().audit_log().await.expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "submit");
    assert_eq!(audit[0].target, first.id.to_string());
}

#[tokio::test]
async fn bad_requests_are_refused_with_a_code_and_change_nothing() {
    let api = api().await;
    let cases = [
        ("{not json".to_string(), "bad_request"),
        (r#"{"model":"m"}"#.to_string(), "bad_request"),
        (
            submission("k", b"x").replace("\"input\":\"", "\"input\":\"!!"),
            "bad_request",
        ),
        (
            submission("k", b"x").replace("\"m\"", "\"\""),
            "bad_request",
        ),
        (submission("k", b""), "invalid_job"),
        (
            submission("k", b"x").replace(
                &(t0() + Duration::from_hours(6)).to_rfc3339(),
                &(t0() - Duration::from_hours(1)).to_rfc3339(),
            ),
            "invalid_job",
        ),
        (
            submission("k", b"x").replace("\"priority\":5", "\"priority\":12"),
            "bad_request",
        ),
        // A deadline and a relative one together (schema-valid, refused for what it says), an unknown field, or a
        // relative one that is not positive.
        (
            submission("k", b"x").replace("\"deadline\"", "\"within_s\":60,\"deadline\""),
            "invalid_job",
        ),
        (
            submission("k", b"x").replace("\"deadline\"", "\"nothing\""),
            "bad_request",
        ),
        (
            submission("k", b"x").replace(
                &format!(
                    "\"deadline\":\"{}\"",
                    (t0() + Duration::from_hours(6)).to_rfc3339()
                ),
                "\"within_s\":-5",
            ),
            "bad_request",
        ),
    ];
    for (body, expected) in cases {
        let (status, reply) = call(
            &api,
            "POST",
            "/v1/jobs",
            Some("token-a"),
            Some(body.clone()),
        )
        .await;
        assert!(status.is_client_error(), "{body}: {status}");
        assert_eq!(code(&reply), expected, "{body}");
        let message = serde_json::from_slice::<serde_json::Value>(&reply).expect("json")["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!message.is_empty(), "{body}: the error says why");
    }
    assert!(
        api.ground
            .store()
            .open_jobs()
            .await
            .expect("open")
            .is_empty()
    );
    // A deadline relative to the ground's clock is taken.
    let relative = submission("rel", b"x").replace(
        &format!(
            "\"deadline\":\"{}\"",
            (t0() + Duration::from_hours(6)).to_rfc3339()
        ),
        "\"within_s\":3600",
    );
    let (status, reply) = call(&api, "POST", "/v1/jobs", Some("token-a"), Some(relative)).await;
    assert_eq!(status, StatusCode::CREATED);
    let view: serde_json::Value = serde_json::from_slice(&reply).expect("json");
    assert_eq!(
        view["deadline"].as_str(),
        Some((t0() + Duration::from_hours(1)).to_rfc3339().as_str())
    );
    let (status, reply) = call(&api, "GET", "/v1/jobs/not-an-id", Some("token-a"), None).await;
    assert_eq!(
        (status, code(&reply)),
        (StatusCode::NOT_FOUND, "not_found".into())
    );
}

#[tokio::test]
async fn metrics_count_jobs_by_state_requests_by_route_and_group_commits() {
    let api = api().await;
    submit(&api, "token-a", "m1").await;
    submit(&api, "token-b", "m2").await;
    let _ = call(&api, "GET", "/v1/jobs/nope", Some("token-a"), None).await;
    let (status, body) = call(&api, "GET", "/metrics", None, None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated".into()),
        "metrics need a token"
    );
    let (status, _) = call(&api, "GET", "/metrics", Some("token-a"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nor a tenant's");
    let (status, body) = call(&api, "GET", "/metrics", Some("token-op"), None).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).expect("text");
    for line in [
        "odc_ground_jobs{state=\"accepted\"} 2",
        "odc_ground_tenants 2",
        "odc_ground_api_requests_total{route=\"/v1/jobs\",status=\"2xx\"} 2",
        "odc_ground_api_requests_total{route=\"/v1/jobs/{id}\",status=\"4xx\"} 1",
        "odc_ground_store_committed_jobs_total 2",
        "odc_ground_nodes_in_contact 0",
        "odc_ground_nodes_lost 0",
        "odc_ground_contacts_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let count = text
        .lines()
        .find_map(|l| l.strip_prefix("odc_ground_api_request_seconds_count "))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("histogram count");
    assert_eq!(count, 3, "the scrape itself is counted after it answers");
}

#[tokio::test]
async fn cancelling_twice_succeeds_and_the_cancellation_is_durable() {
    let api = api().await;
    let job = submit(&api, "token-a", "c").await;
    let path = format!("/v1/jobs/{}/cancel", job.id);
    for _ in 0..2 {
        let (status, body) = call(&api, "POST", &path, Some("token-a"), None).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
    let stored = api
        .ground
        .store()
        .job(job.id)
        .await
        .expect("store")
        .expect("job");
    assert_eq!(stored.state.name(), "cancelled");
    assert!(
        api.ground
            .store()
            .open_jobs()
            .await
            .expect("open")
            .is_empty()
    );
    // After a restart the closed job is no longer in the core: it is served from the store, to its owner only.
    let (_, _, core) = core();
    let store = SqliteStore::open(&api._dir.path().join("ground.db"))
        .await
        .expect("reopen");
    let clock = Arc::new(SimClock::new(t0()));
    let ground = Ground::start(core, store, clock, &[token_hash("token-op")])
        .await
        .expect("restart");
    let again = Api {
        app: router(ground.clone(), DEFAULT_MAX_BODY_BYTES),
        ground,
        _dir: tempfile::tempdir().expect("tempdir"),
    };
    let status_path = format!("/v1/jobs/{}", job.id);
    let (status, body) = call(&again, "GET", &status_path, Some("token-a"), None).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let view: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(view["state"], "cancelled");
    let (status, body) = call(&again, "GET", "/v1/jobs", Some("token-a"), None).await;
    assert_eq!(status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(1), "{list}");
    let (status, _) = call(&again, "POST", &path, Some("token-a"), None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "cancelling a closed job again is answered as before"
    );
    let (other, other_body) = call(&again, "GET", &status_path, Some("token-b"), None).await;
    let missing = format!(
        "/v1/jobs/{}",
        odc_model::id::IdGenerator::seeded(99).job(t0())
    );
    let (none, none_body) = call(&again, "GET", &missing, Some("token-b"), None).await;
    assert_eq!((other, other_body), (none, none_body));
    let (status, body) = call(&again, "GET", "/v1/jobs", Some("token-b"), None).await;
    assert_eq!(status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(0), "{list}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let api = api().await;
    let (status, body) = call(&api, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
    for (path, method) in [
        ("/v1/jobs", "post"),
        ("/v1/jobs", "get"),
        ("/v1/jobs/upload", "post"),
        ("/v1/jobs/{id}", "get"),
        ("/v1/jobs/{id}/cancel", "post"),
        ("/v1/jobs/{id}/result", "get"),
        ("/v1/usage", "get"),
        ("/v1/ops/tenants", "post"),
        ("/v1/ops/tenants", "get"),
        ("/v1/ops/tenants/{id}", "patch"),
        ("/v1/ops/tenants/{id}/token", "post"),
        ("/v1/ops/audit", "get"),
        ("/v1/ops/plan", "get"),
        ("/v1/ops/nodes", "get"),
        ("/v1/ops/nodes/{id}/telemetry", "get"),
        ("/v1/ops/orbits", "get"),
        ("/v1/ops/orbits", "post"),
        ("/v1/ops/alarms", "get"),
        ("/v1/ops/stations", "get"),
        ("/v1/ops/stations/{id}/status", "post"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        assert!(
            op["responses"]["401"].is_object(),
            "{method} {path} documents 401"
        );
    }
    for schema in [
        "SubmitRequest",
        "JobView",
        "JobList",
        "UsageView",
        "Usage",
        "Quota",
        "ApiError",
        "NewTenant",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn an_input_uploaded_as_the_body_makes_the_same_job_as_one_sent_in_base64() {
    let api = api().await;
    let input: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let upload = |query: &str, body: Vec<u8>| {
        let (api, uri) = (&api, format!("/v1/jobs/upload?{query}"));
        async move {
            let req = Request::builder()
                .method("POST")
                .uri(uri)
                .header(header::AUTHORIZATION, "Bearer token-a")
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Body::from(body))
                .expect("request");
            let resp = api.app.clone().oneshot(req).await.expect("response");
            let status = resp.status();
            let bytes = resp.into_body().collect().await.expect("body").to_bytes();
            (status, bytes.to_vec())
        }
    };
    let deadline = (t0() + Duration::from_hours(6)).to_rfc3339();
    let query =
        format!("model=m&output_bound_bytes=64&deadline={deadline}&priority=5&idempotency_key=bin");
    let (status, body) = upload(&query, input.clone()).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let job: JobView = serde_json::from_slice(&body).expect("job");
    // Durable before the answer, with the bytes as sent.
    let open = api.ground.store().open_jobs().await.expect("open");
    let (stored, stored_input) = open.iter().find(|(j, _)| j.id == job.id).expect("stored");
    assert_eq!(stored_input, &input);
    assert_eq!(stored.spec.input, odc_model::job::BlobRef::of(&input));
    assert_eq!(stored.spec.priority.level(), 5);
    // The same key and request through the JSON route names the same job.
    let (status, body) = call(
        &api,
        "POST",
        "/v1/jobs",
        Some("token-a"),
        Some(submission("bin", &input)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<JobView>(&body).expect("job").id,
        job.id
    );
    // Neither a deadline nor a relative one: understood, and refused for it.
    let (status, body) = upload(
        "model=m&output_bound_bytes=64&idempotency_key=x",
        b"tile".to_vec(),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_job".into())
    );
    assert!(String::from_utf8_lossy(&body).contains("within_s"));
    // Bad queries are named and make nothing.
    for (bad, says) in [
        (
            "output_bound_bytes=64&within_s=60&idempotency_key=x",
            "model",
        ),
        (
            "model=m&output_bound_bytes=lots&within_s=60&idempotency_key=x",
            "output_bound_bytes",
        ),
        (
            "model=m&output_bound_bytes=64&within_s=60&idempotency_key=x&colour=red",
            "colour",
        ),
        (
            "model=m&output_bound_bytes=64&within_s=60&priority=12&idempotency_key=x",
            "priority",
        ),
    ] {
        let (status, body) = upload(bad, b"tile".to_vec()).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "bad_request".into()),
            "{bad}"
        );
        let message = String::from_utf8_lossy(&body);
        assert!(message.contains(says), "{bad}: {message}");
    }
    let (status, _) = upload(
        "model=m&output_bound_bytes=64&within_s=60&idempotency_key=empty",
        Vec::new(),
    )
    .await;
    assert!(
        status.is_client_error(),
        "an empty input is refused: {status}"
    );
    let open = api.ground.store().open_jobs().await.expect("open");
    assert_eq!(open.len(), 1, "nothing but the first job");
}
