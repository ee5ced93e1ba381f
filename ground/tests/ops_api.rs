//! The operator API over a real store: the audit log and the plan (and no operator path for tenants), nodes,
//! stations and alarms with a station taken down, the console's page over endpoints that exist, and tenants'
//! quotas and tokens changed durably.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt as _;
use odc_ground::api::{DEFAULT_MAX_BODY_BYTES, Ground, JobList, JobView, router, token_hash};
use odc_ground::store::Store;
use odc_model::id::IdGenerator;
use odc_model::time::SimClock;
use std::sync::Arc;
use tower::ServiceExt as _;

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
