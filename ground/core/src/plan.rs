//! Planning: when to replan, the snapshot a replan starts from and the commit of its plan (inline, or off the core for services), generations, the geometry the plans use.

use super::*;

impl GroundCore {
    /// Numbers every later plan above `generation` (the highest one a previous run of this ground issued).
    pub fn raise_generation_floor(&mut self, generation: u64) {
        self.generation_floor = self.generation_floor.max(generation);
    }

    /// The highest plan generation issued so far (what a restart must number its plans above).
    pub fn generation(&self) -> u64 {
        self.generation_floor
            .max(self.plan.as_ref().map_or(0, |p| p.generation))
    }

    /// Asks for a replan at `at` (or sooner if one is already asked for); replans are a minute apart at least.
    pub(crate) fn want_replan(&mut self, at: Instant, reason: &str) {
        let at = self
            .last_replan
            .map_or(at, |last| at.max(last + Duration::from_mins(1)));
        match &self.replan_due {
            Some((t, _)) if *t <= at => {}
            _ => self.replan_due = Some((at, reason.to_string())),
        }
    }

    /// A station became unavailable (or available again): plans stop (or start) using it.
    pub fn station_status(&mut self, station: &StationId, up: bool, now: Instant) {
        let changed = if up {
            self.down_stations.remove(station)
        } else {
            self.down_stations.insert(station.clone())
        };
        if changed && up {
            // Repairs only take resources away: a station back needs a full replan to be used.
            self.want_replan(now, "station back");
        } else if changed {
            self.changes.push(Change::StationDown(station.clone()));
            self.want_replan(now + self.config.replan_every, "station down");
        }
    }

