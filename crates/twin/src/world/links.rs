//! The world's links: ground contacts and ISL windows brought up and down, frames pumped through each session pair
//! at the link's rate with delay and loss, and what arrives handed to the cores.

use super::*;

impl World {
    /// Brings a node's link up or down to match what it sees and what is broken.
    pub(super) fn relink(&mut self, i: usize) {
        let now = self.now;
        let n = &self.nodes[i];
        let want = if now < n.blocked_until {
            None
        } else {
            n.in_view
                .iter()
                .copied()
                .find(|&s| now >= self.station_down_until[s])
        };
        if want == n.link {
            return;
        }
        let node_now = self.node_now(i);
        let id = self.nodes[i].spec.id.clone();
        if self.nodes[i].link.is_some() {
            let n = &mut self.nodes[i];
            n.ground_end.handle_contact(false);
            n.node_end.handle_contact(false);
            n.core.handle_contact(false, node_now);
            n.epoch += 1;
            n.link = None;
            self.ground.handle_contact(&id, None, now);
            self.close_contact_log(i);
        }
        if let Some(s) = want {
            let n = &mut self.nodes[i];
            n.link = Some(s);
            n.contact_open = Some((now, s));
            n.ground_end.handle_contact(true);
            n.node_end.handle_contact(true);
            self.ground
                .handle_contact(&id, Some(self.stations[s].id.clone()), now);
            self.nodes[i].core.handle_contact(true, node_now);
            self.flush_node(i);
            self.schedule_pump(i, now);
        }
    }

    pub(super) fn close_contact_log(&mut self, i: usize) {
        let now = self.now;
        let n = &mut self.nodes[i];
        if let Some((start, station)) = n.contact_open.take() {
            n.report.contacts.push(ContactSpan {
                start_h: (start - self.start).as_secs_f64() / 3600.0,
                end_h: (now - self.start).as_secs_f64() / 3600.0,
                station,
            });
        }
    }

    pub(super) fn schedule_pump(&mut self, i: usize, t: Instant) {
        let n = &mut self.nodes[i];
        if n.link.is_none() || n.pump_at.is_some_and(|p| p <= t) {
            return;
        }
        n.pump_at = Some(t);
        self.at(t, Ev::Pump(i));
    }

    /// One second of link time: frames both ways within the station's rates.
    pub(super) fn pump(&mut self, i: usize) {
        if self.nodes[i].pump_at != Some(self.now) {
            return;
        }
        self.nodes[i].pump_at = None;
        let Some(s) = self.nodes[i].link else {
            return;
        };
        const SLICE_S: f64 = 1.0;
        // The session's clock: milliseconds since the run began.
        let now_ms = (self.now - self.start).as_secs_f64().mul_add(1000.0, 0.5) as i64;
        let station = &self.stations[s];
        let budgets = [
            (true, (station.uplink_bps / 8.0 * SLICE_S) as usize),
            (false, (station.downlink_bps / 8.0 * SLICE_S) as usize),
        ];
        let delay = Duration::from_secs_f64(SLICE_S)
            + Duration::from_millis(self.config.twin.link_delay_ms);
        let loss = self.config.twin.link_loss;
        let mut active = false;
        let tamper = Tamper {
            now: self.now,
            corrupt: self.nodes[i].corrupt,
            duplicate: self.nodes[i].duplicate,
        };
        for (to_node, budget) in budgets {
            let n = &mut self.nodes[i];
            let sender = if to_node {
                &mut n.ground_end
            } else {
                &mut n.node_end
            };
            let (frames, used) = draw_frames(
                sender,
                &mut self.rng,
                (now_ms, budget, loss),
                Some(tamper),
                &mut self.frames_sent,
                &mut self.frames_lost,
            );
            if to_node {
                self.bytes_up += used as u64;
            } else {
                self.bytes_down += used as u64;
            }
            if !frames.is_empty() {
                active = true;
                let epoch = self.nodes[i].epoch;
                self.at(
                    self.now + delay,
                    Ev::Frames {
                        node: i,
                        to_node,
                        epoch,
                        frames,
                    },
                );
            }
        }
        let n = &self.nodes[i];
        if active || n.ground_end.pending() > 0 || n.node_end.pending() > 0 {
            self.schedule_pump(i, self.now + Duration::from_secs_f64(SLICE_S));
        }
    }

    pub(super) fn receive(&mut self, i: usize, to_node: bool, epoch: u64, frames: Vec<Vec<u8>>) {
        if self.nodes[i].epoch != epoch {
            // The contact ended (or the node restarted) while these were in the air.
            return;
        }
        let n = &mut self.nodes[i];
        let delivered = if to_node {
            deliver(&mut n.node_end, &mut n.ground_end, &frames)
        } else {
            deliver(&mut n.ground_end, &mut n.node_end, &frames)
        };
        let node_now = self.node_now(i);
        let id = self.nodes[i].spec.id.clone();
        for payload in delivered {
            let Ok(envelope) = wire::decode(&payload) else {
                continue;
            };
            if to_node {
                self.nodes[i].core.handle_message(envelope, node_now);
            } else {
                self.ground.handle_message(&id, envelope, self.now);
            }
        }
        self.flush_ground();
        self.flush_node(i);
        self.drive(i);
        self.schedule_pump(i, self.now);
    }

