//! Scenarios: a fleet, a ground network, tenants and a workload, turned into a [`Snapshot`] with the ephemeris
//! (passes become contact windows, umbra and penumbra become sunlight, line of sight becomes ISL windows).
//!
//! The configuration is plain data (it deserialises from TOML or JSON); files it names are read by the caller
//! and handed over as text, so building a scenario does no IO.

use crate::snapshot::{ContactWindow, IslWindow, NodeInput, PlannerOptions, Snapshot, TenantInput};
use odc_budget::Illumination;
use odc_ephemeris::synthetic::{WalkerShell, station_network, walker};
use odc_ephemeris::{Catalog, IslOptions, SearchOptions, Shadow, Span, Station};
use odc_model::id::{IdGenerator, ModelId, NodeId, SplitMix64, StationId};
use odc_model::job::{BlobRef, Job, JobEvent, JobSpec, Priority};
use odc_model::spec::{NodeSpec, StationSpec};
use odc_model::tenant::{Quota, Tenant, Usage};
use odc_model::time::{Duration, Instant};
use serde::Deserialize;

/// A scenario as written in a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    /// Start of the horizon, RFC 3339.
    pub start: Instant,
    /// Length of the horizon, hours.
    pub hours: f64,
    /// Seed of the workload and of plan ids.
    #[serde(default)]
    pub seed: u64,
    /// The fleet.
    pub constellation: ConstellationConfig,
    /// The ground network.
    pub stations: StationsConfig,
    /// Changes to the default node spec, for every node.
    #[serde(default)]
    pub node: NodeConfig,
    /// Tenants.
    pub tenants: Vec<TenantConfig>,
    /// The workload.
    pub jobs: JobsConfig,
    /// ISL range, km (0 disables ISLs).
    #[serde(default = "default_isl_range")]
    pub isl_range_km: f64,
}

/// The ISL range scenarios get unless they say otherwise, km (an optical terminal's reach).
pub fn default_isl_range() -> f64 {
    5_000.0
}

/// Where the satellites come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstellationConfig {
    /// A TLE file (path relative to the scenario file).
    pub tle: Option<String>,
    /// Walker shells to generate.
    #[serde(default)]
    pub walker: Vec<WalkerConfig>,
}

/// One Walker-delta shell.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalkerConfig {
    /// Altitude, km.
    pub altitude_km: f64,
    /// Inclination, degrees.
    pub inclination_deg: f64,
    /// Planes.
    pub planes: usize,
    /// Satellites per plane.
    pub per_plane: usize,
    /// Phasing factor.
    #[serde(default)]
    pub phasing: usize,
}

/// Where the stations come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationsConfig {
    /// A stations JSON file (the ephemeris format; path relative to the scenario file).
    pub file: Option<String>,
    /// Or this many stations spread over the globe.
    pub lattice: Option<usize>,
    /// Antennas per station.
    #[serde(default = "one")]
    pub antennas: u32,
    /// Uplink per antenna, bit/s.
    pub uplink_bps: Option<f64>,
    /// Downlink per antenna, bit/s.
    pub downlink_bps: Option<f64>,
}

fn one() -> u32 {
    1
}

/// Overrides of the default node.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Battery capacity, Wh.
    pub battery_wh: Option<f64>,
    /// Array output in full sun, W.
    pub solar_array_w: Option<f64>,
    /// Accelerator draw while busy, W.
    pub busy_power_w: Option<f64>,
    /// Radiator area, m².
    pub radiator_area_m2: Option<f64>,
    /// Storage, bytes.
    pub storage_bytes: Option<u64>,
    /// Initial state of charge, 0..1.
    pub state_of_charge: Option<f64>,
}

/// A tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Display name.
    pub name: String,
    /// Fair-share weight.
    #[serde(default = "one")]
    pub weight: u32,
    /// Accelerator-seconds per period.
    pub accelerator_s: Option<f64>,
    /// Uplink bytes per period.
    pub uplink_bytes: Option<u64>,
    /// Downlink bytes per period.
    pub downlink_bytes: Option<u64>,
}

/// The workload generator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// How many jobs.
    pub count: usize,
    /// Models to draw from (they must be among the nodes' models).
    #[serde(default = "default_models")]
    pub models: Vec<String>,
    /// Input size range, bytes.
    #[serde(default = "default_input")]
    pub input_bytes: [u64; 2],
    /// Output bound range, bytes.
    #[serde(default = "default_output")]
    pub output_bytes: [u64; 2],
    /// Deadline range after the start, hours.
    #[serde(default = "default_deadline")]
    pub deadline_hours: [f64; 2],
}

