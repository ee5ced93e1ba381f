//! odc-flight: the software of a flight node. `core` decides (plan application, durable queue, batches, outbox,
//! reports) and `governor` gates the accelerator on battery and temperature; both are pure: they are handed
//! messages, sensor readings and `now`, and hand back messages and batches to run. The daemon around them is a
//! shell (disk, QUIC, accelerator, sensors); the digital twin drives the same cores in simulated time. `store`
//! keeps the core's durable state in one crash-safe file; `daemon` is the shell itself (`odc flight`), reading
//! `sensors` (simulated in local runs).

pub mod core;
pub mod daemon;
pub mod gauges;
pub mod governor;
pub mod sensors;
pub mod store;

pub use core::{
    Action, Durable, FlightCore, FlightJob, FlightJobState, MAX_RELAY_HOPS, RELAY_GRACE, RunOutput,
    RunRequest, Sensors,
};
pub use governor::{GovernorAction, GovernorConfig, Verdict};
