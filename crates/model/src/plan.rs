//! Plans: immutable, numbered schedules of contacts, batches and routes.
//!
//! A plan has an id, a parent and a generation one above its parent's. A node applies a plan only if its
//! generation is above the last one it applied ([`PlanGate`]), so a stale ground can never move a node backwards.

use crate::id::{BatchId, ContactId, JobId, ModelId, NodeId, PlanId, StationId, TenantId};
use crate::time::Instant;
use serde::{Deserialize, Serialize};

/// One station antenna booked for one pass of one satellite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactReservation {
    /// Its id.
    pub id: ContactId,
    /// The station.
    pub station: StationId,
    /// Which of its antennas (0-based).
    pub antenna: u32,
    /// The node contacted.
    pub node: NodeId,
    /// Start of the booking.
    pub start: Instant,
    /// End of the booking.
    pub end: Instant,
    /// Bytes planned up.
    pub uplink_bytes: u64,
    /// Bytes planned down.
    pub downlink_bytes: u64,
}

/// Jobs of one model and one tenant run together on one node in one slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Its id.
    pub id: BatchId,
    /// The node that runs it.
    pub node: NodeId,
    /// The tenant whose jobs these are.
    pub tenant: TenantId,
    /// The model.
    pub model: ModelId,
    /// The jobs, in run order.
    pub jobs: Vec<JobId>,
    /// Slot start.
    pub start: Instant,
    /// Slot end.
    pub end: Instant,
    /// Accelerator time it needs, seconds.
    pub accelerator_s: f64,
    /// Energy it needs, Wh.
    pub energy_wh: f64,
}

/// One end of a hop.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Endpoint {
    /// A ground station.
    Station(StationId),
    /// A flight node.
    Node(NodeId),
}

/// Which way a route carries data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Input, ground to the node that runs the job.
    Up,
    /// Result, the node to the ground.
    Down,
}

/// One transfer of a route: over a ground contact or an ISL, in a time window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    /// Sender.
    pub from: Endpoint,
    /// Receiver.
    pub to: Endpoint,
    /// Earliest start.
    pub start: Instant,
    /// Latest end.
    pub end: Instant,
    /// The contact used, for ground hops.
    pub contact: Option<ContactId>,
}

/// How one job's input or result travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The job.
    pub job: JobId,
    /// Up or down.
    pub direction: Direction,
    /// Bytes carried.
    pub bytes: u64,
    /// The hops, in order.
    pub hops: Vec<Hop>,
}

/// An immutable, numbered schedule over a horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Its id.
    pub id: PlanId,
    /// The plan it replaces.
    pub parent: Option<PlanId>,
    /// 1 for the first plan, parent's + 1 after.
    pub generation: u64,
    /// When it was made.
    pub created_at: Instant,
    /// Start of the horizon it covers.
    pub horizon_start: Instant,
    /// End of the horizon it covers.
    pub horizon_end: Instant,
    /// Contact reservations.
    pub contacts: Vec<ContactReservation>,
    /// Batches.
    pub batches: Vec<Batch>,
    /// Routes.
    pub routes: Vec<Route>,
}

/// A plan that does not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plan {plan} (generation {generation}): {problem}")]
pub struct PlanError {
    /// The plan.
    pub plan: PlanId,
    /// Its generation.
    pub generation: u64,
    /// What is wrong.
    pub problem: String,
}

impl Plan {
    /// The first plan of a fleet: generation 1, no parent, empty.
    pub fn first(
        id: PlanId,
        created_at: Instant,
        horizon_start: Instant,
        horizon_end: Instant,
    ) -> Plan {
        Plan {
            id,
            parent: None,
            generation: 1,
            created_at,
            horizon_start,
            horizon_end,
            contacts: Vec::new(),
            batches: Vec::new(),
            routes: Vec::new(),
        }
    }

    /// An empty successor of this plan: parent set, generation one higher.
    pub fn successor(
        &self,
        id: PlanId,
        created_at: Instant,
        horizon_start: Instant,
        horizon_end: Instant,
    ) -> Plan {
        Plan {
            parent: Some(self.id),
            generation: self.generation + 1,
            ..Plan::first(id, created_at, horizon_start, horizon_end)
        }
    }

    /// The part of the plan one node needs: its contacts, batches, and routes through it. Same id and
    /// generation, so the node's gate works on it unchanged.
    pub fn for_node(&self, node: &NodeId) -> Plan {
        let is_node = |e: &Endpoint| matches!(e, Endpoint::Node(n) if n == node);
        let through = |r: &&Route| r.hops.iter().any(|h| is_node(&h.from) || is_node(&h.to));
        Plan {
            contacts: self
                .contacts
                .iter()
                .filter(|c| &c.node == node)
                .cloned()
                .collect(),
            batches: self
                .batches
                .iter()
                .filter(|b| &b.node == node)
                .cloned()
                .collect(),
            routes: self.routes.iter().filter(through).cloned().collect(),
            ..self.header()
        }
    }

