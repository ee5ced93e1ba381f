//! Intake: submissions against quotas and their accounting periods, cancellation, holds until durable, restore after a restart, tenants' accounts.

use super::*;

impl GroundCore {
    /// Takes ids from this generator from now on (services give a secure one: a seeded generator's ids can be
    /// worked out from one of them).
    pub fn use_ids(&mut self, ids: IdGenerator) {
        self.ids = ids;
    }

    /// Refuses jobs whose deadline is further than `ahead` from their submission.
    pub fn set_max_deadline_ahead(&mut self, ahead: Duration) {
        self.max_deadline_ahead = ahead;
    }

    /// A tenant submits a job with its input. The job is accepted (quota reserved) or refused with a reason.
    pub fn submit(
        &mut self,
        spec: JobSpec,
        input: Vec<u8>,
        now: Instant,
    ) -> Result<JobId, SubmitError> {
        if let Some(&id) = self.keys.get(&(spec.tenant, spec.idempotency_key.clone())) {
            return Ok(id);
        }
        if !self.tenants.contains_key(&spec.tenant) {
            return Err(SubmitError::UnknownTenant);
        }
        self.roll_periods(now);
        let Some((tenant, used, reserved)) = self.tenants.get(&spec.tenant) else {
            return Err(SubmitError::UnknownTenant);
        };
        spec.validate(now)?;
        if spec.deadline > now + self.max_deadline_ahead {
            return Err(SubmitError::DeadlineTooFar {
                days: self.max_deadline_ahead.as_secs_f64() / 86_400.0,
            });
        }
        if !self.profiles.contains_key(&spec.model) {
            return Err(SubmitError::UnknownModel(spec.model));
        }
        if BlobRef::of(&input) != spec.input {
            return Err(SubmitError::InputMismatch);
        }
        let estimate = self.estimate(&spec);
        if let Some(resource) = used.plus(reserved).plus(&estimate).exceeds(&tenant.quota) {
            return Err(SubmitError::Quota(resource.to_string()));
        }
        let id = self.ids.job(now);
        let mut job = Job::new(id, spec.clone(), now);
        let _ = job.apply(&JobEvent::Accept, now);
        if let Some(t) = self.tenants.get_mut(&spec.tenant) {
            t.2 = t.2.plus(&estimate);
        }
        self.keys
            .insert((spec.tenant, spec.idempotency_key.clone()), id);
        self.deadlines.insert((spec.deadline, id));
        self.jobs.insert(
            id,
            GroundJob {
                job,
                input,
                node: None,
                sent_to: None,
                planned_delivery: None,
                reserved: estimate,
                relayed_at: None,
            },
        );
        // Placed by the next repair of the plan in force (once durable); a full replan follows within
        // `replan_every`.
        self.to_place.insert(id);
        self.want_replan(now + self.config.replan_every, "new jobs");
        Ok(id)
    }

    /// A tenant cancels its job (refused once the job has run).
    pub fn cancel(&mut self, tenant: TenantId, id: JobId, now: Instant) -> Result<(), String> {
        let Some(j) = self
            .jobs
            .get_mut(&id)
            .filter(|j| j.job.spec.tenant == tenant)
        else {
            return Err("no such job".into());
        };
        j.job
            .apply(&JobEvent::Cancel, now)
            .map_err(|e| e.why.to_string())?;
        let node = j.node.clone();
        self.release(id);
        if let Some(node) = node {
            self.send_event(&node, id, JobEvent::Cancel, now);
        }
        self.to_place.remove(&id);
        self.changes.push(Change::JobCancelled(id));
        Ok(())
    }

    /// What a job is expected to consume (reserved against the quota until it is delivered or closed).
    pub(crate) fn estimate(&self, spec: &JobSpec) -> Usage {
        let (seconds, wh) =
            self.profiles
                .get(&spec.model)
                .map_or((0.0, 0.0), |&(rate, setup, busy_w)| {
                    // As if it ran alone, set-up included: the most it can be billed, so a job accepted against its
                    // quota is never left out for quota by the planner later.
                    let t = setup + spec.input.size_bytes as f64 / rate.max(1.0);
                    (t, t * busy_w / 3600.0)
                });
        Usage {
            accelerator_s: seconds,
            energy_wh: wh,
            uplink_bytes: spec.input.size_bytes,
            downlink_bytes: spec.output_bound_bytes,
        }
    }