fn default_models() -> Vec<String> {
    vec!["minilm-l6".into(), "resnet50".into()]
}
fn default_input() -> [u64; 2] {
    [100_000, 2_000_000]
}
fn default_output() -> [u64; 2] {
    [10_000, 1_000_000]
}
fn default_deadline() -> [f64; 2] {
    [2.0, 24.0]
}

/// Files a scenario names, read by the caller.
#[derive(Debug, Clone, Default)]
pub struct ScenarioFiles {
    /// Text of the TLE file.
    pub tle: Option<String>,
    /// Text of the stations file.
    pub stations: Option<String>,
}

/// Why a scenario cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Something in the configuration is missing or out of range.
    #[error("scenario: {0}")]
    Invalid(String),
    /// The TLE text does not parse.
    #[error("scenario constellation: {0}")]
    Catalog(#[from] odc_ephemeris::CatalogError),
    /// The stations text does not parse.
    #[error("scenario stations: {0}")]
    Stations(#[from] odc_ephemeris::StationError),
}

/// How long building a scenario's geometry took, for benchmarks and reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct GeometryCounts {
    /// Contact windows.
    pub contacts: usize,
    /// ISL windows.
    pub isl: usize,
    /// Eclipse intervals (penumbra).
    pub eclipses: usize,
}

/// The node id of a satellite: `n` and its catalog number.
pub fn node_id(norad_id: u64) -> NodeId {
    NodeId::new(format!("n{norad_id}")).unwrap_or_else(|_| unreachable!("digits make a valid name"))
}

/// A station's id from its name: lower case, anything but letters and digits as `-`.
pub fn station_id(name: &str) -> Result<StationId, ScenarioError> {
    let name: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    StationId::new(name).map_err(|e| ScenarioError::Invalid(e.to_string()))
}

/// One satellite's geometry over a span, as the planner takes it.
#[derive(Debug, Clone)]
pub struct NodeGeometry {
    /// The node.
    pub node: NodeId,
    /// Mean altitude from the mean motion, km.
    pub altitude_km: f64,
    /// Sunlight (umbra and penumbra intervals).
    pub illumination: Illumination,
    /// Penumbra intervals counted.
    pub eclipses: usize,
}

/// The geometry of a catalog over a span.
#[derive(Debug, Clone)]
pub struct OrbitGeometry {
    /// Each satellite's, in catalog order.
    pub nodes: Vec<NodeGeometry>,
    /// Every pass over every station, in the ephemeris's order.
    pub contacts: Vec<ContactWindow>,
}

/// Passes over `stations` and shadows of every satellite of `catalog` from `start` to `end`.
pub fn orbit_geometry(
    catalog: &Catalog,
    stations: &[Station],
    start: Instant,
    end: Instant,
) -> Result<OrbitGeometry, ScenarioError> {
    let span = Span::new(start.unix_seconds(), end.unix_seconds())
        .map_err(|e| ScenarioError::Invalid(e.to_string()))?;
    let options = SearchOptions::default();
    let passes = odc_ephemeris::find_passes(catalog, stations, span, &options);
    let shadows =
        odc_ephemeris::find_eclipses(catalog, span, &[Shadow::Umbra, Shadow::Penumbra], &options);
    let station_ids: Vec<StationId> = stations
        .iter()
        .map(|s| station_id(&s.name))
        .collect::<Result<_, _>>()?;
    let ms = |s: f64| Instant::from_unix_seconds(s);
    let mut out = Vec::with_capacity(catalog.satellites.len());
    for (i, sat) in catalog.satellites.iter().enumerate() {
        let node = node_id(sat.norad_id);
        let of = |shadow: Shadow| -> Vec<(Instant, Instant)> {
            shadows
                .eclipses
                .iter()
                .filter(|e| e.satellite == i && e.shadow == shadow)
                .map(|e| (ms(e.enter), ms(e.exit)))
                .collect()
        };
        // Kepler's third law: a = (μ / n²)^⅓.
        let n_rad_s = sat.elements.mean_motion * std::f64::consts::TAU / 86_400.0;
        let altitude_km = (398_600.8 / (n_rad_s * n_rad_s)).cbrt() - 6378.135;
        let penumbra = of(Shadow::Penumbra);
        out.push(NodeGeometry {
            node,
            altitude_km,
            illumination: Illumination::from_shadows(&of(Shadow::Umbra), &penumbra),
            eclipses: penumbra.len(),
        });
    }
    let contacts = passes
        .passes
        .iter()
        .map(|p| ContactWindow {
            station: station_ids[p.station].clone(),
            node: out[p.satellite].node.clone(),
            start: ms(p.aos),
            end: ms(p.los),
        })
        .collect();
    Ok(OrbitGeometry {
        nodes: out,
        contacts,
    })
}

