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
use odc_model::id::{IdGenerator, NodeId, StationId};
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
async fn a_full_disk_refuses_new_jobs_with_a_clear_error_and_loses_none_already_accepted() {
    let f = flaky(Vec::new()).await;
    let (a, fail, slow_ms) = (f.a.clone(), f.fail.clone(), f.slow_ms.clone());
    let ground = f.api.ground.clone();
    let app = f.api.app.clone();
    let post = |key: &str| {
        Request::builder()
            .method("POST")
            .uri("/v1/jobs")
            .header(header::AUTHORIZATION, "Bearer token-a")
            .body(Body::from(submission(key, b"tile")))
            .expect("request")
    };
    let ok = app.clone().oneshot(post("kept")).await.expect("response");
    assert_eq!(ok.status(), StatusCode::CREATED);
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let refused = app.clone().oneshot(post("lost")).await.expect("response");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = refused
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["code"], "store_unavailable");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("no space left"),
        "{v}"
    );
    // Operators are alarmed, and reads are still served.
    let alarm_codes = |api: &Api<FlakyStore>| {
        let api = api.app.clone();
        async move {
            let req = Request::builder()
                .uri("/v1/ops/alarms")
                .header(header::AUTHORIZATION, "Bearer token-op")
                .body(Body::empty())
                .expect("request");
            let body = api
                .oneshot(req)
                .await
                .expect("response")
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).expect("alarms");
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x["code"].as_str().map(str::to_string))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        }
    };
    assert!(
        alarm_codes(&f.api)
            .await
            .contains(&"store_failing".to_string())
    );
    let (status, _) = call(&f.api, "GET", "/v1/usage", Some("token-a"), None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "reads are served while the disk is full"
    );
    // A new token that cannot be stored is not given out, and the old one keeps working (used below).
    let rotate = app
        .clone()
        .oneshot(
            Request::builder()
                .method("POST")
                .uri(format!("/v1/ops/tenants/{}/token", a.id))
                .header(header::AUTHORIZATION, "Bearer token-op")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(rotate.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The refused job is not in the core (nothing will plan it); the accepted one is still everywhere.
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let list = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/v1/jobs")
                .header(header::AUTHORIZATION, "Bearer token-a")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    let body = list.into_body().collect().await.expect("body").to_bytes();
    let jobs: JobList = serde_json::from_slice(&body).expect("list");
    let keys: Vec<&str> = jobs
        .jobs
        .iter()
        .map(|j| j.idempotency_key.as_str())
        .collect();
    assert_eq!(keys, ["kept"]);
    assert_eq!(ground.store().open_jobs().await.expect("open").len(), 1);
    // Retried once the disk has room, the same key makes the job.
    let retried = app.clone().oneshot(post("lost")).await.expect("response");
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert!(
        !alarm_codes(&f.api)
            .await
            .contains(&"store_failing".to_string()),
        "the alarm ends with the first commit that succeeds, without a restart"
    );
    // A resubmission racing a commit that fails is not told the job exists: it waits, and hears the failure.
    slow_ms.store(200, std::sync::atomic::Ordering::SeqCst);
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let first = tokio::spawn(app.clone().oneshot(post("racing")));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let second = app.clone().oneshot(post("racing")).await.expect("response");
    let first = first.await.expect("task").expect("response");
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    // And one racing a commit that succeeds is answered only once the job is durable.
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let first = tokio::spawn(app.clone().oneshot(post("racing")));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let second = app.clone().oneshot(post("racing")).await.expect("response");
    assert_eq!(second.status(), StatusCode::OK);
    let body = second.into_body().collect().await.expect("body").to_bytes();
    let view: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let id: odc_model::id::JobId = view["id"].as_str().expect("id").parse().expect("job id");
    assert!(
        ground.store().job(id).await.expect("store").is_some(),
        "answered only once durable"
    );
    let first = first.await.expect("task").expect("response");
    assert_eq!(first.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn operators_read_the_audit_log_and_the_plan_and_tenants_cannot_read_any_operator_path() {
    let api = api().await;
    let job = submit(&api, "token-a", "audited").await;
    let (_, _) = call(
        &api,
        "POST",
        &format!("/v1/jobs/{}/cancel", job.id),
        Some("token-a"),
        None,
    )
    .await;
    let (status, body) = call(&api, "GET", "/v1/ops/audit", Some("token-op"), None).await;
    assert_eq!(status, StatusCode::OK);
    let log: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("json");
    let actions: Vec<&str> = log.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["submit", "cancel"]);
    assert!(log.iter().all(|e| e["target"] == job.id.to_string()));
    assert!(
        log[0]["who"]
            .as_str()
            .is_some_and(|w| w.starts_with("tenant:"))
    );
    let (status, body) = call(&api, "GET", "/v1/ops/plan", Some("token-op"), None).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, b"null".as_slice()),
        "no plan before the first tick"
    );
    for path in [
        "/v1/ops/audit",
        "/v1/ops/plan",
        "/v1/ops/tenants",
        "/v1/ops/nodes",
        "/v1/ops/nodes/n1/telemetry",
        "/v1/ops/alarms",
        "/v1/ops/stations",
        "/v1/ops/orbits",
    ] {
        let (status, body) = call(&api, "GET", path, Some("token-a"), None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, "forbidden".into()),
            "{path}"
        );
    }
    // Nor may a tenant change any account, its own included.
    let own = account(&api, "a").await["tenant"]["id"].to_string();
    let own = own.trim_matches('"');
    for (method, path, body) in [
        ("POST", "/v1/ops/tenants".to_string(), r#"{"name":"x"}"#),
        (
            "PATCH",
            format!("/v1/ops/tenants/{own}"),
            r#"{"share_weight":9}"#,
        ),
        ("POST", format!("/v1/ops/tenants/{own}/token"), ""),
        (
            "POST",
            "/v1/ops/stations/gs/status".to_string(),
            r#"{"up":false}"#,
        ),
        ("POST", "/v1/ops/orbits".to_string(), "x"),
    ] {
        let (status, got) = call(&api, method, &path, Some("token-a"), Some(body.into())).await;
        assert_eq!(
            (status, code(&got)),
            (StatusCode::FORBIDDEN, "forbidden".into()),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn operators_see_nodes_stations_and_alarms_and_take_a_station_down() {
    let api = api().await;
    let get = |path: &'static str| {
        let api = &api;
        async move {
            let (status, body) = call(api, "GET", path, Some("token-op"), None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            serde_json::from_slice::<serde_json::Value>(&body).expect("json")
        }
    };
    let nodes = get("/v1/ops/nodes").await;
    assert_eq!(nodes[0]["node"], "n1", "{nodes}");
    assert_eq!(nodes[0]["incarnation"], 0, "never heard: {nodes}");
    assert_eq!(get("/v1/ops/alarms").await, serde_json::json!([]));
    assert_eq!(
        get("/v1/ops/nodes/n1/telemetry").await,
        serde_json::json!([])
    );
    let (status, _) = call(
        &api,
        "GET",
        "/v1/ops/nodes/nope/telemetry",
        Some("token-op"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let stations = get("/v1/ops/stations").await;
    assert_eq!(stations[0]["id"], "gs");
    assert_eq!(stations[0]["up"], true);
    // Taking the station down is audited, shown, and raised as an alarm.
    let (status, body) = call(
        &api,
        "POST",
        "/v1/ops/stations/gs/status",
        Some("token-op"),
        Some(r#"{"up":false}"#.into()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(get("/v1/ops/stations").await[0]["up"], false);
    let alarms = get("/v1/ops/alarms").await;
    assert_eq!(alarms[0]["code"], "station_down", "{alarms}");
    assert_eq!(alarms[0]["subject"], "gs");
    let log = get("/v1/ops/audit").await;
    assert_eq!(log[0]["action"], "station.down", "{log}");
    // An unknown station and a bad body are named; tenants are refused.
    for (path, body, expected) in [
        (
            "/v1/ops/stations/nowhere/status",
            r#"{"up":true}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "/v1/ops/stations/gs/status",
            r#"{"up":"yes"}"#,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, _) = call(&api, "POST", path, Some("token-op"), Some(body.into())).await;
        assert_eq!(status, expected, "{path} {body}");
    }
    // Tenants are refused on these paths: see operators_read_the_audit_log_…_tenants_cannot_read_any_operator_path.
}

#[tokio::test]
async fn the_operator_console_is_one_page_over_endpoints_that_exist() {
    let api = api().await;
    let res = api
        .app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/console")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    let headers = res.headers().clone();
    assert!(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"))
    );
    assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
    let page = String::from_utf8(
        res.into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec(),
    )
    .expect("utf-8");
    assert!(page.contains("operator console"));
    // Every API path the page reads answers an operator (no page element left pointing nowhere).
    let mut paths: Vec<&str> = page
        .split('"')
        .filter(|p| p.starts_with("/v1/ops/") && !p.ends_with('/'))
        .collect();
    paths.sort_unstable();
    paths.dedup();
    assert!(paths.len() >= 6, "{paths:?}");
    for path in paths {
        let (status, body) = call(&api, "GET", path, Some("token-op"), None).await;
        // Orbit data is absent from this test's ground (no catalog), and says so.
        let expected = if path == "/v1/ops/orbits" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(
            status,
            expected,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // The audit log's latest entries.
    for key in ["a1", "a2", "a3"] {
        submit(&api, "token-a", key).await;
    }
    let (_, body) = call(&api, "GET", "/v1/ops/audit?limit=2", Some("token-op"), None).await;
    let log: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("json");
    assert_eq!(log.len(), 2);
    let (_, body) = call(&api, "GET", "/v1/ops/audit", Some("token-op"), None).await;
    let all: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("json");
    assert_eq!(all.len(), 3);
    assert_eq!(log[..], all[1..]);
}

/// The account of the tenant named `name`, as operators list it.
async fn account(api: &Api, name: &str) -> serde_json::Value {
    let (status, body) = call(api, "GET", "/v1/ops/tenants", Some("token-op"), None).await;
    assert_eq!(status, StatusCode::OK);
    let all: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("json");
    all.into_iter()
        .find(|t| t["tenant"]["name"] == name)
        .unwrap_or_else(|| panic!("no tenant {name}"))
}

#[tokio::test]
async fn operators_change_a_tenants_quota_and_rotate_its_token_durably() {
    let api = api().await;
    let first = submit(&api, "token-a", "before").await;
    let id = account(&api, "a").await["tenant"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let patch = |body: &str| {
        let (api, path, body) = (&api, format!("/v1/ops/tenants/{id}"), body.to_string());
        async move { call(api, "PATCH", &path, Some("token-op"), Some(body)).await }
    };

    // No accelerator time left: the job already accepted stays, a new one is refused on quota.
    let (status, body) = patch(r#"{"quota":{"accelerator_s":0.0},"share_weight":3}"#).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let view: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(view["tenant"]["quota"]["accelerator_s"], 0.0);
    assert_eq!(view["tenant"]["quota"]["energy_wh"], 1_000.0, "untouched");
    assert_eq!(view["tenant"]["share_weight"], 3);
    assert!(view["reserved"]["accelerator_s"].as_f64().unwrap_or(0.0) > 0.0);
    let (status, body) = call(
        &api,
        "POST",
        "/v1/jobs",
        Some("token-a"),
        Some(submission("over", b"tile")),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded".into())
    );
    let (status, body) = call(
        &api,
        "GET",
        &format!("/v1/jobs/{}", first.id),
        Some("token-a"),
        None,
    )
    .await;
    let still: JobView = serde_json::from_slice(&body).expect("job");
    assert_eq!((status, still.state), (StatusCode::OK, first.state));
    // Raised again: accepted.
    let (status, _) = patch(r#"{"quota":{"accelerator_s":10000.0}}"#).await;
    assert_eq!(status, StatusCode::OK);
    submit(&api, "token-a", "after").await;

    // Changes that cannot be made are named, and change nothing.
    let before = account(&api, "a").await;
    let (status, body) = patch("{}").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "nothing_to_change".into()),
        "a change of nothing"
    );
    for bad in [
        r#"{"share_weight":0}"#,
        r#"{"name":""}"#,
        r#"{"quota":{"energy_wh":-1.0}}"#,
        r#"{"quota":{"period":0}}"#,
        r#"{"quota":{"accelerator_s":"lots"}}"#,
        r#"{"colour":"red"}"#,
        "not json",
    ] {
        let (status, body) = patch(bad).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "bad_request".into()),
            "{bad}"
        );
    }
    assert_eq!(account(&api, "a").await, before);
    let missing = IdGenerator::seeded(77).tenant(t0());
    for path in [
        format!("/v1/ops/tenants/{missing}"),
        "/v1/ops/tenants/not-an-id".into(),
    ] {
        let (status, body) = call(
            &api,
            "PATCH",
            &path,
            Some("token-op"),
            Some(r#"{"share_weight":2}"#.into()),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::NOT_FOUND, "not_found".into()),
            "{path}"
        );
        let (status, _) = call(
            &api,
            "POST",
            &format!("{path}/token"),
            Some("token-op"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}/token");
    }

    // A new token: the old one is refused at once, the new one sees the same jobs; the other tenant is untouched.
    let (status, body) = call(
        &api,
        "POST",
        &format!("/v1/ops/tenants/{id}/token"),
        Some("token-op"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let rotated: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let token = rotated["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("odc_") && token.len() == 68, "{token}");
    let (status, body) = call(&api, "GET", "/v1/jobs", Some("token-a"), None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
    let (status, body) = call(&api, "GET", "/v1/jobs", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let list: JobList = serde_json::from_slice(&body).expect("list");
    assert_eq!(list.jobs.len(), 2);
    let (status, _) = call(&api, "GET", "/v1/jobs", Some("token-b"), None).await;
    assert_eq!(status, StatusCode::OK);

    // Audited, and kept: a ground restarted over the same store knows the new token and quota, not the old token.
    let (_, body) = call(&api, "GET", "/v1/ops/audit", Some("token-op"), None).await;
    let log: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("json");
    let changes: Vec<&str> = log
        .iter()
        .filter(|e| e["target"] == id.as_str())
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        changes,
        ["tenant.update", "tenant.update", "tenant.token_rotate"]
    );
    let stored = api.ground.store().tenants().await.expect("tenants");
    let a = stored
        .iter()
        .find(|t| t.tenant.id.to_string() == id)
        .expect("a stored");
    assert_eq!(a.token_hash, token_hash(&token));
    assert_eq!(a.tenant.share_weight, 3);
    let (_, _, mut core) = core();
    for t in &stored {
        core.add_tenant(t.tenant.clone());
    }
    let restarted = Api {
        app: router(
            Ground::start(
                core,
                api.ground.store().clone(),
                Arc::new(SimClock::new(t0())),
                &[token_hash("token-op")],
            )
            .await
            .expect("restart"),
            DEFAULT_MAX_BODY_BYTES,
        ),
        ground: api.ground.clone(),
        _dir: tempfile::tempdir().expect("tempdir"),
    };
    let (status, _) = call(&restarted, "GET", "/v1/usage", Some("token-a"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&restarted, "GET", "/v1/usage", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(account(&restarted, "a").await["tenant"]["share_weight"], 3);
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

#[tokio::test]
async fn a_job_shows_delivered_only_once_its_result_is_stored() {
    use odc_ground::dispatch::NodeSide as _;
    use odc_model::wire::{Envelope, Hello, Message, PROTOCOL, ResultChunk, Sender};
    let n1 = NodeId::new("n1").expect("id");
    let pass = odc_planner::ContactWindow {
        station: StationId::new("gs").expect("id"),
        node: n1.clone(),
        start: t0() + Duration::from_mins(30),
        end: t0() + Duration::from_mins(40),
    };
    let f = flaky(vec![pass]).await;
    let (api, fail, clock) = (&f.api, f.fail.clone(), f.clock.clone());
    let ground = api.ground.clone();
    let job = submit(api, "token-a", "r1").await;
    // Planned onto n1's pass; the pass begins and the input goes up.
    ground.tick(t0() + Duration::from_mins(1)).await;
    let in_pass = clock.advance_to(t0() + Duration::from_mins(31));
    ground.tick(in_pass).await;
    let env = |seq: u64, message: Message| Envelope {
        version: PROTOCOL,
        sender: Sender::Node(n1.clone()),
        incarnation: 1,
        seq,
        sent_at: t0(),
        message,
    };
    ground.contact(&n1, true, false);
    let hello = Hello {
        node: n1.clone(),
        software: "test".into(),
        plan_generation: 0,
        last_seq_received: 0,
    };
    ground.node_message(&n1, env(1, Message::Hello(hello)));
    // The disk is full while the result comes down: the core has it, the store not yet.
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let result = vec![9u8; 16];
    let chunk = ResultChunk {
        job: job.id,
        output: odc_model::job::BlobRef::of(&result),
        offset: 0,
        data: result.clone(),
        accelerator_s: 1.0,
        energy_wh: 0.1,
    };
    ground.node_message(&n1, env(2, Message::ResultChunk(chunk)));
    let state = |api: &Api<FlakyStore>| {
        let path = format!("/v1/jobs/{}", job.id);
        let api = api.app.clone();
        async move {
            let req = Request::builder()
                .uri(path)
                .header(header::AUTHORIZATION, "Bearer token-a")
                .body(Body::empty())
                .expect("request");
            let resp = api.oneshot(req).await.expect("response");
            let body = resp.into_body().collect().await.expect("body").to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            v["state"].as_str().unwrap_or_default().to_string()
        }
    };
    assert_eq!(
        state(api).await,
        "downlinked",
        "not delivered while its result is not stored"
    );
    let (_, body) = call(api, "GET", "/v1/jobs", Some("token-a"), None).await;
    let list: JobList = serde_json::from_slice(&body).expect("list");
    assert_eq!(list.jobs[0].state, "downlinked");
    let path = format!("/v1/jobs/{}/result", job.id);
    let (status, body) = call(api, "GET", &path, Some("token-a"), None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "not_ready".into())
    );
    // The disk has room again: the writer stores the result, and only then is the job delivered.
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut seen = String::new();
    for _ in 0..200 {
        seen = state(api).await;
        if seen == "delivered" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(seen, "delivered");
    let (status, body) = call(api, "GET", &path, Some("token-a"), None).await;
    assert_eq!((status, body), (StatusCode::OK, result));
}

#[tokio::test]
async fn job_and_audit_listings_page_with_a_cursor_and_refuse_a_bad_one() {
    let api = api().await;
    let mut made = Vec::new();
    for k in 0..5 {
        made.push(submit(&api, "token-a", &format!("page-{k}")).await.id);
    }
    // Jobs: newest first, two at a time, each page naming where the next starts.
    let mut seen = Vec::new();
    let mut path = "/v1/jobs?limit=2".to_string();
    let mut pages = 0;
    loop {
        let (status, body) = call(&api, "GET", &path, Some("token-a"), None).await;
        assert_eq!(status, StatusCode::OK);
        let page: JobList = serde_json::from_slice(&body).expect("page");
        pages += 1;
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next {
            Some(next) => path = format!("/v1/jobs?limit=2&before={next}"),
            None => break,
        }
    }
    made.reverse();
    assert_eq!(seen, made, "every job once, newest first");
    assert_eq!(pages, 3);
    // Another tenant's pages hold none of them.
    let (_, body) = call(&api, "GET", "/v1/jobs?limit=10", Some("token-b"), None).await;
    let other: JobList = serde_json::from_slice(&body).expect("page");
    assert!(other.jobs.is_empty() && other.next.is_none());
    // The audit log: the latest two, oldest first, then the two before them.
    let (_, body) = call(&api, "GET", "/v1/ops/audit?limit=2", Some("token-op"), None).await;
    let latest: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("json");
    let first = latest[0]["seq"].as_u64().expect("seq");
    assert_eq!(latest[1]["seq"].as_u64(), Some(first + 1));
    let (_, body) = call(
        &api,
        "GET",
        &format!("/v1/ops/audit?limit=2&before={first}"),
        Some("token-op"),
        None,
    )
    .await;
    let older: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("json");
    let seqs: Vec<_> = older.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, vec![first - 2, first - 1]);
    for (path, token) in [
        ("/v1/jobs?before=not-a-job", "token-a"),
        ("/v1/ops/audit?before=-1", "token-op"),
        ("/v1/ops/audit?limit=10001", "token-op"),
    ] {
        let (status, body) = call(&api, "GET", path, Some(token), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(code(&body), "bad_request", "{path}");
    }
}
