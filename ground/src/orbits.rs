//! The ground's orbit data: the element set in force for each node, and what an upload of fresh elements does.
//!
//! Operators upload TLE or OMM (JSON) catalogs. For each record naming a node of the fleet, an epoch later than
//! the one in force replaces it; an epoch that is not later is refused and reported as stale (an old catalog
//! replayed must never move a satellite back). Elements far from the present (more than
//! [`odc_ephemeris::STALE_AFTER_DAYS`] days) are accepted if fresher but flagged: their passes may be off.
//! Records for satellites that are not nodes, and records that do not parse, are listed by name.

use odc_ephemeris::{Catalog, LenientCatalog, Satellite, Station};
use odc_model::id::NodeId;
use odc_model::time::Instant;
use odc_planner::scenario::node_id;
use serde::Serialize;
use std::collections::BTreeMap;

/// One element set's fate in an upload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ElementNote {
    /// The node.
    pub node: String,
    /// The uploaded element epoch.
    pub epoch: Instant,
    /// Why it was refused, or what to beware of (empty when nothing).
    pub note: String,
}

/// What an upload did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OrbitUpload {
    /// Element sets now in force.
    pub accepted: Vec<ElementNote>,
    /// Element sets refused: not fresher than the ones in force.
    pub stale: Vec<ElementNote>,
    /// Records for satellites that are not nodes of this fleet (name or catalog number).
    pub unknown: Vec<String>,
    /// Records that do not parse, with why.
    pub rejected: Vec<String>,
}

/// The element set in force for each node, and the stations passes are computed over.
pub struct OrbitBook {
    satellites: BTreeMap<NodeId, Satellite>,
    stations: Vec<Station>,
}

/// An upload that held nothing usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct UploadError(pub String);

impl OrbitBook {
    /// The book of a fleet: the catalog's satellites (nodes `n<catalog number>`) and the stations.
    pub fn new(catalog: Catalog, stations: Vec<Station>) -> OrbitBook {
        OrbitBook {
            satellites: catalog
                .satellites
                .into_iter()
                .map(|s| (node_id(s.norad_id), s))
                .collect(),
            stations,
        }
    }

    /// The element sets in force, as a catalog.
    pub fn catalog(&self) -> Catalog {
        Catalog {
            satellites: self.satellites.values().cloned().collect(),
        }
    }

    /// The stations.
    pub fn stations(&self) -> &[Station] {
        &self.stations
    }

    /// Each node's element epoch in force.
    pub fn epochs(&self) -> Vec<(NodeId, Instant)> {
        self.satellites
            .iter()
            .map(|(n, s)| (n.clone(), Instant::from_unix_seconds(s.epoch_unix)))
            .collect()
    }

