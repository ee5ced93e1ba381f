//! What happens to nodes between the cores' decisions: battery and temperature integrated from the loads run, and
//! the faults injected (restarts, outages, drained batteries, corrupted links).

use super::*;

impl World {
    /// Integrates a node's battery and temperature up to now with the load it carried.
    pub(super) fn advance_physics(&mut self, i: usize) {
        let step = self.config.twin.physics_step_s;
        let n = &mut self.nodes[i];
        let load = n.model.base_load_w + if n.busy { n.model.busy_extra_w } else { 0.0 };
        while n.physics_at < self.now {
            let dt = (self.now - n.physics_at).as_secs_f64().min(step);
            let mid = n.physics_at + Duration::from_secs_f64(dt / 2.0);
            let sun = n.illumination.fraction_at(mid);
            let (energy, _) = n.model.battery_step(n.energy_wh, sun, load, dt);
            n.temp_k = n.model.thermal_step(n.temp_k, sun, load, dt);
            n.energy_wh = energy;
            n.physics_at += Duration::from_secs_f64(dt);
        }
    }

    /// Every physics step: integrate, read the sensors into the flight cores, let the ground expire and replan.
    pub(super) fn physics(&mut self) {
        let step = Duration::from_secs_f64(self.config.twin.physics_step_s);
        let sample =
            (self.now - self.start).as_secs_f64() % 600.0 < self.config.twin.physics_step_s;
        for i in 0..self.nodes.len() {
            self.advance_physics(i);
            let hours = (self.now - self.start).as_secs_f64() / 3600.0;
            let n = &mut self.nodes[i];
            let soc = n.energy_wh / n.spec.power.battery_capacity_wh;
            let temp_c = n.temp_k - ZERO_CELSIUS_K;
            n.report.min_soc = n.report.min_soc.min(soc);
            n.report.max_temp_c = n.report.max_temp_c.max(temp_c);
            if soc < n.spec.power.min_state_of_charge - 1e-6 && n.report.soc_breach.is_none() {
                n.report.soc_breach = Some(hours);
            }
            if temp_c > n.spec.thermal.max_temp_c + 1e-6 && n.report.temp_breach.is_none() {
                n.report.temp_breach = Some(hours);
            }
            if sample {
                n.report.samples.push(Sample {
                    hours,
                    soc,
                    temp_c,
                    busy: n.busy,
                });
            }
            // The governor hears the reading (and may preempt), and due work may start.
            self.drive(i);
        }
        self.ground.tick(self.now);
        self.schedule_planned_isl();
        self.flush_ground();
        if self.now + step <= self.end {
            self.at(self.now + step, Ev::Physics);
        }
    }

    pub(super) fn fault(&mut self, k: usize, begins: bool) {
        let f = self.faults[k].clone();
        let node = f.node.min(self.nodes.len().saturating_sub(1));
        let station = f.station.min(self.stations.len().saturating_sub(1));
        let until = self.now + Duration::from_secs_f64(f.minutes * 60.0);
        if begins {
            let who = self
                .nodes
                .get(node)
                .map_or(String::new(), |n| n.spec.id.as_str().to_string());
            let st = self
                .stations
                .get(station)
                .map_or(String::new(), |s| s.id.as_str().to_string());
            self.fault_log.push((self.now, f.describe(&who, &st)));
        }
        if self.nodes.is_empty() {
            return;
        }
        match (f.kind, begins) {
            (FaultKind::DropLink, true) => {
                self.nodes[node].blocked_until = until;
                self.relink(node);
                self.at(until, Ev::FaultEnd(k));
            }
            (FaultKind::DropLink, false) => self.relink(node),
            (FaultKind::StationDown, _) => {
                if self.stations.is_empty() {
                    return;
                }
                // At the fault's end `station_down_until` has passed: the station is back.
                if begins {
                    self.station_down_until[station] = until;
                    self.at(until, Ev::FaultEnd(k));
                }
                let id = self.stations[station].id.clone();
                self.ground.station_status(&id, !begins, self.now);
                for i in 0..self.nodes.len() {
                    if self.nodes[i].in_view.contains(&station) {
                        self.relink(i);
                    }
                }
                self.flush_ground();
            }
            (FaultKind::Restart, true) => self.restart(node),
            (FaultKind::ClockSkew, true) => {
                self.nodes[node].skew = self.nodes[node].skew + Duration::from_secs_f64(f.seconds);
                self.drive(node);
            }
            (FaultKind::Corrupt, true) => self.nodes[node].corrupt = (until, f.rate),
            (FaultKind::Duplicate, true) => self.nodes[node].duplicate = (until, f.rate),
            (FaultKind::Brownout, true) => {
                self.advance_physics(node);
                let n = &mut self.nodes[node];
                n.energy_wh = (n.energy_wh - f.wh).max(0.0);
                n.brownout_at = n.brownout_at.or(Some(self.now));
            }
            _ => {}
        }
    }

    /// A node reboots: its durable state goes through serialisation (as a store would keep it), everything else
    /// is lost; both ends of its link session start afresh.
    pub(super) fn restart(&mut self, i: usize) {
        self.advance_physics(i);
        let node_now = self.node_now(i);
        let spec = self.nodes[i].spec.clone();
        let id = spec.id.clone();
        let bytes = match rmp_serde::to_vec_named(self.nodes[i].core.durable()) {
            Ok(b) => b,
            Err(_) => return,
        };
        let Ok(durable) = rmp_serde::from_slice::<odc_flight::Durable>(&bytes) else {
            return;
        };
        let link = self.nodes[i].link;
        let n = &mut self.nodes[i];
        n.core = FlightCore::recover(durable, spec, GovernorConfig::default(), node_now);
        give_seal(&self.keyring, &mut n.core);
        n.running = None;
        n.busy = false;
        n.wake_at = None;
        n.ground_end = Session::new(self.session);
        n.node_end = Session::new(self.session);
        n.epoch += 1;
        self.ground.link_reset(&id);
        if link.is_some() {
            let n = &mut self.nodes[i];
            n.ground_end.handle_contact(true);
            n.node_end.handle_contact(true);
            n.core.handle_contact(true, node_now);
            self.flush_node(i);
            self.schedule_pump(i, self.now);
        }
        // Its ISL sessions start afresh too; the links that are open come back up for the new core.
        let links: Vec<(usize, usize)> = self.isl_of[i].iter().map(|(&p, &l)| (p, l)).collect();
        for (peer, l) in links {
            let k = &mut self.isl[l];
            k.a_end = Session::new(self.session);
            k.b_end = Session::new(self.session);
            k.epoch += 1;
            k.pump_at = None;
            if k.open > 0 {
                k.a_end.handle_contact(true);
                k.b_end.handle_contact(true);
                let peer_id = self.nodes[peer].spec.id.clone();
                self.nodes[i].core.handle_isl(&peer_id, true, node_now);
                self.flush_node(i);
                self.schedule_isl_pump(l, self.now);
            }
        }
        self.drive(i);
    }
}
