//! What the service tells about itself: every request timed and counted by route, and the Prometheus exposition.

use super::*;

/// Times and counts every request by its route template.
pub(crate) async fn track<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    matched: Option<MatchedPath>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let route = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    g.metrics.observe(&route, status, seconds);
    tracing::info!(
        target: "odc::api",
        %method,
        route = %route,
        status,
        ms = seconds * 1e3,
        "request"
    );
    response
}

/// Prometheus text exposition: jobs by state, tenants, plan generation and replans (read from the core now),
/// API requests and latency, group commits.
pub(crate) async fn metrics<S: Store>(
    State(g): State<Arc<Ground<S>>>,
) -> Result<Response, ApiError> {
    // Scrapes are answered one at a time, `SCRAPE_EVERY` apart: a scraper in a tight loop then waits (costing
    // nothing) instead of taking the processor from tenants. Prometheus scrapes a target every 15 s or so.
    let mut last = g.scrape_pace.lock().await;
    if let Some(at) = *last {
        tokio::time::sleep_until(at + SCRAPE_EVERY).await;
    }
    let mut out = {
        // What is read from the core is read at most once per `CORE_METRICS_EVERY`, however many scrape: a scrape
        // then costs a copy of text, and the core's lock is not taken for it.
        let mut cached = relock(&g.core_metrics);
        match &*cached {
            Some((at, text)) if at.elapsed() < CORE_METRICS_EVERY => text.clone(),
            _ => {
                let text = core_metrics(&g)?;
                *cached = Some((std::time::Instant::now(), text.clone()));
                text
            }
        }
    };
    g.metrics.render(&mut out);
    *last = Some(tokio::time::Instant::now());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

/// The least time between two answers of `/metrics`.
pub(crate) const SCRAPE_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// How often `/metrics` reads the core at most.
pub(crate) const CORE_METRICS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The gauges read from the core (jobs by state, tenants, contacts, relays, lost nodes, alarms, plans).
pub(crate) fn core_metrics<S: Store>(g: &Ground<S>) -> Result<String, ApiError> {
    let mut out = String::new();
    {
        let core = g.core()?;
        let mut by_state: std::collections::BTreeMap<&'static str, f64> =
            std::collections::BTreeMap::new();
        for j in core.jobs() {
            *by_state.entry(j.state.name()).or_default() += 1.0;
        }
        let states: Vec<(String, f64)> = by_state
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        gauge(
            &mut out,
            "odc_ground_jobs",
            "Jobs held by the ground core, by state.",
            "state",
            &states,
        );
        gauge(
            &mut out,
            "odc_ground_tenants",
            "Tenants.",
            "",
            &[(String::new(), core.tenants().count() as f64)],
        );
        gauge(
            &mut out,
            "odc_ground_nodes_in_contact",
            "Nodes with a link open now.",
            "",
            &[(String::new(), g.links.in_contact() as f64)],
        );
        let (inputs, results) = core.relay_counts();
        gauge(
            &mut out,
            "odc_ground_relayed",
            "Inputs handed to a neighbour to relay over an ISL, and results that came down through one.",
            "what",
            &[
                ("inputs".into(), inputs as f64),
                ("results".into(), results as f64),
            ],
        );
        gauge(
            &mut out,
            "odc_ground_nodes_lost",
            "Nodes taken for lost (silent through their passes).",
            "",
            &[(String::new(), core.lost_nodes().count() as f64)],
        );
        let mut by_code: std::collections::BTreeMap<String, f64> =
            std::collections::BTreeMap::new();
        for a in core.alarms(g.clock.now()) {
            *by_code.entry(a.code).or_default() += 1.0;
        }
        gauge(
            &mut out,
            "odc_ground_alarms",
            "Alarms raised now, by code.",
            "code",
            &by_code.into_iter().collect::<Vec<_>>(),
        );
        let generation = core.plan().map_or(0, |p| p.generation);
        gauge(
            &mut out,
            "odc_ground_plan_generation",
            "Generation of the plan in force.",
            "",
            &[(String::new(), generation as f64)],
        );
        gauge(
            &mut out,
            "odc_ground_replans",
            "Replans since start.",
            "",
            &[(String::new(), core.replans().len() as f64)],
        );
    }
    Ok(out)
}
