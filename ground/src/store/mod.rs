//! The ground's durable store: tenants (with the hash of their API token, never the token), jobs (the record the
//! shared state machine keeps, the input until the node has it, the result until it is fetched), the usage ledger
//! and the audit log of every state-changing action.
//!
//! [`Store`] is the interface the service is written against, so a PostgreSQL implementation can stand beside the
//! embedded default, [`SqliteStore`]: one file, no server, write-ahead log, `synchronous = FULL` — a call that
//! returns `Ok` has reached the disk. Writes take batches so a service can commit many submissions in one
//! transaction (group commit) and acknowledge each only after it.

use odc_model::id::{JobId, TenantId};
use odc_model::job::Job;
use odc_model::tenant::{Tenant, UsageRecord};
use odc_model::time::Instant;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::future::Future;
use std::path::Path;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed (disk full, locked, corrupt file…).
    #[error("store: {0}")]
    Database(#[from] sqlx::Error),
    /// A record cannot be stored as it is (a non-finite number in it); nothing was written.
    #[error("store: record {key} cannot be stored: {why}")]
    Unstorable {
        /// Which record.
        key: String,
        /// Why.
        why: String,
    },
    /// A stored record no longer decodes (written by an incompatible version, or damaged).
    #[error("store: record {key} does not decode: {why}")]
    Corrupt {
        /// Which record.
        key: String,
        /// Why.
        why: String,
    },
}

/// A job's input as the store keeps it (`None`: not held).
pub type StoredInput = (JobId, Option<Vec<u8>>);

/// A tenant as stored: the account and the hash of its API token.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantRecord {
    /// The account (quota, share weight).
    pub tenant: Tenant,
    /// BLAKE3 of the bearer token.
    pub token_hash: [u8; 32],
}

/// What an operator may do: each role may do what the ones before it may.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the operator views (nodes, plan, alarms, audit, tenants, metrics).
    Viewer,
    /// Also changes the fleet (stations, element sets) and tenants' accounts.
    Operator,
    /// Also creates operators and replaces their tokens.
    Admin,
}

impl Role {
    /// Its name, as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role with this name.
    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An operator's account as stored: its name, its role and the hash of its token.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorRecord {
    /// Its name, as the audit log names it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// BLAKE3 of its bearer token.
    pub token_hash: [u8; 32],
}

/// One job to write: its record, and its input while the ground still holds it (`None` leaves the stored input
/// as it is; `Some(empty)` drops it).
#[derive(Debug, Clone)]
pub struct JobWrite {
    /// The job as the state machine has it.
    pub job: Job,
    /// Input bytes, if they change.
    pub input: Option<Vec<u8>>,
    /// On the job's first write: the fingerprint of the request that made it, kept with its tenant's idempotency
    /// key for as long as the job is kept, so a retry after a restart finds the same job (and a different
    /// request with the same key is told apart).
    pub fingerprint: Option<[u8; 32]>,
}

/// What a tenant's idempotency key names: the job, and the fingerprint of the request that made it (`None` for
/// jobs stored before fingerprints were kept).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedJob {
    /// The job.
    pub job: Job,
    /// BLAKE3 of the request's fields.
    pub fingerprint: Option<[u8; 32]>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// When.
    pub at: Instant,
    /// Who: `tenant:<id>` or `operator:<name>`.
    pub who: String,
    /// What was done (`submit`, `cancel`, `tenant.create`…).
    pub action: String,
    /// What it was done to.
    pub target: String,
}

/// A delivered job to store: its final record, its result and what it is billed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryWrite {
    /// The job, delivered.
    pub job: Job,
    /// Its result.
    pub result: Vec<u8>,
    /// Its usage record.
    pub usage: UsageRecord,
}

