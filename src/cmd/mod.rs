//! Subcommands.

pub mod client;
pub mod ephemeris;
pub mod fleet;
pub mod flight;
pub mod ground;
pub mod live;
pub mod overview;
pub mod pki;
pub mod plan;
pub mod twin;

/// Reads the constellation and stations files a scenario names, relative to the scenario's own directory.
pub fn scenario_files(
    scenario: &std::path::Path,
    tle: Option<&str>,
    stations: Option<&str>,
) -> anyhow::Result<odc_planner::scenario::ScenarioFiles> {
    Ok(odc_planner::scenario::ScenarioFiles {
        tle: tle.map(|f| read_beside(scenario, f)).transpose()?,
        stations: stations.map(|f| read_beside(scenario, f)).transpose()?,
    })
}

fn read_beside(base: &std::path::Path, name: &str) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let path = base
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join(name);
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}