/// Builds a snapshot: geometry from the ephemeris, workload from the seed.
pub fn build(
    config: &ScenarioConfig,
    files: &ScenarioFiles,
) -> Result<(Snapshot, GeometryCounts), ScenarioError> {
    if !(config.hours > 0.0 && config.hours <= 24.0 * 14.0) {
        return Err(ScenarioError::Invalid(format!(
            "hours = {} must be in (0, 336]",
            config.hours
        )));
    }
    if config.tenants.is_empty() {
        return Err(ScenarioError::Invalid(
            "at least one tenant is needed".into(),
        ));
    }
    let now = config.start;
    let end = now + Duration::from_secs_f64(config.hours * 3600.0);
    let span = Span::new(now.unix_seconds(), end.unix_seconds())
        .map_err(|e| ScenarioError::Invalid(e.to_string()))?;
    let mut satellites = match &files.tle {
        Some(text) => Catalog::parse_tle(text)?.satellites,
        None => Vec::new(),
    };
    let shells: Vec<WalkerShell> = config
        .constellation
        .walker
        .iter()
        .map(|w| WalkerShell {
            altitude_km: w.altitude_km,
            inclination_deg: w.inclination_deg,
            planes: w.planes,
            per_plane: w.per_plane,
            phasing: w.phasing,
        })
        .collect();
    satellites.extend(
        walker(&shells, now.unix_seconds() - 6.0 * 3600.0, 100_000)
            .map_err(|e| ScenarioError::Invalid(format!("walker shell: {e}")))?,
    );
    if satellites.is_empty() {
        return Err(ScenarioError::Invalid(
            "the constellation is empty (give tle or walker shells)".into(),
        ));
    }
    let catalog = Catalog { satellites };
    let stations: Vec<Station> = match (&files.stations, config.stations.lattice) {
        (Some(text), _) => Station::parse_list(text)?,
        (None, Some(n)) if n > 0 => station_network(n, 78.0),
        _ => {
            return Err(ScenarioError::Invalid(
                "stations need a file or a lattice size".into(),
            ));
        }
    };
    let options = SearchOptions::default();
    let geometry = orbit_geometry(&catalog, &stations, now, end)?;
    let isl = if config.isl_range_km > 0.0 {
        let isl_options = IslOptions {
            grazing_altitude_km: 80.0,
            max_range_km: Some(config.isl_range_km),
        };
        odc_ephemeris::find_isl_windows(&catalog, span, &isl_options, &options).windows
    } else {
        Vec::new()
    };
    let node_id = |i: usize| node_id(catalog.satellites[i].norad_id);
    let mut nodes = Vec::new();
    for (i, sat) in catalog.satellites.iter().enumerate() {
        let mut spec = NodeSpec::leo_default(node_id(i), sat.norad_id);
        let n = &config.node;
        if let Some(v) = n.battery_wh {
            spec.power.battery_capacity_wh = v;
        }
        if let Some(v) = n.solar_array_w {
            spec.power.solar_array_w = v;
        }
        if let Some(v) = n.busy_power_w {
            spec.accelerator.busy_power_w = v;
        }
        if let Some(v) = n.radiator_area_m2 {
            spec.thermal.radiator_area_m2 = v;
        }
        if let Some(v) = n.storage_bytes {
            spec.storage_bytes = v;
        }
        spec.validate()
            .map_err(|e| ScenarioError::Invalid(e.to_string()))?;
        let g = &geometry.nodes[i];
        nodes.push(NodeInput {
            spec,
            altitude_km: g.altitude_km,
            state_of_charge: n.state_of_charge.unwrap_or(0.9),
            temp_c: 15.0,
            storage_used_bytes: 0,
            illumination: g.illumination.clone(),
        });
    }
    let mut station_specs = Vec::new();
    for st in &stations {
        let mut spec = StationSpec::with_defaults(
            station_id(&st.name)?,
            st.lat_deg,
            st.lon_deg,
            st.alt_m,
            st.min_elevation_deg,
        );
        spec.antennas = config.stations.antennas.max(1);
        if let Some(v) = config.stations.uplink_bps {
            spec.uplink_bps = v;
        }
        if let Some(v) = config.stations.downlink_bps {
            spec.downlink_bps = v;
        }
        station_specs.push(spec);
    }
    let eclipses = geometry.nodes.iter().map(|g| g.eclipses).sum();
    let contacts = geometry.contacts;
    let ms = |s: f64| Instant::from_unix_seconds(s);
    let isl_windows: Vec<IslWindow> = isl
        .iter()
        .map(|w| IslWindow {
            a: node_id(w.sat_a),
            b: node_id(w.sat_b),
            start: ms(w.start),
            end: ms(w.end),
        })
        .collect();
    let mut ids = IdGenerator::seeded(config.seed);
    let tenants: Vec<TenantInput> = config
        .tenants
        .iter()
        .map(|t| TenantInput {
            tenant: Tenant {
                id: ids.tenant(now),
                name: t.name.clone(),
                quota: Quota {
                    accelerator_s: t.accelerator_s.unwrap_or(f64::MAX),
                    energy_wh: f64::MAX,
                    uplink_bytes: t.uplink_bytes.unwrap_or(u64::MAX),
                    downlink_bytes: t.downlink_bytes.unwrap_or(u64::MAX),
                    period: Duration::from_hours(24),
                },
                share_weight: t.weight.max(1),
            },
            used: Usage::default(),
        })
        .collect();
    let models: Vec<ModelId> = config
        .jobs
        .models
        .iter()
        .map(|m| ModelId::new(m.clone()).map_err(|e| ScenarioError::Invalid(e.to_string())))
        .collect::<Result<_, _>>()?;
    if models.is_empty() {
        return Err(ScenarioError::Invalid("jobs.models is empty".into()));
    }
    let jobs = workload(&mut ids, config, &tenants, &models, now);
    let counts = GeometryCounts {
        contacts: contacts.len(),
        isl: isl_windows.len(),
        eclipses,
    };
    let snapshot = Snapshot {
        now,
        horizon_end: end,
        plan_id: ids.plan(now),
        id_seed: config.seed,
        previous: None,
        nodes,
        stations: station_specs,
        contacts,
        isl: std::sync::Arc::new(isl_windows),
        tenants,
        jobs,
        options: PlannerOptions::default(),
    };
    Ok((snapshot, counts))
}

