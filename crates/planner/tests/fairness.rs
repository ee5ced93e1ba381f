//! Priority orders a tenant's own jobs, never one tenant over another: a tenant that floods the fleet at
//! priority 9 gets no more than its weighted share while another tenant, at priority 1, still has work waiting.

use odc_model::job::Priority;
use odc_planner::plan;
use odc_planner::synthetic::{Size, snapshot};
use std::collections::BTreeMap;

#[test]
fn a_priority_nine_flood_gets_no_more_than_its_weighted_share() {
    for seed in [3, 5, 8] {
        let mut s = snapshot(
            seed,
            Size {
                nodes: 1,
                stations: 1,
                tenants: 2,
                jobs: 160,
                hours: 3,
            },
        );
        let flooder = s.tenants[0].tenant.id;
        for j in &mut s.jobs {
            j.spec.priority =
                Priority::new(if j.spec.tenant == flooder { 9 } else { 1 }).expect("priority");
        }
        let outcome = plan(&s);
        // Shares are of accelerator time, which the planner estimates from input size.
        let mut planned: BTreeMap<_, u64> = BTreeMap::new();
        let mut waiting: BTreeMap<_, usize> = BTreeMap::new();
        let mut largest = 0;
        for j in &s.jobs {
            largest = largest.max(j.spec.input.size_bytes);
            if outcome.jobs.contains_key(&j.id) {
                *planned.entry(j.spec.tenant).or_default() += j.spec.input.size_bytes;
            } else {
                *waiting.entry(j.spec.tenant).or_default() += 1;
            }
        }
        let other = s.tenants[1].tenant.id;
        assert!(
            waiting.get(&other).copied().unwrap_or(0) > 0,
            "seed {seed}: the fleet must be contended for the test to say anything"
        );
        let f = planned.get(&flooder).copied().unwrap_or(0);
        let o = planned.get(&other).copied().unwrap_or(0);
        // Equal weights: the flooder gets no more than the other tenant, give or take the jobs in flight when the
        // shares were compared (a few of the largest).
        assert!(
            f <= o + 3 * largest,
            "seed {seed}: the priority-9 tenant got {f} bytes of work planned, the other {o} (largest job {largest})"
        );
    }
}

#[test]
fn the_energy_quota_binds_as_accelerator_time_does() {
    let mut s = snapshot(
        4,
        Size {
            nodes: 2,
            stations: 1,
            tenants: 2,
            jobs: 40,
            hours: 4,
        },
    );
    // Tenant 0 has all the accelerator time it could want and almost no energy.
    s.tenants[0].tenant.quota.accelerator_s = 1e9;
    s.tenants[0].tenant.quota.energy_wh = 1e-6;
    let starved = s.tenants[0].tenant.id;
    let outcome = plan(&s);
    let theirs: Vec<_> = s.jobs.iter().filter(|j| j.spec.tenant == starved).collect();
    assert!(!theirs.is_empty());
    for j in theirs {
        assert!(
            !outcome.jobs.contains_key(&j.id),
            "{} was planned past its energy quota",
            j.id
        );
        assert!(
            matches!(
                outcome.left_out.get(&j.id),
                Some(odc_planner::LeftOutReason::QuotaExhausted { .. })
            ),
            "{}: {:?}",
            j.id,
            outcome.left_out.get(&j.id)
        );
    }
    assert!(
        outcome.jobs.keys().any(|id| s
            .jobs
            .iter()
            .any(|j| j.id == *id && j.spec.tenant != starved)),
        "the other tenant is planned"
    );
}

#[test]
fn early_deadlines_do_not_buy_a_tenant_more_than_its_share_either() {
    for seed in [3, 5, 8] {
        let mut s = snapshot(
            seed,
            Size {
                nodes: 1,
                stations: 1,
                tenants: 2,
                jobs: 160,
                hours: 3,
            },
        );
        let flooder = s.tenants[0].tenant.id;
        // The other tenant's deadlines are all late; the flooder's stay as they were, so earliest-deadline-first
        // alone would put every one of the flooder's jobs first.
        let late = s.horizon_end;
        for j in &mut s.jobs {
            if j.spec.tenant == flooder {
                j.spec.priority = Priority::new(9).expect("priority");
            } else {
                j.spec.deadline = late;
            }
        }
        // Each of the planner's two orders, as either may be the plan kept.
        for order in [
            odc_planner::JobOrder::Value,
            odc_planner::JobOrder::Deadline,
        ] {
            let outcome = odc_planner::Planner::with_order(&s, order).outcome();
            let (mut f, mut o, mut largest) = (0u64, 0u64, 0u64);
            for j in &s.jobs {
                largest = largest.max(j.spec.input.size_bytes);
                if outcome.jobs.contains_key(&j.id) {
                    if j.spec.tenant == flooder {
                        f += j.spec.input.size_bytes;
                    } else {
                        o += j.spec.input.size_bytes;
                    }
                }
            }
            assert!(
                f <= o + 3 * largest,
                "seed {seed}, {order:?}: {f} against {o} (largest job {largest})"
            );
        }
    }
}
