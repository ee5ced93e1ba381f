//! Tenants are fair and bounded at intake: quotas count per accounting period and a new period starts from zero;
//! a job for a model no node runs, or with a deadline past the ground's horizon, is refused with a code that
//! says so.

mod common;

use axum::http::StatusCode;
use common::*;
use odc_model::time::{Clock as _, Duration};

#[tokio::test]
async fn a_quota_counts_per_period_and_a_new_period_starts_from_zero() {
    let f = flaky(vec![pass()]).await;
    let api = &f.api;
    // Room for one four-byte input a period.
    let change = serde_json::json!({ "quota": { "uplink_bytes": 6 } }).to_string();
    let path = format!("/v1/ops/tenants/{}", f.a.id);
    let (status, body) = call(api, "PATCH", &path, Some("token-op"), Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let first = submit(api, "token-a", "first").await;
    deliver_through_pass(&api.ground, &f.clock, first.id, 1).await;
    let usage = poll_json(api, "/v1/usage", "token-a", |v| {
        v["used"]["uplink_bytes"] == 4
    })
    .await;
    assert_eq!(usage["used"]["uplink_bytes"], 4, "{usage}");
    let (status, body) = call(
        api,
        "POST",
        "/v1/jobs",
        Some("token-a"),
        Some(submission("second", b"tile")),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded".to_string())
    );
    // The period ends (a UTC day): usage counts from zero and the same request is taken.
    let period_end: odc_model::time::Instant =
        serde_json::from_value(usage["period_end"].clone()).expect("period end");
    let next = f.clock.advance_to(period_end + Duration::from_mins(1));
    api.ground.tick(next).await;
    let (_, body) = call(api, "GET", "/v1/usage", Some("token-a"), None).await;
    let usage: serde_json::Value = serde_json::from_slice(&body).expect("usage");
    assert_eq!(usage["used"]["uplink_bytes"], 0, "{usage}");
    assert_eq!(
        usage["period_start"],
        serde_json::to_value(period_end).expect("json")
    );
    let (status, body) = call(
        api,
        "POST",
        "/v1/jobs",
        Some("token-a"),
        Some(submission("second", b"tile")),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    // A restart in the new period does not bring the old period's usage back.
    let clock = f.clock.clone();
    let Flaky { api, .. } = f;
    let api = restarted(api._dir, clock.clone()).await;
    let (_, body) = call(&api, "GET", "/v1/usage", Some("token-a"), None).await;
    let usage: serde_json::Value = serde_json::from_slice(&body).expect("usage");
    assert_eq!(usage["used"]["uplink_bytes"], 0, "{usage}");
    assert!(clock.now() > period_end);
}

#[tokio::test]
async fn an_unknown_model_and_a_deadline_past_the_horizon_are_refused_at_intake() {
    let api = api().await;
    let mut unknown: serde_json::Value =
        serde_json::from_str(&submission("u", b"tile")).expect("json");
    unknown["model"] = "nobody-runs-this".into();
    let (status, body) = call(
        &api,
        "POST",
        "/v1/jobs",
        Some("token-a"),
        Some(unknown.to_string()),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_model".to_string()
        )
    );
    let mut far: serde_json::Value = serde_json::from_str(&submission("f", b"tile")).expect("json");
    far["deadline"] = "9999-12-31T00:00:00Z".into();
    let (status, body) = call(
        &api,
        "POST",
        "/v1/jobs",
        Some("token-a"),
        Some(far.to_string()),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "deadline_too_far".to_string()
        )
    );
    assert!(String::from_utf8_lossy(&body).contains("30 days"));
    // Neither reserved anything.
    let (_, body) = call(&api, "GET", "/v1/usage", Some("token-a"), None).await;
    let usage: serde_json::Value = serde_json::from_slice(&body).expect("usage");
    assert_eq!(usage["reserved"]["uplink_bytes"], 0);
}
