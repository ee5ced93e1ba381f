//! Reconciliation: what nodes report and send down (directly or sealed through neighbours) applied to the jobs, results delivered and metered once.

use super::*;

impl GroundCore {
    /// Gives the ground its seal: from then on it relays inputs and plans through neighbours (sealed) and takes
    /// in what nodes relay down (when their seal proves them).
    pub fn set_relay_seal(&mut self, seal: std::sync::Arc<dyn wire::RelaySeal>) {
        self.seal = Some(seal);
    }

    /// Frames carried down in another node's name whose seal did not prove it, by carrier: each is a forgery or
    /// an alteration by the carrier or one before it.
    pub fn relay_forged(&self) -> &BTreeMap<NodeId, u64> {
        &self.relay_forged
    }

    /// Reports and results refused because their sender was not the node the job was sent to, by sender.
    pub fn reports_foreign(&self) -> &BTreeMap<NodeId, u64> {
        &self.reports_foreign
    }

    /// Whether `node` may report on job `j`: the node its input was sent to, or while nothing was sent yet the node
    /// the plan in force gives it to (the one node the ground has authorised to run it). Any other node's report or
    /// result is refused and counted: a node cannot deliver, fail or bill a job it was never given.
    fn sent_by_its_node(&mut self, node: &NodeId, id: JobId) -> bool {
        let Some(j) = self.jobs.get(&id) else {
            return false;
        };
        let holder = j.sent_to.as_ref().or(j.node.as_ref());
        if holder == Some(node) {
            return true;
        }
        *self.reports_foreign.entry(node.clone()).or_default() += 1;
        false
    }

    /// A message from a node (delivered once by the link).
    pub fn handle_message(&mut self, node: &NodeId, envelope: Envelope, now: Instant) {
        if let Some(l) = self.links.get_mut(node) {
            l.last_heard = Some(now);
        }
        if self.lost_nodes.remove(node) {
            self.want_replan(now, "node back");
        }
        match envelope.message {
            Message::Hello(hello) => {
                if hello.plan_generation > self.generation() && self.links.contains_key(node) {
                    // The node holds a plan numbered above ours (a ground whose store lost its last
                    // generation): it would refuse ours, so plan again above it.
                    self.generation_floor = hello.plan_generation;
                    self.want_replan(now, "a node holds a newer plan generation");
                }
                let Some(l) = self.links.get_mut(node) else {
                    return;
                };
                if envelope.incarnation != l.incarnation {
                    // A restarted node: whatever went over its old session must go again.
                    let restarted = l.incarnation != 0;
                    l.incarnation = envelope.incarnation;
                    l.plan_sent = hello.plan_generation;
                    l.inputs_sent.clear();
                    if restarted {
                        self.want_replan(now, "node restarted");
                    }
                } else {
                    l.plan_sent = l.plan_sent.max(hello.plan_generation);
                }
                self.serve(node, now);
            }
            Message::Telemetry(t) => {
                if let Some(l) = self.links.get_mut(node) {
                    if l.history.len() == TELEMETRY_KEPT {
                        l.history.pop_front();
                    }
                    l.history.push_back(t.clone());
                    l.telemetry = Some(t);
                }
            }
            Message::JobUpdates(updates) => {
                for u in updates.updates {
                    self.apply_report(node, u.job, u.event, now);
                }
            }
            Message::ResultChunk(chunk) => {
                let station = self.links.get(node).and_then(|l| l.station.clone());
                self.take_result(node, station, chunk, now)
            }
            Message::Relay(relay) => self.take_relayed(node, relay, now),
            _ => {}
        }
    }

    /// A frame a node carried down for a neighbour: applied as that neighbour's report, through the station the
    /// carrier is in contact with. Only reports travel this way (a hello belongs to the node's own link).
    pub(crate) fn take_relayed(&mut self, carrier: &NodeId, relay: Relay, now: Instant) {
        if !matches!(relay.destination, Endpoint::Station(_)) {
            return;
        }
        let Ok(inner) = wire::decode(&relay.frame) else {
            return;
        };
        let Sender::Node(origin) = &inner.sender else {
            return;
        };
        if origin == carrier || !self.links.contains_key(origin) {
            return;
        }
        let proven = self
            .seal
            .as_ref()
            .map(|s| s.verify(&inner.sender, &relay.frame, &relay.seal));
        match proven {
            Some(Ok(())) => {}
            Some(Err(_)) => {
                *self.relay_forged.entry(carrier.clone()).or_default() += 1;
                return;
            }
            None => return,
        }
        let origin = origin.clone();
        match inner.message {
            Message::JobUpdates(updates) => {
                for u in updates.updates {
                    self.apply_report(&origin, u.job, u.event, now);
                }
            }
            Message::ResultChunk(chunk) => {
                self.relay_counts.1 += 1;
                let station = self.links.get(carrier).and_then(|l| l.station.clone());
                self.take_result(&origin, station, chunk, now);
            }
            _ => {}
        }
    }

