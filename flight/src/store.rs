//! The flight node's durable store: the core's [`Durable`] state in one redb file. Jobs are kept one record each
//! (a node holds inputs and results of many jobs; a save writes only those that changed); everything else —
//! incarnation, plan gate and plan, tombstones, sequence number, relay frames — is one small record rewritten at
//! every save. A save is one transaction committed with redb's immediate durability: when it returns, a crash
//! (power cut, `kill -9`) at any later point leaves exactly that state, and one at any earlier point leaves the
//! state of the save before.

use crate::core::{Durable, FlightJob};
use odc_model::id::{JobId, NodeId};
use odc_model::plan::{Plan, PlanGate};
use odc_model::wire::Relay;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::str::FromStr;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
const META_KEY: &str = "durable";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum FlightStoreError {
    /// The database file could not be opened, read or written (full disk, permissions, damage).
    #[error("flight store: {0}")]
    Database(String),
    /// A record does not decode.
    #[error("flight store: record {key} does not decode: {why}")]
    Corrupt {
        /// Which record.
        key: String,
        /// Why.
        why: String,
    },
}

fn failed<E: std::fmt::Display>(e: E) -> FlightStoreError {
    FlightStoreError::Database(e.to_string())
}

#[derive(Serialize)]
struct MetaRef<'a> {
    node: &'a NodeId,
    incarnation: u64,
    gate: &'a PlanGate,
    plan: &'a Option<Plan>,
    closed: &'a BTreeSet<JobId>,
    seq: u64,
    relay: &'a VecDeque<Relay>,
}

#[derive(Deserialize)]
struct Meta {
    node: NodeId,
    incarnation: u64,
    gate: PlanGate,
    plan: Option<Plan>,
    closed: BTreeSet<JobId>,
    seq: u64,
    relay: VecDeque<Relay>,
}

/// A node's state on disk.
pub struct FlightStore {
    db: Database,
}

impl FlightStore {
    /// Opens (creating if needed) the store in one file.
    pub fn open(path: &Path) -> Result<FlightStore, FlightStoreError> {
        let db = Database::create(path).map_err(failed)?;
        let txn = db.begin_write().map_err(failed)?;
        txn.open_table(META).map_err(failed)?;
        txn.open_table(JOBS).map_err(failed)?;
        txn.commit().map_err(failed)?;
        Ok(FlightStore { db })
    }

    /// The state last saved, or `None` for a node that never saved (first boot).
    pub fn load(&self) -> Result<Option<Durable>, FlightStoreError> {
        let txn = self.db.begin_read().map_err(failed)?;
        let meta_table = txn.open_table(META).map_err(failed)?;
        let Some(meta) = meta_table.get(META_KEY).map_err(failed)? else {
            return Ok(None);
        };
        let meta: Meta =
            rmp_serde::from_slice(meta.value()).map_err(|e| FlightStoreError::Corrupt {
                key: META_KEY.into(),
                why: e.to_string(),
            })?;
        let mut jobs = BTreeMap::new();
        for entry in txn
            .open_table(JOBS)
            .map_err(failed)?
            .iter()
            .map_err(failed)?
        {
            let (key, value) = entry.map_err(failed)?;
            let corrupt = |why: String| FlightStoreError::Corrupt {
                key: key.value().to_string(),
                why,
            };
            let id = JobId::from_str(key.value()).map_err(|e| corrupt(e.to_string()))?;
            let job: FlightJob =
                rmp_serde::from_slice(value.value()).map_err(|e| corrupt(e.to_string()))?;
            jobs.insert(id, job);
        }
        Ok(Some(Durable {
            node: meta.node,
            incarnation: meta.incarnation,
            gate: meta.gate,
            plan: meta.plan,
            jobs,
            closed: meta.closed,
            seq: meta.seq,
            relay: meta.relay,
        }))
    }

    /// Saves the state: the small record, and the jobs named (written if held, removed if not), in one
    /// transaction that is on disk when this returns.
    pub fn save(&self, durable: &Durable, changed: &[JobId]) -> Result<(), FlightStoreError> {
        let meta = rmp_serde::to_vec_named(&MetaRef {
            node: &durable.node,
            incarnation: durable.incarnation,
            gate: &durable.gate,
            plan: &durable.plan,
            closed: &durable.closed,
            seq: durable.seq,
            relay: &durable.relay,
        })
        .map_err(failed)?;
        let txn = self.db.begin_write().map_err(failed)?;
        {
            let mut m = txn.open_table(META).map_err(failed)?;
            m.insert(META_KEY, meta.as_slice()).map_err(failed)?;
            let mut jobs = txn.open_table(JOBS).map_err(failed)?;
            for id in changed {
                let key = id.to_string();
                match durable.jobs.get(id) {
                    Some(job) => {
                        let bytes = rmp_serde::to_vec_named(job).map_err(failed)?;
                        jobs.insert(key.as_str(), bytes.as_slice())
                            .map_err(failed)?;
                    }
                    None => {
                        jobs.remove(key.as_str()).map_err(failed)?;
                    }
                }
            }
        }
        txn.commit().map_err(failed)?;
        Ok(())
    }
}
