//! What a node and a station are made of: the figures the planner and the governor budget against.
//!
//! Defaults describe a small LEO compute satellite of today (figures from public sources: an Orin-class
//! accelerator, a ~1 m² array, Li-ion kept to ~30% depth of discharge, X-band down, S-band up, one optical ISL).

use crate::id::{ModelId, NodeId, StationId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A spec value out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{owner}: {field} = {value} {problem}")]
pub struct SpecError {
    /// Which spec (node or station id).
    pub owner: String,
    /// The field, dotted path.
    pub field: &'static str,
    /// Its value.
    pub value: f64,
    /// What is wrong.
    pub problem: &'static str,
}

/// A check of one figure: `check(field, value, ok, problem)` fails with a [`SpecError`] naming `owner` when the
/// condition is false or the value is not finite.
fn checker(
    owner: String,
) -> impl Fn(&'static str, f64, bool, &'static str) -> Result<(), SpecError> {
    move |field, value, ok, problem| {
        if ok && value.is_finite() {
            Ok(())
        } else {
            Err(SpecError {
                owner: owner.clone(),
                field,
                value,
                problem,
            })
        }
    }
}

/// Kind of accelerator on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceleratorKind {
    /// General-purpose cores.
    Cpu,
    /// A GPU (Jetson-class to data-center-class).
    Gpu,
    /// A dedicated neural processor or TPU.
    Npu,
}

/// How fast a node runs one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelProfile {
    /// Input bytes consumed per second of accelerator time while the model runs.
    pub input_bytes_per_s: f64,
    /// Fixed accelerator time per batch (loading weights, warm-up), seconds.
    pub batch_setup_s: f64,
}

/// The accelerator of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceleratorSpec {
    /// Its kind.
    pub kind: AcceleratorKind,
    /// Product or class name, for operators.
    pub name: String,
    /// Models it can run, and how fast.
    pub models: BTreeMap<ModelId, ModelProfile>,
    /// Draw while idle (powered, not computing), W.
    pub idle_power_w: f64,
    /// Draw while running a batch, W.
    pub busy_power_w: f64,
}

/// Power generation and storage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerSpec {
    /// Array output in full sunlight, W (after cell efficiency, pointing and ageing).
    pub solar_array_w: f64,
    /// Battery capacity, Wh.
    pub battery_capacity_wh: f64,
    /// Lowest state of charge allowed, 0..1 (0.7 keeps depth of discharge to 30% per orbit, for cycle life).
    pub min_state_of_charge: f64,
    /// Fraction of charging power stored.
    pub charge_efficiency: f64,
    /// Fraction of stored energy delivered.
    pub discharge_efficiency: f64,
    /// Largest charging power the battery accepts, W.
    pub max_charge_w: f64,
    /// Constant load of the rest of the spacecraft (avionics, radios, heaters, attitude control), W.
    pub bus_load_w: f64,
}

/// Lumped thermal model inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThermalSpec {
    /// Heat capacity of the node, J/K.
    pub heat_capacity_j_per_k: f64,
    /// Radiator area facing deep space, m².
    pub radiator_area_m2: f64,
    /// Radiator emissivity, 0..1.
    pub radiator_emissivity: f64,
    /// Solar absorptivity of the sunlit surfaces, 0..1.
    pub solar_absorptivity: f64,
    /// Area that takes sunlight, m² (projected).
    pub sunlit_area_m2: f64,
    /// Lowest allowed temperature, °C.
    pub min_temp_c: f64,
    /// Highest allowed temperature, °C.
    pub max_temp_c: f64,
}

/// A radio for ground contacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RadioSpec {
    /// Band or name (`"S"`, `"X"`, `"Ka"`, `"optical"`).
    pub band: String,
    /// Ground → satellite rate, bit/s.
    pub uplink_bps: f64,
    /// Satellite → ground rate, bit/s.
    pub downlink_bps: f64,
}

/// An inter-satellite link terminal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IslTerminalSpec {
    /// Data rate each way, bit/s.
    pub rate_bps: f64,
    /// Longest usable range, km.
    pub max_range_km: f64,
}

/// Everything a planner and a governor need to know about one flight node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// The node.
    pub id: NodeId,
    /// NORAD catalog number of the satellite carrying it (links the node to its orbit).
    pub norad_id: u64,
    /// Its accelerator.
    pub accelerator: AcceleratorSpec,
    /// Its power system.
    pub power: PowerSpec,
    /// Its thermal figures.
    pub thermal: ThermalSpec,
    /// Storage for inputs and results, bytes.
    pub storage_bytes: u64,
    /// Radios for ground contacts.
    pub radios: Vec<RadioSpec>,
    /// ISL terminals (how many links at once).
    pub isl_terminals: Vec<IslTerminalSpec>,
}

impl Default for PowerSpec {
    /// A ~1 m² triple-junction array (≈300 W/m² at array level) and a 400 Wh Li-ion pack.
    fn default() -> Self {
        PowerSpec {
            solar_array_w: 300.0,
            battery_capacity_wh: 400.0,
            min_state_of_charge: 0.7,
            charge_efficiency: 0.95,
            discharge_efficiency: 0.95,
            max_charge_w: 200.0,
            bus_load_w: 40.0,
        }
    }
}

