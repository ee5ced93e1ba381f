//! Faults: one line each in a scenario, or drawn at random for a campaign.
//!
//! ```toml
//! [[faults]]
//! kind = "restart"        # drop_link | station_down | restart | clock_skew | corrupt | duplicate | brownout
//! at_hours = 6.5
//! node = 2                # index of the node in the fleet (or `station = 1` for station_down)
//! minutes = 30            # how long, for drop_link, station_down, corrupt, duplicate
//! rate = 0.2              # fraction of frames, for corrupt and duplicate
//! seconds = 90            # clock offset, for clock_skew
//! wh = 60                 # energy taken from the battery, for brownout
//! ```

use odc_model::id::SplitMix64;
use serde::{Deserialize, Serialize};

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A node's ground link is down for a while (antenna fault, interference).
    DropLink,
    /// A station is unavailable for a while.
    StationDown,
    /// A node reboots: volatile state lost, durable state kept, new incarnation.
    Restart,
    /// A node's clock runs ahead (or behind) by some seconds from now on.
    ClockSkew,
    /// Frames on a node's link are corrupted.
    Corrupt,
    /// Frames on a node's link arrive twice.
    Duplicate,
    /// A node's battery loses energy the plan did not expect.
    Brownout,
}

/// One fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What.
    pub kind: FaultKind,
    /// When, hours into the run.
    pub at_hours: f64,
    /// Which node (index in the fleet).
    #[serde(default)]
    pub node: usize,
    /// Which station (index), for `station_down`.
    #[serde(default)]
    pub station: usize,
    /// How long, minutes.
    #[serde(default = "default_minutes")]
    pub minutes: f64,
    /// Fraction of frames affected.
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Clock offset, seconds.
    #[serde(default)]
    pub seconds: f64,
    /// Energy lost, Wh.
    #[serde(default = "default_wh")]
    pub wh: f64,
}

fn default_minutes() -> f64 {
    30.0
}
fn default_rate() -> f64 {
    0.2
}
fn default_wh() -> f64 {
    50.0
}

impl Fault {
    /// Checks the fault fits a run of `hours`.
    pub fn check(&self, hours: f64) -> Result<(), String> {
        if !(0.0..=hours).contains(&self.at_hours) {
            return Err(format!(
                "fault {:?} at {} h is outside the run",
                self.kind, self.at_hours
            ));
        }
        if !(self.minutes >= 0.0 && (0.0..=1.0).contains(&self.rate) && self.wh >= 0.0) {
            return Err(format!(
                "fault {:?}: minutes >= 0, rate in [0, 1], wh >= 0",
                self.kind
            ));
        }
        Ok(())
    }

    /// A readable line for reports.
    pub fn describe(&self, node: &str, station: &str) -> String {
        match self.kind {
            FaultKind::DropLink => format!("link of {node} down for {:.0} min", self.minutes),
            FaultKind::StationDown => format!("station {station} down for {:.0} min", self.minutes),
            FaultKind::Restart => format!("{node} restarts"),
            FaultKind::ClockSkew => format!("{node} clock off by {:+.0} s", self.seconds),
            FaultKind::Corrupt => format!(
                "{:.0}% of {node}'s frames corrupted for {:.0} min",
                self.rate * 100.0,
                self.minutes
            ),
            FaultKind::Duplicate => format!(
                "{:.0}% of {node}'s frames duplicated for {:.0} min",
                self.rate * 100.0,
                self.minutes
            ),
            FaultKind::Brownout => format!("{node} battery loses {:.0} Wh", self.wh),
        }
    }
}

/// A random fault schedule for a campaign: `count` faults of every kind over a run of `hours` with `nodes` nodes
/// and `stations` stations, from `seed`.
pub fn random_schedule(
    seed: u64,
    count: usize,
    hours: f64,
    nodes: usize,
    stations: usize,
) -> Vec<Fault> {
    const KINDS: [FaultKind; 7] = [
        FaultKind::DropLink,
        FaultKind::StationDown,
        FaultKind::Restart,
        FaultKind::ClockSkew,
        FaultKind::Corrupt,
        FaultKind::Duplicate,
        FaultKind::Brownout,
    ];
    let mut rng = SplitMix64::new(seed ^ 0x6661_756c_7473);
    let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (0..count)
        .map(|_| {
            let kind = KINDS[(unit() * KINDS.len() as f64) as usize % KINDS.len()];
            Fault {
                kind,
                at_hours: unit() * hours * 0.9,
                node: (unit() * nodes as f64) as usize % nodes.max(1),
                station: (unit() * stations as f64) as usize % stations.max(1),
                minutes: 5.0 + unit() * 60.0,
                rate: 0.05 + unit() * 0.4,
                seconds: (unit() - 0.5) * 240.0,
                wh: 20.0 + unit() * 120.0,
            }
        })
        .collect()
}
