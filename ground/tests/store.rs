//! The embedded store: what it says is written survives closing and reopening the file; batches commit whole;
//! a delivery is metered once however often it is written; tokens are found only by their hash; a damaged record
//! is an error that names it.

use odc_ground::store::{
    AuditEntry, DeliveryWrite, JobWrite, SqliteStore, Store, StoreError, TenantRecord,
};
use odc_model::id::{IdGenerator, ModelId, NodeId, StationId};
use odc_model::job::{BlobRef, Job, JobEvent, JobSpec, JobState, Priority};
use odc_model::tenant::{Quota, Tenant, Usage, UsageRecord};
use odc_model::time::{Duration, Instant};

fn t0() -> Instant {
    Instant::from_unix_ms(1_780_000_000_000)
}

fn tenant(ids: &mut IdGenerator, name: &str) -> Tenant {
    Tenant {
        id: ids.tenant(t0()),
        name: name.into(),
        quota: Quota {
            accelerator_s: 1000.0,
            energy_wh: 100.0,
            uplink_bytes: 1 << 30,
            downlink_bytes: 1 << 30,
            period: Duration::from_hours(24),
        },
        share_weight: 1,
    }
}

fn accepted(ids: &mut IdGenerator, tenant: &Tenant, key: &str, input: &[u8]) -> Job {
    let spec = JobSpec {
        tenant: tenant.id,
        model: ModelId::new("m").expect("id"),
        input: BlobRef::of(input),
        output_bound_bytes: 64,
        deadline: t0() + Duration::from_hours(6),
        priority: Priority::new(5).expect("priority"),
        idempotency_key: key.into(),
    };
    let mut job = Job::new(ids.job(t0()), spec, t0());
    job.apply(&JobEvent::Accept, t0()).expect("accept");
    job
}

fn audit(who: &str, action: &str, target: &str) -> AuditEntry {
    AuditEntry {
        at: t0(),
        who: who.into(),
        action: action.into(),
        target: target.into(),
    }
}

#[tokio::test]
async fn what_was_written_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ground.db");
    let mut ids = IdGenerator::seeded(1);
    let a = tenant(&mut ids, "a");
    let b = tenant(&mut ids, "b");
    let jobs: Vec<JobWrite> = (0..50)
        .map(|k| JobWrite {
            job: accepted(
                &mut ids,
                if k % 2 == 0 { &a } else { &b },
                &format!("k{k}"),
                &[k as u8; 100],
            ),
            input: Some(vec![k as u8; 100]),
            fingerprint: Some([k as u8; 32]),
        })
        .collect();
    {
        let store = SqliteStore::open(&path).await.expect("open");
        for (t, token) in [(&a, [1u8; 32]), (&b, [2u8; 32])] {
            store
                .put_tenant(
                    &TenantRecord {
                        tenant: t.clone(),
                        token_hash: token,
                    },
                    &[],
                )
                .await
                .expect("tenant");
        }
        let entries: Vec<AuditEntry> = jobs
            .iter()
            .map(|w| {
                audit(
                    &format!("tenant:{}", w.job.spec.tenant),
                    "submit",
                    &w.job.id.to_string(),
                )
            })
            .collect();
        store.put_jobs(&jobs, &entries).await.expect("jobs");
        store.close().await;
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    let found = store.tenant_by_token([2u8; 32]).await.expect("query");
    assert_eq!(found.map(|r| r.tenant), Some(b.clone()));
    assert_eq!(store.tenant_by_token([3u8; 32]).await.expect("query"), None);
    assert_eq!(store.tenants().await.expect("tenants").len(), 2);
    let open = store.open_jobs().await.expect("open jobs");
    assert_eq!(open.len(), 50, "every acknowledged job is there");
    for (job, input) in &open {
        assert_eq!(BlobRef::of(input), job.spec.input, "with its input");
        assert_eq!(job.state, JobState::Accepted);
    }
    let of_a = store.jobs_of(a.id, None, 1000).await.expect("jobs of a");
    assert_eq!(of_a.len(), 25);
    assert!(of_a.iter().all(|j| j.spec.tenant == a.id));
    assert_eq!(
        store.jobs_of(a.id, None, 3).await.expect("limited").len(),
        3
    );
    assert_eq!(store.audit_log().await.expect("audit").len(), 50);
    let first = &jobs[0].job;
    assert_eq!(
        store.job(first.id).await.expect("job").as_ref(),
        Some(first)
    );
    // Idempotency keys outlive the process, with the request's fingerprint; another tenant's key is its own.
    let keyed = store
        .job_for_key(first.spec.tenant, "k0")
        .await
        .expect("key")
        .expect("the key names its job");
    assert_eq!(
        (keyed.job.id, keyed.fingerprint),
        (first.id, Some([0u8; 32]))
    );
    assert_eq!(store.job_for_key(b.id, "k0").await.expect("key"), None);
    // Counters only grow.
    assert_eq!(store.counter("plan_generation").await.expect("counter"), 0);
    store
        .raise_counter("plan_generation", 7)
        .await
        .expect("raise");
    store
        .raise_counter("plan_generation", 3)
        .await
        .expect("raise");
    assert_eq!(store.counter("plan_generation").await.expect("counter"), 7);
    store.close().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for entry in std::fs::read_dir(dir.path()).expect("dir") {
            let entry = entry.expect("entry");
            let mode = entry.metadata().expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{:?} must be owner-only", entry.file_name());
        }
    }
}

