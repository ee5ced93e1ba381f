//! Node telemetry: what the ground needs to know to plan the next pass.

use crate::id::NodeId;
use crate::time::Instant;
use serde::{Deserialize, Serialize};

/// A snapshot of one node's health and load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeTelemetry {
    /// The node.
    pub node: NodeId,
    /// Its incarnation (bumped at every restart).
    pub incarnation: u64,
    /// When the snapshot was taken.
    pub at: Instant,
    /// Battery state of charge, 0..1.
    pub state_of_charge: f64,
    /// Battery temperature, °C.
    pub battery_temp_c: f64,
    /// Lumped node temperature, °C.
    pub node_temp_c: f64,
    /// Accelerator temperature, °C.
    pub accelerator_temp_c: f64,
    /// Accelerator busy fraction over the last interval, 0..1.
    pub accelerator_utilization: f64,
    /// Jobs in the durable queue.
    pub queue_depth: u32,
    /// Results waiting to come down.
    pub outbox_depth: u32,
    /// Storage used, bytes.
    pub storage_used_bytes: u64,
    /// Storage size, bytes.
    pub storage_capacity_bytes: u64,
    /// Whether the node is in Earth's shadow.
    pub in_eclipse: bool,
    /// Generation of the plan it runs.
    pub plan_generation: u64,
}
