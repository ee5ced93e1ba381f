//! Named operator accounts with roles: an admin creates a viewer and an operator; a viewer reads and changes
//! nothing, an operator changes the fleet and tenants but not operators; the audit log names who did what; a
//! replaced token is refused at once; accounts survive a restart.

mod common;

use axum::http::StatusCode;
use common::*;

async fn create(api: &Api<FlakyStore>, name: &str, role: &str) -> (StatusCode, serde_json::Value) {
    let body = serde_json::json!({ "name": name, "role": role }).to_string();
    let (status, reply) = call(
        api,
        "POST",
        "/v1/ops/operators",
        Some("token-op"),
        Some(body),
    )
    .await;
    (status, serde_json::from_slice(&reply).unwrap_or_default())
}

#[tokio::test]
async fn roles_bound_what_each_operator_may_do_and_the_audit_names_them() {
    let f = flaky(vec![pass()]).await;
    let api = &f.api;
    let (status, vera) = create(api, "vera", "viewer").await;
    assert_eq!(status, StatusCode::CREATED, "{vera}");
    let vera_token = vera["token"].as_str().expect("token").to_string();
    let (status, otto) = create(api, "otto", "operator").await;
    assert_eq!(status, StatusCode::CREATED, "{otto}");
    let otto_token = otto["token"].as_str().expect("token").to_string();
    // Refused: the same name again, a bad name, an unknown role; and by anyone but an admin.
    assert_eq!(create(api, "otto", "viewer").await.0, StatusCode::CONFLICT);
    assert_eq!(
        create(api, "Otto!", "viewer").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(create(api, "ana", "root").await.0, StatusCode::BAD_REQUEST);
    let body = serde_json::json!({ "name": "eve", "role": "admin" }).to_string();
    for token in [vera_token.as_str(), otto_token.as_str(), "token-a"] {
        let (status, _) = call(
            api,
            "POST",
            "/v1/ops/operators",
            Some(token),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token}");
    }
    // A viewer reads and changes nothing.
    for path in [
        "/v1/ops/alarms",
        "/v1/ops/nodes",
        "/v1/ops/audit",
        "/v1/ops/tenants",
        "/metrics",
    ] {
        let (status, _) = call(api, "GET", path, Some(&vera_token), None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let down = serde_json::json!({ "up": false }).to_string();
    let (status, reply) = call(
        api,
        "POST",
        "/v1/ops/stations/gs/status",
        Some(&vera_token),
        Some(down.clone()),
    )
    .await;
    assert_eq!(
        (status, code(&reply)),
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
    assert!(String::from_utf8_lossy(&reply).contains("operator role"));
    let (status, _) = call(api, "GET", "/v1/ops/operators", Some(&vera_token), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An operator changes the fleet and tenants.
    let (status, reply) = call(
        api,
        "POST",
        "/v1/ops/stations/gs/status",
        Some(&otto_token),
        Some(down),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let change = serde_json::json!({ "share_weight": 3 }).to_string();
    let (status, _) = call(
        api,
        "PATCH",
        &format!("/v1/ops/tenants/{}", f.a.id),
        Some(&otto_token),
        Some(change),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The audit log names who did each.
    let (_, reply) = call(api, "GET", "/v1/ops/audit", Some("token-op"), None).await;
    let log: serde_json::Value = serde_json::from_slice(&reply).expect("audit");
    let by = |action: &str| -> Vec<String> {
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with(action)))
            .filter_map(|e| e["who"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(by("operator.create"), ["operator:admin", "operator:admin"]);
    assert_eq!(by("tenant.update"), ["operator:otto"]);
    assert!(by("station").iter().all(|w| w == "operator:otto"), "{log}");
    assert!(!by("station").is_empty(), "{log}");
    // A replaced token is refused at once; the new one works, with the same role.
    let (status, reply) = call(
        api,
        "POST",
        "/v1/ops/operators/otto/token",
        Some("token-op"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rotated: serde_json::Value = serde_json::from_slice(&reply).expect("json");
    let new_token = rotated["token"].as_str().expect("token").to_string();
    assert_eq!(rotated["operator"]["role"], "operator");
    let (status, _) = call(api, "GET", "/v1/ops/alarms", Some(&otto_token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(api, "GET", "/v1/ops/alarms", Some(&new_token), None).await;
    assert_eq!(status, StatusCode::OK);
    // Accounts survive a restart.
    let clock = f.clock.clone();
    let Flaky { api, .. } = f;
    let api = restarted(api._dir, clock).await;
    let (status, _) = call(&api, "GET", "/v1/ops/alarms", Some(&new_token), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &api,
        "POST",
        "/v1/ops/operators",
        Some(&new_token),
        Some(body),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "still an operator, not an admin"
    );
    let (_, reply) = call(&api, "GET", "/v1/ops/operators", Some("token-op"), None).await;
    let all: serde_json::Value = serde_json::from_slice(&reply).expect("json");
    let names: Vec<&str> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, ["admin", "otto", "vera"]);
}
