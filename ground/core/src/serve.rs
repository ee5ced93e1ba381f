//! Serving nodes in contact: the plan part and the inputs each is sent, relays through neighbours, the messages and deliveries that leave the core.

use super::*;

impl GroundCore {
    /// A node came into (or left) contact through a station.
    pub fn handle_contact(&mut self, node: &NodeId, station: Option<StationId>, _now: Instant) {
        if let Some(l) = self.links.get_mut(node) {
            l.station = station;
        }
    }

    /// Whether a node is part of the fleet this ground plans for.
    pub fn knows_node(&self, node: &NodeId) -> bool {
        self.links.contains_key(node)
    }

    /// The stations, each with whether it is up.
    pub fn stations(&self) -> impl Iterator<Item = (&StationSpec, bool)> {
        self.config
            .stations
            .iter()
            .map(|s| (s, !self.down_stations.contains(&s.id)))
    }

    /// The station a node reaches the ground through at `now`: the pass it is in (of the stations that are up), or
    /// failing that the pass nearest in time (clocks of separate processes differ by a little at a pass's edges).
    /// `None` for a node the ground does not know or one with no pass at all.
    pub fn station_for(&self, node: &NodeId, now: Instant) -> Option<StationId> {
        let distance = |c: &ContactWindow| {
            if now < c.start {
                c.start - now
            } else if now > c.end {
                now - c.end
            } else {
                Duration::ZERO
            }
        };
        self.config
            .contacts
            .iter()
            .filter(|c| &c.node == node && !self.down_stations.contains(&c.station))
            .min_by_key(|c| distance(c))
            .map(|c| c.station.clone())
    }

    /// The link to a node was reset (its transport session was lost, e.g. at a restart): what was sent over it
    /// may not have arrived, so it will be sent again.
    pub fn link_reset(&mut self, node: &NodeId) {
        if let Some(l) = self.links.get_mut(node) {
            l.plan_sent = 0;
            l.inputs_sent.clear();
        }
    }

    /// Sends a linked node what it lacks: the plan in force, then the inputs of its planned jobs, earliest first.
    pub(crate) fn serve(&mut self, node: &NodeId, now: Instant) {
        let Some(plan) = &self.plan else {
            return;
        };
        let generation = plan.generation;
        let sent = self.links.get(node).map_or(u64::MAX, |l| l.plan_sent);
        if sent < generation {
            if let Some(part) = self.part_for(node) {
                self.send(node, Message::PlanUpdate(PlanUpdate { plan: part }), now);
            }
            if let Some(l) = self.links.get_mut(node) {
                l.plan_sent = generation;
            }
        }
        let due: Vec<JobId> = self
            .planned_on
            .get(node)
            .into_iter()
            .flatten()
            .map(|&(_, id)| id)
            .filter(|id| {
                self.jobs.get(id).is_some_and(|j| {
                    j.node.as_ref() == Some(node)
                        && j.job.state == JobState::Planned
                        && j.sent_to.as_ref().is_none_or(|n| n == node)
                        && j.relayed_at.is_none_or(|t| now >= t + RELAY_GRACE)
                })
            })
            .filter(|id| {
                self.links
                    .get(node)
                    .is_some_and(|l| !l.inputs_sent.contains(id))
            })
            .collect();
        for id in due {
            let Some((spec, data)) = self.input_to_send(id) else {
                continue;
            };
            let chunk = InputChunk {
                job: id,
                spec,
                offset: 0,
                data,
            };
            self.send(node, Message::InputChunk(chunk), now);
            if let Some(l) = self.links.get_mut(node) {
                l.inputs_sent.insert(id);
            }
            if let Some(j) = self.jobs.get_mut(&id) {
                j.sent_to = Some(node.clone());
                self.dirty.insert(id);
            }
        }
        self.serve_relayed(node, now);
    }

    /// A job's spec and input to send now: taken out of memory when inputs live in the store (it is loaded again if
    /// it must go again), copied otherwise. `None` when the core does not hold it (asked of the store then).
    fn input_to_send(&mut self, id: JobId) -> Option<(JobSpec, Vec<u8>)> {
        let j = self.jobs.get_mut(&id)?;
        if !GroundCore::input_held(j) {
            if self.inputs_in_store {
                self.wanted_inputs.insert(id);
            }
            return None;
        }
        let data = if self.inputs_in_store {
            std::mem::take(&mut j.input)
        } else {
            j.input.clone()
        };
        Some((j.job.spec.clone(), data))
    }