#[tokio::test]
async fn a_delivery_closes_the_job_and_is_metered_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("g.db"))
        .await
        .expect("open");
    let mut ids = IdGenerator::seeded(2);
    let t = tenant(&mut ids, "t");
    let input = b"tile".to_vec();
    let mut job = accepted(&mut ids, &t, "k", &input);
    store
        .put_jobs(
            &[JobWrite {
                job: job.clone(),
                input: Some(input),
                fingerprint: None,
            }],
            &[],
        )
        .await
        .expect("job");
    let result = vec![7u8; 16];
    let output = BlobRef::of(&result);
    let node = NodeId::new("n1").expect("id");
    for event in [
        JobEvent::Plan {
            plan: ids.plan(t0()),
            batch: ids.batch(t0()),
            node: node.clone(),
        },
        JobEvent::Uplink { node: node.clone() },
        JobEvent::Finish {
            output,
            accelerator_s: 2.0,
            energy_wh: 0.1,
        },
        JobEvent::Downlink {
            station: StationId::new("gs").expect("id"),
            output,
        },
        JobEvent::Deliver,
    ] {
        job.apply(&event, t0()).expect("transition");
    }
    let usage = UsageRecord {
        job: job.id,
        tenant: t.id,
        node: Some(node),
        at: t0(),
        usage: Usage {
            accelerator_s: 2.0,
            energy_wh: 0.1,
            uplink_bytes: 4,
            downlink_bytes: 16,
        },
    };
    let delivery = DeliveryWrite {
        job: job.clone(),
        result: result.clone(),
        usage: usage.clone(),
    };
    store
        .put_deliveries(std::slice::from_ref(&delivery))
        .await
        .expect("delivery");
    // Again, and twice in one batch: still one result and one bill.
    store
        .put_deliveries(&[delivery.clone(), delivery])
        .await
        .expect("again");
    assert_eq!(store.result(job.id).await.expect("result"), Some(result));
    assert_eq!(store.usage_of(t.id).await.expect("usage"), vec![usage]);
    assert!(
        store.open_jobs().await.expect("open").is_empty(),
        "a delivered job is closed"
    );
}