    /// Every node's part ([`Plan::for_node`]) in one pass over the plan; a node the plan does not mention has no
    /// entry (its part is [`Plan::header`]).
    pub fn by_node(&self) -> std::collections::BTreeMap<NodeId, Plan> {
        let mut parts: std::collections::BTreeMap<NodeId, Plan> = std::collections::BTreeMap::new();
        fn part<'a>(
            parts: &'a mut std::collections::BTreeMap<NodeId, Plan>,
            plan: &Plan,
            node: &NodeId,
        ) -> &'a mut Plan {
            parts.entry(node.clone()).or_insert_with(|| plan.header())
        }
        for c in &self.contacts {
            part(&mut parts, self, &c.node).contacts.push(c.clone());
        }
        for b in &self.batches {
            part(&mut parts, self, &b.node).batches.push(b.clone());
        }
        for r in &self.routes {
            let mut nodes: Vec<&NodeId> = r
                .hops
                .iter()
                .flat_map(|h| [&h.from, &h.to])
                .filter_map(|e| match e {
                    Endpoint::Node(n) => Some(n),
                    Endpoint::Station(_) => None,
                })
                .collect();
            nodes.sort();
            nodes.dedup();
            for n in nodes {
                part(&mut parts, self, n).routes.push(r.clone());
            }
        }
        parts
    }

    /// The plan's id, lineage and horizon with no contacts, batches or routes: the part of a node with none.
    pub fn header(&self) -> Plan {
        Plan {
            id: self.id,
            parent: self.parent,
            generation: self.generation,
            created_at: self.created_at,
            horizon_start: self.horizon_start,
            horizon_end: self.horizon_end,
            contacts: Vec::new(),
            batches: Vec::new(),
            routes: Vec::new(),
        }
    }

    /// Checks the plan's own consistency: intervals ordered and inside the horizon, batches non-empty,
    /// no job in two batches.
    pub fn validate(&self) -> Result<(), PlanError> {
        let bad = |problem: String| PlanError {
            plan: self.id,
            generation: self.generation,
            problem,
        };
        if self.generation == 0 || (self.generation == 1) != self.parent.is_none() {
            return Err(bad(
                "generation 1 has no parent; every later generation has one".into(),
            ));
        }
        if self.horizon_end <= self.horizon_start {
            return Err(bad("horizon ends before it starts".into()));
        }
        let inside =
            |s: Instant, e: Instant| s < e && s >= self.horizon_start && e <= self.horizon_end;
        for c in &self.contacts {
            if !inside(c.start, c.end) {
                return Err(bad(format!(
                    "contact {} is empty or outside the horizon",
                    c.id
                )));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for b in &self.batches {
            if !inside(b.start, b.end) {
                return Err(bad(format!(
                    "batch {} is empty or outside the horizon",
                    b.id
                )));
            }
            if b.jobs.is_empty() {
                return Err(bad(format!("batch {} has no jobs", b.id)));
            }
            for j in &b.jobs {
                if !seen.insert(*j) {
                    return Err(bad(format!("job {j} is in two batches")));
                }
            }
        }
        for r in &self.routes {
            if r.hops.windows(2).any(|w| w[0].to != w[1].from) {
                return Err(bad(format!("route of job {} is not connected", r.job)));
            }
        }
        Ok(())
    }
}

/// A node's guard against going backwards: it accepts a plan only if its generation is above the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanGate {
    /// Generation of the last plan applied (0 before any).
    pub applied_generation: u64,
}

impl PlanGate {
    /// Whether a plan of this generation is newer; if so it is recorded as applied.
    pub fn admit(&mut self, generation: u64) -> bool {
        if generation > self.applied_generation {
            self.applied_generation = generation;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::IdGenerator;

    #[test]
    fn successors_count_up_and_the_gate_only_moves_forward() {
        let mut ids = IdGenerator::seeded(1);
        let t = Instant::from_unix_ms(0);
        let end = Instant::from_unix_ms(3_600_000);
        let p1 = Plan::first(ids.plan(t), t, t, end);
        let p2 = p1.successor(ids.plan(t), t, t, end);
        assert_eq!((p2.generation, p2.parent), (2, Some(p1.id)));
        p1.validate().expect("valid");
        p2.validate().expect("valid");
        let mut gate = PlanGate::default();
        assert!(gate.admit(p2.generation));
        assert!(!gate.admit(p1.generation), "an older plan is refused");
        assert!(
            !gate.admit(p2.generation),
            "the same plan is not applied twice"
        );
    }

    #[test]
    fn splitting_by_node_gives_every_node_its_for_node_part() {
        let mut ids = IdGenerator::seeded(2);
        let t = Instant::from_unix_ms(0);
        let end = Instant::from_unix_ms(3_600_000);
        let node = |s: &str| NodeId::new(s).expect("id");
        let mut plan = Plan::first(ids.plan(t), t, t, end);
        let station = Endpoint::Station(StationId::new("gs").expect("id"));
        let hop = |from: Endpoint, to: Endpoint| Hop {
            from,
            to,
            start: t,
            end,
            contact: None,
        };
        for (k, relay) in [("a", Some("b")), ("b", None), ("c", Some("a"))] {
            let mut hops = vec![hop(
                station.clone(),
                Endpoint::Node(node(relay.unwrap_or(k))),
            )];
            if relay.is_some() {
                hops.push(hop(
                    Endpoint::Node(node(relay.unwrap_or(k))),
                    Endpoint::Node(node(k)),
                ));
            }
            plan.routes.push(Route {
                job: ids.job(t),
                direction: Direction::Up,
                bytes: 10,
                hops,
            });
            plan.batches.push(Batch {
                id: ids.batch(t),
                node: node(k),
                tenant: ids.tenant(t),
                model: ModelId::new("m").expect("id"),
                jobs: vec![ids.job(t)],
                start: t,
                end,
                accelerator_s: 1.0,
                energy_wh: 0.1,
            });
        }
        let parts = plan.by_node();
        assert_eq!(parts.len(), 3);
        for (n, part) in &parts {
            assert_eq!(part, &plan.for_node(n), "{n}");
        }
        assert_eq!(
            parts[&node("a")].routes.len(),
            2,
            "its own route and the one it relays"
        );
        assert_eq!(plan.for_node(&node("z")), plan.header());
    }
}
