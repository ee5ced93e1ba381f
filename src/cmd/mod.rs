//! Subcommands.

pub mod demo;
pub mod ephemeris;
pub mod plan;
