//! The ground is exact across restarts: an idempotency key names the same job after a restart whether the job is
//! open, delivered or cancelled, and a different request with a used key is refused; a cancel that could not be
//! made durable changes nothing; a restarted ground numbers its plans above every one it issued before, so nodes
//! holding the old plans take the new ones.

mod common;

use axum::http::StatusCode;
use common::*;
use odc_ground::dispatch::NodeSide as _;
use odc_ground::store::Store as _;
use odc_model::id::NodeId;
use odc_model::time::{Clock as _, Duration};
use std::sync::atomic::Ordering;

fn with_priority(key: &str, input: &[u8], priority: u8) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(&submission(key, input)).expect("submission");
    v["priority"] = priority.into();
    v.to_string()
}

#[tokio::test]
async fn the_same_key_after_a_restart_names_the_same_job_open_delivered_or_cancelled() {
    let f = flaky(vec![pass()]).await;
    let (api, clock) = (&f.api, f.clock.clone());
    let delivered = submit(api, "token-a", "delivered").await;
    let open = submit(api, "token-a", "open").await;
    let cancelled = submit(api, "token-a", "cancelled").await;
    let path = format!("/v1/jobs/{}/cancel", cancelled.id);
    let (status, body) = call(api, "POST", &path, Some("token-a"), None).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    deliver_through_pass(&api.ground, &clock, delivered.id, 1).await;
    let state = poll_json(api, &format!("/v1/jobs/{}", delivered.id), "token-a", |v| {
        v["state"] == "delivered"
    })
    .await;
    assert_eq!(state["state"], "delivered");
    let expected = [
        ("delivered", delivered.id, "delivered"),
        ("open", open.id, ""),
        ("cancelled", cancelled.id, "cancelled"),
    ];
    // Before the restart, a used key with another request is refused and makes nothing.
    for (key, _, _) in expected {
        let (status, body) = call(
            api,
            "POST",
            "/v1/jobs",
            Some("token-a"),
            Some(with_priority(key, b"tile", 9)),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::CONFLICT, "idempotency_conflict".to_string()),
            "{key}"
        );
    }
    // Restarted: the core holds only the open job; the store answers for the others.
    let Flaky { api, .. } = f;
    let api = restarted(api._dir, clock.clone()).await;
    for (key, id, state) in expected {
        let (status, body) = call(
            &api,
            "POST",
            "/v1/jobs",
            Some("token-a"),
            Some(submission(key, b"tile")),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{key}: {}",
            String::from_utf8_lossy(&body)
        );
        let view: odc_ground::api::JobView = serde_json::from_slice(&body).expect("job");
        assert_eq!(view.id, id, "{key} names the same job");
        if !state.is_empty() {
            assert_eq!(view.state, state, "{key}");
        }
        let (status, body) = call(
            &api,
            "POST",
            "/v1/jobs",
            Some("token-a"),
            Some(with_priority(key, b"tile", 9)),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::CONFLICT, "idempotency_conflict".to_string()),
            "{key} with another request, after the restart"
        );
        // Another tenant's identical key is its own.
        let (status, _) = call(
            &api,
            "POST",
            "/v1/jobs",
            Some("token-b"),
            Some(submission(key, b"tile")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{key} for tenant b");
    }
    let (_, body) = call(&api, "GET", "/v1/jobs", Some("token-a"), None).await;
    let list: odc_ground::api::JobList = serde_json::from_slice(&body).expect("list");
    assert_eq!(list.jobs.len(), 3, "no second job for any key");
    // Billed once: one usage record.
    let a = f.a.id;
    assert_eq!(
        api.ground.store().usage_of(a).await.expect("usage").len(),
        1
    );
}