    /// If the ground has closed this job, tells the node again (its receipt may have been lost); a job it does not
    /// hold is looked up by the service. True when the report needs nothing more.
    pub(crate) fn closed_resend(&mut self, node: &NodeId, id: JobId, now: Instant) -> bool {
        let close = match self.jobs.get(&id) {
            Some(j) if j.job.state.is_terminal() => closing_event(&j.job.state),
            Some(_) => return false,
            None => {
                if !self.keep_history
                    && self.links.contains_key(node)
                    && self.lookups.len() < MAX_LOOKUPS
                {
                    // Forgotten once closed (or never known): the service answers from its store.
                    self.lookups.insert((node.clone(), id));
                }
                return true;
            }
        };
        self.send_event(node, id, close, now);
        true
    }

    pub(crate) fn apply_report(&mut self, node: &NodeId, id: JobId, event: JobEvent, now: Instant) {
        if self.closed_resend(node, id, now) || !self.sent_by_its_node(node, id) {
            return;
        }
        let Some(j) = self.jobs.get_mut(&id) else {
            return;
        };
        if let JobEvent::Uplink { node: n }
        | JobEvent::Enqueue { node: n }
        | JobEvent::Start { node: n, .. } = &event
        {
            j.node = Some(n.clone());
        }
        if matches!(event, JobEvent::Enqueue { .. }) {
            // The node has committed the input: the ground's copy is no longer needed.
            j.input = Vec::new();
        }
        let failed = matches!(event, JobEvent::Fail { .. });
        let applied = j.job.apply(&event, now);
        if matches!(applied, Ok(Outcome::Applied { .. })) {
            self.dirty.insert(id);
        }
        if let Ok(Outcome::Applied { .. }) = applied
            && failed
        {
            self.release(id);
            self.send_event(
                node,
                id,
                JobEvent::Fail {
                    reason: failure_of(&self.jobs[&id].job.state),
                },
                now,
            );
        }
    }

    pub(crate) fn take_result(
        &mut self,
        node: &NodeId,
        station: Option<StationId>,
        chunk: ResultChunk,
        now: Instant,
    ) {
        let (id, output, data) = (chunk.job, chunk.output, chunk.data);
        if self.closed_resend(node, id, now) || !self.sent_by_its_node(node, id) {
            return;
        }
        let Some(j) = self.jobs.get_mut(&id) else {
            return;
        };
        if BlobRef::of(&data) != output {
            // Corrupted on the way: the node still holds it and sends it again at the next contact.
            return;
        }
        let Some(station) = station.or_else(|| self.config.stations.first().map(|s| s.id.clone()))
        else {
            return;
        };
        if j.job.state.rank().is_some_and(|r| r < 6) {
            // The result overtook the node's Finish report: the result itself is the proof, and carries the run's
            // figures for billing.
            let _ = j.job.apply(
                &JobEvent::Finish {
                    output,
                    accelerator_s: chunk.accelerator_s,
                    energy_wh: chunk.energy_wh,
                },
                now,
            );
        }
        if j.job
            .apply(&JobEvent::Downlink { station, output }, now)
            .is_err()
        {
            return;
        }
        if j.job.apply(&JobEvent::Deliver, now).is_ok() {
            let usage = Usage {
                accelerator_s: j.job.accelerator_s,
                energy_wh: j.job.energy_wh,
                uplink_bytes: j.job.spec.input.size_bytes,
                downlink_bytes: output.size_bytes,
            };
            let tenant = j.job.spec.tenant;
            let record = UsageRecord {
                job: id,
                tenant,
                node: j.node.clone(),
                at: now,
                usage,
            };
            if self.keep_history {
                self.ledger.push(record.clone());
            }
            self.deliveries.push_back(Delivery {
                job: id,
                tenant,
                result: data,
                at: now,
                usage: record,
            });
            self.release(id);
            if let Some(t) = self.tenants.get_mut(&tenant) {
                t.1 = t.1.plus(&usage);
            }
        }
        self.send_event(node, id, JobEvent::Deliver, now);
    }

    /// Frees a closed job's reservation and its input.
    pub(crate) fn release(&mut self, id: JobId) {
        let Some(j) = self.jobs.get_mut(&id) else {
            return;
        };
        let r = std::mem::take(&mut j.reserved);
        j.input = Vec::new();
        if let Some(l) = j.sent_to.as_ref().and_then(|n| self.links.get_mut(n)) {
            // Closed: never sent again, so the link session need not remember it.
            l.inputs_sent.remove(&id);
        }
        if let Some(t) = self.tenants.get_mut(&j.job.spec.tenant) {
            t.2 = Usage {
                accelerator_s: (t.2.accelerator_s - r.accelerator_s).max(0.0),
                energy_wh: (t.2.energy_wh - r.energy_wh).max(0.0),
                uplink_bytes: t.2.uplink_bytes.saturating_sub(r.uplink_bytes),
                downlink_bytes: t.2.downlink_bytes.saturating_sub(r.downlink_bytes),
            };
        }
    }
}

/// The event the ground sends a node to close a job it holds.
pub(crate) fn closing_event(state: &JobState) -> JobEvent {
    match state {
        JobState::Cancelled => JobEvent::Cancel,
        JobState::Expired => JobEvent::Expire,
        JobState::Failed { reason } => JobEvent::Fail {
            reason: reason.clone(),
        },
        _ => JobEvent::Deliver,
    }
}

/// Why a job that ended in `state` failed, as a node is told.
pub(crate) fn failure_of(state: &JobState) -> FailureReason {
    match state {
        JobState::Failed { reason } => reason.clone(),
        _ => FailureReason::Other {
            message: "failed".into(),
        },
    }
}