    /// Starts a new accounting period for every tenant whose period has ended: usage counts from zero again
    /// (what open jobs reserve carries over).
    pub(crate) fn roll_periods(&mut self, now: Instant) {
        for (id, (tenant, used, _)) in &mut self.tenants {
            let start = period_start(now, tenant.quota.period);
            let current = self.periods.entry(*id).or_insert(start);
            if *current != start {
                *current = start;
                *used = Usage::default();
            }
        }
    }

    /// A fresh tenant id (time-sortable, from the ground's seeded generator).
    pub fn new_tenant_id(&mut self, now: Instant) -> TenantId {
        self.ids.tenant(now)
    }

    /// Every tenant with its usage and reservations.
    pub fn tenants(&self) -> impl Iterator<Item = (&Tenant, Usage, Usage)> {
        self.tenants.values().map(|(t, u, r)| (t, *u, *r))
    }

    /// Changes a known tenant's account (name, quota, share weight); its usage and reservations are kept, jobs
    /// already accepted stay accepted, and the next plan weighs it anew. False for an unknown tenant.
    pub fn update_tenant(&mut self, tenant: Tenant, now: Instant) -> bool {
        let Some(entry) = self.tenants.get_mut(&tenant.id) else {
            return false;
        };
        if entry.0 != tenant {
            entry.0 = tenant;
            self.want_replan(now, "tenant changed");
        }
        true
    }

    /// Adds a tenant (or replaces its account; its usage so far is kept).
    pub fn add_tenant(&mut self, tenant: Tenant) {
        let entry = self
            .tenants
            .entry(tenant.id)
            .or_insert_with(|| (tenant.clone(), Usage::default(), Usage::default()));
        entry.0 = tenant;
    }

    /// Rebuilds what a restarted ground had accepted: open jobs with their inputs (as the store kept them) and
    /// each tenant's usage so far. Reservations are estimated again; a replan follows at the next tick.
    pub fn restore(&mut self, jobs: Vec<(Job, Vec<u8>)>, used: &[(TenantId, Usage)], now: Instant) {
        self.roll_periods(now);
        for (tenant, usage) in used {
            if let Some(t) = self.tenants.get_mut(tenant) {
                t.1 = *usage;
            }
        }
        for (job, input) in jobs {
            if job.state.is_terminal() || self.jobs.contains_key(&job.id) {
                continue;
            }
            let estimate = self.estimate(&job.spec);
            if let Some(t) = self.tenants.get_mut(&job.spec.tenant) {
                t.2 = t.2.plus(&estimate);
            }
            self.keys
                .insert((job.spec.tenant, job.spec.idempotency_key.clone()), job.id);
            self.deadlines.insert((job.spec.deadline, job.id));
            // A planned job is stored only once its input was sent: it stays pinned to that node.
            let sent_to = (job.state == JobState::Planned)
                .then(|| job.placement.as_ref().map(|p| p.node.clone()))
                .flatten();
            self.jobs.insert(
                job.id,
                GroundJob {
                    node: job.placement.as_ref().map(|p| p.node.clone()),
                    job,
                    input,
                    sent_to,
                    planned_delivery: None,
                    reserved: estimate,
                    relayed_at: None,
                },
            );
        }
        self.want_replan(now, "restart");
    }

    /// Whether some node of the fleet runs this model (a job for any other could never be planned).
    pub fn runs_model(&self, model: &ModelId) -> bool {
        self.profiles.contains_key(model)
    }

    /// The job a tenant's idempotency key already names, if any.
    pub fn job_for_key(&self, tenant: TenantId, key: &str) -> Option<JobId> {
        self.keys.get(&(tenant, key.to_string())).copied()
    }

    /// One job, as the state machine has it.
    pub fn job(&self, id: JobId) -> Option<&Job> {
        self.jobs.get(&id).map(|j| &j.job)
    }

    /// A tenant's account, if known.
    pub fn tenant(&self, id: TenantId) -> Option<&Tenant> {
        self.tenants.get(&id).map(|t| &t.0)
    }

    /// Jobs whose record changed since the last call in a way a restart must not forget (an input sent to a node,
    /// a node's report, an expiry): the service stores them before the messages behind them leave.
    pub fn take_dirty(&mut self) -> Vec<Job> {
        let ids = std::mem::take(&mut self.dirty);
        ids.into_iter()
            .filter_map(|id| self.jobs.get(&id).map(|j| j.job.clone()))
            .collect()
    }

