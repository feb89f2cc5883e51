//! [`StateStore`] on SQLite and PostgreSQL through sqlx. The SQL is shared (numbered `$n`
//! placeholders work on both); each method body is expanded once per backend by `on_pool!`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row};
use soundcheck_core::events::{CertificationChange as CertEvent, CheckStatusChange, EventParams};
use soundcheck_core::model::{CertState, CheckState};

use super::{
    DeadEvent, OutboxAudit, StateChanges, StateStore, StoreError, StoreResult, StoredCertification, StoredEvent,
    StoredResult,
};

/// The migrations of one backend, embedded in the binary.
fn migrator(sql: &'static str) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(vec![Migration::new(1, "state".into(), MigrationType::Simple, sqlx::SqlStr::from_static(sql), false)])
}

const SQLITE_STATE: &str = include_str!("../../migrations/sqlite/0001_state.sql");
const POSTGRES_STATE: &str = include_str!("../../migrations/postgres/0001_state.sql");

/// Rows per multi-row INSERT (SQLite allows 32,766 bound values).
const INSERT_CHUNK: usize = 500;

/// The connection pool of one backend.
#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code against whichever pool is open.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

/// The SQL store.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: Pool,
}

impl SqlStore {
    /// Opens (creating a SQLite file if needed) and migrates the database at `url`.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30));
            let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
            migrator(SQLITE_STATE).run(&pool).await?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new().max_connections(8).connect(url).await?;
            migrator(POSTGRES_STATE).run(&pool).await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        Ok(Self { pool })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        on_pool!(&self.pool, p => sqlx::query("SELECT 1").execute(p).await.is_ok())
    }
}

fn check_state(text: &str) -> StoreResult<CheckState> {
    CheckState::parse(text).ok_or_else(|| StoreError::Corrupt(format!("check state `{text}`")))
}

fn cert_state(text: &str) -> StoreResult<CertState> {
    CertState::parse(text).ok_or_else(|| StoreError::Corrupt(format!("certification state `{text}`")))
}

fn decode_event(seq: i64, key: String, topic: String, payload: String, metadata: &str) -> StoreResult<StoredEvent> {
    let event_payload = serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("event {seq} payload: {e}")))?;
    let metadata = serde_json::from_str(metadata).map_err(|e| StoreError::Corrupt(format!("event {seq} metadata: {e}")))?;
    Ok(StoredEvent { seq, ordering_key: key, params: EventParams { topic, event_payload, metadata }, payload_json: payload })
}

/// One event to append: its envelope, key and id, prepared before the transaction.
struct PendingEvent {
    event_id: String,
    key: String,
    params: EventParams,
    payload_json: String,
}

fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Builds the events of a set of changes, in the order they are written.
fn pending_events(changes: &StateChanges) -> (Vec<PendingEvent>, Vec<PendingEvent>) {
    let checks = changes
        .results
        .iter()
        .map(|c| {
            let payload = CheckStatusChange {
                check_id: c.result.check_id.clone(),
                entity_ref: c.result.entity_ref.clone(),
                state: c.result.state,
                previous_state: c.previous,
                timestamp_ms: changes.now_ms,
                scope: c.result.scope.clone(),
            };
            let event_id = new_event_id();
            let payload_json = serde_json::to_string(&payload).unwrap_or_default();
            PendingEvent { key: payload.ordering_key(), params: payload.into_params(&event_id), event_id, payload_json }
        })
        .collect();
    let certs = changes
        .certifications
        .iter()
        .map(|c| {
            let s = &c.certification;
            let payload = CertEvent {
                track_id: s.track_id.clone(),
                entity_ref: s.entity_ref.clone(),
                state: s.state,
                cumulative_state: s.cumulative_state,
                level_ordinal: s.level_ordinal,
                timestamp_ms: changes.now_ms,
                previous_state: c.previous_state,
                scope: s.scope.clone(),
            };
            let event_id = new_event_id();
            let payload_json = serde_json::to_string(&payload).unwrap_or_default();
            PendingEvent {
                key: payload.ordering_key(),
                params: payload.into_params(&event_id, c.previous_cumulative),
                event_id,
                payload_json,
            }
        })
        .collect();
    (checks, certs)
}