impl Default for ThermalSpec {
    /// ~50 kg of structure and electronics (≈0.8 kJ/kg·K), 0.6 m² of white-painted radiator facing deep space,
    /// and 0.3 m² of effective body area taking sunlight and Earth's infrared through the insulation. In full sun
    /// with the accelerator idle it settles near 15 °C, busy near 30 °C.
    fn default() -> Self {
        ThermalSpec {
            heat_capacity_j_per_k: 40_000.0,
            radiator_area_m2: 0.6,
            radiator_emissivity: 0.9,
            solar_absorptivity: 0.2,
            sunlit_area_m2: 0.3,
            min_temp_c: -10.0,
            max_temp_c: 50.0,
        }
    }
}

impl NodeSpec {
    /// A default LEO compute node: Orin-class GPU (15 W idle, 60 W busy), default power and thermal, 256 GB
    /// storage, S-band up (2 Mb/s) and X-band down (200 Mb/s), one 10 Gb/s optical ISL terminal.
    pub fn leo_default(id: NodeId, norad_id: u64) -> NodeSpec {
        let mut models = BTreeMap::new();
        if let Ok(m) = ModelId::new("minilm-l6") {
            models.insert(
                m,
                ModelProfile {
                    input_bytes_per_s: 2.0e6,
                    batch_setup_s: 2.0,
                },
            );
        }
        if let Ok(m) = ModelId::new("resnet50") {
            models.insert(
                m,
                ModelProfile {
                    input_bytes_per_s: 40.0e6,
                    batch_setup_s: 3.0,
                },
            );
        }
        NodeSpec {
            id,
            norad_id,
            accelerator: AcceleratorSpec {
                kind: AcceleratorKind::Gpu,
                name: "orin-class".into(),
                models,
                idle_power_w: 15.0,
                busy_power_w: 60.0,
            },
            power: PowerSpec::default(),
            thermal: ThermalSpec::default(),
            storage_bytes: 256_000_000_000,
            radios: vec![RadioSpec {
                band: "S/X".into(),
                uplink_bps: 2.0e6,
                downlink_bps: 200.0e6,
            }],
            isl_terminals: vec![IslTerminalSpec {
                rate_bps: 10.0e9,
                max_range_km: 5_000.0,
            }],
        }
    }

    /// Checks every figure is physical; the first problem found is returned.
    pub fn validate(&self) -> Result<(), SpecError> {
        let check = checker(format!("node {}", self.id));
        let a = &self.accelerator;
        check(
            "accelerator.idle_power_w",
            a.idle_power_w,
            a.idle_power_w >= 0.0,
            "must be ≥ 0",
        )?;
        check(
            "accelerator.busy_power_w",
            a.busy_power_w,
            a.busy_power_w >= a.idle_power_w,
            "must be ≥ idle power",
        )?;
        for p in a.models.values() {
            check(
                "accelerator.models.input_bytes_per_s",
                p.input_bytes_per_s,
                p.input_bytes_per_s > 0.0,
                "must be > 0",
            )?;
            check(
                "accelerator.models.batch_setup_s",
                p.batch_setup_s,
                p.batch_setup_s >= 0.0,
                "must be ≥ 0",
            )?;
        }
        let p = &self.power;
        check(
            "power.solar_array_w",
            p.solar_array_w,
            p.solar_array_w >= 0.0,
            "must be ≥ 0",
        )?;
        check(
            "power.battery_capacity_wh",
            p.battery_capacity_wh,
            p.battery_capacity_wh > 0.0,
            "must be > 0",
        )?;
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        check(
            "power.min_state_of_charge",
            p.min_state_of_charge,
            unit(p.min_state_of_charge) && p.min_state_of_charge < 1.0,
            "must be in [0, 1)",
        )?;
        check(
            "power.charge_efficiency",
            p.charge_efficiency,
            unit(p.charge_efficiency) && p.charge_efficiency > 0.0,
            "must be in (0, 1]",
        )?;
        check(
            "power.discharge_efficiency",
            p.discharge_efficiency,
            unit(p.discharge_efficiency) && p.discharge_efficiency > 0.0,
            "must be in (0, 1]",
        )?;
        check(
            "power.max_charge_w",
            p.max_charge_w,
            p.max_charge_w > 0.0,
            "must be > 0",
        )?;
        check(
            "power.bus_load_w",
            p.bus_load_w,
            p.bus_load_w >= 0.0,
            "must be ≥ 0",
        )?;
        let t = &self.thermal;
        check(
            "thermal.heat_capacity_j_per_k",
            t.heat_capacity_j_per_k,
            t.heat_capacity_j_per_k > 0.0,
            "must be > 0",
        )?;
        check(
            "thermal.radiator_area_m2",
            t.radiator_area_m2,
            t.radiator_area_m2 > 0.0,
            "must be > 0",
        )?;
        check(
            "thermal.radiator_emissivity",
            t.radiator_emissivity,
            unit(t.radiator_emissivity) && t.radiator_emissivity > 0.0,
            "must be in (0, 1]",
        )?;
        check(
            "thermal.solar_absorptivity",
            t.solar_absorptivity,
            unit(t.solar_absorptivity),
            "must be in [0, 1]",
        )?;
        check(
            "thermal.sunlit_area_m2",
            t.sunlit_area_m2,
            t.sunlit_area_m2 >= 0.0,
            "must be ≥ 0",
        )?;
        check(
            "thermal.max_temp_c",
            t.max_temp_c,
            t.max_temp_c > t.min_temp_c && t.min_temp_c > -273.15,
            "must exceed min_temp_c (above absolute zero)",
        )?;
        for r in &self.radios {
            check(
                "radios.uplink_bps",
                r.uplink_bps,
                r.uplink_bps >= 0.0,
                "must be ≥ 0",
            )?;
            check(
                "radios.downlink_bps",
                r.downlink_bps,
                r.downlink_bps >= 0.0,
                "must be ≥ 0",
            )?;
        }
        for i in &self.isl_terminals {
            check(
                "isl_terminals.rate_bps",
                i.rate_bps,
                i.rate_bps > 0.0,
                "must be > 0",
            )?;
            check(
                "isl_terminals.max_range_km",
                i.max_range_km,
                i.max_range_km > 0.0,
                "must be > 0",
            )?;
        }
        Ok(())
    }
}

