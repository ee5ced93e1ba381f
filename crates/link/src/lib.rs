//! odc-link: how ground and flight talk: the session core (resumable, prioritised, exactly-once messages over
//! intermittent contacts), commands that cannot be forged or replayed, the constellation PKI, and the QUIC shell
//! that carries a session over a contact with mutual TLS.
//!
//! A command is accepted in the order CCSDS SDLS prescribes: **verify** the signature (ed25519 over the whole
//! frame, domain-separated), **check** its sequence number against the anti-replay window, **persist** the
//! advanced window, and only **then execute**. A frame that fails authentication never moves the window, and a
//! window that could not be persisted executes nothing, so a crash between the steps can never let a replay
//! through.
//!
//! Frames relayed over ISLs carry their origin's seal (`seal`), checked end to end by their destination.
//!
//! **Invariant:** `session`, `command`, `replay` and `seal` do no IO and read no clock (persistence is a function the caller
//! hands in); only `quic` and `pki` touch sockets and files.

pub mod command;
pub mod pki;
pub mod quic;
pub mod replay;
pub mod seal;
pub mod session;

pub use command::{AuthError, CommandGate, FrameError, SignedCommand};
pub use pki::{Authority, Credentials, Identity, PkiError, Role};
pub use quic::{ContactEnd, Link, LinkConfig, LinkError};
pub use replay::{ReplayError, ReplayWindow};
pub use seal::{Keyring, KeyringSeal, PkiSeal};