impl StateStore for SqlStore {
    async fn results_of(&self, entity_refs: &[String]) -> StoreResult<Vec<StoredResult>> {
        let mut out = Vec::new();
        for chunk in entity_refs.chunks(INSERT_CHUNK) {
            let rows = on_pool!(&self.pool, p => {
                let mut q = QueryBuilder::new("SELECT check_id, entity_ref, scope, state FROM check_results WHERE entity_ref IN (");
                let mut list = q.separated(", ");
                for r in chunk {
                    list.push_bind(r.as_str());
                }
                q.push(")");
                q.build().fetch_all(p).await?.into_iter().map(|row| {
                    let state: String = row.try_get(3)?;
                    Ok(StoredResult { check_id: row.try_get(0)?, entity_ref: row.try_get(1)?, scope: row.try_get(2)?, state: check_state(&state)? })
                }).collect::<StoreResult<Vec<_>>>()?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    async fn certifications_of(&self, entity_refs: &[String]) -> StoreResult<Vec<StoredCertification>> {
        let mut out = Vec::new();
        for chunk in entity_refs.chunks(INSERT_CHUNK) {
            let rows = on_pool!(&self.pool, p => {
                let mut q = QueryBuilder::new("SELECT track_id, entity_ref, level_ordinal, scope, state, cumulative_state FROM certifications WHERE entity_ref IN (");
                let mut list = q.separated(", ");
                for r in chunk {
                    list.push_bind(r.as_str());
                }
                q.push(")");
                q.build().fetch_all(p).await?.into_iter().map(|row| {
                    let ordinal: i64 = row.try_get(2)?;
                    let (state, cumulative): (String, String) = (row.try_get(4)?, row.try_get(5)?);
                    Ok(StoredCertification {
                        track_id: row.try_get(0)?,
                        entity_ref: row.try_get(1)?,
                        level_ordinal: u32::try_from(ordinal).map_err(|_| StoreError::Corrupt(format!("level ordinal {ordinal}")))?,
                        scope: row.try_get(3)?,
                        state: cert_state(&state)?,
                        cumulative_state: cert_state(&cumulative)?,
                    })
                }).collect::<StoreResult<Vec<_>>>()?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    async fn active_exemptions(&self, now_ms: i64) -> StoreResult<Vec<(String, String)>> {
        const SQL: &str = "SELECT check_id, entity_ref FROM exemptions WHERE revoked = 0 AND (expires_at IS NULL OR expires_at > $1)";
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(SQL).bind(now_ms).fetch_all(p).await?;
            rows.into_iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
        })
    }

    async fn apply(&self, changes: &StateChanges, events: bool) -> StoreResult<Vec<StoredEvent>> {
        let (check_events, cert_events) = if events { pending_events(changes) } else { (Vec::new(), Vec::new()) };
        let now = changes.now_ms;
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            for touch in &changes.touched_results {
                sqlx::query("UPDATE check_results SET last_checked = $1 WHERE entity_ref = $2 AND scope = $3")
                    .bind(now).bind(touch.entity_ref.as_str()).bind(touch.scope.as_str()).execute(&mut *tx).await?;
            }
            for touch in &changes.touched_certifications {
                sqlx::query("UPDATE certifications SET last_checked = $1 WHERE entity_ref = $2 AND scope = $3")
                    .bind(now).bind(touch.entity_ref.as_str()).bind(touch.scope.as_str()).execute(&mut *tx).await?;
            }
            for (i, chunk) in changes.results.chunks(INSERT_CHUNK).enumerate() {
                let mut q = QueryBuilder::new("INSERT INTO check_results (check_id, entity_ref, scope, state, details, message, submitted_by, last_checked, last_changed) ");
                q.push_values(chunk, |mut b, c| {
                    b.push_bind(c.result.check_id.as_str()).push_bind(c.result.entity_ref.as_str()).push_bind(c.result.scope.as_str())
                        .push_bind(c.result.state.as_str()).push_bind(c.details.as_ref().map(|d| d.to_string()))
                        .push_bind(c.message.as_deref()).push_bind(c.submitted_by.as_deref()).push_bind(now).push_bind(now);
                });
                q.push(" ON CONFLICT (check_id, entity_ref, scope) DO UPDATE SET state = excluded.state, details = excluded.details, message = excluded.message, submitted_by = excluded.submitted_by, last_checked = excluded.last_checked, last_changed = excluded.last_changed");
                q.build().execute(&mut *tx).await?;
                let mut q = QueryBuilder::new("INSERT INTO check_transitions (check_id, entity_ref, scope, previous_state, state, at, event_id) ");
                let ids = check_events.get(i * INSERT_CHUNK..).unwrap_or_default();
                q.push_values(chunk.iter().enumerate(), |mut b, (j, c)| {
                    b.push_bind(c.result.check_id.as_str()).push_bind(c.result.entity_ref.as_str()).push_bind(c.result.scope.as_str())
                        .push_bind(c.previous.map(CheckState::as_str)).push_bind(c.result.state.as_str()).push_bind(now)
                        .push_bind(ids.get(j).map(|e| e.event_id.as_str()));
                });
                q.build().execute(&mut *tx).await?;
            }
            for (i, chunk) in changes.certifications.chunks(INSERT_CHUNK).enumerate() {
                let mut q = QueryBuilder::new("INSERT INTO certifications (track_id, entity_ref, level_ordinal, scope, state, cumulative_state, last_checked, last_changed) ");
                q.push_values(chunk, |mut b, c| {
                    let s = &c.certification;
                    b.push_bind(s.track_id.as_str()).push_bind(s.entity_ref.as_str()).push_bind(i64::from(s.level_ordinal)).push_bind(s.scope.as_str())
                        .push_bind(s.state.as_str()).push_bind(s.cumulative_state.as_str()).push_bind(now).push_bind(now);
                });
                q.push(" ON CONFLICT (track_id, entity_ref, level_ordinal, scope) DO UPDATE SET state = excluded.state, cumulative_state = excluded.cumulative_state, last_checked = excluded.last_checked, last_changed = excluded.last_changed");
                q.build().execute(&mut *tx).await?;
                let mut q = QueryBuilder::new("INSERT INTO certification_transitions (track_id, entity_ref, level_ordinal, scope, previous_state, state, previous_cumulative_state, cumulative_state, at, event_id) ");
                let ids = cert_events.get(i * INSERT_CHUNK..).unwrap_or_default();
                q.push_values(chunk.iter().enumerate(), |mut b, (j, c)| {
                    let s = &c.certification;
                    b.push_bind(s.track_id.as_str()).push_bind(s.entity_ref.as_str()).push_bind(i64::from(s.level_ordinal)).push_bind(s.scope.as_str())
                        .push_bind(c.previous_state.map(CertState::as_str)).push_bind(s.state.as_str())
                        .push_bind(c.previous_cumulative.map(CertState::as_str)).push_bind(s.cumulative_state.as_str()).push_bind(now)
                        .push_bind(ids.get(j).map(|e| e.event_id.as_str()));
                });
                q.build().execute(&mut *tx).await?;
            }
            let mut written = Vec::with_capacity(check_events.len() + cert_events.len());
            for chunk in check_events.chunks(INSERT_CHUNK).chain(cert_events.chunks(INSERT_CHUNK)) {
                let mut q = QueryBuilder::new("INSERT INTO event_log (event_id, topic, ordering_key, payload, metadata, created_at) ");
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(e.event_id.as_str()).push_bind(e.params.topic.as_str()).push_bind(e.key.as_str())
                        .push_bind(e.payload_json.as_str())
                        .push_bind(serde_json::to_string(&e.params.metadata).unwrap_or_else(|_| "null".into())).push_bind(now);
                });
                q.push(" RETURNING seq");
                let seqs = q.build().fetch_all(&mut *tx).await?;
                for (row, e) in seqs.iter().zip(chunk) {
                    written.push(StoredEvent {
                        seq: row.try_get(0)?,
                        ordering_key: e.key.clone(),
                        params: e.params.clone(),
                        payload_json: e.payload_json.clone(),
                    });
                }
            }
            tx.commit().await?;
            written.sort_by_key(|e| e.seq);
            Ok(written)
        })
    }

    async fn publish(&self, params: &EventParams, ordering_key: &str) -> StoreResult<StoredEvent> {
        const SQL: &str = "INSERT INTO event_log (event_id, topic, ordering_key, payload, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq";
        let event_id = params.event_id().map_or_else(new_event_id, str::to_string);
        let now = chrono::Utc::now().timestamp_millis();
        let metadata = serde_json::to_string(&params.metadata).unwrap_or_else(|_| "null".into());
        let payload_json = params.event_payload.to_string();
        let seq: i64 = on_pool!(&self.pool, p => {
            sqlx::query(SQL).bind(event_id.as_str()).bind(params.topic.as_str()).bind(ordering_key)
                .bind(payload_json.as_str()).bind(metadata.as_str()).bind(now)
                .fetch_one(p).await?.try_get(0)?
        });
        Ok(StoredEvent { seq, ordering_key: ordering_key.to_string(), params: params.clone(), payload_json })
    }

    async fn events_after(&self, after: i64, limit: i64) -> StoreResult<Vec<StoredEvent>> {
        const SQL: &str = "SELECT seq, ordering_key, topic, payload, metadata FROM event_log WHERE seq > $1 ORDER BY seq LIMIT $2";
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(SQL).bind(after).bind(limit).fetch_all(p).await?;
            rows.into_iter().map(|r| {
                let (payload, metadata): (String, String) = (r.try_get(3)?, r.try_get(4)?);
                decode_event(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, payload, &metadata)
            }).collect()
        })
    }