    /// Hands a linked node the inputs (and the plan) of neighbours the plan reaches through it over an ISL.
    pub(crate) fn serve_relayed(&mut self, relay: &NodeId, now: Instant) {
        let Some(list) = self.up_via.get(relay) else {
            return;
        };
        let due: Vec<(JobId, NodeId)> = list
            .iter()
            .filter(|(id, target)| {
                self.jobs.get(id).is_some_and(|j| {
                    j.node.as_ref() == Some(target)
                        && j.job.state == JobState::Planned
                        && j.sent_to.as_ref().is_none_or(|n| n == target)
                        && j.relayed_at.is_none()
                        && (self.inputs_in_store || GroundCore::input_held(j))
                })
            })
            .cloned()
            .collect();
        for (id, target) in due {
            let generation = self.plan.as_ref().map_or(0, |p| p.generation);
            let behind = self
                .links
                .get(&target)
                .is_some_and(|l| l.plan_sent < generation && l.plan_relayed < generation);
            if behind && let Some(part) = self.part_for(&target) {
                let inner = self.envelope(Message::PlanUpdate(PlanUpdate { plan: part }), now);
                let expires = now + self.config.plan_ahead;
                if self.relay_to(relay, &target, &inner, expires, now)
                    && let Some(l) = self.links.get_mut(&target)
                {
                    l.plan_relayed = generation;
                }
            }
            let Some((spec, data)) = self.input_to_send(id) else {
                continue;
            };
            let deadline = spec.deadline;
            let chunk = InputChunk {
                job: id,
                spec,
                offset: 0,
                data,
            };
            let inner = self.envelope(Message::InputChunk(chunk), now);
            if self.relay_to(relay, &target, &inner, deadline, now)
                && let Some(j) = self.jobs.get_mut(&id)
            {
                j.sent_to = Some(target);
                self.dirty.insert(id);
                j.relayed_at = Some(now);
                self.relay_counts.0 += 1;
            }
        }
    }

    /// A node's part of the plan in force.
    pub(crate) fn part_for(&self, node: &NodeId) -> Option<Plan> {
        let plan = self.plan.as_ref()?;
        Some(
            self.parts
                .get(node)
                .cloned()
                .unwrap_or_else(|| plan.header()),
        )
    }

    /// Sends `inner` to `target` through the linked node `relay`; false if it cannot be framed.
    pub(crate) fn relay_to(
        &mut self,
        relay: &NodeId,
        target: &NodeId,
        inner: &Envelope,
        expires_at: Instant,
        now: Instant,
    ) -> bool {
        let Some(seal) = self.seal.clone() else {
            return false;
        };
        let Ok(frame) = wire::encode(inner) else {
            return false;
        };
        // The outer envelope adds well under a kilobyte; a frame too close to the limit goes directly instead.
        if frame.len() + 1024 > wire::MAX_FRAME_BYTES {
            return false;
        }
        let message = Message::Relay(Relay {
            destination: Endpoint::Node(target.clone()),
            expires_at,
            hops: 0,
            seal: seal.seal(&frame),
            frame,
        });
        let envelope = self.envelope(message, now);
        self.outgoing.push_back((relay.clone(), envelope));
        true
    }

    pub(crate) fn send_event(&mut self, node: &NodeId, job: JobId, event: JobEvent, now: Instant) {
        let update = JobUpdate {
            job,
            event,
            at: now,
        };
        if let Some((
            n,
            Envelope {
                message: Message::JobUpdates(u),
                ..
            },
        )) = self.outgoing.back_mut()
            && n == node
            && u.updates.len() < 256
        {
            u.updates.push(update);
            return;
        }
        self.send(
            node,
            Message::JobUpdates(JobUpdates {
                updates: vec![update],
            }),
            now,
        );
    }

    pub(crate) fn send(&mut self, node: &NodeId, message: Message, now: Instant) {
        let envelope = self.envelope(message, now);
        self.outgoing.push_back((node.clone(), envelope));
    }

    pub(crate) fn envelope(&mut self, message: Message, now: Instant) -> Envelope {
        let seq = self.seq;
        self.seq += 1;
        Envelope {
            version: odc_model::wire::PROTOCOL,
            sender: Sender::Ground,
            incarnation: 1,
            seq,
            sent_at: now,
            message,
        }
    }

    /// The next message for a node.
    pub fn poll_outgoing(&mut self) -> Option<(NodeId, Envelope)> {
        self.outgoing.pop_front()
    }

    /// The next result handed to a tenant.
    pub fn poll_delivery(&mut self) -> Option<Delivery> {
        self.deliveries.pop_front()
    }

    /// Inputs handed to a neighbour to relay over an ISL, and results that came down through one.
    pub fn relay_counts(&self) -> (u64, u64) {
        self.relay_counts
    }
}
