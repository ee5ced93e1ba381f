//! The embedded store: one SQLite file in WAL mode with `synchronous = FULL`, created owner-only; damaged records
//! set aside in a quarantine table when read.

use super::*;

mod schema;

/// The embedded default: one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// When a job closed (its last transition), if it has.
fn closed_at_ms(job: &Job) -> Option<i64> {
    job.state.is_terminal().then(|| {
        job.history
            .last()
            .map_or(job.submitted_at, |t| t.at)
            .unix_ms()
    })
}

/// The statement that appends one audit entry.
fn insert_audit(
    a: &AuditEntry,
) -> sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query("INSERT INTO audit (at_ms, who, action, target) VALUES (?, ?, ?, ?)")
        .bind(a.at.unix_ms())
        .bind(&a.who)
        .bind(&a.action)
        .bind(&a.target)
}

impl SqliteStore {
    /// Moves a record that does not decode out of `table` into the quarantine, with why (its bytes are kept there
    /// for whoever repairs it).
    async fn set_aside(
        &self,
        table: &'static str,
        key_column: &'static str,
        key: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        tracing::error!(
            table,
            key,
            why,
            "a stored record does not decode; set aside in quarantine"
        );
        let mut tx = self.pool.begin().await?;
        // `table` and `key_column` are this module's own names, never input.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO quarantine (tbl, key, record, why) SELECT ?, ?, record, ? FROM {table} WHERE {key_column} = ?"
        )))
        .bind(table)
        .bind(key)
        .bind(why)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE {key_column} = ?"
        )))
        .bind(key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to finish (and the log to be checkpointed).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Records whose numbers must be finite to be stored: JSON has no infinity or NaN (serde_json writes them as
/// `null`, which no later start could read back).
trait Finite {
    /// The first field that is not a finite number, if any.
    fn not_finite(&self) -> Option<&'static str>;
}

fn first_bad(fields: &[(&'static str, f64)]) -> Option<&'static str> {
    fields.iter().find(|(_, v)| !v.is_finite()).map(|(n, _)| *n)
}

impl Finite for Job {
    fn not_finite(&self) -> Option<&'static str> {
        first_bad(&[
            ("accelerator_s", self.accelerator_s),
            ("energy_wh", self.energy_wh),
        ])
        .or_else(|| {
            self.history.iter().find_map(|t| match &t.event {
                odc_model::job::JobEvent::Finish {
                    accelerator_s,
                    energy_wh,
                    ..
                } => first_bad(&[
                    ("history.accelerator_s", *accelerator_s),
                    ("history.energy_wh", *energy_wh),
                ]),
                _ => None,
            })
        })
    }
}

impl Finite for UsageRecord {
    fn not_finite(&self) -> Option<&'static str> {
        first_bad(&[
            ("accelerator_s", self.usage.accelerator_s),
            ("energy_wh", self.usage.energy_wh),
        ])
    }
}

impl Finite for Tenant {
    fn not_finite(&self) -> Option<&'static str> {
        first_bad(&[
            ("quota.accelerator_s", self.quota.accelerator_s),
            ("quota.energy_wh", self.quota.energy_wh),
        ])
    }
}

/// A record as stored; one with a number JSON cannot hold is refused by name rather than stored in a form no
/// later start could read.
fn encode<T: serde::Serialize + Finite>(key: &str, value: &T) -> Result<String, StoreError> {
    if let Some(field) = value.not_finite() {
        return Err(StoreError::Unstorable {
            key: key.to_string(),
            why: format!("`{field}` is not a finite number"),
        });
    }
    serde_json::to_string(value).map_err(|e| StoreError::Unstorable {
        key: key.to_string(),
        why: e.to_string(),
    })
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        why: e.to_string(),
    })
}

fn tenant_row(row: &sqlx::sqlite::SqliteRow) -> Result<TenantRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let hash: Vec<u8> = row.try_get("token_hash")?;
    let record: String = row.try_get("record")?;
    let token_hash: [u8; 32] = hash.try_into().map_err(|_| StoreError::Corrupt {
        key: id.clone(),
        why: "token hash is not 32 bytes".into(),
    })?;
    Ok(TenantRecord {
        tenant: decode(&id, &record)?,
        token_hash,
    })
}

fn audit_row(row: &sqlx::sqlite::SqliteRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        at: Instant::from_unix_ms(row.try_get("at_ms")?),
        who: row.try_get("who")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
    })
}

fn job_row(row: &sqlx::sqlite::SqliteRow) -> Result<Job, StoreError> {
    let id: String = row.try_get("id")?;
    let record: String = row.try_get("record")?;
    decode(&id, &record)
}

