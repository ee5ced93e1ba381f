//! odc-budget: power and thermal budgets of a flight node, pure and deterministic.
//!
//! **Power.** The array gives `P_solar = P_array · f(t)`, where f is the visible fraction of the Sun: 1 in
//! sunlight, 0 in umbra, ½ in penumbra (LEO crosses it in seconds, so its average is enough). Loads are the bus,
//! the accelerator at idle, and the extra `P_busy − P_idle` while a batch runs. With `net = P_solar − P_load`:
//! a surplus charges the battery at `min(net, P_max_charge) · η_c` until it is full (the rest is curtailed); a
//! deficit drains it at `−net / η_d`. The state of charge must never fall below the minimum.
//!
//! **Heat.** One lumped node of heat capacity C (J/K):
//! `C dT/dt = α A_sun S f + F_e (ε A_e E_IR + α A_e a S f) + P_load − ε σ A_rad (T⁴ − T_sink⁴)`
//! with S = 1361 W/m², Earth IR `E_IR` = 240 W/m², albedo a = 0.3, `F_e` = (R/(R+h))² the Earth view factor of a
//! nadir face at altitude h, deep space at `T_sink` = 3 K. Every watt of electrical load ends as heat in the node.
//! Integrated with Heun's method; the temperature must stay below the node's maximum.
//!
//! [`NodeBudget`] keeps a node's predicted state of charge and temperature on a time grid, takes and releases
//! accelerator loads, and refuses any load that would break a limit anywhere in the horizon.

use odc_model::spec::NodeSpec;
use odc_model::time::Instant;

/// Solar constant at 1 AU, W/m².
pub const SOLAR_CONSTANT_W_M2: f64 = 1361.0;
/// Stefan–Boltzmann constant, W/(m²·K⁴).
pub const STEFAN_BOLTZMANN: f64 = 5.670_374_419e-8;
/// Earth's mean outgoing infrared, W/m².
pub const EARTH_IR_W_M2: f64 = 240.0;
/// Earth's mean Bond albedo.
pub const EARTH_ALBEDO: f64 = 0.3;
/// Deep-space sink temperature, K.
pub const SINK_TEMPERATURE_K: f64 = 3.0;
/// 0 °C in kelvin.
pub const ZERO_CELSIUS_K: f64 = 273.15;
/// Earth's equatorial radius for the view factor, km.
const EARTH_RADIUS_KM: f64 = 6378.137;

/// Sunlight over a horizon: a sorted list of shadow intervals (Unix ms) with the fraction of the Sun visible.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Illumination {
    /// `(start, end, visible_fraction)`, sorted, not overlapping; outside them the Sun is fully visible.
    shadows: Vec<(Instant, Instant, f64)>,
}

impl Illumination {
    /// Always in full sunlight.
    pub fn always_sunlit() -> Self {
        Illumination::default()
    }

    /// From umbra and penumbra intervals (the penumbra ones include the umbra, as the ephemeris reports them).
    pub fn from_shadows(umbra: &[(Instant, Instant)], penumbra: &[(Instant, Instant)]) -> Self {
        // Cut every penumbra interval at the umbra edges inside it.
        let mut shadows = Vec::new();
        for &(ps, pe) in penumbra {
            let mut cursor = ps;
            let mut inner: Vec<_> = umbra
                .iter()
                .filter(|&&(us, ue)| us < pe && ue > ps)
                .copied()
                .collect();
            inner.sort();
            for (us, ue) in inner {
                let (us, ue) = (us.max(ps), ue.min(pe));
                if us > cursor {
                    shadows.push((cursor, us, 0.5));
                }
                shadows.push((us, ue, 0.0));
                cursor = cursor.max(ue);
            }
            if pe > cursor {
                shadows.push((cursor, pe, 0.5));
            }
        }
        // Umbra intervals with no enclosing penumbra interval still count.
        for &(us, ue) in umbra {
            if !penumbra.iter().any(|&(ps, pe)| ps <= us && ue <= pe) {
                shadows.push((us, ue, 0.0));
            }
        }
        shadows.sort_by_key(|s| (s.0, s.1));
        Illumination { shadows }
    }

    /// From shadow intervals that are all full darkness (the Sun-centre boundary, say).
    pub fn from_eclipses(eclipses: &[(Instant, Instant)]) -> Self {
        Self::from_shadows(eclipses, &[])
    }