/// A ground station: where it is, what it can see and how fast it talks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationSpec {
    /// The station.
    pub id: StationId,
    /// Geodetic latitude (WGS-84), degrees north.
    pub lat_deg: f64,
    /// Longitude, degrees east.
    pub lon_deg: f64,
    /// Height above the WGS-84 ellipsoid, m.
    pub alt_m: f64,
    /// Elevation mask, degrees.
    pub min_elevation_deg: f64,
    /// Antennas: how many satellites it can hold at once.
    pub antennas: u32,
    /// Ground → satellite rate per antenna, bit/s.
    pub uplink_bps: f64,
    /// Satellite → ground rate per antenna, bit/s.
    pub downlink_bps: f64,
    /// Time an antenna needs between two passes (slew, lock), seconds.
    pub setup_s: f64,
}

impl StationSpec {
    /// A station with one antenna, S-band up at 2 Mb/s, X-band down at 200 Mb/s and 60 s between passes.
    pub fn with_defaults(
        id: StationId,
        lat_deg: f64,
        lon_deg: f64,
        alt_m: f64,
        min_elevation_deg: f64,
    ) -> Self {
        StationSpec {
            id,
            lat_deg,
            lon_deg,
            alt_m,
            min_elevation_deg,
            antennas: 1,
            uplink_bps: 2.0e6,
            downlink_bps: 200.0e6,
            setup_s: 60.0,
        }
    }

    /// Checks every figure is physical.
    pub fn validate(&self) -> Result<(), SpecError> {
        let check = checker(format!("station {}", self.id));
        check(
            "lat_deg",
            self.lat_deg,
            (-90.0..=90.0).contains(&self.lat_deg),
            "must be in [-90, 90]",
        )?;
        check(
            "lon_deg",
            self.lon_deg,
            (-180.0..=360.0).contains(&self.lon_deg),
            "must be in [-180, 360]",
        )?;
        check(
            "min_elevation_deg",
            self.min_elevation_deg,
            (-5.0..90.0).contains(&self.min_elevation_deg),
            "must be in [-5, 90)",
        )?;
        check(
            "antennas",
            f64::from(self.antennas),
            self.antennas > 0,
            "must be ≥ 1",
        )?;
        check(
            "uplink_bps",
            self.uplink_bps,
            self.uplink_bps >= 0.0,
            "must be ≥ 0",
        )?;
        check(
            "downlink_bps",
            self.downlink_bps,
            self.downlink_bps >= 0.0,
            "must be ≥ 0",
        )?;
        check("setup_s", self.setup_s, self.setup_s >= 0.0, "must be ≥ 0")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_plausible() {
        let node = NodeSpec::leo_default(NodeId::new("sat-001").expect("id"), 60001);
        node.validate().expect("default node is valid");
        // The array must cover bus + busy accelerator in sunlight with margin to recharge.
        let load = node.power.bus_load_w + node.accelerator.busy_power_w;
        assert!(node.power.solar_array_w > 1.5 * load);
        let station = StationSpec::with_defaults(
            StationId::new("svalbard").expect("id"),
            78.23,
            15.41,
            500.0,
            5.0,
        );
        station.validate().expect("default station is valid");
    }

    #[test]
    fn invalid_figures_are_named() {
        let mut node = NodeSpec::leo_default(NodeId::new("sat-001").expect("id"), 1);
        node.power.min_state_of_charge = 1.2;
        let err = node.validate().expect_err("out of range").to_string();
        assert!(
            err.contains("sat-001") && err.contains("power.min_state_of_charge"),
            "{err}"
        );
        node.power.min_state_of_charge = 0.3;
        node.thermal.radiator_area_m2 = f64::NAN;
        assert!(node.validate().is_err());
    }
}
