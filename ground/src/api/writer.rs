//! The writers between the core and the store: group commits of submissions, then what the core produced (job records, results) stored before the messages behind them leave.

use super::*;

pub(crate) struct Pending {
    pub(crate) write: JobWrite,
    pub(crate) audit: AuditEntry,
    pub(crate) done: oneshot::Sender<Result<(), String>>,
}

/// What the core produced that must leave it: results to store, then messages for nodes (in that order: a node
/// hears that its result arrived only once the result is durable).
#[derive(Default)]
pub(crate) struct Outbound {
    /// Job records a restart must not forget (an input sent, a node's report, an expiry).
    pub(crate) jobs: Vec<Job>,
    pub(crate) deliveries: Vec<DeliveryWrite>,
    pub(crate) messages: Vec<(NodeId, Envelope)>,
    /// The highest plan generation issued: stored before any message that may carry it leaves.
    pub(crate) generation: u64,
}

impl Outbound {
    /// Takes everything the core has for the outside.
    pub(crate) fn drain(core: &mut GroundCore) -> Outbound {
        let mut out = Outbound {
            jobs: core.take_dirty(),
            generation: core.generation(),
            ..Outbound::default()
        };
        while let Some(d) = core.poll_delivery() {
            if let Some(job) = core.job(d.job).cloned() {
                out.deliveries.push(DeliveryWrite {
                    job,
                    result: d.result,
                    usage: d.usage,
                });
            }
        }
        while let Some(m) = core.poll_outgoing() {
            out.messages.push(m);
        }
        out
    }
}

/// What the core asked of the store: inputs a node in contact is due, and jobs nodes reported that the core forgot.
#[derive(Default)]
pub(crate) struct Fetch {
    pub(crate) inputs: Vec<JobId>,
    pub(crate) lookups: Vec<(NodeId, JobId)>,
}

impl Fetch {
    /// Takes what the core asks of the store.
    pub(crate) fn drain(core: &mut GroundCore) -> Option<Fetch> {
        let f = Fetch {
            inputs: core.take_wanted_inputs(),
            lookups: core.take_lookups(),
        };
        (!f.inputs.is_empty() || !f.lookups.is_empty()).then_some(f)
    }
}

/// Answers what the core asks of the store, off the core's lock: loads the inputs and the forgotten jobs'
/// records, then hands them to the core and sends on what it produced. Ends with the service.
pub(crate) async fn fetch_loop<S: Store>(
    ground: std::sync::Weak<Ground<S>>,
    mut rx: mpsc::UnboundedReceiver<Fetch>,
) {
    while let Some(f) = rx.recv().await {
        let Some(ground) = ground.upgrade() else {
            break;
        };
        let store = ground.store.clone();
        let inputs = if f.inputs.is_empty() {
            Vec::new()
        } else {
            let mut pause = std::time::Duration::from_millis(50);
            loop {
                match store.inputs(&f.inputs).await {
                    Ok(found) => break found,
                    Err(e) => {
                        // A read that failed says nothing about the input: ask again rather than fail the job.
                        ground
                            .metrics
                            .store_failures
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "inputs could not be read from the store; retrying");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(std::time::Duration::from_secs(5));
                    }
                }
            }
        };
        let mut closed = Vec::new();
        for (node, id) in f.lookups {
            match store.job(id).await {
                Ok(Some(job)) => closed.push((node, job)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, job = %id, "a reported job could not be looked up")
                }
            }
        }
        let now = ground.clock.now();
        let out = {
            let mut core = relock(&ground.core);
            if !f.inputs.is_empty() {
                core.provide_inputs(inputs, now);
            }
            for (node, job) in &closed {
                core.remind_closed(node, job, now);
            }
            ground.drain(&mut core)
        };
        ground.send_out(out);
    }
}

/// Commits queued writes in batches: one transaction for everything waiting, then every waiter is told.
pub(crate) async fn commit_loop<S: Store>(
    store: Arc<S>,
    mut rx: mpsc::Receiver<Pending>,
    metrics: Arc<ApiMetrics>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut writes = Vec::with_capacity(batch.len());
        let mut audits = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        for p in batch.drain(..) {
            writes.push(p.write);
            audits.push(p.audit);
            waiters.push(p.done);
        }
        let outcome = store
            .put_jobs(&writes, &audits)
            .await
            .map_err(|e| e.to_string());
        metrics
            .commit_failing
            .store(outcome.is_err(), Ordering::Relaxed);
        if outcome.is_ok() {
            metrics.commits.fetch_add(1, Ordering::Relaxed);
            metrics
                .committed_jobs
                .fetch_add(writes.len() as u64, Ordering::Relaxed);
        }
        for w in waiters {
            let _ = w.send(outcome.clone());
        }
    }
}

/// Retries a write with a growing pause until the store takes it, raising `store_failing` meanwhile.
pub(crate) async fn until_stored<F, W>(metrics: &ApiMetrics, what: &str, mut write: W)
where
    W: FnMut() -> F,
    F: Future<Output = Result<(), StoreError>>,
{
    let mut pause = std::time::Duration::from_millis(50);
    while let Err(e) = write().await {
        if let StoreError::Unstorable { key, why } = &e {
            // Retrying cannot help, and would hold up every write behind it.
            metrics.unstorable.fetch_add(1, Ordering::Relaxed);
            tracing::error!(key, why, "{what} cannot be stored at all; left out");
            break;
        }
        metrics.store_retrying.store(true, Ordering::Relaxed);
        metrics.store_failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "{what} could not be stored; retrying");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(5));
    }
    metrics.store_retrying.store(false, Ordering::Relaxed);
}

/// The writer of what the core produced: job records and each delivery are committed (retried, with a growing pause, until the
/// store takes it), then the messages behind it go to their nodes.
pub(crate) async fn outbound_loop<S: Store>(
    store: Arc<S>,
    links: Arc<Links>,
    metrics: Arc<ApiMetrics>,
    storing: Arc<Mutex<std::collections::HashSet<JobId>>>,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    closed: mpsc::UnboundedSender<Vec<JobId>>,
) {
    let mut generation_stored = 0;
    while let Some(out) = rx.recv().await {
        if out.generation > generation_stored {
            // A restarted ground numbers its plans above this, so nodes that hold these plans take its next ones.
            until_stored(&metrics, "the plan generation", || {
                store.raise_counter(PLAN_GENERATION, out.generation)
            })
            .await;
            generation_stored = out.generation;
        }
        if !out.jobs.is_empty() {
            let writes: Vec<JobWrite> = out
                .jobs
                .iter()
                .map(|job| JobWrite {
                    job: job.clone(),
                    input: None,
                    fingerprint: None,
                })
                .collect();
            until_stored(&metrics, "job records", || store.put_jobs(&writes, &[])).await;
            // Closed and now durable: the core may forget them.
            let done: Vec<JobId> = out
                .jobs
                .iter()
                .filter(|j| j.state.is_terminal())
                .map(|j| j.id)
                .collect();
            if !done.is_empty() {
                let _ = closed.send(done);
            }
        }
        if !out.deliveries.is_empty() {
            until_stored(&metrics, "delivered results", || {
                store.put_deliveries(&out.deliveries)
            })
            .await;
            {
                let mut s = relock(&storing);
                for d in &out.deliveries {
                    s.remove(&d.job.id);
                }
            }
            let _ = closed.send(out.deliveries.iter().map(|d| d.job.id).collect());
        }
        for (node, envelope) in &out.messages {
            links.send(node, envelope);
        }
    }
}