    /// Time passes: expire jobs past their deadline, and replan when due.
    pub fn tick(&mut self, now: Instant) {
        self.roll_periods(now);
        let mut expired = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if self.jobs.get(&id).is_some_and(|j| {
                !j.job.state.is_terminal() && !matches!(j.job.state, JobState::Downlinked)
            }) {
                expired.push(id);
            }
        }
        for id in expired {
            if let Some(j) = self.jobs.get_mut(&id)
                && j.job.apply(&JobEvent::Expire, now).is_ok()
            {
                self.dirty.insert(id);
                let node = j.node.clone();
                self.release(id);
                if let Some(node) = node {
                    self.send_event(&node, id, JobEvent::Expire, now);
                }
            }
        }
        if let Some(limit) = self.lose_after {
            let lost: Vec<NodeId> = self
                .missed_passes(now)
                .into_iter()
                .filter(|(n, m)| *m >= limit && !self.lost_nodes.contains(*n))
                .map(|(n, _)| n.clone())
                .collect();
            if !lost.is_empty() {
                for n in &lost {
                    self.changes.push(Change::NodeLost(n.clone()));
                }
                self.lost_nodes.extend(lost);
                self.want_replan(now + self.config.replan_every, "node lost");
            }
        }
        if self.planning_in_flight.is_some() {
            return;
        }
        let task = if self.replan_due.as_ref().is_some_and(|(t, _)| *t <= now) {
            let reason = self.replan_due.take().map(|r| r.1).unwrap_or_default();
            self.plan_task(now, &reason)
        } else {
            self.repair_task(now)
        };
        let Some(task) = task else {
            return;
        };
        self.planning_in_flight = Some(task.id());
        if self.background_planning {
            self.ready_task = Some(task);
        } else {
            let done = task.run();
            self.commit_plan(done, now);
        }
    }

    /// A repair of the plan in force, if it has anything to do: jobs accepted since (and durable) placed into
    /// what it left free, changes applied. Cheap beside a full replan: it touches only those jobs.
    fn repair_task(&mut self, now: Instant) -> Option<PlanTask> {
        let held = &self.held;
        let ready: Vec<JobId> = self
            .to_place
            .iter()
            .filter(|id| !held.contains(id))
            .copied()
            .collect();
        if ready.is_empty() && self.changes.is_empty() {
            return None;
        }
        let planner = self.planner.take()?;
        let jobs: Vec<Job> = ready
            .iter()
            .filter_map(|id| self.jobs.get(id))
            .filter(|j| j.job.state == JobState::Accepted)
            .map(|j| j.job.clone())
            .collect();
        for id in &ready {
            self.to_place.remove(id);
        }
        let mut changes = std::mem::take(&mut self.changes);
        let count = jobs.len();
        if !jobs.is_empty() {
            changes.push(Change::JobsAdded(jobs));
        }
        Some(PlanTask {
            work: Work::Repair {
                planner,
                changes,
                at: now,
            },
            plan_id: self.ids.plan(now),
            based_on: self.plan.as_ref().map(|p| p.id),
            jobs: count,
            reason: "repair".into(),
        })
    }

    /// Asks for a full replan at `now` (or a minute after the last one).
    pub fn request_replan(&mut self, now: Instant, reason: &str) {
        self.want_replan(now, reason);
    }

    /// Plans off the caller's thread from now on: [`GroundCore::tick`] no longer plans when a replan is due but
    /// readies a [`PlanTask`] (taken with [`GroundCore::take_plan_task`]) for the service to run elsewhere and
    /// hand back with [`GroundCore::commit_plan`]. The twin and tests keep planning inline.
    pub fn plan_in_background(&mut self, on: bool) {
        self.background_planning = on;
    }

    /// The replan a tick found due, to run off the core's lock.
    pub fn take_plan_task(&mut self) -> Option<PlanTask> {
        self.ready_task.take()
    }

    /// Gives up a task that will not come back (its planner failed): the next tick may start another, from
    /// scratch (a repair took the planner state with it).
    pub fn abandon_plan(&mut self, task_plan: odc_model::id::PlanId, now: Instant) {
        if self.planning_in_flight == Some(task_plan) {
            self.planning_in_flight = None;
            self.want_replan(now, "a replan failed");
        }
    }

    /// When the ground next wants `tick`: a replan or the next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadline = self.deadlines.first().map(|d| d.0);
        [deadline, self.replan_due.as_ref().map(|r| r.0)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Plans again now from everything known, on the caller's thread.
    pub fn replan(&mut self, now: Instant, reason: &str) {
        if let Some(task) = self.plan_task(now, reason) {
            self.planning_in_flight = Some(task.id());
            let done = task.run();
            self.commit_plan(done, now);
        }
    }

    /// What a replan starts from: a snapshot of everything known now (the one step of a replan that needs the
    /// core; planning itself needs only the snapshot).
    pub(crate) fn plan_task(&mut self, now: Instant, reason: &str) -> Option<PlanTask> {
        self.last_replan = Some(now);
        let horizon_end = (now + self.config.plan_ahead).min(self.config.horizon_end);
        if horizon_end <= now {
            return None;
        }
        let jobs: Vec<Job> = self
            .jobs
            .values()
            .filter(|j| {
                // A job whose input is aboard (or on its way to) a lost node waits for that node: sending it
                // elsewhere could run it twice.
                let aboard = j.sent_to.as_ref().or(j
                    .node
                    .as_ref()
                    .filter(|_| j.job.state.rank().is_some_and(|r| r >= 3)));
                !j.job.state.is_terminal()
                    && !matches!(j.job.state, JobState::Downlinked)
                    && !self.held.contains(&j.job.id)
                    && !aboard.is_some_and(|n| self.lost_nodes.contains(n))
            })
            .map(|j| {
                let mut job = j.job.clone();
                if let (JobState::Planned, Some(node)) = (&job.state, &j.sent_to) {
                    // Its input is on the way to that node: plan it there.
                    let _ = job.apply(&JobEvent::Uplink { node: node.clone() }, now);
                }
                job
            })
            .collect();
        // Everything known goes into this snapshot: nothing is left for a repair of the old plan.
        for j in &jobs {
            self.to_place.remove(&j.id);
        }
        self.changes.clear();
        let in_horizon = |s: Instant, e: Instant| e > now && s < horizon_end;
        let snapshot = Snapshot {
            now,
            horizon_end,
            plan_id: self.ids.plan(now),
            id_seed: self.config.seed ^ now.unix_ms() as u64,
            previous: self.plan.clone(),
            nodes: self
                .config
                .nodes
                .iter()
                .filter(|n| !self.lost_nodes.contains(&n.spec.id))
                .map(|n| {
                    let t = self
                        .links
                        .get(&n.spec.id)
                        .and_then(|l| l.telemetry.as_ref());
                    NodeInput {
                        spec: n.spec.clone(),
                        altitude_km: n.altitude_km,
                        state_of_charge: t.map_or(n.initial_soc, |t| t.state_of_charge),
                        temp_c: t.map_or(15.0, |t| t.node_temp_c),
                        storage_used_bytes: 0,
                        illumination: n.illumination.clone(),
                    }
                })
                .collect(),
            stations: self
                .config
                .stations
                .iter()
                .filter(|s| !self.down_stations.contains(&s.id))
                .cloned()
                .collect(),
            contacts: self
                .config
                .contacts
                .iter()
                .filter(|c| in_horizon(c.start, c.end) && !self.down_stations.contains(&c.station))
                .cloned()
                .collect(),
            isl: self.config.isl.clone(),
            tenants: self
                .tenants
                .values()
                .map(|(t, used, _)| TenantInput {
                    tenant: t.clone(),
                    used: *used,
                })
                .collect(),
            jobs,
            options: self.config.planner,
        };
        Some(PlanTask {
            plan_id: snapshot.plan_id,
            based_on: self.plan.as_ref().map(|p| p.id),
            jobs: snapshot.jobs.len(),
            reason: reason.to_string(),
            work: Work::Full(Box::new(snapshot)),
        })
    }

    /// Puts a plan made by a task in force, as of `now`. What changed since the task was made is kept: a job
    /// that moved on (sent, run, cancelled) keeps its state, a job submitted meanwhile is placed by the next
    /// repair. A task made before another plan came into force is dropped and a replan asked for.
    pub fn commit_plan(&mut self, done: PlanDone, now: Instant) {
        if self.planning_in_flight != Some(done.plan_id) {
            return;
        }
        self.planning_in_flight = None;
        if done.based_on != self.plan.as_ref().map(|p| p.id) {
            self.want_replan(now, "a plan came into force while planning");
            return;
        }
        self.planner = Some(done.planner);
        let task = ReplanRecordParts {
            full: done.full,
            jobs: done.jobs,
            reason: if done.full {
                done.reason
            } else {
                format!("{} ({} new jobs)", done.reason, done.jobs)
            },
        };
        let parts = done.parts;
        let mut outcome = done.outcome;
        if outcome.plan.generation <= self.generation_floor {
            outcome.plan.generation = self.generation_floor + 1;
        }
        self.generation_floor = outcome.plan.generation;
        let plan_id = outcome.plan.id;
        for (id, jp) in &outcome.jobs {
            if let Some(j) = self.jobs.get_mut(id) {
                j.planned_delivery = Some(jp.delivered);
                let pinned = j.sent_to.as_ref().is_some_and(|n| *n != jp.node);
                let unmoved = j.job.state == JobState::Planned
                    && j.job
                        .placement
                        .as_ref()
                        .is_some_and(|p| p.node == jp.node && p.batch == jp.batch);
                if unmoved {
                    // Where it was (a repair leaves planned jobs in place): its history does not grow.
                    continue;
                }
                if matches!(j.job.state, JobState::Accepted | JobState::Planned) && !pinned {
                    let event = JobEvent::Plan {
                        plan: plan_id,
                        batch: jp.batch,
                        node: jp.node.clone(),
                    };
                    if j.job.apply(&event, now).is_ok() {
                        j.node = Some(jp.node.clone());
                    }
                }
            }
        }
        for id in outcome.left_out.keys() {
            if let Some(j) = self.jobs.get_mut(id)
                && j.job.state == JobState::Planned
                && j.sent_to.is_none()
                && let Some(p) = j.job.placement.as_ref().map(|p| p.plan)
                && j.job.apply(&JobEvent::Unplan { plan: p }, now).is_ok()
            {
                j.node = None;
                j.planned_delivery = None;
            }
        }
        if !self.keep_history && self.replans.len() >= 1000 {
            // A service keeps the latest thousand.
            self.replans.drain(..500);
        }
        self.replans.push(ReplanRecord {
            at: now,
            generation: outcome.plan.generation,
            jobs: task.jobs,
            planned: outcome.jobs.len(),
            reason: task.reason,
            full: task.full,
        });
        self.plan = Some(outcome.plan);
        self.planned_on.clear();
        for (id, j) in &self.jobs {
            if j.job.state == JobState::Planned
                && let Some(node) = &j.node
            {
                let at = j.planned_delivery.unwrap_or(j.job.spec.deadline);
                self.planned_on
                    .entry(node.clone())
                    .or_default()
                    .push((at, *id));
            }
        }
        for list in self.planned_on.values_mut() {
            list.sort();
        }
        let generation = self.plan.as_ref().map_or(0, |p| p.generation);
        self.parts = parts;
        for part in self.parts.values_mut() {
            // Numbered as the plan is (its generation may have been raised above the floor at commit).
            part.generation = generation;
        }
        self.up_via.clear();
        if let Some(plan) = &self.plan {
            for r in plan.routes.iter().filter(|r| r.direction == Direction::Up) {
                if let [first, .., last] = r.hops.as_slice()
                    && let (Endpoint::Node(relay), Endpoint::Node(target)) = (&first.to, &last.to)
                    && relay != target
                {
                    self.up_via
                        .entry(relay.clone())
                        .or_default()
                        .push((r.job, target.clone()));
                }
            }
        }
        let linked: Vec<NodeId> = self
            .links
            .iter()
            .filter(|(_, l)| l.station.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for node in linked {
            self.serve(&node, now);
        }
    }

    /// Geometry for every node up to a later horizon (computed from `from` on): the plans may reach further.
    pub fn extend_horizon(
        &mut self,
        geometry: OrbitGeometry,
        from: Instant,
        end: Instant,
        now: Instant,
    ) {
        if end <= self.config.horizon_end {
            return;
        }
        self.config.horizon_end = end;
        // Passes long over are of no more use to any plan.
        let keep_after = now - Duration::from_hours(24);
        self.config.contacts.retain(|c| c.end > keep_after);
        self.update_orbits(geometry, from, now);
    }

    /// New orbit geometry for some nodes (fresh elements), computed from `from` on: their passes after `from` and
    /// their sunlight are replaced, and the plan is redone with them.
    pub fn update_orbits(&mut self, geometry: OrbitGeometry, from: Instant, now: Instant) {
        let changed: BTreeSet<NodeId> = geometry.nodes.iter().map(|g| g.node.clone()).collect();
        if changed.is_empty() {
            return;
        }
        self.config
            .contacts
            .retain(|c| !(changed.contains(&c.node) && c.end > from));
        self.config.contacts.extend(
            geometry
                .contacts
                .into_iter()
                .filter(|c| changed.contains(&c.node)),
        );
        self.config.contacts.sort_by_key(|c| (c.start, c.end));
        for g in geometry.nodes {
            if let Some(n) = self.config.nodes.iter_mut().find(|n| n.spec.id == g.node) {
                n.altitude_km = g.altitude_km;
                n.illumination = g.illumination;
            }
        }
        self.want_replan(now, "orbit update");
    }

    /// The end of the span the geometry covers.
    pub fn horizon_end(&self) -> Instant {
        self.config.horizon_end
    }

    /// Takes a node for lost once it has been silent through `passes` passes in a row (over stations that are up):
    /// plans then put nothing on it, and jobs whose input is aboard it wait for it. Heard again, it is back.
    /// `None` (the default, and the twin's) never takes a node for lost.
    pub fn lose_silent_nodes_after(&mut self, passes: Option<usize>) {
        self.lose_after = passes.filter(|&p| p > 0);
    }

    /// Nodes taken for lost.
    pub fn lost_nodes(&self) -> impl Iterator<Item = &NodeId> {
        self.lost_nodes.iter()
    }

    /// Replans so far.
    pub fn replans(&self) -> &[ReplanRecord] {
        &self.replans
    }

    /// The plan in force.
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }
}

/// What a replan record takes from the task that made the plan.
struct ReplanRecordParts {
    full: bool,
    jobs: usize,
    reason: String,
}
