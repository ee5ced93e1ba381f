//! odc-twin: the digital twin. The real ground core, a real flight core per satellite, a real link session pair
//! per satellite and the real planner run against simulated time, simulated links that pass frames only inside
//! computed contact windows (at the stations' rates, with delay, loss and injected faults), and simulated physics
//! for battery and heat (odc-budget's equations, integrated from the loads actually run). The accelerator is the
//! real CPU backend or the modeled one. Same seed, same run: every failure replays.
//!
//! [`run`] builds and runs a scenario and checks the invariants at the end: no accepted job lost; none delivered,
//! run to completion or billed twice; every job whose deadline passed delivered, failed, expired or cancelled;
//! batteries and temperatures within limits unless a fault forced otherwise and the governor reacted.

pub mod faults;
pub mod report;
pub mod scenario;
pub mod world;

pub use faults::{Fault, FaultKind, random_schedule};
pub use report::RunReport;
pub use scenario::{BackendKind, TwinConfig, TwinError};
pub use world::{Outcome, World};

use odc_planner::scenario::ScenarioFiles;

/// Builds and runs a scenario; `progress` hears the fraction done.
pub fn run(
    config: TwinConfig,
    files: &ScenarioFiles,
    progress: &mut dyn FnMut(f64),
) -> Result<Outcome, TwinError> {
    Ok(World::new(config, files)?.run(progress))
}

/// The short scenario fault campaigns run: 6 satellites, 3 stations, 6 hours, the modeled backend.
pub const CAMPAIGN_SCENARIO: &str = include_str!("../scenarios/campaign.toml");

/// One campaign run: the campaign scenario with this seed and `faults` random faults.
pub fn campaign_run(seed: u64, faults: usize) -> Result<Outcome, TwinError> {
    let mut config = TwinConfig::from_toml(CAMPAIGN_SCENARIO)?;
    config.seed = seed;
    let nodes: usize = config
        .constellation
        .walker
        .iter()
        .map(|w| w.planes * w.per_plane)
        .sum();
    let stations = config.stations.lattice.unwrap_or(1);
    config.faults = random_schedule(seed, faults, config.hours, nodes, stations);
    run(config, &ScenarioFiles::default(), &mut |_| {})
}