#[tokio::test]
async fn a_damaged_record_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("g.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let mut ids = IdGenerator::seeded(3);
    let t = tenant(&mut ids, "t");
    let job = accepted(&mut ids, &t, "k", b"x");
    store
        .put_jobs(
            &[JobWrite {
                job: job.clone(),
                input: None,
                fingerprint: None,
            }],
            &[],
        )
        .await
        .expect("job");
    store.close().await;
    {
        let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("raw");
        sqlx::query("UPDATE jobs SET record = 'not a job'")
            .execute(&raw)
            .await
            .expect("damage");
        raw.close().await;
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    match store.job(job.id).await {
        Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, job.id.to_string()),
        other => panic!("expected a corrupt-record error, got {other:?}"),
    }
    // What a restart reads sets the damaged record aside, by name, rather than refusing to start.
    assert!(store.open_jobs().await.expect("open jobs").is_empty());
    let set_aside = store.quarantined().await.expect("quarantine");
    assert_eq!(set_aside.len(), 1);
    assert_eq!(
        (set_aside[0].table.as_str(), set_aside[0].key.clone()),
        ("jobs", job.id.to_string())
    );
    assert!(store.open_jobs().await.expect("again").is_empty());
    assert_eq!(store.quarantined().await.expect("quarantine").len(), 1);
}

#[tokio::test]
async fn a_usage_record_with_a_number_json_cannot_hold_is_refused_by_name_and_a_damaged_one_set_aside()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("g.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let mut ids = IdGenerator::seeded(4);
    let t = tenant(&mut ids, "t");
    let job = accepted(&mut ids, &t, "k", b"x");
    let usage = |accelerator_s: f64| odc_model::tenant::UsageRecord {
        job: job.id,
        tenant: t.id,
        node: None,
        at: job.submitted_at,
        usage: odc_model::tenant::Usage {
            accelerator_s,
            energy_wh: 0.0,
            uplink_bytes: 1,
            downlink_bytes: 1,
        },
    };
    let write = |u| odc_ground::store::DeliveryWrite {
        job: job.clone(),
        result: b"r".to_vec(),
        usage: u,
    };
    match store.put_deliveries(&[write(usage(f64::INFINITY))]).await {
        Err(StoreError::Unstorable { key, .. }) => assert_eq!(key, job.id.to_string()),
        other => panic!("expected the record refused, got {other:?}"),
    }
    assert!(
        store.usage_of(t.id).await.expect("usage").is_empty(),
        "nothing written"
    );
    store
        .put_deliveries(&[write(usage(1.5))])
        .await
        .expect("stored");
    store.close().await;
    {
        let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("raw");
        sqlx::query("UPDATE usage SET record = '{\"accelerator_s\": 1e999}'")
            .execute(&raw)
            .await
            .expect("damage");
        raw.close().await;
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    assert!(
        store
            .usage_of(t.id)
            .await
            .expect("usage still reads")
            .is_empty()
    );
    let set_aside = store.quarantined().await.expect("quarantine");
    assert_eq!(set_aside.len(), 1);
    assert_eq!(set_aside[0].table, "usage");
}

#[tokio::test]
async fn an_older_record_of_a_job_never_replaces_a_newer_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("g.db"))
        .await
        .expect("open");
    let mut ids = IdGenerator::seeded(3);
    let t = tenant(&mut ids, "t");
    let job = accepted(&mut ids, &t, "k", b"in");
    store
        .put_jobs(
            &[JobWrite {
                job: job.clone(),
                input: Some(b"in".to_vec()),
                fingerprint: None,
            }],
            &[],
        )
        .await
        .expect("submit");
    let mut cancelled = job.clone();
    cancelled.apply(&JobEvent::Cancel, t0()).expect("cancel");
    store
        .put_jobs(
            &[JobWrite {
                job: cancelled,
                input: Some(Vec::new()),
                fingerprint: None,
            }],
            &[],
        )
        .await
        .expect("cancel");
    // A writer that captured the job before the cancellation lands last: the cancellation stays.
    store
        .put_jobs(
            &[JobWrite {
                job: job.clone(),
                input: None,
                fingerprint: None,
            }],
            &[],
        )
        .await
        .expect("late write");
    let stored = store.job(job.id).await.expect("read").expect("job");
    assert_eq!(stored.state, JobState::Cancelled);
    assert!(store.open_jobs().await.expect("open").is_empty());
}

