//! Subcommands.

pub mod ephemeris;
pub mod overview;
pub mod pki;
pub mod plan;
pub mod twin;
