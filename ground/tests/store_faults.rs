//! The tenant API when the store fails: a full disk refuses new jobs with a clear error and loses none already
//! accepted, and a delivered job shows delivered only once its result is stored.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt as _;
use odc_ground::api::JobList;
use odc_ground::store::Store;
use odc_model::id::{NodeId, StationId};
use odc_model::time::Duration;
use tower::ServiceExt as _;

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
