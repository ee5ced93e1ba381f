//! Subcommands.

pub mod demo;
pub mod ephemeris;
