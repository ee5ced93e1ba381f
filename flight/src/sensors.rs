//! Where the flight daemon's readings come from: battery charge, temperature, eclipse. A real node reads its
//! power and thermal hardware; a local run simulates them from the node's orbit (sunlight from the ephemeris's
//! shadow intervals) and the load the accelerator actually carried, with the same models the planner budgets with.

use crate::core::Sensors;
use odc_budget::{Illumination, NodeModel, ZERO_CELSIUS_K};
use odc_model::spec::NodeSpec;
use odc_model::time::{Duration, Instant};

/// A source of sensor readings.
pub trait SensorSource: Send {
    /// The readings at `now`; `busy` says whether the accelerator has been running since the last reading.
    fn read(&mut self, now: Instant, busy: bool) -> Sensors;
}

/// Simulated sensors: the battery and the temperature integrated over the node's sunlight and load.
pub struct SimulatedSensors {
    model: NodeModel,
    illumination: Illumination,
    capacity_wh: f64,
    energy_wh: f64,
    temp_k: f64,
    at: Instant,
    step_s: f64,
}

impl SimulatedSensors {
    /// A node at `altitude_km` starting at `start` with `state_of_charge` (0..1) and `temp_c`.
    pub fn new(
        spec: &NodeSpec,
        altitude_km: f64,
        illumination: Illumination,
        start: Instant,
        state_of_charge: f64,
        temp_c: f64,
    ) -> SimulatedSensors {
        SimulatedSensors {
            model: NodeModel::from_spec(spec, altitude_km),
            illumination,
            capacity_wh: spec.power.battery_capacity_wh,
            energy_wh: state_of_charge.clamp(0.0, 1.0) * spec.power.battery_capacity_wh,
            temp_k: temp_c + ZERO_CELSIUS_K,
            at: start,
            step_s: 30.0,
        }
    }
}

impl SensorSource for SimulatedSensors {
    fn read(&mut self, now: Instant, busy: bool) -> Sensors {
        let load = self.model.base_load_w + if busy { self.model.busy_extra_w } else { 0.0 };
        // A reading long after the last one (a restart, a paused process) integrates at most a day.
        if now - self.at > Duration::from_hours(24) {
            self.at = now - Duration::from_hours(24);
        }
        while self.at < now {
            let dt = (now - self.at).as_secs_f64().min(self.step_s);
            let mid = self.at + Duration::from_secs_f64(dt / 2.0);
            let sun = self.illumination.fraction_at(mid);
            let (energy, _) = self.model.battery_step(self.energy_wh, sun, load, dt);
            self.temp_k = self.model.thermal_step(self.temp_k, sun, load, dt);
            self.energy_wh = energy;
            self.at += Duration::from_secs_f64(dt);
        }
        Sensors {
            state_of_charge: self.energy_wh / self.capacity_wh,
            temp_c: self.temp_k - ZERO_CELSIUS_K,
            in_eclipse: self.illumination.fraction_at(now) < 0.5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odc_model::id::NodeId;

    #[test]
    fn the_battery_charges_in_sunlight_and_drains_in_shadow_under_load() {
        let id = NodeId::new("n1").expect("id");
        let spec = NodeSpec::leo_default(id, 1);
        let t0 = Instant::from_unix_ms(1_780_000_000_000);
        let shadow = Illumination::from_eclipses(&[(t0, t0 + Duration::from_hours(2))]);
        let mut s = SimulatedSensors::new(&spec, 550.0, shadow, t0, 0.8, 20.0);
        let dark = s.read(t0 + Duration::from_hours(1), true);
        assert!(dark.in_eclipse);
        assert!(dark.state_of_charge < 0.8, "{dark:?}");
        let lit = s.read(t0 + Duration::from_hours(4), false);
        assert!(!lit.in_eclipse);
        assert!(lit.state_of_charge > dark.state_of_charge, "{lit:?}");
    }
}
