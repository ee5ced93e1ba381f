//! odc-ground: the control plane. `core` decides — intake against quotas, replanning, what each node is sent
//! during its contacts, reconciliation of what nodes report, delivery and metering — with no IO and no clock of
//! its own. The services around it (tenant and operator APIs, the store, the QUIC dispatcher) are shells; the
//! digital twin drives the same core in simulated time.

pub mod core;

pub use core::{Delivery, GroundConfig, GroundCore, NodeInfo, ReplanRecord, SubmitError};