    /// Mean visible fraction of the Sun over [a, b).
    pub fn mean_fraction(&self, a: Instant, b: Instant) -> f64 {
        let span = (b - a).as_millis() as f64;
        if span <= 0.0 {
            return self.fraction_at(a);
        }
        let first = self.shadows.partition_point(|s| s.1 <= a);
        let mut dark = 0.0;
        for &(s, e, f) in &self.shadows[first..] {
            if s >= b {
                break;
            }
            let overlap = (e.min(b) - s.max(a)).as_millis() as f64;
            if overlap > 0.0 {
                dark += overlap * (1.0 - f);
            }
        }
        1.0 - dark / span
    }

    /// Visible fraction of the Sun at t.
    pub fn fraction_at(&self, t: Instant) -> f64 {
        let i = self.shadows.partition_point(|s| s.1 <= t);
        match self.shadows.get(i) {
            Some(&(s, _, f)) if s <= t => f,
            _ => 1.0,
        }
    }
}

/// A node's physical figures, as the budget uses them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeModel {
    /// Array output in full sun, W.
    pub solar_array_w: f64,
    /// Battery capacity, Wh.
    pub capacity_wh: f64,
    /// Lowest allowed stored energy, Wh.
    pub min_energy_wh: f64,
    /// Charging efficiency.
    pub charge_efficiency: f64,
    /// Discharging efficiency.
    pub discharge_efficiency: f64,
    /// Largest charging power, W.
    pub max_charge_w: f64,
    /// Constant load: bus plus idle accelerator, W.
    pub base_load_w: f64,
    /// Extra draw while the accelerator is busy, W.
    pub busy_extra_w: f64,
    /// Heat capacity, J/K.
    pub heat_capacity_j_per_k: f64,
    /// Absorbed solar flux factor α·A_sun + F_e·α·A_e·a (m²), times S·f gives W.
    pub solar_absorbing_m2: f64,
    /// Earth IR absorbed, W.
    pub earth_ir_w: f64,
    /// ε·σ·A_rad, W/K⁴.
    pub radiator_w_per_k4: f64,
    /// Highest allowed temperature, K.
    pub max_temp_k: f64,
}

impl NodeModel {
    /// The budget's view of a node spec at an orbit altitude (for the Earth view factor).
    pub fn from_spec(spec: &NodeSpec, altitude_km: f64) -> NodeModel {
        let p = &spec.power;
        let t = &spec.thermal;
        let view = (EARTH_RADIUS_KM / (EARTH_RADIUS_KM + altitude_km.max(0.0))).powi(2);
        // The nadir face is taken as large as the sunlit face; both see their own flux.
        let face = t.sunlit_area_m2;
        NodeModel {
            solar_array_w: p.solar_array_w,
            capacity_wh: p.battery_capacity_wh,
            min_energy_wh: p.min_state_of_charge * p.battery_capacity_wh,
            charge_efficiency: p.charge_efficiency,
            discharge_efficiency: p.discharge_efficiency,
            max_charge_w: p.max_charge_w,
            base_load_w: p.bus_load_w + spec.accelerator.idle_power_w,
            busy_extra_w: spec.accelerator.busy_power_w - spec.accelerator.idle_power_w,
            heat_capacity_j_per_k: t.heat_capacity_j_per_k,
            solar_absorbing_m2: t.solar_absorptivity * (face + view * face * EARTH_ALBEDO),
            earth_ir_w: t.radiator_emissivity * face * view * EARTH_IR_W_M2,
            radiator_w_per_k4: t.radiator_emissivity * STEFAN_BOLTZMANN * t.radiator_area_m2,
            max_temp_k: t.max_temp_c + ZERO_CELSIUS_K,
        }
    }

    /// Heat flowing in minus heat radiated, W, at temperature `temp_k` with sunlit fraction f and electrical load.
    pub fn heat_balance_w(&self, temp_k: f64, sunlit: f64, load_w: f64) -> f64 {
        let absorbed =
            self.solar_absorbing_m2 * SOLAR_CONSTANT_W_M2 * sunlit + self.earth_ir_w + load_w;
        absorbed - self.radiator_w_per_k4 * (temp_k.powi(4) - SINK_TEMPERATURE_K.powi(4))
    }

    /// Temperature at which the heat balance is zero, K: the radiative equilibrium.
    pub fn equilibrium_temp_k(&self, sunlit: f64, load_w: f64) -> f64 {
        let absorbed =
            self.solar_absorbing_m2 * SOLAR_CONSTANT_W_M2 * sunlit + self.earth_ir_w + load_w;
        (absorbed / self.radiator_w_per_k4 + SINK_TEMPERATURE_K.powi(4)).powf(0.25)
    }