/// Accepted jobs drawn from the configured ranges.
fn workload(
    ids: &mut IdGenerator,
    config: &ScenarioConfig,
    tenants: &[TenantInput],
    models: &[ModelId],
    now: Instant,
) -> Vec<Job> {
    let mut rng = SplitMix64::new(config.seed ^ 0x6a6f_6273);
    let mut range = |lo: u64, hi: u64| lo + rng.next_u64() % (hi.saturating_sub(lo) + 1);
    let j = &config.jobs;
    (0..j.count)
        .map(|k| {
            let tenant = tenants[k % tenants.len()].tenant.id;
            let model = models[range(0, models.len() as u64 - 1) as usize].clone();
            let (dlo, dhi) = (
                (j.deadline_hours[0] * 3600.0) as u64,
                (j.deadline_hours[1] * 3600.0) as u64,
            );
            let spec = JobSpec {
                tenant,
                model,
                input: BlobRef {
                    size_bytes: range(j.input_bytes[0], j.input_bytes[1]).max(1),
                    ..BlobRef::of(&(k as u64).to_le_bytes())
                },
                output_bound_bytes: range(j.output_bytes[0], j.output_bytes[1]).max(1),
                deadline: now + Duration::from_secs(range(dlo, dhi) as i64),
                priority: Priority::new(range(0, 9) as u8).unwrap_or(Priority::MAX),
                idempotency_key: format!("job-{k}"),
            };
            let mut job = Job::new(ids.job(now), spec, now);
            let _ = job.apply(&JobEvent::Accept, now);
            job
        })
        .collect()
}
