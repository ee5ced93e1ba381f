//! odc-planner: which station talks to which satellite, which jobs go up when, where and when each batch runs, and
//! how each result comes down — a pure, deterministic function of a [`Snapshot`].
//!
//! **Method.** Jobs are taken in order of value: priority first, then weighted fair share between tenants (each
//! tenant's next job is keyed by the accelerator time already granted to it divided by its weight), then deadline.
//! Jobs already on a node come first and stay there. For each job the planner evaluates a few candidate nodes —
//! those that host the model and have the earliest uplink opportunities, plus the node the previous plan chose —
//! and for each finds the earliest uplink (a contact with room, or a contact then one ISL hop), the earliest
//! accelerator slot (joining a batch of the same model and tenant or opening one), checked against the node's
//! battery and temperature prediction over the whole horizon, and the earliest downlink (directly, or over one
//! ISL hop to the neighbour that sees a station first, as contact-graph routing does). It keeps the candidate that
//! delivers first, preferring the previous node when it still meets the deadline (little churn). Contacts are
//! reserved on first use, so urgent data claims the passes; an antenna holds one pass at a time with its set-up
//! time between passes. A job that fits nowhere is left out with a reason its tenant can read. Small snapshots
//! are also planned earliest-deadline-first and the better of the two plans is kept: when deadlines rather than
//! priorities decide what fits, that order wins.
//!
//! **Invariant:** no IO, no clock, no randomness: ids come from the snapshot's plan id and seed.

mod planner;
pub mod scenario;
mod snapshot;
pub mod synthetic;

pub use planner::{Change, JobOrder, JobPlan, LeftOutReason, PlanOutcome, PlanStats, Planner};
pub use snapshot::{ContactWindow, IslWindow, NodeInput, PlannerOptions, Snapshot, TenantInput};

/// Plans from scratch. Small snapshots are planned in several orders and the most valuable fair plan kept (see
/// [`PlannerOptions::portfolio_max_jobs`]): both fair-share orders always qualify, the priority-first order only
/// when it gives no tenant more than its weighted share while another waits ([`PlanOutcome::shares_fairly`]).
pub fn plan(snapshot: &Snapshot) -> PlanOutcome {
    plan_state(snapshot).1
}

/// As [`plan`], with the planner state the plan came from, to repair it later with [`Planner::apply`] (new jobs,
/// a node lost, a station down, a job cancelled) without planning again from scratch.
pub fn plan_state(snapshot: &Snapshot) -> (Planner, PlanOutcome) {
    let planner = Planner::new(snapshot);
    let by_value = planner.outcome();
    if snapshot.options.first_come_first_served
        || snapshot.jobs.len() > snapshot.options.portfolio_max_jobs
    {
        return (planner, by_value);
    }
    let mut best = (planner, by_value);
    let deadline = Planner::with_order(snapshot, JobOrder::Deadline);
    let by_deadline = deadline.outcome();
    if by_deadline.stats.weighted_delivered > best.1.stats.weighted_delivered + 1e-9 {
        best = (deadline, by_deadline);
    }
    let priority = Planner::with_order(snapshot, JobOrder::Priority);
    let by_priority = priority.outcome();
    if by_priority.stats.weighted_delivered > best.1.stats.weighted_delivered + 1e-9
        && by_priority.shares_fairly(snapshot)
    {
        best = (priority, by_priority);
    }
    best
}