    /// One step of the battery: stored energy after `dt_s` with this sunlit fraction and load, and the flows.
    pub fn battery_step(
        &self,
        energy_wh: f64,
        sunlit: f64,
        load_w: f64,
        dt_s: f64,
    ) -> (f64, Flows) {
        let hours = dt_s / 3600.0;
        let solar = self.solar_array_w * sunlit;
        let net = solar - load_w;
        let mut flows = Flows {
            solar_wh: solar * hours,
            load_wh: load_w * hours,
            ..Flows::default()
        };
        let next = if net >= 0.0 {
            let room = (self.capacity_wh - energy_wh).max(0.0);
            let offered = net.min(self.max_charge_w) * hours;
            let stored = (offered * self.charge_efficiency).min(room);
            let drawn = stored / self.charge_efficiency;
            flows.losses_wh = drawn - stored;
            flows.curtailed_wh = net * hours - drawn;
            energy_wh + stored
        } else {
            let needed = -net * hours / self.discharge_efficiency;
            let drawn = needed.min(energy_wh.max(0.0));
            flows.losses_wh = drawn * (1.0 - self.discharge_efficiency);
            // Whatever the battery could not give is load that went unserved (a brown-out).
            flows.unserved_wh = (needed - drawn) * self.discharge_efficiency;
            energy_wh - drawn
        };
        flows.stored_wh = next - energy_wh;
        (next, flows)
    }

    /// One Heun step of the temperature.
    pub fn thermal_step(&self, temp_k: f64, sunlit: f64, load_w: f64, dt_s: f64) -> f64 {
        let k1 = self.heat_balance_w(temp_k, sunlit, load_w) / self.heat_capacity_j_per_k;
        let guess = temp_k + dt_s * k1;
        let k2 = self.heat_balance_w(guess, sunlit, load_w) / self.heat_capacity_j_per_k;
        temp_k + 0.5 * dt_s * (k1 + k2)
    }
}

/// Energy flows over a step or a run, Wh. Conservation: `solar = load − unserved + stored + losses + curtailed`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Flows {
    /// Generated by the array.
    pub solar_wh: f64,
    /// Drawn by the loads.
    pub load_wh: f64,
    /// Added to the battery (negative when drained).
    pub stored_wh: f64,
    /// Lost in charging and discharging.
    pub losses_wh: f64,
    /// Array output that could not be used (battery full or charge-rate limit).
    pub curtailed_wh: f64,
    /// Load the battery could not serve.
    pub unserved_wh: f64,
}

impl Flows {
    /// Adds another set of flows.
    pub fn add(&mut self, o: &Flows) {
        self.solar_wh += o.solar_wh;
        self.load_wh += o.load_wh;
        self.stored_wh += o.stored_wh;
        self.losses_wh += o.losses_wh;
        self.curtailed_wh += o.curtailed_wh;
        self.unserved_wh += o.unserved_wh;
    }
}

/// A node's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeState {
    /// Stored energy, Wh.
    pub energy_wh: f64,
    /// Temperature, K.
    pub temp_k: f64,
}

/// Which limit a load would break.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum BudgetViolation {
    /// The battery would fall below its minimum.
    #[error("battery would fall to {energy_wh:.1} Wh (minimum {min_wh:.1} Wh) at {at}")]
    Energy {
        /// When.
        at: Instant,
        /// Energy it would reach.
        energy_wh: f64,
        /// The minimum.
        min_wh: f64,
    },
    /// The node would overheat.
    #[error("node would reach {temp_c:.1} °C (maximum {max_c:.1} °C) at {at}")]
    Thermal {
        /// When.
        at: Instant,
        /// Temperature it would reach, °C.
        temp_c: f64,
        /// The maximum, °C.
        max_c: f64,
    },
    /// The load lies outside the budget's horizon.
    #[error("load outside the budget horizon")]
    OutsideHorizon,
}