    /// Keeps a just-accepted job out of every plan until [`GroundCore::confirm`] says it is durable, so nothing
    /// is sent to a node for a job that a failed commit may still withdraw.
    pub fn hold(&mut self, id: JobId) {
        if self.jobs.contains_key(&id) {
            self.held.insert(id);
        }
    }

    /// A held job is durable: plans may take it from now on.
    pub fn confirm(&mut self, id: JobId, now: Instant) {
        if self.held.remove(&id) {
            if self.inputs_in_store
                && let Some(j) = self.jobs.get_mut(&id)
            {
                // Durable: the store holds the input, and it is loaded again when a node is due it.
                j.input = Vec::new();
            }
            // As any new job: planned at the next replan, at most `replan_every` away (a burst of submissions
            // must not make every minute a full replan).
            self.want_replan(now + self.config.replan_every, "new jobs");
        }
    }

    /// Lets a job held by [`GroundCore::hold`] into plans again without a replan (a change that was not made).
    pub fn release_hold(&mut self, id: JobId) {
        self.held.remove(&id);
    }

    /// Marks a job's record for the store (its state is the truth over what was written for it last).
    pub fn mark_dirty(&mut self, id: JobId) {
        if self.jobs.contains_key(&id) {
            self.dirty.insert(id);
        }
    }

    /// Whether a job is accepted but not yet durable.
    pub fn is_held(&self, id: JobId) -> bool {
        self.held.contains(&id)
    }

    /// Undoes an acceptance that could not be made durable (the store failed before the tenant was told): the
    /// job, its idempotency key and its reservation go, as if it had been refused. Only an `Accepted` job.
    pub fn withdraw(&mut self, id: JobId) -> bool {
        if !self
            .jobs
            .get(&id)
            .is_some_and(|j| j.job.state == JobState::Accepted)
        {
            return false;
        }
        self.release(id);
        self.held.remove(&id);
        self.to_place.remove(&id);
        if let Some(j) = self.jobs.remove(&id) {
            self.keys
                .remove(&(j.job.spec.tenant, j.job.spec.idempotency_key.clone()));
            self.deadlines.remove(&(j.job.spec.deadline, id));
        }
        true
    }

    /// Keeps only open jobs in memory (services): closed jobs are forgotten once the service says they are
    /// durable ([`GroundCore::forget_closed`]), no billing ledger or replan history is kept beyond the latest.
    pub fn forget_history(&mut self) {
        self.keep_history = false;
    }

    /// Forgets jobs that are closed and durable (the service has stored their final record): memory then holds
    /// the open jobs only. A node that reports a forgotten job again (its receipt was lost) is answered from the
    /// store ([`GroundCore::take_lookups`]); its idempotency key is too.
    pub fn forget_closed(&mut self, ids: &[JobId]) {
        if self.keep_history {
            return;
        }
        for id in ids {
            let Some(j) = self.jobs.get(id) else {
                continue;
            };
            if !j.job.state.is_terminal() || self.dirty.contains(id) {
                continue;
            }
            if let Some(j) = self.jobs.remove(id) {
                if let Some(l) = j.sent_to.as_ref().and_then(|n| self.links.get_mut(n)) {
                    l.inputs_sent.remove(id);
                }
                self.keys
                    .remove(&(j.job.spec.tenant, j.job.spec.idempotency_key.clone()));
                self.deadlines.remove(&(j.job.spec.deadline, *id));
                self.held.remove(id);
                self.to_place.remove(id);
                self.wanted_inputs.remove(id);
            }
        }
    }

    /// Inputs live in the service's store from now on: a job's input is dropped here once the job is durable
    /// ([`GroundCore::confirm`]) and asked for again ([`GroundCore::take_wanted_inputs`]) only when a node in
    /// contact is due it, so memory holds the inputs being sent, not every open job's.
    pub fn inputs_in_store(&mut self) {
        self.inputs_in_store = true;
    }

