//! Subcommands.

pub mod demo;
pub mod ephemeris;
pub mod pki;
pub mod plan;
