//! The embedded store's schema: the tables, the versioned migrations a start applies, and how the file is opened
//! (owner-only, write-ahead log, `synchronous = FULL`, space given back on demand).

use super::*;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS tenants (
        id TEXT PRIMARY KEY,
        token_hash BLOB NOT NULL UNIQUE,
        record TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        closed INTEGER NOT NULL,
        record TEXT NOT NULL,
        input BLOB,
        result BLOB
    )",
    "CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, id)",
    "CREATE INDEX IF NOT EXISTS jobs_open ON jobs (closed)",
    "CREATE TABLE IF NOT EXISTS usage (
        job TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        record TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS fleet (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS idempotency (
        tenant TEXT NOT NULL,
        key TEXT NOT NULL,
        job TEXT NOT NULL,
        fingerprint BLOB,
        PRIMARY KEY (tenant, key)
    ) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS operators (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE
    )",
    "CREATE TABLE IF NOT EXISTS quarantine (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tbl TEXT NOT NULL,
        key TEXT NOT NULL,
        record TEXT,
        why TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        who TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL
    )",
];

/// The counter that names the store's schema version (2: idempotency keys kept apart from jobs; 3: when each
/// job closed and each usage record was made, for retention).
const SCHEMA_VERSION: &str = "schema_version";

impl SqliteStore {
    /// Opens (creating if needed) the store in one file, readable and writable by its owner only (it holds
    /// tenants' inputs and results; SQLite gives its log files the same permissions).
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        owner_only(path).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // Before the journal mode: a new file takes it only before its first page is written.
            .auto_vacuum(sqlx::sqlite::SqliteAutoVacuum::Incremental)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        {
            // Freed pages are given back on demand (`reclaim`): a new file took it as it was made; a file made
            // before is rewritten once, on one connection, to take it.
            let mut conn = pool.acquire().await?;
            let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
                .fetch_one(&mut *conn)
                .await?;
            if mode != 2 {
                sqlx::query("PRAGMA auto_vacuum = INCREMENTAL")
                    .execute(&mut *conn)
                    .await?;
                let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
                    .fetch_one(&mut *conn)
                    .await?;
                if tables > 0 {
                    tracing::info!(
                        "the store is rewritten once so that purged space can be given back"
                    );
                    sqlx::query("VACUUM").execute(&mut *conn).await?;
                }
            }
        }
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&pool).await?;
        }
        let store = SqliteStore { pool };
        if store.counter(SCHEMA_VERSION).await? < 2 {
            // Jobs stored before the idempotency table existed keep their keys (with no fingerprint to compare);
            // once, and past records that no longer parse.
            sqlx::query(
                "INSERT OR IGNORE INTO idempotency (tenant, key, job)
                 SELECT tenant, json_extract(record, '$.spec.idempotency_key'), id FROM jobs
                 WHERE json_valid(record) AND json_extract(record, '$.spec.idempotency_key') IS NOT NULL",
            )
            .execute(&store.pool)
            .await?;
            store.raise_counter(SCHEMA_VERSION, 2).await?;
        }
        if store.counter(SCHEMA_VERSION).await? < 3 {
            store.add_retention_columns().await?;
            store.raise_counter(SCHEMA_VERSION, 3).await?;
        }
        Ok(store)
    }

    /// Schema 3: when each job closed and each billing record was made, indexed, so retention deletes by age
    /// without reading records. Rows from before count from the latest audit entry (the service's own clock).
    async fn add_retention_columns(&self) -> Result<(), StoreError> {
        let has = async |table: &str, column: &str| -> Result<bool, StoreError> {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pragma_table_info(?) WHERE name = ?")
                    .bind(table)
                    .bind(column)
                    .fetch_one(&self.pool)
                    .await?;
            Ok(n > 0)
        };
        let (jobs_has, usage_has) = (
            has("jobs", "closed_at_ms").await?,
            has("usage", "at_ms").await?,
        );
        let mut tx = self.pool.begin().await?;
        if !jobs_has {
            sqlx::query("ALTER TABLE jobs ADD COLUMN closed_at_ms INTEGER")
                .execute(&mut *tx)
                .await?;
        }
        if !usage_has {
            sqlx::query("ALTER TABLE usage ADD COLUMN at_ms INTEGER")
                .execute(&mut *tx)
                .await?;
        }
        for statement in [
            "UPDATE jobs SET closed_at_ms = (SELECT COALESCE(max(at_ms), 0) FROM audit)
             WHERE closed = 1 AND closed_at_ms IS NULL",
            "UPDATE usage SET at_ms = (SELECT COALESCE(max(at_ms), 0) FROM audit) WHERE at_ms IS NULL",
            "CREATE INDEX IF NOT EXISTS jobs_closed_at ON jobs (closed_at_ms) WHERE closed = 1",
            "CREATE INDEX IF NOT EXISTS jobs_result_at ON jobs (closed_at_ms) WHERE result IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS usage_at ON usage (at_ms)",
            "CREATE INDEX IF NOT EXISTS audit_at ON audit (at_ms)",
        ] {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Creates the file if missing, and makes it (and the log files beside it) owner-only.
fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let mut files = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            files.push(p.into());
        }
        for f in files.iter().filter(|f| f.exists()) {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