    /// Reads TLE text or an OMM JSON document, keeping the good records.
    pub fn parse(text: &str) -> Result<LenientCatalog, UploadError> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('[') || trimmed.starts_with('{') {
            Catalog::parse_omm_json_lenient(text).map_err(|e| UploadError(e.to_string()))
        } else {
            Ok(Catalog::parse_tle_lenient(text))
        }
    }

    /// Reads an upload, refusing one with no usable element set (saying why).
    pub fn check(text: &str) -> Result<LenientCatalog, UploadError> {
        let lenient = Self::parse(text)?;
        if lenient.catalog.satellites.is_empty() {
            return Err(UploadError(match lenient.rejected.first() {
                Some(first) => format!(
                    "no usable element set ({} record(s) refused; first: {first})",
                    lenient.rejected.len()
                ),
                None => "no element set in the upload (TLE text or an OMM JSON document)".into(),
            }));
        }
        Ok(lenient)
    }

    /// Applies an upload at `now`: returns what happened to each record, and the satellites whose elements
    /// changed (their geometry must be computed again).
    pub fn upload(
        &mut self,
        text: &str,
        now: Instant,
    ) -> Result<(OrbitUpload, Catalog), UploadError> {
        let lenient = Self::parse(text)?;
        let mut report = OrbitUpload {
            rejected: lenient.rejected.iter().map(|r| r.to_string()).collect(),
            ..OrbitUpload::default()
        };
        if lenient.catalog.satellites.is_empty() {
            return Err(UploadError(match report.rejected.first() {
                Some(first) => format!(
                    "no usable element set ({} record(s) refused; first: {first})",
                    report.rejected.len()
                ),
                None => "no element set in the upload (TLE text or an OMM JSON document)".into(),
            }));
        }
        let mut changed = Vec::new();
        for sat in lenient.catalog.satellites {
            let node = node_id(sat.norad_id);
            let epoch = Instant::from_unix_seconds(sat.epoch_unix);
            let Some(current) = self.satellites.get(&node) else {
                report
                    .unknown
                    .push(format!("{} ({})", sat.name, sat.norad_id));
                continue;
            };
            if sat.epoch_unix <= current.epoch_unix {
                report.stale.push(ElementNote {
                    node: node.to_string(),
                    epoch,
                    note: format!(
                        "not fresher than the epoch in force ({}); kept that one",
                        Instant::from_unix_seconds(current.epoch_unix)
                    ),
                });
                continue;
            }
            let age_days = (now.unix_seconds() - sat.epoch_unix).abs() / 86_400.0;
            let note = if age_days > odc_ephemeris::STALE_AFTER_DAYS {
                format!("accepted, but the epoch is {age_days:.0} days from now: passes may be off")
            } else {
                String::new()
            };
            report.accepted.push(ElementNote {
                node: node.to_string(),
                epoch,
                note,
            });
            // A later record in the same upload for the same node wins too.
            self.satellites.insert(node.clone(), sat.clone());
            changed.retain(|s: &Satellite| node_id(s.norad_id) != node);
            changed.push(sat);
        }
        Ok((
            report,
            Catalog {
                satellites: changed,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAT: &str = "STARLINKISH-001
1 60001U 26101A   26170.39149199  .00001028  00000-0  20553-3 0  9706
2 60001  53.0020 355.5998 0001772 297.2105  62.7790 15.05498406332108
";

    fn with_checksum(line: &str) -> String {
        let body: String = line.chars().take(68).collect();
        let sum: u32 = body
            .chars()
            .map(|c| match c {
                '-' => 1,
                d => d.to_digit(10).unwrap_or(0),
            })
            .sum();
        format!("{body}{}", sum % 10)
    }

    /// The same elements for catalog number `norad` at another epoch (year and day of year in columns 19–32).
    fn tle(norad: &str, day: &str) -> String {
        let lines: Vec<String> = SAT.lines().map(|l| l.replace("60001", norad)).collect();
        let mut l1: Vec<char> = lines[1].chars().collect();
        for (i, c) in day.chars().enumerate() {
            l1[18 + i] = c;
        }
        let l1: String = l1.into_iter().collect();
        format!(
            "{}\n{}\n{}\n",
            lines[0],
            with_checksum(&l1),
            with_checksum(&lines[2])
        )
    }

    fn epoch_line(day: &str) -> String {
        tle("60001", day)
    }

    #[test]
    fn fresher_epochs_win_and_older_ones_are_refused_as_stale() {
        let base = OrbitBook::parse(&epoch_line("26170.50000000")).expect("parses");
        assert!(base.rejected.is_empty(), "{:?}", base.rejected);
        let mut book = OrbitBook::new(base.catalog, Vec::new());
        let now =
            Instant::from_unix_seconds(book.satellites[&node_id(60001)].epoch_unix + 86_400.0);
        let (report, changed) = book
            .upload(&epoch_line("26171.50000000"), now)
            .expect("upload");
        assert_eq!(report.accepted.len(), 1, "{report:?}");
        assert_eq!(report.accepted[0].note, "");
        assert_eq!(changed.satellites.len(), 1);
        // The older one again is refused, and nothing changes.
        let (report, changed) = book
            .upload(&epoch_line("26170.50000000"), now)
            .expect("upload");
        assert_eq!(report.stale.len(), 1, "{report:?}");
        assert!(report.stale[0].note.contains("not fresher"));
        assert!(changed.satellites.is_empty());
        assert_eq!(
            book.epochs()[0].1,
            Instant::from_unix_seconds(now.unix_seconds())
        );
        // Fresher but far from now: accepted and flagged.
        let (report, _) = book
            .upload(&epoch_line("26200.50000000"), now)
            .expect("upload");
        assert!(
            report.accepted[0].note.contains("days from now"),
            "{report:?}"
        );
        // Another satellite is unknown; garbage is refused with a reason.
        let (report, changed) = book
            .upload(&tle("11111", "26172.00000000"), now)
            .expect("upload");
        assert_eq!(report.unknown.len(), 1, "{report:?}");
        assert!(changed.satellites.is_empty());
        let err = book
            .upload("1 nonsense\n2 more\n", now)
            .expect_err("garbage");
        assert!(
            err.0.contains("refused") || err.0.contains("no element set"),
            "{err}"
        );
    }
}