#[tokio::test]
async fn a_tenant_with_the_largest_counts_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("g.db");
    let mut ids = IdGenerator::seeded(6);
    let mut t = tenant(&mut ids, "big");
    t.quota.uplink_bytes = u64::MAX;
    t.quota.downlink_bytes = u64::MAX;
    {
        let store = SqliteStore::open(&path).await.expect("open");
        store
            .put_tenant(
                &TenantRecord {
                    tenant: t.clone(),
                    token_hash: [9u8; 32],
                },
                &[],
            )
            .await
            .expect("tenant");
        store.close().await;
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    let all = store.tenants().await.expect("tenants");
    assert_eq!(all.len(), 1, "not set aside");
    assert_eq!(all[0].tenant, t);
    assert!(store.quarantined().await.expect("quarantine").is_empty());
}

/// `job` run on n1 and delivered at `at` with `result`.
fn delivered(ids: &mut IdGenerator, mut job: Job, result: &[u8], at: Instant) -> DeliveryWrite {
    let output = BlobRef::of(result);
    let node = NodeId::new("n1").expect("id");
    for event in [
        JobEvent::Plan {
            plan: ids.plan(at),
            batch: ids.batch(at),
            node: node.clone(),
        },
        JobEvent::Uplink { node: node.clone() },
        JobEvent::Finish {
            output,
            accelerator_s: 1.0,
            energy_wh: 0.1,
        },
        JobEvent::Downlink {
            station: StationId::new("gs").expect("id"),
            output,
        },
        JobEvent::Deliver,
    ] {
        job.apply(&event, at).expect("transition");
    }
    DeliveryWrite {
        usage: UsageRecord {
            job: job.id,
            tenant: job.spec.tenant,
            node: Some(node),
            at,
            usage: Usage {
                accelerator_s: 1.0,
                energy_wh: 0.1,
                uplink_bytes: 4,
                downlink_bytes: result.len() as u64,
            },
        },
        job,
        result: result.to_vec(),
    }
}

