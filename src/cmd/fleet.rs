//! What the services share about the constellation: its clock (real or accelerated) and its geometry, computed
//! the same way by the ground and by every flight daemon from one planner scenario, so a node dials the ground
//! exactly in the passes the ground plans with.

use anyhow::Context;
use odc_model::id::ModelId;
use odc_model::spec::ModelProfile;
use odc_model::time::{Instant, ScaledClock};
use odc_planner::Snapshot;
use odc_planner::scenario::{ScenarioConfig, ScenarioFiles};
use std::path::Path;

const DEMO_SCENARIO: &str = include_str!("../../scenarios/demo.toml");
const DEMO_TLE: &str = include_str!("../../testdata/orbit-calibration/satellites.tle");
const DEMO_STATIONS: &str = include_str!("../../testdata/orbit-calibration/stations.json");

/// Tile-classifier throughput every node is assumed to have, tiles per second (the twin's default).
pub const TILES_PER_S: f64 = 20.0;
/// Accelerator set-up per batch of the tile classifier, seconds.
pub const TILE_BATCH_SETUP_S: f64 = 2.0;

/// The clock settings of a service: simulated `start` at wall-clock `anchor_unix_ms`, `speed` times real time.
/// Every process of one constellation must be given the same three.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct TimeSettings {
    /// RFC 3339; empty: the wall-clock time at the anchor.
    pub start: String,
    /// Wall-clock Unix milliseconds; 0: when the process starts.
    pub anchor_unix_ms: i64,
    /// Simulated seconds per wall second.
    pub speed: f64,
}

impl TimeSettings {
    /// The clock these settings describe.
    pub fn clock(&self) -> anyhow::Result<ScaledClock> {
        anyhow::ensure!(
            self.speed.is_finite() && self.speed > 0.0 && self.speed <= 100_000.0,
            "time speed must be above 0 and at most 100000 (got {})",
            self.speed
        );
        let wall = chrono::Utc::now().timestamp_millis();
        let anchor = if self.anchor_unix_ms == 0 {
            wall
        } else {
            self.anchor_unix_ms
        };
        let start = if self.start.trim().is_empty() {
            Instant::from_unix_ms(anchor)
        } else {
            self.start
                .parse()
                .map_err(|e| anyhow::anyhow!("time start {:?}: {e}", self.start))?
        };
        Ok(ScaledClock {
            start,
            anchor_unix_ms: anchor,
            speed: self.speed,
        })
    }
}

/// The fleet, its stations and `hours` of geometry from `start`, from a planner scenario file (empty: the
/// embedded demo constellation) relative to `base`, kept to the nodes in `only` (all when empty). Every node
/// offers the tile classifier (what the daemons run).
pub fn geometry(
    scenario: &str,
    base: &Path,
    start: Instant,
    hours: f64,
    only: &[String],
) -> anyhow::Result<Snapshot> {
    let (text, files) = scenario_text(scenario, base)?;
    let mut config: ScenarioConfig = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("scenario: {}", e.to_string().replace('\n', " ")))?;
    config.start = start;
    config.hours = hours;
    // The scenario's own tenants and jobs are for `odc plan`; the services' come from the store and the API.
    config.jobs.count = 0;
    let (mut snapshot, _) = odc_planner::scenario::build(&config, &files)
        .map_err(|e| anyhow::anyhow!("fleet geometry: {e}"))?;
    let model = ModelId::new(odc_accel::model::TILE_CLASSIFIER)
        .map_err(|e| anyhow::anyhow!("model id: {e}"))?;
    let profile = ModelProfile {
        input_bytes_per_s: TILES_PER_S * odc_accel::tiles::TILE_BYTES as f64,
        batch_setup_s: TILE_BATCH_SETUP_S,
    };
    for n in &mut snapshot.nodes {
        n.spec.accelerator.models.insert(model.clone(), profile);
    }
    if !only.is_empty() {
        for id in only {
            anyhow::ensure!(
                snapshot.nodes.iter().any(|n| n.spec.id.as_str() == id),
                "node {id:?} is not in the scenario"
            );
        }
        let keep = |id: &odc_model::id::NodeId| only.iter().any(|o| o == id.as_str());
        snapshot.nodes.retain(|n| keep(&n.spec.id));
        snapshot.contacts.retain(|c| keep(&c.node));
        let isl: Vec<_> = snapshot
            .isl
            .iter()
            .filter(|w| keep(&w.a) && keep(&w.b))
            .cloned()
            .collect();
        snapshot.isl = isl.into();
    }
    Ok(snapshot)
}

/// A scenario's text and the files it names (the embedded demo constellation's when `scenario` is empty).
fn scenario_text(scenario: &str, base: &Path) -> anyhow::Result<(String, ScenarioFiles)> {
    if scenario.is_empty() {
        let files = ScenarioFiles {
            tle: Some(DEMO_TLE.to_string()),
            stations: Some(DEMO_STATIONS.to_string()),
        };
        return Ok((DEMO_SCENARIO.to_string(), files));
    }
    let path = base.join(scenario);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let peek: ScenarioConfig = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().replace('\n', " ")))?;
    let files = super::scenario_files(
        &path,
        peek.constellation.tle.as_deref(),
        peek.stations.file.as_deref(),
    )?;
    Ok((text, files))
}

/// The element sets of the scenario's catalog (kept to the nodes in `only`, all when empty) and its stations:
/// what operators refresh with uploads. `None` for a fleet with no catalog or no stations file.
pub fn orbit_book(
    scenario: &str,
    base: &Path,
    only: &[String],
) -> anyhow::Result<Option<odc_ground::orbits::OrbitBook>> {
    let (_, files) = scenario_text(scenario, base)?;
    let (Some(tle), Some(stations)) = (files.tle, files.stations) else {
        return Ok(None);
    };
    let mut catalog =
        odc_ephemeris::Catalog::parse_tle(&tle).map_err(|e| anyhow::anyhow!("catalog: {e}"))?;
    if !only.is_empty() {
        catalog.satellites.retain(|s| {
            let id = odc_planner::scenario::node_id(s.norad_id);
            only.iter().any(|o| o == id.as_str())
        });
    }
    let stations = odc_ephemeris::Station::parse_list(&stations)
        .map_err(|e| anyhow::anyhow!("stations: {e}"))?;
    Ok(Some(odc_ground::orbits::OrbitBook::new(catalog, stations)))
}

/// Reads a service's TOML configuration over its documented defaults (a file may give only what it changes) and
/// returns it with the directory its relative paths are taken from. Unknown settings are refused by name.
pub fn load_config<T: serde::de::DeserializeOwned>(
    defaults: &str,
    path: Option<&Path>,
) -> anyhow::Result<(T, std::path::PathBuf)> {
    let (text, base) = match path {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
        ),
        None => (defaults.to_string(), std::path::PathBuf::from(".")),
    };
    let mut merged: toml::Table = toml::from_str(defaults).context("default configuration")?;
    let given: toml::Table = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}",
            path.unwrap_or(Path::new("default")).display(),
            e.to_string().replace('\n', " ")
        )
    })?;
    for (k, v) in given {
        merged.insert(k, v);
    }
    let file: T = toml::Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| {
            anyhow::anyhow!("configuration: {}", e.to_string().replace('\n', " "))
        })?;
    Ok((file, base))
}
