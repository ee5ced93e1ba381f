//! What the planner is given: everything it may look at, and nothing else.

use odc_budget::Illumination;
use odc_model::id::{NodeId, PlanId, StationId};
use odc_model::job::Job;
use odc_model::plan::Plan;
use odc_model::spec::{NodeSpec, StationSpec};
use odc_model::tenant::{Tenant, Usage};
use odc_model::time::Instant;

/// A flight node as the planner sees it.
#[derive(Debug, Clone)]
pub struct NodeInput {
    /// Its spec.
    pub spec: NodeSpec,
    /// Mean orbit altitude, km (for the thermal model's Earth view factor).
    pub altitude_km: f64,
    /// Battery state of charge now, 0..1.
    pub state_of_charge: f64,
    /// Temperature now, °C.
    pub temp_c: f64,
    /// Storage already used now (inputs and results the plan does not manage), bytes.
    pub storage_used_bytes: u64,
    /// Sunlight over the horizon.
    pub illumination: Illumination,
}

/// A pass of a node over a station: a possible contact.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactWindow {
    /// The station.
    pub station: StationId,
    /// The node.
    pub node: NodeId,
    /// AOS.
    pub start: Instant,
    /// LOS.
    pub end: Instant,
}

/// An interval in which two nodes can link.
#[derive(Debug, Clone, PartialEq)]
pub struct IslWindow {
    /// One node.
    pub a: NodeId,
    /// The other.
    pub b: NodeId,
    /// Start.
    pub start: Instant,
    /// End.
    pub end: Instant,
}

/// A tenant with what it has used so far in its quota period.
#[derive(Debug, Clone)]
pub struct TenantInput {
    /// The tenant.
    pub tenant: Tenant,
    /// Consumed so far this period (jobs already run or reserved outside this plan).
    pub used: Usage,
}

/// Knobs of the planner, with defaults that suit a LEO fleet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannerOptions {
    /// Nodes evaluated per job (those with the earliest uplink opportunities, plus its previous node).
    pub candidates: usize,
    /// Time step of the power and thermal prediction, seconds.
    pub budget_step_s: i64,
    /// Longest batch, seconds.
    pub max_batch_s: f64,
    /// Whether routes may use one inter-satellite hop.
    pub use_isl: bool,
    /// First come, first served: jobs in submission order, each on the first node that can take it. The
    /// baseline the planner's quality is compared with; not for operations.
    pub first_come_first_served: bool,
    /// Snapshots with at most this many jobs are planned twice — by value and by earliest deadline — and the
    /// plan delivering more priority-weighted work is kept (ties keep the value order). Larger ones once.
    pub portfolio_max_jobs: usize,
}

impl Default for PlannerOptions {
    fn default() -> Self {
        PlannerOptions {
            candidates: 4,
            budget_step_s: 60,
            max_batch_s: 900.0,
            use_isl: true,
            first_come_first_served: false,
            portfolio_max_jobs: 2_000,
        }
    }
}

/// Everything a plan is a function of.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Planning time: nothing is scheduled before it.
    pub now: Instant,
    /// End of the horizon.
    pub horizon_end: Instant,
    /// Id of the plan to make (ids come from the caller, so planning stays pure).
    pub plan_id: PlanId,
    /// Seed for the ids of batches and contacts.
    pub id_seed: u64,
    /// The plan in force, if any.
    pub previous: Option<Plan>,
    /// The fleet.
    pub nodes: Vec<NodeInput>,
    /// The ground stations.
    pub stations: Vec<StationSpec>,
    /// Every pass of every node over every station in the horizon.
    pub contacts: Vec<ContactWindow>,
    /// ISL windows (those outside the horizon are ignored). Shared: a fleet has millions a day, and a ground
    /// replans from the same list many times.
    pub isl: std::sync::Arc<Vec<IslWindow>>,
    /// Tenants and their usage.
    pub tenants: Vec<TenantInput>,
    /// Jobs: accepted ones to place, and those already on a node to finish and bring down.
    pub jobs: Vec<Job>,
    /// Options.
    pub options: PlannerOptions,
}