    async fn last_seq(&self) -> StoreResult<i64> {
        const SQL: &str = "SELECT COALESCE(MAX(seq), 0) FROM event_log";
        on_pool!(&self.pool, p => Ok(sqlx::query(SQL).fetch_one(p).await?.try_get::<i64, _>(0)?))
    }

    async fn cursor(&self, subscriber_id: &str) -> StoreResult<Option<i64>> {
        const SQL: &str = "SELECT cursor FROM subscriptions WHERE subscriber_id = $1";
        on_pool!(&self.pool, p => {
            let row = sqlx::query(SQL).bind(subscriber_id).fetch_optional(p).await?;
            row.map(|r| r.try_get::<i64, _>(0)).transpose().map_err(StoreError::from)
        })
    }

    async fn save_cursor(&self, subscriber_id: &str, topics: &[String], cursor: i64) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO subscriptions (subscriber_id, cursor, topics, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
            ON CONFLICT (subscriber_id) DO UPDATE SET cursor = excluded.cursor, topics = excluded.topics, updated_at = excluded.updated_at";
        let topics = serde_json::to_string(topics).unwrap_or_else(|_| "[]".into());
        let now = chrono::Utc::now().timestamp_millis();
        on_pool!(&self.pool, p => {
            sqlx::query(SQL).bind(subscriber_id).bind(cursor).bind(topics.as_str()).bind(now).execute(p).await?;
        });
        Ok(())
    }