/// A node's predicted state of charge and temperature on a time grid, with the accelerator loads placed so far.
#[derive(Debug, Clone)]
pub struct NodeBudget {
    model: NodeModel,
    start: Instant,
    step_ms: i64,
    /// Mean sunlit fraction per slot.
    sunlit: Vec<f64>,
    /// Extra (busy) accelerator energy per slot, J.
    extra_j: Vec<f64>,
    /// State at the start of each slot, and one past the last.
    energy: Vec<f64>,
    temp: Vec<f64>,
    /// `energy_floor[k]` = lowest stored energy from slot k to the end; `temp_ceiling[k]` = highest temperature.
    /// They let a check stop as soon as a load's leftover effect can no longer break a limit.
    energy_floor: Vec<f64>,
    temp_ceiling: Vec<f64>,
    initial: NodeState,
}

impl NodeBudget {
    /// A budget over [start, end) in slots of `step_s` seconds, from an initial state, with no batches yet.
    pub fn new(
        model: NodeModel,
        illumination: &Illumination,
        start: Instant,
        end: Instant,
        step_s: i64,
        initial: NodeState,
    ) -> Self {
        let step_ms = step_s.max(1) * 1000;
        let slots = (((end - start).as_millis() + step_ms - 1) / step_ms).max(1) as usize;
        let sunlit = (0..slots)
            .map(|k| {
                let a = start + odc_model::time::Duration::from_millis(k as i64 * step_ms);
                illumination.mean_fraction(a, a + odc_model::time::Duration::from_millis(step_ms))
            })
            .collect();
        let mut budget = NodeBudget {
            model,
            start,
            step_ms,
            sunlit,
            extra_j: vec![0.0; slots],
            energy: vec![initial.energy_wh; slots + 1],
            temp: vec![initial.temp_k; slots + 1],
            energy_floor: vec![initial.energy_wh; slots + 1],
            temp_ceiling: vec![initial.temp_k; slots + 1],
            initial,
        };
        budget.simulate_from(0, usize::MAX);
        budget
    }

    /// The node model.
    pub fn model(&self) -> &NodeModel {
        &self.model
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.sunlit.len()
    }

    /// Start of slot k.
    pub fn slot_start(&self, k: usize) -> Instant {
        self.start + odc_model::time::Duration::from_millis(k as i64 * self.step_ms)
    }

    /// Predicted state at the start of slot k.
    pub fn state_at_slot(&self, k: usize) -> NodeState {
        let k = k.min(self.energy.len() - 1);
        NodeState {
            energy_wh: self.energy[k],
            temp_k: self.temp[k],
        }
    }

