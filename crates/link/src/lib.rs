//! odc-link: how ground and flight talk. So far: the session core (resumable, prioritised, exactly-once
//! messages over intermittent contacts) and commands that cannot be forged or replayed.
//!
//! A command is accepted in the order CCSDS SDLS prescribes: **verify** the signature (ed25519 over the whole
//! frame, domain-separated), **check** its sequence number against the anti-replay window, **persist** the
//! advanced window, and only **then execute**. A frame that fails authentication never moves the window, and a
//! window that could not be persisted executes nothing, so a crash between the steps can never let a replay
//! through.
//!
//! **Invariant:** no IO and no clock here: persistence is a function the caller hands in.

pub mod command;
pub mod replay;
pub mod session;

pub use command::{AuthError, CommandGate, FrameError, SignedCommand};
pub use replay::{ReplayError, ReplayWindow};
