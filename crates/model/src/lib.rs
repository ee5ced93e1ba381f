//! odc-model: the language ground and flight share. Ids, time, node and station specs, jobs and their one
//! transition function, tenants and usage, plans, telemetry, and the versioned wire protocol.
//!
//! **Invariant:** pure data and pure functions. No IO, no clock reads (time comes in as [`time::Instant`]), no
//! randomness but what a seeded [`id::IdGenerator`] gives.

mod fixed_bytes;
pub mod id;
pub mod job;
pub mod plan;
pub mod sample;
pub mod spec;
pub mod telemetry;
pub mod tenant;
pub mod time;
pub mod wire;

pub use id::{
    BatchId, ContactId, IdGenerator, JobId, ModelId, NodeId, PlanId, StationId, TenantId,
};
pub use job::{
    BlobRef, Digest, FailureReason, Job, JobEvent, JobSpec, JobState, Outcome, Priority,
    TransitionError,
};
pub use plan::{Batch, ContactReservation, Direction, Endpoint, Hop, Plan, PlanGate, Route};
pub use spec::{NodeSpec, StationSpec};
pub use telemetry::NodeTelemetry;
pub use tenant::{Quota, Tenant, Usage, UsageRecord};
pub use time::{Clock, Duration, Instant, SimClock, WallClock};
pub use wire::{Envelope, Message, PROTOCOL, ProtocolVersion, Sender, TrafficClass, WireError};