    /// Lowest predicted stored energy over the horizon, Wh.
    pub fn min_energy_wh(&self) -> f64 {
        self.energy.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// Highest predicted temperature over the horizon, K.
    pub fn max_temp_k(&self) -> f64 {
        self.temp.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// Simulates slots from `first` on; stops early once the new trajectory rejoins the old one after slot
    /// `settle_after` (a load's effect dies out once the battery refills and the temperature relaxes).
    fn simulate_from(&mut self, first: usize, settle_after: usize) {
        let last = self.simulate_range(first, settle_after);
        // Refresh the running extremes up to the last slot that changed.
        let n = self.energy.len();
        let mut floor = if last + 1 < n {
            self.energy_floor[last + 1]
        } else {
            f64::INFINITY
        };
        let mut ceiling = if last + 1 < n {
            self.temp_ceiling[last + 1]
        } else {
            f64::NEG_INFINITY
        };
        for k in (0..=last.min(n - 1)).rev() {
            floor = floor.min(self.energy[k]);
            ceiling = ceiling.max(self.temp[k]);
            self.energy_floor[k] = floor;
            self.temp_ceiling[k] = ceiling;
        }
    }

    /// Simulates from slot `first`; returns the last slot index whose state was written.
    fn simulate_range(&mut self, first: usize, settle_after: usize) -> usize {
        let dt = self.step_ms as f64 / 1000.0;
        if first == 0 {
            self.energy[0] = self.initial.energy_wh;
            self.temp[0] = self.initial.temp_k;
        }
        let mut last = first;
        for k in first..self.sunlit.len() {
            let load = self.model.base_load_w + self.extra_j[k] / dt;
            let (e, _) = self
                .model
                .battery_step(self.energy[k], self.sunlit[k], load, dt);
            let t = self
                .model
                .thermal_step(self.temp[k], self.sunlit[k], load, dt);
            let settled = k >= settle_after
                && (e - self.energy[k + 1]).abs() < 1e-6
                && (t - self.temp[k + 1]).abs() < 1e-3;
            self.energy[k + 1] = e;
            self.temp[k + 1] = t;
            last = k + 1;
            if settled {
                break;
            }
        }
        last
    }

    fn slot_range(&self, a: Instant, b: Instant) -> Option<(usize, usize)> {
        if b <= a || a < self.start {
            return None;
        }
        let first = ((a - self.start).as_millis() / self.step_ms) as usize;
        let last = (((b - self.start).as_millis() - 1) / self.step_ms) as usize;
        (last < self.sunlit.len()).then_some((first, last))
    }

    fn spread(&mut self, a: Instant, b: Instant, watts: f64, sign: f64) -> Option<(usize, usize)> {
        let (first, last) = self.slot_range(a, b)?;
        for k in first..=last {
            let s = self.slot_start(k).max(a);
            let e =
                (self.slot_start(k) + odc_model::time::Duration::from_millis(self.step_ms)).min(b);
            let overlap_s = (e - s).as_millis() as f64 / 1000.0;
            self.extra_j[k] = (self.extra_j[k] + sign * watts * overlap_s).max(0.0);
        }
        Some((first, last))
    }

    /// Adds the accelerator's busy load over [a, b) if no limit breaks anywhere after it; otherwise changes
    /// nothing and says which limit and when.
    pub fn try_add_busy(&mut self, a: Instant, b: Instant) -> Result<(), BudgetViolation> {
        let watts = self.model.busy_extra_w;
        self.try_add_load(a, b, watts)
    }

    /// Adds an extra load of `watts` over [a, b) if no limit breaks; otherwise changes nothing.
    pub fn try_add_load(
        &mut self,
        a: Instant,
        b: Instant,
        watts: f64,
    ) -> Result<(), BudgetViolation> {
        let saved_extra = self.extra_j.clone_from_range(self.slot_range(a, b));
        let Some((first, last)) = self.spread(a, b, watts, 1.0) else {
            return Err(BudgetViolation::OutsideHorizon);
        };
        let saved_energy = self.energy[first..].to_vec();
        let saved_temp = self.temp[first..].to_vec();
        self.simulate_from(first, last + 1);
        if let Some(v) = self.violation_from(first, &saved_energy, &saved_temp) {
            self.extra_j[first..=last].copy_from_slice(&saved_extra);
            self.energy[first..].copy_from_slice(&saved_energy);
            self.temp[first..].copy_from_slice(&saved_temp);
            return Err(v);
        }
        Ok(())
    }

    /// Whether an extra load of `watts` over [a, b) would break a limit, without changing anything: the same
    /// test as [`NodeBudget::try_add_load`], run on the side, stopping as soon as the load's effect has died out.
    pub fn check_load(&self, a: Instant, b: Instant, watts: f64) -> Result<(), BudgetViolation> {
        let Some((first, last)) = self.slot_range(a, b) else {
            return Err(BudgetViolation::OutsideHorizon);
        };
        let dt = self.step_ms as f64 / 1000.0;
        let step = odc_model::time::Duration::from_millis(self.step_ms);
        let (mut e, mut t) = (self.energy[first], self.temp[first]);
        let min = self.model.min_energy_wh - 1e-9;
        for k in first..self.sunlit.len() {
            let mut extra = self.extra_j[k];
            if k <= last {
                let s = self.slot_start(k).max(a);
                let end = (self.slot_start(k) + step).min(b);
                extra += watts * (end - s).as_millis() as f64 / 1000.0;
            }
            let load = self.model.base_load_w + extra / dt;
            let (ne, _) = self.model.battery_step(e, self.sunlit[k], load, dt);
            let nt = self.model.thermal_step(t, self.sunlit[k], load, dt);
            let (old_e, old_t) = (self.energy[k + 1], self.temp[k + 1]);
            if ne < min && ne < old_e - 1e-9 {
                let at = self.slot_start(k + 1);
                return Err(BudgetViolation::Energy {
                    at,
                    energy_wh: ne,
                    min_wh: self.model.min_energy_wh,
                });
            }
            if nt > self.model.max_temp_k + 1e-9 && nt > old_t + 1e-9 {
                let at = self.slot_start(k + 1);
                let max_c = self.model.max_temp_k - ZERO_CELSIUS_K;
                return Err(BudgetViolation::Thermal {
                    at,
                    temp_c: nt - ZERO_CELSIUS_K,
                    max_c,
                });
            }
            // Past the load its leftover effect (less energy, more heat) only shrinks, so once even the worst
            // of what is left of the old trajectory stays within limits with it, nothing later can break.
            if k > last {
                let (de, dtemp) = ((old_e - ne).max(0.0), (nt - old_t).max(0.0));
                let next = (k + 2).min(self.energy.len() - 1);
                let energy_safe = de < 1e-9 || self.energy_floor[next].min(old_e) - de >= min;
                let heat_safe = dtemp < 1e-9
                    || self.temp_ceiling[next].max(old_t) + dtemp <= self.model.max_temp_k;
                if energy_safe && heat_safe {
                    break;
                }
            }
            e = ne;
            t = nt;
        }
        Ok(())
    }

    /// [`NodeBudget::check_load`] for the accelerator's busy load.
    pub fn check_busy(&self, a: Instant, b: Instant) -> Result<(), BudgetViolation> {
        self.check_load(a, b, self.model.busy_extra_w)
    }

    /// Adds a load whatever it does to the limits: for simulating a plan made elsewhere, to check it.
    pub fn force_add_load(&mut self, a: Instant, b: Instant, watts: f64) {
        if let Some((first, last)) = self.spread(a, b, watts, 1.0) {
            self.simulate_from(first, last + 1);
        }
    }

    /// Removes a load added before (a batch cancelled or moved).
    pub fn remove_load(&mut self, a: Instant, b: Instant, watts: f64) {
        if let Some((first, last)) = self.spread(a, b, watts, -1.0) {
            self.simulate_from(first, last + 1);
        }
    }

    /// Removes the accelerator's busy load over [a, b).
    pub fn remove_busy(&mut self, a: Instant, b: Instant) {
        let watts = self.model.busy_extra_w;
        self.remove_load(a, b, watts);
    }

    /// The first slot from `first` on where the new trajectory breaks a limit it did not already break as
    /// badly: a load may not cause or deepen a violation, but one the node was already in (a battery that starts
    /// low) does not block loads that leave it unchanged.
    fn violation_from(
        &self,
        first: usize,
        old_energy: &[f64],
        old_temp: &[f64],
    ) -> Option<BudgetViolation> {
        let min = self.model.min_energy_wh - 1e-9;
        for k in first + 1..self.energy.len() {
            let (old_e, old_t) = (old_energy[k - first], old_temp[k - first]);
            if self.energy[k] < min && self.energy[k] < old_e - 1e-9 {
                return Some(BudgetViolation::Energy {
                    at: self.slot_start(k),
                    energy_wh: self.energy[k],
                    min_wh: self.model.min_energy_wh,
                });
            }
            if self.temp[k] > self.model.max_temp_k + 1e-9 && self.temp[k] > old_t + 1e-9 {
                return Some(BudgetViolation::Thermal {
                    at: self.slot_start(k),
                    temp_c: self.temp[k] - ZERO_CELSIUS_K,
                    max_c: self.model.max_temp_k - ZERO_CELSIUS_K,
                });
            }
        }
        None
    }

    /// How long the accelerator can run at full load starting at `a`, within [a, b), without breaking a limit,
    /// to the nearest second; the budget is left unchanged.
    pub fn busy_headroom_s(&self, a: Instant, b: Instant) -> f64 {
        let (mut lo, mut hi) = (0i64, (b - a).as_millis() / 1000);
        while lo < hi {
            let mid = (lo + hi + 1) / 2;
            let mut trial = self.clone();
            if trial
                .try_add_busy(a, a + odc_model::time::Duration::from_secs(mid))
                .is_ok()
            {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo as f64
    }

    /// Re-runs the whole horizon and returns the energy flows: for conservation checks and reports.
    pub fn flows(&self) -> Flows {
        let dt = self.step_ms as f64 / 1000.0;
        let mut total = Flows::default();
        let mut e = self.initial.energy_wh;
        for k in 0..self.sunlit.len() {
            let load = self.model.base_load_w + self.extra_j[k] / dt;
            let (next, f) = self.model.battery_step(e, self.sunlit[k], load, dt);
            total.add(&f);
            e = next;
        }
        total
    }
}

/// Copying a sub-range of slots, or nothing when the range is invalid.
trait CloneFromRange {
    fn clone_from_range(&self, range: Option<(usize, usize)>) -> Vec<f64>;
}

impl CloneFromRange for Vec<f64> {
    fn clone_from_range(&self, range: Option<(usize, usize)>) -> Vec<f64> {
        match range {
            Some((a, b)) if b < self.len() => self[a..=b].to_vec(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