    /// Moves what the ground wants to send into the sessions, and hands results to tenants.
    pub(super) fn flush_ground(&mut self) {
        while let Some((node, envelope)) = self.ground.poll_outgoing() {
            let Some(&i) = self.node_index.get(&node) else {
                continue;
            };
            if let Ok(bytes) = wire::encode(&envelope) {
                self.nodes[i]
                    .ground_end
                    .send(Priority::from(envelope.message.class()), bytes);
                self.schedule_pump(i, self.now);
            }
        }
        while let Some(d) = self.ground.poll_delivery() {
            *self.deliveries.entry(d.job).or_default() += 1;
            if let Some(&(class, tenant, arrived, deadline)) = self.expected.get(&d.job) {
                // Only real inference says anything about the tile.
                if self.config.twin.backend == BackendKind::Cpu
                    && let Some(label) = argmax(&d.result)
                {
                    self.checked += 1;
                    if label == usize::from(class) {
                        self.correct += 1;
                    }
                }
                let on_time = d.at <= deadline;
                self.latencies
                    .push((tenant, (d.at - arrived).as_secs_f64(), on_time));
            }
        }
    }

    pub(super) fn flush_node(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let mut sent = false;
        while let Some(envelope) = n.core.poll_outgoing() {
            if let Ok(bytes) = wire::encode(&envelope) {
                n.node_end
                    .send(Priority::from(envelope.message.class()), bytes);
                sent = true;
            }
        }
        if sent {
            self.schedule_pump(i, self.now);
        }
        let peers: Vec<odc_model::id::NodeId> =
            self.nodes[i].core.isl_peers_pending().cloned().collect();
        for peer in peers {
            let link = self
                .node_index
                .get(&peer)
                .and_then(|p| self.isl_of[i].get(p))
                .copied();
            while let Some(envelope) = self.nodes[i].core.poll_isl_outgoing(&peer) {
                // A message for a neighbour with no link at all can only be dropped; its sender keeps what
                // matters and sends it another way.
                let (Some(l), Ok(bytes)) = (link, wire::encode(&envelope)) else {
                    continue;
                };
                let k = &mut self.isl[l];
                let end = if k.a == i { &mut k.a_end } else { &mut k.b_end };
                end.send(Priority::from(envelope.message.class()), bytes);
            }
            if let Some(l) = link {
                self.schedule_isl_pump(l, self.now);
            }
        }
    }

    /// An ISL window opens or closes between two nodes.
    pub(super) fn isl_edge(&mut self, l: usize, up: bool) {
        let k = &mut self.isl[l];
        let was_open = k.open > 0;
        k.open = if up {
            k.open + 1
        } else {
            k.open.saturating_sub(1)
        };
        let open = k.open > 0;
        if open == was_open {
            return;
        }
        k.a_end.handle_contact(open);
        k.b_end.handle_contact(open);
        if !open {
            k.epoch += 1;
        }
        let (a, b) = (k.a, k.b);
        for (me, peer) in [(a, b), (b, a)] {
            let peer_id = self.nodes[peer].spec.id.clone();
            let node_now = self.node_now(me);
            self.nodes[me].core.handle_isl(&peer_id, open, node_now);
        }
        if open {
            self.flush_node(a);
            self.flush_node(b);
            self.schedule_isl_pump(l, self.now);
        }
    }

    pub(super) fn schedule_isl_pump(&mut self, l: usize, t: Instant) {
        let k = &mut self.isl[l];
        if k.open == 0 || k.pump_at.is_some_and(|p| p <= t) {
            return;
        }
        k.pump_at = Some(t);
        self.at(t, Ev::IslPump(l));
    }

    /// One second of ISL time: frames both ways within the terminals' rate.
    pub(super) fn isl_pump(&mut self, l: usize) {
        if self.isl[l].pump_at != Some(self.now) {
            return;
        }
        self.isl[l].pump_at = None;
        if self.isl[l].open == 0 {
            return;
        }
        const SLICE_S: f64 = 1.0;
        let now_ms = (self.now - self.start).as_secs_f64().mul_add(1000.0, 0.5) as i64;
        let budget = (self.isl[l].bytes_per_s * SLICE_S) as usize;
        let delay = Duration::from_secs_f64(SLICE_S)
            + Duration::from_millis(self.config.twin.link_delay_ms);
        let loss = self.config.twin.link_loss;
        let mut active = false;
        for to_b in [true, false] {
            let k = &mut self.isl[l];
            let sender = if to_b { &mut k.a_end } else { &mut k.b_end };
            let (frames, used) = draw_frames(
                sender,
                &mut self.rng,
                (now_ms, budget, loss),
                None,
                &mut self.frames_sent,
                &mut self.frames_lost,
            );
            self.bytes_isl += used as u64;
            if !frames.is_empty() {
                active = true;
                let epoch = self.isl[l].epoch;
                self.at(
                    self.now + delay,
                    Ev::IslFrames {
                        link: l,
                        to_b,
                        epoch,
                        frames,
                    },
                );
            }
        }
        let k = &self.isl[l];
        if active || k.a_end.pending() > 0 || k.b_end.pending() > 0 {
            self.schedule_isl_pump(l, self.now + Duration::from_secs_f64(SLICE_S));
        }
    }

    pub(super) fn isl_receive(&mut self, l: usize, to_b: bool, epoch: u64, frames: Vec<Vec<u8>>) {
        if self.isl[l].epoch != epoch {
            return;
        }
        let k = &mut self.isl[l];
        let delivered = if to_b {
            deliver(&mut k.b_end, &mut k.a_end, &frames)
        } else {
            deliver(&mut k.a_end, &mut k.b_end, &frames)
        };
        let to = if to_b { self.isl[l].b } else { self.isl[l].a };
        let node_now = self.node_now(to);
        for payload in delivered {
            if let Ok(envelope) = wire::decode(&payload) {
                self.nodes[to].core.handle_isl_message(envelope, node_now);
            }
        }
        self.flush_node(to);
        self.drive(to);
        self.schedule_isl_pump(l, self.now);
    }
}
