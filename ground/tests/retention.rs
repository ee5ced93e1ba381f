//! Retention through the service: a delivered result is kept for its period and then answered `410
//! result_expired` while the job's record stays; later the record and its idempotency key go (the same key then
//! makes a new job); open jobs are never touched; a store that cannot purge leaves everything as it was.

mod common;

use axum::http::StatusCode;
use common::*;
use odc_ground::store::Retention;
use odc_model::time::{Clock as _, Duration};
use std::sync::atomic::Ordering;

#[tokio::test]
async fn results_then_records_go_after_their_periods_and_open_jobs_stay() {
    let f = flaky(vec![pass()]).await;
    let (api, clock) = (&f.api, f.clock.clone());
    let done = submit(api, "token-a", "kept-a-while").await;
    let result = deliver_through_pass(&api.ground, &clock, done.id, 1).await;
    poll_json(api, &format!("/v1/jobs/{}", done.id), "token-a", |v| {
        v["state"] == "delivered"
    })
    .await;
    // The next tick forgets the delivered job: from then on it is the store's alone.
    api.ground.tick(clock.now()).await;
    let open = submit(api, "token-a", "still-open").await;
    let keep = Retention {
        results_days: 1.0,
        jobs_days: 2.0,
        audit_days: 3.0,
    };
    let get = |path: String| async move { call(api, "GET", &path, Some("token-a"), None).await };
    let (p, _) = api.ground.purge(&keep).await.expect("purge");
    assert_eq!(p.total(), 0, "nothing is old enough yet");
    assert_eq!(
        get(format!("/v1/jobs/{}/result", done.id)).await,
        (StatusCode::OK, result)
    );
    // A store that fails changes nothing, and says so.
    f.fail.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_hours(25));
    assert!(api.ground.purge(&keep).await.is_err());
    f.fail.store(false, Ordering::SeqCst);
    let (status, _) = get(format!("/v1/jobs/{}/result", done.id)).await;
    assert_eq!(status, StatusCode::OK);
    // A day on: the result goes, the record stays.
    let (p, _) = api.ground.purge(&keep).await.expect("purge");
    assert_eq!((p.results, p.jobs), (1, 0));
    let (status, body) = get(format!("/v1/jobs/{}/result", done.id)).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(code(&body), "result_expired");
    let (status, _) = get(format!("/v1/jobs/{}", done.id)).await;
    assert_eq!(status, StatusCode::OK);
    // Two days on: the record and its key go; the open job is untouched.
    clock.advance(Duration::from_hours(24));
    let (p, _) = api.ground.purge(&keep).await.expect("purge");
    assert_eq!(p.jobs, 1);
    let (status, body) = get(format!("/v1/jobs/{}", done.id)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _) = get(format!("/v1/jobs/{}", open.id)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        api,
        "POST",
        "/v1/jobs",
        Some("token-a"),
        Some(
            serde_json::json!({
                "model": "m",
                "input": "dGlsZQ==",
                "output_bound_bytes": 64,
                "within_s": 21600,
                "idempotency_key": "kept-a-while",
            })
            .to_string(),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let again: serde_json::Value = serde_json::from_slice(&body).expect("job");
    assert_ne!(
        again["id"],
        done.id.to_string(),
        "a new job once the key is gone"
    );
    let (status, body) = call(
        api,
        "POST",
        "/v1/jobs",
        Some("token-a"),
        Some(submission("still-open", b"tile")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the open job's key still names it");
    let same: serde_json::Value = serde_json::from_slice(&body).expect("job");
    assert_eq!(same["id"], open.id.to_string());
    // The counters say what went.
    let (_, body) = call(api, "GET", "/metrics", Some("token-op"), None).await;
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("odc_ground_purged_total{kind=\"results\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("odc_ground_purged_total{kind=\"jobs\"} 1"),
        "{text}"
    );
}