impl Store for SqliteStore {
    async fn put_tenant(
        &self,
        record: &TenantRecord,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO tenants (id, token_hash, record) VALUES (?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, record = excluded.record",
        )
        .bind(record.tenant.id.to_string())
        .bind(record.token_hash.to_vec())
        .bind(encode(&record.tenant.id.to_string(), &record.tenant)?)
        .execute(&mut *tx)
        .await?;
        for a in audit {
            insert_audit(a).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn tenant_by_token(
        &self,
        token_hash: [u8; 32],
    ) -> Result<Option<TenantRecord>, StoreError> {
        let row = sqlx::query("SELECT id, token_hash, record FROM tenants WHERE token_hash = ?")
            .bind(token_hash.to_vec())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tenant_row).transpose()
    }

    async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        let rows = sqlx::query("SELECT id, token_hash, record FROM tenants ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            match tenant_row(row) {
                Ok(t) => out.push(t),
                Err(StoreError::Corrupt { key, why }) => {
                    self.set_aside("tenants", "id", &key, &why).await?
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn put_jobs(&self, jobs: &[JobWrite], audit: &[AuditEntry]) -> Result<(), StoreError> {
        // A record never replaces one with a longer history: writers of the same job (the API's commits, the
        // dispatcher's) may land in either order, and the job state machine only ever adds to a history.
        let mut tx = self.pool.begin().await?;
        // As few statements as the batch allows (each is a round trip to the database thread): runs of writes of
        // the same kind, up to 400 rows a statement, in the order given.
        let mut rest = jobs;
        while let Some(first) = rest.first() {
            let with_input = first.input.is_some();
            let run = rest
                .iter()
                .take(400)
                .take_while(|w| w.input.is_some() == with_input)
                .count();
            let (chunk, after) = rest.split_at(run);
            rest = after;
            let mut rows = Vec::with_capacity(chunk.len());
            for w in chunk {
                let id = w.job.id.to_string();
                let record = encode(&id, &w.job)?;
                rows.push((w, id, record));
            }
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(if with_input {
                "INSERT INTO jobs (id, tenant, closed, record, closed_at_ms, input) "
            } else {
                "INSERT INTO jobs (id, tenant, closed, record, closed_at_ms) "
            });
            q.push_values(&rows, |mut row, (w, id, record)| {
                row.push_bind(id.as_str())
                    .push_bind(w.job.spec.tenant.to_string())
                    .push_bind(w.job.state.is_terminal())
                    .push_bind(record.as_str())
                    .push_bind(closed_at_ms(&w.job));
                if let Some(input) = &w.input {
                    row.push_bind((!input.is_empty()).then_some(input.as_slice()));
                }
            });
            q.push(if with_input {
                " ON CONFLICT (id) DO UPDATE SET closed = excluded.closed, record = excluded.record,
                 input = excluded.input, closed_at_ms = excluded.closed_at_ms
                 WHERE json_array_length(excluded.record, '$.history')
                    >= json_array_length(jobs.record, '$.history')"
            } else {
                " ON CONFLICT (id) DO UPDATE SET closed = excluded.closed, record = excluded.record,
                 input = CASE WHEN excluded.closed THEN NULL ELSE jobs.input END,
                 closed_at_ms = excluded.closed_at_ms
                 WHERE json_array_length(excluded.record, '$.history')
                    >= json_array_length(jobs.record, '$.history')"
            });
            q.build().execute(&mut *tx).await?;
        }
        // The keys of new jobs, in as few statements as the batch allows (each statement is a round trip to the
        // database thread); the first job a key named keeps it.
        let keyed: Vec<(&JobWrite, [u8; 32])> = jobs
            .iter()
            .filter_map(|w| w.fingerprint.map(|f| (w, f)))
            .collect();
        for chunk in keyed.chunks(500) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO idempotency (tenant, key, job, fingerprint) ",
            );
            q.push_values(chunk, |mut row, (w, f)| {
                row.push_bind(w.job.spec.tenant.to_string())
                    .push_bind(w.job.spec.idempotency_key.clone())
                    .push_bind(w.job.id.to_string())
                    .push_bind(f.to_vec());
            });
            q.push(" ON CONFLICT (tenant, key) DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        for chunk in audit.chunks(500) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO audit (at_ms, who, action, target) ",
            );
            q.push_values(chunk, |mut row, a| {
                row.push_bind(a.at.unix_ms())
                    .push_bind(a.who.as_str())
                    .push_bind(a.action.as_str())
                    .push_bind(a.target.as_str());
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query("SELECT id, record FROM jobs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_row).transpose()
    }

    async fn jobs_of(
        &self,
        tenant: TenantId,
        before: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        // Ids sort as they were made, so a page is one range of the (tenant, id) index.
        let rows = sqlx::query(
            "SELECT id, record FROM jobs WHERE tenant = ? AND (? IS NULL OR id < ?)
             ORDER BY id DESC LIMIT ?",
        )
        .bind(tenant.to_string())
        .bind(before.map(|b| b.to_string()))
        .bind(before.map(|b| b.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_row).collect()
    }

    async fn open_jobs(&self) -> Result<Vec<(Job, Vec<u8>)>, StoreError> {
        let rows = sqlx::query("SELECT id, record, input FROM jobs WHERE closed = 0 ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            match job_row(row) {
                Ok(job) => {
                    let input: Option<Vec<u8>> = row.try_get("input")?;
                    out.push((job, input.unwrap_or_default()));
                }
                Err(StoreError::Corrupt { key, why }) => {
                    self.set_aside("jobs", "id", &key, &why).await?
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn open_job_records(&self) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query("SELECT id, record FROM jobs WHERE closed = 0 ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            match job_row(row) {
                Ok(job) => out.push(job),
                Err(StoreError::Corrupt { key, why }) => {
                    self.set_aside("jobs", "id", &key, &why).await?
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn inputs(&self, ids: &[JobId]) -> Result<Vec<(JobId, Option<Vec<u8>>)>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let input: Option<Option<Vec<u8>>> =
                sqlx::query_scalar("SELECT input FROM jobs WHERE id = ? AND closed = 0")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
            out.push((id, input.flatten()));
        }
        Ok(out)
    }

    async fn put_deliveries(&self, deliveries: &[DeliveryWrite]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for DeliveryWrite { job, result, usage } in deliveries {
            sqlx::query(
                "UPDATE jobs SET closed = ?, record = ?, input = NULL, result = ?, closed_at_ms = ?
                 WHERE id = ?",
            )
            .bind(job.state.is_terminal())
            .bind(encode(&job.id.to_string(), job)?)
            .bind(result)
            .bind(closed_at_ms(job))
            .bind(job.id.to_string())
            .execute(&mut *tx)
            .await?;
            // Metering exactly once: a second delivery of the same job leaves the first record.
            sqlx::query(
            "INSERT INTO usage (job, tenant, record, at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (job) DO NOTHING",
        )
        .bind(usage.job.to_string())
        .bind(usage.tenant.to_string())
        .bind(encode(&usage.job.to_string(), usage)?)
        .bind(usage.at.unix_ms())
        .execute(&mut *tx)
        .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn result(&self, id: JobId) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT result FROM jobs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<Vec<u8>>, _>("result"))
            .transpose()?
            .flatten())
    }

    async fn usage_of(&self, tenant: TenantId) -> Result<Vec<UsageRecord>, StoreError> {
        let rows = sqlx::query("SELECT job, record FROM usage WHERE tenant = ? ORDER BY job")
            .bind(tenant.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let job: String = row.try_get("job")?;
            let record: String = row.try_get("record")?;
            match decode(&job, &record) {
                Ok(r) => out.push(r),
                Err(StoreError::Corrupt { key, why }) => {
                    self.set_aside("usage", "job", &key, &why).await?
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT at_ms, who, action, target FROM audit ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_row).collect()
    }

    async fn audit_page(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, AuditEntry)>, StoreError> {
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let rows = sqlx::query(
            "SELECT seq, at_ms, who, action, target FROM audit WHERE seq < ?
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .rev()
            .map(|r| {
                let seq: i64 = r.try_get("seq")?;
                Ok((seq.max(0) as u64, audit_row(r)?))
            })
            .collect()
    }

    async fn put_fleet_change(
        &self,
        kind: &str,
        key: &str,
        value: &str,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO fleet (kind, key, value) VALUES (?, ?, ?)")
            .bind(kind)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        insert_audit(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn job_for_key(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> Result<Option<KeyedJob>, StoreError> {
        let row = sqlx::query(
            "SELECT jobs.id AS id, jobs.record AS record, idempotency.fingerprint AS fingerprint
             FROM idempotency JOIN jobs ON jobs.id = idempotency.job
             WHERE idempotency.tenant = ? AND idempotency.key = ?",
        )
        .bind(tenant.to_string())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let fingerprint: Option<Vec<u8>> = row.try_get("fingerprint")?;
        Ok(Some(KeyedJob {
            job: job_row(&row)?,
            fingerprint: fingerprint.and_then(|f| f.try_into().ok()),
        }))
    }

    async fn idempotency_keys(&self) -> Result<Vec<(TenantId, String)>, StoreError> {
        let rows = sqlx::query("SELECT tenant, key FROM idempotency")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let tenant: String = row.try_get("tenant")?;
            let key: String = row.try_get("key")?;
            // A row whose tenant does not parse names no tenant that can sign in: nothing to look up.
            if let Ok(t) = tenant.parse::<TenantId>() {
                out.push((t, key));
            }
        }
        Ok(out)
    }

    async fn raise_counter(&self, name: &str, value: u64) -> Result<(), StoreError> {
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO counters (name, value) VALUES (?, ?)
             ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn counter(&self, name: &str) -> Result<u64, StoreError> {
        let value: Option<i64> = sqlx::query_scalar("SELECT value FROM counters WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(value.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
    }

    async fn put_operator(
        &self,
        record: &OperatorRecord,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO operators (name, role, token_hash) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET role = excluded.role, token_hash = excluded.token_hash",
        )
        .bind(&record.name)
        .bind(record.role.name())
        .bind(record.token_hash.to_vec())
        .execute(&mut *tx)
        .await?;
        for a in audit {
            insert_audit(a).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn operators(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        let rows = sqlx::query("SELECT name, role, token_hash FROM operators ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get("name")?;
            let role: String = row.try_get("role")?;
            let hash: Vec<u8> = row.try_get("token_hash")?;
            let (Some(role), Ok(token_hash)) = (Role::from_name(&role), <[u8; 32]>::try_from(hash))
            else {
                // Left out (the account cannot sign in) and said, rather than refusing to start.
                tracing::error!(operator = %name, "an operator account's role or token hash is unreadable; left out");
                continue;
            };
            out.push(OperatorRecord {
                name,
                role,
                token_hash,
            });
        }
        Ok(out)
    }

    async fn purge(
        &self,
        now: Instant,
        retention: &Retention,
        batch: u32,
    ) -> Result<Purged, StoreError> {
        let (results_before, jobs, audit) = retention.cutoffs(now);
        let batch = i64::from(batch);
        let mut tx = self.pool.begin().await?;
        let results = sqlx::query(
            "UPDATE jobs SET result = NULL WHERE id IN (
                 SELECT id FROM jobs INDEXED BY jobs_result_at
                 WHERE result IS NOT NULL AND closed_at_ms < ? LIMIT ?)",
        )
        .bind(results_before.unix_ms())
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let mut purged = Purged {
            results,
            ..Purged::default()
        };
        // A job goes with the idempotency key that named it (the key is read from the record, which names it).
        let gone = sqlx::query(
            "SELECT id, tenant, json_extract(record, '$.spec.idempotency_key') AS key
             FROM jobs INDEXED BY jobs_closed_at WHERE closed = 1 AND closed_at_ms < ? LIMIT ?",
        )
        .bind(jobs.unix_ms())
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        for row in &gone {
            let id: String = row.try_get("id")?;
            let tenant: String = row.try_get("tenant")?;
            let key: Option<String> = row.try_get("key").unwrap_or(None);
            if let Some(key) = key {
                sqlx::query("DELETE FROM idempotency WHERE tenant = ? AND key = ? AND job = ?")
                    .bind(&tenant)
                    .bind(key)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
            }
            purged.jobs += sqlx::query("DELETE FROM jobs WHERE id = ?")
                .bind(&id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        purged.audit = sqlx::query(
            "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE at_ms < ? LIMIT ?)",
        )
        .bind(audit.unix_ms())
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        purged.usage = sqlx::query(
            "DELETE FROM usage WHERE job IN (SELECT job FROM usage WHERE at_ms < ? LIMIT ?)",
        )
        .bind(audit.unix_ms())
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(purged)
    }

    async fn reclaim(&self) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let page: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&mut *conn)
            .await?;
        let before: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut *conn)
            .await?;
        sqlx::query("PRAGMA incremental_vacuum")
            .execute(&mut *conn)
            .await?;
        // The write-ahead log holds the freed pages' last versions until it is checkpointed and cut back.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
        let after: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut *conn)
            .await?;
        Ok(((before - after).max(0) * page) as u64)
    }

    async fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        let rows = sqlx::query("SELECT tbl, key, why FROM quarantine ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Quarantined {
                    table: row.try_get("tbl")?,
                    key: row.try_get("key")?,
                    why: row.try_get("why")?,
                })
            })
            .collect()
    }

    async fn fleet_changes(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = sqlx::query("SELECT kind, key, value FROM fleet ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("kind")?,
                    row.try_get("key")?,
                    row.try_get("value")?,
                ))
            })
            .collect()
    }
}
