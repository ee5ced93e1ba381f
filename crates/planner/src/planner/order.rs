//! The order jobs are placed in: fair shares between tenants, priority or deadline within each; priority first
//! across tenants as a candidate kept only when it shares fairly; arrival for the baseline.

use super::*;

impl Planner {
    /// Jobs to plan: those already on a node first; then, between tenants, by weighted fair share (the virtual
    /// finish time of weighted fair queuing over each tenant's jobs), and within a tenant by priority then
    /// deadline (value order) or by deadline then priority (deadline order). Priority never puts one tenant
    /// before another's share: a tenant that marks everything 9, or gives everything an early deadline, gets its
    /// share first, never another tenant's. The baseline orders by arrival alone.
    pub(super) fn order_jobs(&self) -> Vec<JobId> {
        if self.options.first_come_first_served {
            let mut all: Vec<&Job> = self
                .jobs
                .values()
                .filter(|j| matches!(j.state.rank(), Some(1..=6)))
                .collect();
            all.sort_by_key(|j| {
                let on_board = j.state.rank().is_some_and(|r| r >= 3);
                (
                    !on_board,
                    j.submitted_at,
                    std::cmp::Reverse(j.spec.priority),
                    j.id,
                )
            });
            return all.into_iter().map(|j| j.id).collect();
        }
        let by_deadline = self.job_order == JobOrder::Deadline;
        if self.job_order == JobOrder::Priority {
            return self.order_by_priority();
        }
        let (fixed, per_tenant) = self.fixed_and_per_tenant();
        let mut keyed: Vec<(f64, Instant, JobId)> = Vec::new();
        for (tenant, mut jobs) in per_tenant {
            if by_deadline {
                jobs.sort_by_key(|j| (j.spec.deadline, std::cmp::Reverse(j.spec.priority), j.id));
            } else {
                jobs.sort_by_key(|j| (std::cmp::Reverse(j.spec.priority), j.spec.deadline, j.id));
            }
            let weight = self.tenants.get(&tenant).map(|t| t.weight).unwrap_or(1.0);
            let mut cumulative = 0.0;
            for j in jobs {
                cumulative += self.compute_estimate_s(j) / weight;
                keyed.push((cumulative, j.spec.deadline, j.id));
            }
        }
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        fixed
            .iter()
            .map(|j| j.id)
            .chain(keyed.into_iter().map(|k| k.2))
            .collect()
    }

    /// Jobs already on a node (by priority, then deadline), and the rest by tenant.
    fn fixed_and_per_tenant(&self) -> (Vec<&Job>, BTreeMap<TenantId, Vec<&Job>>) {
        let mut fixed = Vec::new();
        let mut per_tenant: BTreeMap<TenantId, Vec<&Job>> = BTreeMap::new();
        for job in self.jobs.values() {
            match job.state.rank() {
                Some(1 | 2) => per_tenant.entry(job.spec.tenant).or_default().push(job),
                Some(3..=6) => fixed.push(job),
                _ => {}
            }
        }
        fixed.sort_by_key(|j| (std::cmp::Reverse(j.spec.priority), j.spec.deadline, j.id));
        (fixed, per_tenant)
    }

    /// Jobs on a node first, then by priority across tenants and weighted fair share within each priority level.
    fn order_by_priority(&self) -> Vec<JobId> {
        let (fixed, per_tenant) = self.fixed_and_per_tenant();
        let mut keyed: Vec<(std::cmp::Reverse<u8>, f64, Instant, JobId)> = Vec::new();
        for (tenant, mut jobs) in per_tenant {
            jobs.sort_by_key(|j| (std::cmp::Reverse(j.spec.priority), j.spec.deadline, j.id));
            let weight = self.tenants.get(&tenant).map(|t| t.weight).unwrap_or(1.0);
            let mut cumulative: BTreeMap<u8, f64> = BTreeMap::new();
            for j in jobs {
                let c = cumulative.entry(j.spec.priority.level()).or_default();
                *c += self.compute_estimate_s(j) / weight;
                keyed.push((
                    std::cmp::Reverse(j.spec.priority.level()),
                    *c,
                    j.spec.deadline,
                    j.id,
                ));
            }
        }
        keyed.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then(a.2.cmp(&b.2))
                .then(a.3.cmp(&b.3))
        });
        fixed
            .iter()
            .map(|j| j.id)
            .chain(keyed.into_iter().map(|k| k.3))
            .collect()
    }

    pub(super) fn compute_estimate_s(&self, job: &Job) -> f64 {
        let rate = self
            .nodes
            .iter()
            .find_map(|n| n.models.get(&job.spec.model))
            .map(|p| p.input_bytes_per_s)
            .unwrap_or(1e6);
        job.spec.input.size_bytes as f64 / rate
    }
}
