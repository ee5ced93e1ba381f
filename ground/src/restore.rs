//! What a (re)starting ground takes from its store before it serves: ids that cannot be guessed, plan generations
//! above every one issued before, each tenant's usage in its current accounting period and the open jobs (their
//! inputs stay in the store).

use crate::api::{PLAN_GENERATION, secure_ids};
use crate::core::GroundCore;
use crate::store::{Store, StoreError};
use odc_model::tenant::Usage;
use odc_model::time::Instant;

/// Rebuilds `core` from `store` at `now`; returns how many open jobs it took back.
pub async fn restore<S: Store>(
    core: &mut GroundCore,
    store: &S,
    now: Instant,
) -> Result<usize, StoreError> {
    core.use_ids(secure_ids());
    core.raise_generation_floor(store.counter(PLAN_GENERATION).await?);
    let mut used = Vec::new();
    for t in store.tenants().await? {
        // Only what was delivered in the current accounting period counts against the quota.
        let since = crate::core::period_start(now, t.tenant.quota.period);
        let total = store
            .usage_of(t.tenant.id)
            .await?
            .iter()
            .filter(|r| r.at >= since)
            .fold(Usage::default(), |a, r| a.plus(&r.usage));
        used.push((t.tenant.id, total));
    }
    // Inputs stay in the store: the core asks for each when a node is due it.
    let open: Vec<_> = store
        .open_job_records()
        .await?
        .into_iter()
        .map(|j| (j, Vec::new()))
        .collect();
    let restored = open.len();
    core.restore(open, &used, now);
    Ok(restored)
}