#[tokio::test]
async fn retention_deletes_by_age_in_batches_and_gives_the_space_back() {
    use odc_ground::store::Retention;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("g.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let mut ids = IdGenerator::seeded(4);
    let t = tenant(&mut ids, "t");
    // 300 jobs delivered with 64 KiB results, and one left open; each submission audited.
    let result = vec![5u8; 64 << 10];
    let mut deliveries = Vec::new();
    let mut writes = Vec::new();
    for k in 0..300 {
        let job = accepted(&mut ids, &t, &format!("k{k}"), b"tile");
        writes.push(JobWrite {
            job: job.clone(),
            input: Some(b"tile".to_vec()),
            fingerprint: Some([k as u8; 32]),
        });
        deliveries.push(delivered(&mut ids, job, &result, t0()));
    }
    let open = accepted(&mut ids, &t, "open", b"tile");
    writes.push(JobWrite {
        job: open.clone(),
        input: Some(b"tile".to_vec()),
        fingerprint: Some([1; 32]),
    });
    let audits: Vec<_> = (0..301).map(|_| audit("tenant:t", "submit", "j")).collect();
    store.put_jobs(&writes, &audits).await.expect("jobs");
    store.put_deliveries(&deliveries).await.expect("deliveries");
    let keep = Retention {
        results_days: 1.0,
        jobs_days: 2.0,
        audit_days: 3.0,
    };
    // Nothing is old enough yet.
    let p = store
        .purge(t0() + Duration::from_hours(23), &keep, 100)
        .await
        .expect("purge");
    assert_eq!(p.total(), 0);
    let size = || {
        std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum::<u64>()
    };
    store.reclaim().await.expect("checkpoint");
    let full = size();
    // A day on: the results go, a batch at a time; the records stay.
    let day = t0() + Duration::from_hours(25);
    let mut results = 0;
    loop {
        let p = store.purge(day, &keep, 100).await.expect("purge");
        assert!(p.results <= 100 && p.jobs == 0 && p.audit == 0);
        results += p.results;
        if p.results < 100 {
            break;
        }
    }
    assert_eq!(results, 300);
    let first = deliveries[0].job.id;
    assert_eq!(store.result(first).await.expect("read"), None);
    assert!(store.job(first).await.expect("read").is_some());
    let freed = store.reclaim().await.expect("reclaim");
    assert!(
        freed >= 300 * (60 << 10),
        "the results' pages are given back: {freed} bytes"
    );
    assert!(
        size() + 300 * (60 << 10) <= full,
        "the files shrink: {full} → {}",
        size()
    );
    // Two days on: the closed jobs and their keys go; the open job stays, with its key.
    let p = store
        .purge(t0() + Duration::from_hours(49), &keep, 1_000)
        .await
        .expect("purge");
    assert_eq!((p.jobs, p.audit, p.usage), (300, 0, 0));
    assert!(store.job(first).await.expect("read").is_none());
    assert!(store.job_for_key(t.id, "k0").await.expect("read").is_none());
    assert_eq!(
        store
            .job_for_key(t.id, "open")
            .await
            .expect("read")
            .map(|k| k.job.id),
        Some(open.id)
    );
    assert_eq!(store.open_job_records().await.expect("open").len(), 1);
    // Three days on: the audit log and the billing records.
    let p = store
        .purge(t0() + Duration::from_hours(73), &keep, 1_000)
        .await
        .expect("purge");
    assert_eq!((p.audit, p.usage), (301, 300));
    assert!(store.usage_of(t.id).await.expect("usage").is_empty());
}

#[tokio::test]
async fn a_store_made_before_retention_is_upgraded_in_place_and_purged_by_age() {
    use odc_ground::store::Retention;
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    let mut ids = IdGenerator::seeded(6);
    let t = tenant(&mut ids, "t");
    let job = accepted(&mut ids, &t, "old", b"tile");
    let d = delivered(&mut ids, job, b"result", t0());
    {
        // The schema as version 2 left it: no close times, no incremental vacuum.
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut c = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        for statement in [
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, closed INTEGER NOT NULL,
             record TEXT NOT NULL, input BLOB, result BLOB)",
            "CREATE TABLE usage (job TEXT PRIMARY KEY, tenant TEXT NOT NULL, record TEXT NOT NULL)",
            "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
             who TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL)",
            "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
            "INSERT INTO counters VALUES ('schema_version', 2)",
        ] {
            sqlx::query(statement)
                .execute(&mut c)
                .await
                .expect("old schema");
        }
        sqlx::query("INSERT INTO jobs VALUES (?, ?, 1, ?, NULL, ?)")
            .bind(d.job.id.to_string())
            .bind(t.id.to_string())
            .bind(serde_json::to_string(&d.job).expect("json"))
            .bind(&d.result)
            .execute(&mut c)
            .await
            .expect("old job");
        sqlx::query(
            "INSERT INTO audit (at_ms, who, action, target) VALUES (?, 'tenant:t', 'submit', 'j')",
        )
        .bind((t0() + Duration::from_hours(1)).unix_ms())
        .execute(&mut c)
        .await
        .expect("old audit");
    }
    let store = SqliteStore::open(&path).await.expect("upgraded");
    let mode: i64 = {
        let url = format!("sqlite://{}", path.display());
        let mut c = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&mut c)
            .await
            .expect("mode")
    };
    assert_eq!(mode, 2, "rewritten once for incremental vacuum");
    assert_eq!(
        store.result(d.job.id).await.expect("read"),
        Some(d.result.clone())
    );
    let keep = Retention {
        results_days: 1.0,
        jobs_days: 1.0,
        audit_days: 1.0,
    };
    // The old closed job counts from the latest audit entry (the service's own clock), not from the upgrade's.
    let p = store
        .purge(t0() + Duration::from_hours(24), &keep, 100)
        .await
        .expect("purge");
    assert_eq!(p.total(), 0);
    let p = store
        .purge(t0() + Duration::from_hours(26), &keep, 100)
        .await
        .expect("purge");
    assert_eq!((p.results, p.jobs, p.audit), (1, 1, 1));
}