/// What the ground keeps on disk. Every write is durable when its future resolves to `Ok`.
pub trait Store: Send + Sync + 'static {
    /// Creates or replaces a tenant (its account and token hash) and appends the audit entries, in one
    /// transaction: an account change is never made without its audit record, nor recorded without being made.
    fn put_tenant(
        &self,
        record: &TenantRecord,
        audit: &[AuditEntry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The tenant whose token hashes to this, if any.
    fn tenant_by_token(
        &self,
        token_hash: [u8; 32],
    ) -> impl Future<Output = Result<Option<TenantRecord>, StoreError>> + Send;
    /// Every tenant.
    fn tenants(&self) -> impl Future<Output = Result<Vec<TenantRecord>, StoreError>> + Send;
    /// Writes jobs, all or none, in one transaction; with them, audit entries for the same actions.
    fn put_jobs(
        &self,
        jobs: &[JobWrite],
        audit: &[AuditEntry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// One job.
    fn job(&self, id: JobId) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send;
    /// A tenant's jobs, newest first, at most `limit`, only those older than `before` if given (a page of a
    /// listing: the next page starts before the last job of this one).
    fn jobs_of(
        &self,
        tenant: TenantId,
        before: Option<JobId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;
    /// Jobs not yet closed, with their inputs.
    fn open_jobs(&self) -> impl Future<Output = Result<Vec<(Job, Vec<u8>)>, StoreError>> + Send;
    /// Jobs not yet closed, without their inputs: what a restarted ground rebuilds its core from (inputs are
    /// read when a node is due them).
    fn open_job_records(&self) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;
    /// The inputs of these jobs as kept (`None`: not held, the job closed or unknown), in the order asked.
    fn inputs(
        &self,
        ids: &[JobId],
    ) -> impl Future<Output = Result<Vec<StoredInput>, StoreError>> + Send;
    /// Stores delivered jobs' results and usage records, with the jobs' final records, all in one transaction (a
    /// contact that brings many results down costs one commit). Storing a delivery again changes nothing.
    fn put_deliveries(
        &self,
        deliveries: &[DeliveryWrite],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A delivered job's result.
    fn result(&self, id: JobId)
    -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// A tenant's usage records.
    fn usage_of(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Vec<UsageRecord>, StoreError>> + Send;
    /// The audit log, oldest first.
    fn audit_log(&self) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;
    /// The latest `limit` entries of the audit log before the entry numbered `before` (all, if absent), oldest
    /// first, each with its number: a page of the log, the next (older) one starting before its first entry.
    fn audit_page(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(u64, AuditEntry)>, StoreError>> + Send;
    /// Records an operator's change to the fleet (`kind`: a station's status, an orbit upload) with its audit
    /// entry, in one transaction: what a restart replays.
    fn put_fleet_change(
        &self,
        kind: &str,
        key: &str,
        value: &str,
        audit: &AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The fleet changes, oldest first: (kind, key, value).
    fn fleet_changes(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, String, String)>, StoreError>> + Send;
    /// The job a tenant's idempotency key names, with the fingerprint of the request that made it.
    fn job_for_key(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> impl Future<Output = Result<Option<KeyedJob>, StoreError>> + Send;
    /// Every idempotency key kept, with its tenant (what a starting service fills its key filter from).
    fn idempotency_keys(
        &self,
    ) -> impl Future<Output = Result<Vec<(TenantId, String)>, StoreError>> + Send;
    /// Raises a named counter to `value` (never lowers it): what must keep growing across restarts, such as the
    /// plan generation.
    fn raise_counter(
        &self,
        name: &str,
        value: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A named counter (0 if never raised).
    fn counter(&self, name: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Creates or replaces an operator account (its role and token hash) with its audit entries, in one
    /// transaction.
    fn put_operator(
        &self,
        record: &OperatorRecord,
        audit: &[AuditEntry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every operator account.
    fn operators(&self) -> impl Future<Output = Result<Vec<OperatorRecord>, StoreError>> + Send;
    /// Deletes at most `batch` of each kind that `retention` no longer keeps at `now`, in one transaction (a
    /// service calls it again while a whole batch went, so no purge holds the database for long).
    fn purge(
        &self,
        now: Instant,
        retention: &Retention,
        batch: u32,
    ) -> impl Future<Output = Result<Purged, StoreError>> + Send;
    /// Gives the space that deleted records left back to the file system; the bytes given back.
    fn reclaim(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Records set aside because they no longer decoded (reading them moved them out of the way, so one damaged
    /// record never stops the ground from starting): what operators are alarmed about.
    fn quarantined(&self) -> impl Future<Output = Result<Vec<Quarantined>, StoreError>> + Send;
}

/// How long what a closed job leaves behind is kept, counted from when it closed (audit entries and billing
/// records from when they were made). A service deletes what is older ([`Store::purge`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// A delivered job's result: the time its tenant has to download it.
    pub results_days: f64,
    /// A closed job's record and its idempotency key (a retry with the same key after this makes a new job).
    pub jobs_days: f64,
    /// Audit entries and billing (usage) records.
    pub audit_days: f64,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            results_days: 30.0,
            jobs_days: 90.0,
            audit_days: 400.0,
        }
    }
}

impl Retention {
    /// The moment before which each kind goes, at `now`: (results, jobs, audit).
    pub fn cutoffs(&self, now: Instant) -> (Instant, Instant, Instant) {
        let ago = |days: f64| {
            let ms = (days.max(0.0) * 86_400_000.0).min(i64::MAX as f64 / 2.0) as i64;
            Instant::from_unix_ms(now.unix_ms().saturating_sub(ms))
        };
        (
            ago(self.results_days),
            ago(self.jobs_days),
            ago(self.audit_days),
        )
    }
}

/// What one purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Results deleted (their jobs' records stay).
    pub results: u64,
    /// Closed jobs' records deleted, with their idempotency keys.
    pub jobs: u64,
    /// Audit entries deleted.
    pub audit: u64,
    /// Billing records deleted.
    pub usage: u64,
}

impl Purged {
    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.results + self.jobs + self.audit + self.usage
    }
}

/// A record set aside because it no longer decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    /// The table it was in (`jobs`, `usage`, `tenants`).
    pub table: String,
    /// Its key.
    pub key: String,
    /// Why it did not decode.
    pub why: String,
}

mod sqlite;

pub use sqlite::SqliteStore;
