//! The ground service's metrics, rendered in the Prometheus text format at `GET /metrics`. Counters and the
//! latency histogram are atomics updated on the request path; gauges (jobs by state, tenants, plan generation) are
//! read from the core at scrape time, so they can never drift from it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the API latency histogram, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

/// Request counts by route and status class, and the latency histogram over all requests.
#[derive(Default)]
pub struct ApiMetrics {
    /// (route, status class 2..5) → count; routes are the fixed templates, so the set is small.
    requests: std::sync::Mutex<std::collections::BTreeMap<(String, u16), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum of latencies, microseconds.
    sum_us: AtomicU64,
    /// Store transactions committed by the group-commit writer, and the submissions they carried.
    pub commits: AtomicU64,
    /// Submissions made durable.
    pub committed_jobs: AtomicU64,
    /// Node contacts opened over the links.
    pub contacts: AtomicU64,
    /// Messages nodes delivered.
    pub node_messages: AtomicU64,
    /// Failed attempts to store a delivered result (each is retried).
    pub store_failures: AtomicU64,
    /// Whether the writer is retrying a delivery now.
    pub store_retrying: std::sync::atomic::AtomicBool,
    /// Whether the last group commit of submissions failed (cleared by the next that succeeds).
    pub commit_failing: std::sync::atomic::AtomicBool,
    /// Records the writer could not store at all (refused by name; not retried).
    pub unstorable: AtomicU64,
    /// Seconds the last full replan took off the core (an f64's bits).
    pub plan_seconds: AtomicU64,
    /// Seconds the last repair of the plan in force took off the core (an f64's bits).
    pub repair_seconds: AtomicU64,
    /// Rows retention deleted: results, jobs, audit entries, billing records.
    pub purged: [AtomicU64; 4],
    /// Bytes of the store's files given back to the file system after purges.
    pub reclaimed_bytes: AtomicU64,
}

impl ApiMetrics {
    /// Records one request.
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route.to_string(), status / 100)).or_default() += 1;
        }
        for (i, upper) in BUCKETS.iter().enumerate() {
            if seconds <= *upper {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Appends this part of the exposition.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP odc_ground_api_requests_total API requests by route and status class.\n# TYPE odc_ground_api_requests_total counter"
        );
        if let Ok(r) = self.requests.lock() {
            for ((route, class), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "odc_ground_api_requests_total{{route=\"{route}\",status=\"{class}xx\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP odc_ground_api_request_seconds API request latency.\n# TYPE odc_ground_api_request_seconds histogram"
        );
        for (i, upper) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "odc_ground_api_request_seconds_bucket{{le=\"{upper}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "odc_ground_api_request_seconds_bucket{{le=\"+Inf\"}} {count}\nodc_ground_api_request_seconds_sum {}\nodc_ground_api_request_seconds_count {count}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP odc_ground_store_commits_total Store transactions of the group-commit writer.\n# TYPE odc_ground_store_commits_total counter\nodc_ground_store_commits_total {}",
            self.commits.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP odc_ground_store_committed_jobs_total Job writes made durable by them.\n# TYPE odc_ground_store_committed_jobs_total counter\nodc_ground_store_committed_jobs_total {}",
            self.committed_jobs.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP odc_ground_contacts_total Node contacts opened over the links.\n# TYPE odc_ground_contacts_total counter\nodc_ground_contacts_total {}",
            self.contacts.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP odc_ground_node_messages_total Messages delivered by nodes.\n# TYPE odc_ground_node_messages_total counter\nodc_ground_node_messages_total {}",
            self.node_messages.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP odc_ground_store_failures_total Failed attempts to store a delivered result.\n# TYPE odc_ground_store_failures_total counter\nodc_ground_store_failures_total {}\n# HELP odc_ground_log_lines_dropped_total Log lines that could not be written.\n# TYPE odc_ground_log_lines_dropped_total counter\nodc_ground_log_lines_dropped_total {}",
            self.store_failures.load(Ordering::Relaxed),
            crate::logs::dropped()
        );
        for (kind, n) in ["results", "jobs", "audit", "usage"]
            .iter()
            .zip(&self.purged)
        {
            if *kind == "results" {
                let _ = writeln!(
                    out,
                    "# HELP odc_ground_purged_total Rows retention deleted, by kind.\n# TYPE odc_ground_purged_total counter"
                );
            }
            let _ = writeln!(
                out,
                "odc_ground_purged_total{{kind=\"{kind}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let http = crate::http::counters();
        for (name, help, v) in [
            (
                "odc_ground_store_reclaimed_bytes_total",
                "Bytes of the store's files given back to the file system after purges.",
                self.reclaimed_bytes.load(Ordering::Relaxed),
            ),
            (
                "odc_ground_http_connections_refused_total",
                "Connections closed at once: the server was at its connection cap.",
                http.connections_refused.load(Ordering::Relaxed),
            ),
            (
                "odc_ground_http_connections_refused_address_total",
                "Connections closed at once: their address was at its cap.",
                http.connections_refused_address.load(Ordering::Relaxed),
            ),
            (
                "odc_ground_http_requests_shed_total",
                "Requests answered 503 overloaded: the server was handling its most.",
                http.requests_shed.load(Ordering::Relaxed),
            ),
            (
                "odc_ground_http_requests_timed_out_total",
                "Requests that ran past their time limit.",
                http.requests_timed_out.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP odc_ground_http_connections_open Connections open now.\n# TYPE odc_ground_http_connections_open gauge\nodc_ground_http_connections_open {}\n# HELP odc_ground_last_replan_seconds Wall time the last full replan took (off the core's lock).\n# TYPE odc_ground_last_replan_seconds gauge\nodc_ground_last_replan_seconds {}\n# HELP odc_ground_last_repair_seconds Wall time the last repair of the plan in force took (new jobs placed, changes applied; off the core's lock).\n# TYPE odc_ground_last_repair_seconds gauge\nodc_ground_last_repair_seconds {}",
            http.connections_open.load(Ordering::Relaxed),
            f64::from_bits(self.plan_seconds.load(Ordering::Relaxed)),
            f64::from_bits(self.repair_seconds.load(Ordering::Relaxed))
        );
    }
}

/// Appends a gauge with one label.
pub fn gauge(out: &mut String, name: &str, help: &str, label: &str, values: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (l, v) in values {
        if label.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{label}=\"{l}\"}} {v}");
        }
    }
}