    async fn park(&self, subscriber_id: &str, seq: i64, attempts: u32, error: &str) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO dead_events (subscriber_id, seq, attempts, last_error, dead_at) VALUES ($1, $2, $3, $4, $5) \
            ON CONFLICT (subscriber_id, seq) DO UPDATE SET attempts = excluded.attempts, last_error = excluded.last_error, dead_at = excluded.dead_at, replayed_at = NULL";
        let now = chrono::Utc::now().timestamp_millis();
        on_pool!(&self.pool, p => {
            sqlx::query(SQL).bind(subscriber_id).bind(seq).bind(i64::from(attempts)).bind(error).bind(now).execute(p).await?;
        });
        Ok(())
    }

    async fn dead_events(&self, subscriber_id: &str) -> StoreResult<Vec<DeadEvent>> {
        const SQL: &str = "SELECT d.seq, e.ordering_key, e.topic, e.payload, e.metadata, d.attempts, d.last_error, d.dead_at \
            FROM dead_events d JOIN event_log e ON e.seq = d.seq WHERE d.subscriber_id = $1 AND d.replayed_at IS NULL ORDER BY d.seq";
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(SQL).bind(subscriber_id).fetch_all(p).await?;
            rows.into_iter().map(|r| {
                let (payload, metadata): (String, String) = (r.try_get(3)?, r.try_get(4)?);
                let attempts: i64 = r.try_get(5)?;
                Ok(DeadEvent {
                    subscriber_id: subscriber_id.to_string(),
                    event: decode_event(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, payload, &metadata)?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    last_error: r.try_get(6)?,
                    dead_at: r.try_get(7)?,
                })
            }).collect()
        })
    }

    async fn mark_replayed(&self, subscriber_id: &str, seq: i64) -> StoreResult<()> {
        const SQL: &str = "UPDATE dead_events SET replayed_at = $3 WHERE subscriber_id = $1 AND seq = $2";
        let now = chrono::Utc::now().timestamp_millis();
        on_pool!(&self.pool, p => {
            sqlx::query(SQL).bind(subscriber_id).bind(seq).bind(now).execute(p).await?;
        });
        Ok(())
    }

    async fn audit_outbox(&self) -> StoreResult<OutboxAudit> {
        const SQL: &str = "SELECT \
            (SELECT COUNT(*) FROM check_transitions t WHERE t.event_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM event_log e WHERE e.event_id = t.event_id)) \
          + (SELECT COUNT(*) FROM certification_transitions t WHERE t.event_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM event_log e WHERE e.event_id = t.event_id)), \
            (SELECT COUNT(*) FROM event_log e WHERE e.topic IN ('soundcheck-check-status-change', 'soundcheck-certification-change') \
               AND NOT EXISTS (SELECT 1 FROM check_transitions t WHERE t.event_id = e.event_id) \
               AND NOT EXISTS (SELECT 1 FROM certification_transitions t WHERE t.event_id = e.event_id)), \
            (SELECT COUNT(*) FROM check_transitions) + (SELECT COUNT(*) FROM certification_transitions), \
            (SELECT COUNT(*) FROM event_log)";
        on_pool!(&self.pool, p => {
            let r = sqlx::query(SQL).fetch_one(p).await?;
            Ok(OutboxAudit {
                transitions_without_event: r.try_get(0)?,
                events_without_transition: r.try_get(1)?,
                transitions: r.try_get(2)?,
                events: r.try_get(3)?,
            })
        })
    }
}
