//! odc-ground: the control plane. `core` decides — intake against quotas, replanning, what each node is sent
//! during its contacts, reconciliation of what nodes report, delivery and metering — with no IO and no clock of
//! its own. The services around it (tenant and operator APIs, the QUIC dispatcher) are shells; `store` is what
//! they keep on disk. The digital twin drives the same core in simulated time.

pub mod api;
/// The pure ground core, in a crate of its own (no IO dependencies) so the twin depends on it alone.
pub use odc_ground_core as core;
pub mod dispatch;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod orbits;
pub mod restore;
pub mod store;
pub mod tls;

pub use core::{Delivery, GroundConfig, GroundCore, NodeInfo, ReplanRecord, SubmitError};