#[tokio::test]
async fn a_cancel_that_could_not_be_made_durable_changes_nothing() {
    let f = flaky(vec![pass()]).await;
    let api = &f.api;
    let job = submit(api, "token-a", "c").await;
    let path = format!("/v1/jobs/{}/cancel", job.id);
    f.fail.store(true, Ordering::SeqCst);
    let (status, body) = call(api, "POST", &path, Some("token-a"), None).await;
    assert_eq!(
        (status, code(&body)),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable".to_string()
        )
    );
    f.fail.store(false, Ordering::SeqCst);
    let (_, body) = call(
        api,
        "GET",
        &format!("/v1/jobs/{}", job.id),
        Some("token-a"),
        None,
    )
    .await;
    let view: serde_json::Value = serde_json::from_slice(&body).expect("job");
    assert_eq!(
        view["state"], "accepted",
        "the failed cancel took no effect"
    );
    // Still planned as before at the next replan (new jobs wait up to `replan_every`): not left held out of plans.
    api.ground
        .tick(f.clock.now() + Duration::from_mins(11))
        .await;
    let (_, body) = call(
        api,
        "GET",
        &format!("/v1/jobs/{}", job.id),
        Some("token-a"),
        None,
    )
    .await;
    let view: serde_json::Value = serde_json::from_slice(&body).expect("job");
    assert_eq!(view["state"], "planned");
    let audits = || async {
        api.ground
            .store()
            .audit_log()
            .await
            .expect("audit")
            .iter()
            .filter(|a| a.action == "cancel")
            .count()
    };
    assert_eq!(audits().await, 0, "nothing audited for a cancel not made");
    // Cancelled for real, then again: one audit entry, the same answer.
    for _ in 0..3 {
        let (status, body) = call(api, "POST", &path, Some("token-a"), None).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
    assert_eq!(audits().await, 1, "repeated cancels are not audited again");
    let stored = api
        .ground
        .store()
        .job(job.id)
        .await
        .expect("store")
        .expect("job");
    assert_eq!(stored.state.name(), "cancelled");
}