    /// Inputs a node in contact is due that the core does not hold: the service loads them from its store and
    /// hands them over with [`GroundCore::provide_inputs`]. At most [`INPUT_ROUND_BYTES`] at a time (a job
    /// larger than that alone).
    pub fn take_wanted_inputs(&mut self) -> Vec<JobId> {
        let mut bytes = self
            .inputs_asked
            .iter()
            .filter_map(|id| self.jobs.get(id))
            .map(|j| j.job.spec.input.size_bytes)
            .sum::<u64>();
        let mut out = Vec::new();
        while let Some(&id) = self.wanted_inputs.first() {
            let size = self
                .jobs
                .get(&id)
                .map_or(0, |j| j.job.spec.input.size_bytes);
            if bytes > 0 && bytes + size > INPUT_ROUND_BYTES {
                break;
            }
            self.wanted_inputs.remove(&id);
            if self.inputs_asked.insert(id) {
                bytes += size;
                out.push(id);
            }
        }
        out
    }

    /// Inputs loaded from the store for the jobs asked of [`GroundCore::take_wanted_inputs`] (`None`: the store
    /// no longer holds it); each is checked against its job's digest, and the nodes in contact are served.
    pub fn provide_inputs(&mut self, inputs: Vec<(JobId, Option<Vec<u8>>)>, now: Instant) {
        for (id, input) in inputs {
            self.inputs_asked.remove(&id);
            let Some(j) = self.jobs.get_mut(&id) else {
                continue;
            };
            if j.job.state != JobState::Planned {
                continue;
            }
            match input {
                Some(input) if BlobRef::of(&input) == j.job.spec.input => j.input = input,
                _ => {
                    // Nothing to send it from: the node cannot run it, and the tenant is told now rather than
                    // at its deadline.
                    let _ = j.job.apply(
                        &JobEvent::Fail {
                            reason: FailureReason::Other {
                                message: "the ground's copy of the input is lost".into(),
                            },
                        },
                        now,
                    );
                    self.dirty.insert(id);
                    self.release(id);
                }
            }
        }
        let linked: Vec<NodeId> = self
            .links
            .iter()
            .filter(|(_, l)| l.station.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for node in linked {
            self.serve(&node, now);
        }
    }

    /// Inputs the core holds now: how many, and their bytes (O(open jobs); for checks and benchmarks).
    pub fn inputs_held(&self) -> (usize, u64) {
        self.jobs
            .values()
            .filter(|j| !j.input.is_empty())
            .fold((0, 0), |(n, b), j| (n + 1, b + j.input.len() as u64))
    }

    /// Whether the core holds a job's input now.
    pub(crate) fn input_held(j: &GroundJob) -> bool {
        j.input.len() as u64 == j.job.spec.input.size_bytes
    }

    /// Jobs nodes reported that the core no longer holds, by node: the service looks each up in its store and
    /// answers with [`GroundCore::remind_closed`].
    pub fn take_lookups(&mut self) -> Vec<(NodeId, JobId)> {
        std::mem::take(&mut self.lookups).into_iter().collect()
    }

    /// Tells a node again how a job it reported ended (the store's record of a job this core forgot): its
    /// receipt was lost, and it holds the job until told. A job the store holds open changes nothing.
    pub fn remind_closed(&mut self, node: &NodeId, job: &Job, now: Instant) {
        if job.state.is_terminal() && !self.jobs.contains_key(&job.id) {
            let event = crate::reconcile::closing_event(&job.state);
            self.send_event(node, job.id, event, now);
        }
    }

    /// Every job, for reports and checks.
    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.values().map(|j| &j.job)
    }

    /// The billing ledger: one record per delivered job.
    pub fn ledger(&self) -> &[UsageRecord] {
        &self.ledger
    }

    /// A tenant's consumption and what is reserved for its open jobs.
    pub fn usage(&self, tenant: TenantId) -> Option<(Usage, Usage)> {
        self.tenants.get(&tenant).map(|t| (t.1, t.2))
    }

    /// The start of a tenant's current accounting period, as of the last tick or submission.
    pub fn period_of(&self, tenant: TenantId) -> Option<Instant> {
        self.periods.get(&tenant).copied()
    }
}

/// The start of the accounting period that holds `now`: periods are consecutive windows of `period` counted from
/// the Unix epoch (a day-long period is a UTC day). A period of zero or less is one window that never ends.
pub fn period_start(now: Instant, period: Duration) -> Instant {
    let p = period.as_millis();
    if p <= 0 {
        return Instant::EPOCH;
    }
    Instant::from_unix_ms(now.unix_ms() - now.unix_ms().rem_euclid(p))
}
