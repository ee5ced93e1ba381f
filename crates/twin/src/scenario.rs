//! Twin scenarios in TOML: the fleet, the stations, node figures and tenants (as the planner's scenarios have
//! them), plus what only a simulation has: a workload that arrives over time, link behaviour, the accelerator
//! backend, and a fault schedule.

use crate::faults::Fault;
use odc_model::time::Instant;
use odc_planner::scenario::{ConstellationConfig, NodeConfig, StationsConfig, TenantConfig};
use serde::Deserialize;

/// The built-in default scenario (`odc twin`, `odc demo`): a dozen satellites, a few stations, three tenants,
/// real inference on the CPU, 24 simulated hours.
pub const DEFAULT_SCENARIO: &str = include_str!("../scenarios/default.toml");

/// A twin scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinConfig {
    /// Start of the run.
    pub start: Instant,
    /// Simulated hours.
    pub hours: f64,
    /// Seed of everything random: workload, loss, fault campaigns.
    #[serde(default)]
    pub seed: u64,
    /// The constellation (a TLE file, Walker shells or both).
    pub constellation: ConstellationConfig,
    /// The ground stations.
    pub stations: StationsConfig,
    /// Node figures that differ from the defaults.
    #[serde(default)]
    pub node: NodeConfig,
    /// Tenants.
    pub tenants: Vec<TenantConfig>,
    /// ISL range, km (0: no ISL windows).
    #[serde(default = "odc_planner::scenario::default_isl_range")]
    pub isl_range_km: f64,
    /// What tenants submit.
    pub workload: WorkloadConfig,
    /// How the twin runs.
    #[serde(default)]
    pub twin: RunConfig,
    /// Faults, in time order or not.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

/// Jobs arriving over the run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Jobs submitted in all.
    pub jobs: usize,
    /// Arrivals are spread uniformly over the first this many hours.
    #[serde(default = "default_spread")]
    pub spread_hours: f64,
    /// Deadline after arrival, hours: uniform in this range.
    #[serde(default = "default_deadline")]
    pub deadline_hours: [f64; 2],
    /// Largest result a tenant accepts, bytes.
    #[serde(default = "default_output_bound")]
    pub output_bound_bytes: u64,
}

fn default_spread() -> f64 {
    18.0
}
fn default_deadline() -> [f64; 2] {
    [3.0, 12.0]
}
fn default_output_bound() -> u64 {
    1024
}

/// Which accelerator backend nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// Real inference on the CPU (candle).
    #[default]
    Cpu,
    /// Time and energy from the node spec, no compute.
    Modeled,
}

/// How the twin runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Accelerator backend.
    #[serde(default)]
    pub backend: BackendKind,
    /// Least minutes between replans triggered by new jobs.
    #[serde(default = "default_replan")]
    pub replan_minutes: f64,
    /// How far ahead each plan looks, hours.
    #[serde(default = "default_plan_ahead")]
    pub plan_ahead_hours: f64,
    /// Fraction of link frames lost.
    #[serde(default = "default_loss")]
    pub link_loss: f64,
    /// One-way delay of a ground link, ms.
    #[serde(default = "default_delay")]
    pub link_delay_ms: i64,
    /// Accelerator throughput of a node for the tile classifier, tiles per second.
    #[serde(default = "default_tiles_per_s")]
    pub tiles_per_s: f64,
    /// Seconds of accelerator set-up per batch.
    #[serde(default = "default_setup")]
    pub batch_setup_s: f64,
    /// Physics step, seconds.
    #[serde(default = "default_physics")]
    pub physics_step_s: f64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            backend: BackendKind::Cpu,
            replan_minutes: default_replan(),
            plan_ahead_hours: default_plan_ahead(),
            link_loss: default_loss(),
            link_delay_ms: default_delay(),
            tiles_per_s: default_tiles_per_s(),
            batch_setup_s: default_setup(),
            physics_step_s: default_physics(),
        }
    }
}

fn default_replan() -> f64 {
    30.0
}
fn default_plan_ahead() -> f64 {
    12.0
}
fn default_loss() -> f64 {
    0.01
}
fn default_delay() -> i64 {
    15
}
fn default_tiles_per_s() -> f64 {
    20.0
}
fn default_setup() -> f64 {
    2.0
}
fn default_physics() -> f64 {
    60.0
}

/// A scenario that does not hold together.
#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    /// The TOML does not parse or a value is out of range.
    #[error("twin scenario: {0}")]
    Invalid(String),
    /// The geometry could not be built.
    #[error(transparent)]
    Scenario(#[from] odc_planner::scenario::ScenarioError),
    /// The accelerator backend could not start.
    #[error("accelerator: {0}")]
    Accelerator(String),
}

impl TwinConfig {
    /// Parses and checks a scenario.
    pub fn from_toml(text: &str) -> Result<TwinConfig, TwinError> {
        let config: TwinConfig =
            toml::from_str(text).map_err(|e| TwinError::Invalid(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// The built-in default scenario.
    pub fn default_scenario() -> Result<TwinConfig, TwinError> {
        TwinConfig::from_toml(DEFAULT_SCENARIO)
    }

    fn check(&self) -> Result<(), TwinError> {
        let bad = |m: String| Err(TwinError::Invalid(m));
        if !(self.hours > 0.0 && self.hours <= 24.0 * 14.0) {
            return bad(format!("hours = {} must be in (0, 336]", self.hours));
        }
        if self.tenants.is_empty() {
            return bad("at least one tenant is needed".into());
        }
        let w = &self.workload;
        if !(w.spread_hours >= 0.0
            && w.deadline_hours[0] > 0.0
            && w.deadline_hours[1] >= w.deadline_hours[0])
        {
            return bad(
                "workload: spread_hours >= 0 and 0 < deadline_hours[0] <= deadline_hours[1]".into(),
            );
        }
        let r = &self.twin;
        if !(0.0..1.0).contains(&r.link_loss) {
            return bad(format!(
                "twin.link_loss = {} must be in [0, 1)",
                r.link_loss
            ));
        }
        if !(r.tiles_per_s > 0.0
            && r.replan_minutes > 0.0
            && r.plan_ahead_hours > 0.0
            && r.physics_step_s > 0.0)
        {
            return bad("twin: tiles_per_s, replan_minutes, plan_ahead_hours and physics_step_s must be > 0".into());
        }
        for f in &self.faults {
            f.check(self.hours).map_err(TwinError::Invalid)?;
        }
        Ok(())
    }
}