/// The plan in force's generation, as operators see it.
async fn generation<S: odc_ground::store::Store>(api: &Api<S>) -> u64 {
    let (_, body) = call(api, "GET", "/v1/ops/plan", Some("token-op"), None).await;
    let plan: serde_json::Value = serde_json::from_slice(&body).expect("plan");
    plan["generation"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn a_restarted_ground_numbers_its_plans_above_every_earlier_one() {
    let f = flaky(vec![pass()]).await;
    let clock = f.clock.clone();
    let mut before = 0;
    for k in 0..4 {
        submit(&f.api, "token-a", &format!("k{k}")).await;
        let at = clock.advance_to(clock.now() + Duration::from_mins(11));
        f.api.ground.tick(at).await;
        let g = generation(&f.api).await;
        assert!(g > before, "generations grow: {g} after {before}");
        before = g;
    }
    // Stored before the messages that could carry it leave.
    let mut stored = 0;
    for _ in 0..200 {
        stored = f
            .api
            .ground
            .store()
            .counter("plan_generation")
            .await
            .expect("counter");
        if stored >= before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(stored, before);
    let Flaky { api, .. } = f;
    let api = restarted(api._dir, clock.clone()).await;
    let at = clock.advance_to(clock.now() + Duration::from_mins(2));
    api.ground.tick(at).await;
    let after = generation(&api).await;
    assert!(
        after > before,
        "the restarted ground's plan {after} is above {before}"
    );
    // A node that holds a plan above the ground's (a store that lost its last generation) makes the ground plan
    // above that.
    let n1 = NodeId::new("n1").expect("id");
    let in_pass = clock.advance_to(t0() + Duration::from_mins(31));
    api.ground.tick(in_pass).await;
    api.ground.contact(&n1, true, false);
    api.ground.node_message(&n1, from_n1(1, hello(after + 100)));
    let later = clock.advance_to(in_pass + Duration::from_mins(2));
    api.ground.tick(later).await;
    let last = generation(&api).await;
    assert!(
        last > after + 100,
        "plan {last} above the node's {}",
        after + 100
    );
}

#[tokio::test]
async fn a_damaged_record_is_set_aside_and_alarmed_and_the_ground_still_starts() {
    let f = flaky(vec![pass()]).await;
    let damaged = submit(&f.api, "token-a", "damaged").await;
    let kept = submit(&f.api, "token-a", "kept").await;
    let clock = f.clock.clone();
    let Flaky { api, .. } = f;
    {
        let path = api._dir.path().join("ground.db");
        let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("raw");
        sqlx::query("UPDATE jobs SET record = '{\"id\": 1e999' WHERE id = ?")
            .bind(damaged.id.to_string())
            .execute(&raw)
            .await
            .expect("damage");
        raw.close().await;
    }
    let api = restarted(api._dir, clock).await;
    let (status, _) = call(
        &api,
        "GET",
        &format!("/v1/jobs/{}", kept.id),
        Some("token-a"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the rest is served");
    let (_, body) = call(&api, "GET", "/v1/ops/alarms", Some("token-op"), None).await;
    let alarms: serde_json::Value = serde_json::from_slice(&body).expect("alarms");
    let found = alarms.as_array().into_iter().flatten().any(|a| {
        a["code"] == "store_record_damaged" && a["subject"] == format!("jobs/{}", damaged.id)
    });
    assert!(found, "{alarms}");
}

#[tokio::test]
async fn closed_jobs_leave_the_cores_memory_once_durable_and_are_still_served() {
    let f = flaky(vec![pass()]).await;
    let (api, clock) = (&f.api, f.clock.clone());
    let delivered = submit(api, "token-a", "gone-from-memory").await;
    let cancelled = submit(api, "token-a", "cancelled-too").await;
    let (status, _) = call(
        api,
        "POST",
        &format!("/v1/jobs/{}/cancel", cancelled.id),
        Some("token-a"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let result = deliver_through_pass(&api.ground, &clock, delivered.id, 1).await;
    poll_json(api, &format!("/v1/jobs/{}", delivered.id), "token-a", |v| {
        v["state"] == "delivered"
    })
    .await;
    // The next tick forgets what the writer made durable.
    api.ground.tick(clock.now()).await;
    let (_, body) = call(api, "GET", "/metrics", Some("token-op"), None).await;
    let text = String::from_utf8_lossy(&body);
    let held: f64 = text
        .lines()
        .filter(|l| l.starts_with("odc_ground_jobs{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(held, 0.0, "the core holds no closed job:\n{text}");
    // Still served from the store, to their owner: state, result, the same key.
    let (_, body) = call(
        api,
        "GET",
        &format!("/v1/jobs/{}", delivered.id),
        Some("token-a"),
        None,
    )
    .await;
    let view: serde_json::Value = serde_json::from_slice(&body).expect("job");
    assert_eq!(view["state"], "delivered");
    let (status, body) = call(
        api,
        "GET",
        &format!("/v1/jobs/{}/result", delivered.id),
        Some("token-a"),
        None,
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, result));
    for (key, id) in [
        ("gone-from-memory", delivered.id),
        ("cancelled-too", cancelled.id),
    ] {
        let (status, body) = call(
            api,
            "POST",
            "/v1/jobs",
            Some("token-a"),
            Some(submission(key, b"tile")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{key}");
        let v: odc_ground::api::JobView = serde_json::from_slice(&body).expect("job");
        assert_eq!(v.id, id, "{key}");
    }
    let (_, body) = call(api, "GET", "/v1/jobs", Some("token-a"), None).await;
    let list: odc_ground::api::JobList = serde_json::from_slice(&body).expect("list");
    assert_eq!(list.jobs.len(), 2);
    // Billed once.
    let a = f.a.id;
    assert_eq!(
        api.ground.store().usage_of(a).await.expect("usage").len(),
        1
    );
}
