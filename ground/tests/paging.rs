//! Listings a page at a time: a tenant's jobs newest first with a cursor to the next page, the audit log's latest
//! entries with their numbers, and a bad cursor refused with a JSON 400.

mod common;

use axum::http::StatusCode;
use common::*;
use odc_ground::api::JobList;

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
