//! The end of a run: the invariants checked and the report made from what the world recorded.

use super::*;

impl World {
    /// Checks every invariant and makes the report.
    pub(super) fn finish(mut self) -> Outcome {
        let mut violations = Vec::new();
        let jobs: Vec<odc_model::job::Job> = self.ground.jobs().cloned().collect();
        let mut per_tenant: Vec<TenantReport> = self
            .tenants
            .iter()
            .map(|t| TenantReport {
                name: t.name.clone(),
                ..TenantReport::default()
            })
            .collect();
        let tenant_of: BTreeMap<TenantId, usize> = self
            .tenants
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i))
            .collect();
        for job in &jobs {
            let t = tenant_of.get(&job.spec.tenant).copied().unwrap_or(0);
            let r = &mut per_tenant[t];
            r.accepted += 1;
            match &job.state {
                JobState::Delivered => {
                    r.delivered += 1;
                    if job
                        .history
                        .last()
                        .is_some_and(|h| h.at <= job.spec.deadline)
                    {
                        r.on_time += 1;
                    }
                }
                JobState::Failed { .. } => r.failed += 1,
                JobState::Expired => r.expired += 1,
                JobState::Cancelled => r.cancelled += 1,
                _ => r.open += 1,
            }
            if job.spec.deadline <= self.end && !job.state.is_terminal() {
                violations.push(format!(
                    "job {} lost: {} at the end although its deadline {} passed",
                    job.id,
                    job.state.name(),
                    job.spec.deadline
                ));
            }
        }
        for (job, n) in &self.deliveries {
            if *n > 1 {
                violations.push(format!("job {job} delivered {n} times"));
            }
        }
        for (job, n) in &self.completions {
            if *n > 1 {
                violations.push(format!("job {job} ran to completion {n} times"));
            }
        }
        let mut billed: BTreeMap<JobId, usize> = BTreeMap::new();
        for rec in self.ground.ledger() {
            *billed.entry(rec.job).or_default() += 1;
            if let Some(&t) = tenant_of.get(&rec.tenant) {
                per_tenant[t].accelerator_s += rec.usage.accelerator_s;
                per_tenant[t].energy_wh += rec.usage.energy_wh;
                per_tenant[t].uplink_bytes += rec.usage.uplink_bytes;
                per_tenant[t].downlink_bytes += rec.usage.downlink_bytes;
            }
        }
        for (job, n) in &billed {
            if *n > 1 {
                violations.push(format!("job {job} billed {n} times"));
            }
        }
        for job in &jobs {
            let delivered = job.state == JobState::Delivered;
            if delivered != billed.contains_key(&job.id) {
                violations.push(format!(
                    "job {} is {} but billed {} times",
                    job.id,
                    job.state.name(),
                    billed.get(&job.id).unwrap_or(&0)
                ));
            }
        }
        for n in &mut self.nodes {
            n.report.governor = n
                .core
                .governor_actions()
                .iter()
                .map(|a| {
                    (
                        (a.at - self.start).as_secs_f64() / 3600.0,
                        a.kind.clone(),
                        a.reason.clone(),
                    )
                })
                .collect();
            // A limit may only be crossed when a fault forced it, and the governor must then have held work back:
            // no batch started below the battery minimum.
            if let Some(h) = n.report.soc_breach {
                let at = self.start + Duration::from_secs_f64(h * 3600.0);
                if n.brownout_at.is_none_or(|b| b > at) {
                    violations.push(format!(
                        "{}: battery below its minimum at {h:.2} h with no fault to blame",
                        n.report.name
                    ));
                }
            }
            if n.started_below_floor > 0 {
                violations.push(format!(
                    "{}: {} batches started with the battery below its minimum",
                    n.report.name, n.started_below_floor
                ));
            }
            if let Some(h) = n.report.temp_breach {
                violations.push(format!(
                    "{}: temperature above its maximum at {h:.2} h",
                    n.report.name
                ));
            }
        }
        let mut hasher = Sha256::new();
        for job in &jobs {
            hasher.update(job.id.to_string().as_bytes());
            hasher.update(job.state.name().as_bytes());
            for h in &job.history {
                hasher.update(h.event.name().as_bytes());
                hasher.update(h.at.unix_ms().to_le_bytes());
            }
        }
        for rec in self.ground.ledger() {
            hasher.update(rec.job.to_string().as_bytes());
            hasher.update(rec.usage.accelerator_s.to_le_bytes());
        }
        for n in &self.nodes {
            for g in &n.report.governor {
                hasher.update(g.0.to_le_bytes());
                hasher.update(g.1.as_bytes());
            }
        }
        let trace_hash: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        for (tenant, seconds, _) in &self.latencies {
            if let Some(r) = per_tenant.get_mut(*tenant) {
                r.latencies_s.push(*seconds);
            }
        }
        let report = RunReport {
            scenario_start: self.start.to_string(),
            hours: self.config.hours,
            seed: self.config.seed,
            backend: format!("{:?}", self.config.twin.backend).to_lowercase(),
            nodes: self.nodes.into_iter().map(|n| n.report).collect(),
            stations: self
                .stations
                .iter()
                .map(|s| s.id.as_str().to_string())
                .collect(),
            tenants: per_tenant,
            submitted: self.arrivals.len(),
            refused: self.refused.into_iter().collect(),
            replans: self.ground.replans().iter().filter(|r| r.full).count(),
            repairs: self.ground.replans().iter().filter(|r| !r.full).count(),
            frames_sent: self.frames_sent,
            frames_lost: self.frames_lost,
            bytes_up: self.bytes_up,
            bytes_down: self.bytes_down,
            bytes_isl: self.bytes_isl,
            relayed_inputs: self.ground.relay_counts().0,
            relayed_results: self.ground.relay_counts().1,
            results_checked: self.checked,
            results_correct: self.correct,
            faults: self
                .fault_log
                .iter()
                .map(|(t, d)| ((*t - self.start).as_secs_f64() / 3600.0, d.clone()))
                .collect(),
            violations: violations.clone(),
            trace_hash: trace_hash.clone(),
        };
        Outcome {
            report,
            violations,
            trace_hash,
        }
    }
}
