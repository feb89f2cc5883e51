//! [`StateStore`] on SQLite and PostgreSQL through sqlx. The SQL is shared (numbered `$n`
//! placeholders work on both); each method body is expanded once per backend by `on_pool!`.

use soundcheck_core::events::EventParams;
use soundcheck_core::model::{CertState, CheckState};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::SqlitePool;

use super::dialect::{self, Dialect};
use super::write_behind::{WriteHeld, roll_forward, written};
use super::{
    Applied, DeadEvent, EncodedChanges, OutboxAudit, StateChanges, StateStore, StoreError,
    StoreResult, StoredCertification, StoredEvent, StoredResult,
};

/// The migrations of one backend, embedded in the binary, in order.
pub(super) fn migrator(steps: &[(&'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        steps
            .iter()
            .zip(1..)
            .map(|((name, sql), version)| {
                Migration::new(
                    version,
                    (*name).into(),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    )
}

pub(super) const SQLITE_MIGRATIONS: [(&str, &str); 8] = [
    (
        "state",
        include_str!("../../migrations/sqlite/0001_state.sql"),
    ),
    (
        "service",
        include_str!("../../migrations/sqlite/0002_service.sql"),
    ),
    (
        "state version",
        include_str!("../../migrations/sqlite/0003_state_version.sql"),
    ),
    (
        "write fewer pages",
        include_str!("../../migrations/sqlite/0004_write_fewer_pages.sql"),
    ),
    (
        "entities by update time",
        include_str!("../../migrations/sqlite/0005_entities_updated_at.sql"),
    ),
    (
        "check history floors",
        include_str!("../../migrations/sqlite/0006_check_history_floors.sql"),
    ),
    (
        "results clustered by fact",
        include_str!("../../migrations/sqlite/0007_results_clustered_by_fact.sql"),
    ),
    (
        "state written",
        include_str!("../../migrations/sqlite/0008_state_written.sql"),
    ),
];
const POSTGRES_MIGRATIONS: [(&str, &str); 5] = [
    (
        "state",
        include_str!("../../migrations/postgres/0001_state.sql"),
    ),
    (
        "service",
        include_str!("../../migrations/postgres/0002_service.sql"),
    ),
    (
        "fact history key",
        include_str!("../../migrations/postgres/0003_fact_history_key.sql"),
    ),
    (
        "entities by update time",
        include_str!("../../migrations/postgres/0004_entities_updated_at.sql"),
    ),
    (
        "check history floors",
        include_str!("../../migrations/postgres/0005_check_history_floors.sql"),
    ),
];

/// Drops a state cache when dropped; see [`SqlStore::dropping_cache`].
pub(super) struct CacheDrop<'a>(Option<&'a super::StateCache>);

impl Drop for CacheDrop<'_> {
    fn drop(&mut self) {
        if let Some(cache) = self.0 {
            cache.invalidate();
        }
    }
}

/// The connection pool of one backend.
#[derive(Debug, Clone)]
pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The SQL store.
#[derive(Clone)]
pub struct SqlStore {
    pub(super) pool: Pool,
    dialect: &'static Dialect,
    /// Makes event ids (prefix + position) unique across databases.
    event_id_prefix: u64,
    /// The in-memory copy of evaluation state (SQLite, when enabled by the service).
    pub(super) cache: Option<std::sync::Arc<super::StateCache>>,
    /// SQLite: the one connection every write goes through (`store::sqlite`).
    writer: Option<Pool>,
    /// SQLite with write-behind on: results and levels not yet in their tables.
    pub(super) deferred: Option<std::sync::Arc<super::deferred::Deferred>>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqlStore({})", self.backend())
    }
}

impl SqlStore {
    /// Opens (creating a SQLite file if needed) and migrates the database at `url`.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let mut writer = None;
        let pool = if url.starts_with("sqlite:") {
            let (pool, sqlite_writer) = super::sqlite::open(url).await?;
            migrator(&SQLITE_MIGRATIONS).run(&pool).await?;
            roll_forward(&sqlite_writer).await?;
            super::sqlite::spawn_checkpointer(pool.clone());
            writer = Some(Pool::Sqlite(sqlite_writer));
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        for sql in dialect::POSTGRES.create_stage {
                            sqlx::query(sql).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                })
                .connect(url)
                .await?;
            migrator(&POSTGRES_MIGRATIONS).run(&pool).await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(super::redact_url(url)));
        };
        let dialect = match pool {
            Pool::Sqlite(_) => &dialect::SQLITE,
            Pool::Postgres(_) => &dialect::POSTGRES,
        };
        let prefix: i64 = on_pool!(&pool, p => sqlx::query("SELECT event_id_prefix FROM instance WHERE id = 1").fetch_one(p).await?.try_get(0)?);
        Ok(Self {
            pool,
            dialect,
            event_id_prefix: prefix.cast_unsigned(),
            cache: None,
            writer,
            deferred: None,
        })
    }

    /// Keeps each entity's body, latest facts, check states, levels and exemptions in memory
    /// (at most `capacity` entity and scope pairs) so batches of fact submissions read
    /// nothing but a version number. SQLite only, where this process is the one writer; PostgreSQL stores, shared by
    /// replicas, are returned unchanged.
    #[must_use]
    pub fn with_state_cache(mut self, capacity: usize) -> Self {
        if matches!(self.pool, Pool::Sqlite(_)) && capacity > 0 {
            self.cache = Some(std::sync::Arc::new(super::StateCache::new(capacity)));
        }
        self
    }

    /// The state cache, when enabled.
    pub fn state_cache(&self) -> Option<&super::StateCache> {
        self.cache.as_deref()
    }

    /// SQLite: the statement that moves `instance.state_version`, run in every transaction
    /// that writes evaluation state, so a state cache in another process notices the write.
    pub(super) fn state_version_bump(&self) -> Option<&'static str> {
        matches!(self.pool, Pool::Sqlite(_)).then_some(BUMP_STATE_VERSION)
    }

    /// For a write the state cache does not follow: drops the cache when the returned guard
    /// goes, however the write ends (done, failed or cancelled).
    pub(super) fn dropping_cache(&self) -> CacheDrop<'_> {
        CacheDrop(self.cache.as_deref())
    }

    /// The pool writes go through. On SQLite that is the one writer connection, for every
    /// write and not only evaluation state: SQLite empties a connection's whole page cache
    /// when another connection has committed since its last transaction, and the writer's
    /// cache is what keeps fact ingestion from reading pages back from the file.
    pub(super) fn write_pool(&self) -> &Pool {
        self.writer.as_ref().unwrap_or(&self.pool)
    }

    /// How write transactions start: SQLite takes the write lock up front (`BEGIN IMMEDIATE`),
    /// so a transaction that reads first never fails to upgrade under a concurrent writer.
    pub(super) fn begin_sql(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "BEGIN IMMEDIATE",
            Pool::Postgres(_) => "BEGIN",
        }
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

const BUMP_STATE_VERSION: &str =
    "UPDATE instance SET state_version = state_version + 1 WHERE id = 1";

/// Blocks up to this many rows are written straight from the JSON array; larger ones are
/// staged first so the JSON is parsed once.
const DIRECT_MAX: i64 = 256;

/// One row of the outbox union: a check transition (kind 0), a certification transition
/// (kind 1) or a published event (kind 2); the letters are the union's shared columns.
struct EventRow {
    seq: i64,
    kind: i32,
    a: String,
    b: String,
    c: Option<String>,
    d: Option<String>,
    e: Option<String>,
    f: Option<String>,
    g: Option<String>,
    level: Option<i64>,
    at: i64,
}

impl SqlStore {
    /// The id of the event at `seq`: a version-8 UUID of this database's prefix and the position.
    fn event_id(&self, seq: i64) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.event_id_prefix.to_be_bytes());
        bytes[8..].copy_from_slice(&seq.to_be_bytes());
        uuid::Uuid::new_v8(bytes).to_string()
    }

    fn decode_row(&self, r: EventRow) -> StoreResult<StoredEvent> {
        use soundcheck_core::events::{CertificationChange, CheckStatusChange};
        let state = |s: &Option<String>| s.as_deref().map(check_state).transpose();
        let cert = |s: &Option<String>| s.as_deref().map(cert_state).transpose();
        let missing = || StoreError::Corrupt(format!("event {} lacks a state", r.seq));
        let event_id = self.event_id(r.seq);
        // Transition rows become events directly: the payload is serialised once, from the
        // typed struct, in the contract's key order.
        let (params, payload_json) = match r.kind {
            0 => {
                let payload = CheckStatusChange {
                    check_id: r.a,
                    entity_ref: r.b,
                    state: state(&r.d)?.ok_or_else(missing)?,
                    previous_state: state(&r.e)?,
                    timestamp_ms: r.at,
                    scope: r.c.unwrap_or_default(),
                };
                let json = serde_json::to_string(&payload)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                (payload.into_params(&event_id), json)
            }
            1 => {
                let payload = CertificationChange {
                    track_id: r.a,
                    entity_ref: r.b,
                    state: cert(&r.d)?.ok_or_else(missing)?,
                    cumulative_state: cert(&r.f)?.ok_or_else(missing)?,
                    level_ordinal: r
                        .level
                        .and_then(|l| u32::try_from(l).ok())
                        .ok_or_else(missing)?,
                    timestamp_ms: r.at,
                    previous_state: cert(&r.e)?,
                    scope: r.c.unwrap_or_default(),
                };
                let json = serde_json::to_string(&payload)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                (payload.into_params(&event_id, cert(&r.g)?), json)
            }
            _ => {
                return decode_event(
                    r.seq,
                    r.c,
                    r.a,
                    r.d.unwrap_or_default(),
                    r.e.as_deref().unwrap_or("null"),
                );
            }
        };
        Ok(StoredEvent {
            seq: r.seq,
            ordering_key: super::ordering_key(&params, None),
            params,
            payload_json,
        })
    }
}

/// Creates database `name` on the PostgreSQL server of `server_url` (for test suites).
pub async fn create_postgres_database(server_url: &str, name: &str) -> StoreResult<()> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Corrupt(format!(
            "invalid database name `{name}`"
        )));
    }
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(server_url)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

/// The payload of a published event on one of the two Soundcheck topics, re-written compactly
/// with the contract's key order.
fn canonical_payload(params: &EventParams) -> Option<String> {
    use soundcheck_core::events::{
        CERTIFICATION_CHANGE_TOPIC, CHECK_STATUS_CHANGE_TOPIC, CertificationChange,
        CheckStatusChange,
    };
    let value = params.event_payload.clone();
    match params.topic.as_str() {
        CHECK_STATUS_CHANGE_TOPIC => serde_json::from_value::<CheckStatusChange>(value)
            .ok()
            .and_then(|p| serde_json::to_string(&p).ok()),
        CERTIFICATION_CHANGE_TOPIC => serde_json::from_value::<CertificationChange>(value)
            .ok()
            .and_then(|p| serde_json::to_string(&p).ok()),
        _ => None,
    }
}

fn check_state(text: &str) -> StoreResult<CheckState> {
    CheckState::parse(text).ok_or_else(|| StoreError::Corrupt(format!("check state `{text}`")))
}

fn cert_state(text: &str) -> StoreResult<CertState> {
    CertState::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("certification state `{text}`")))
}

fn decode_event(
    seq: i64,
    key: Option<String>,
    topic: String,
    payload: String,
    metadata: &str,
) -> StoreResult<StoredEvent> {
    let event_payload = serde_json::from_str(&payload)
        .map_err(|e| StoreError::Corrupt(format!("event {seq} payload: {e}")))?;
    let metadata = serde_json::from_str(metadata)
        .map_err(|e| StoreError::Corrupt(format!("event {seq} metadata: {e}")))?;
    let params = EventParams {
        topic,
        event_payload,
        metadata,
    };
    let payload_json = canonical_payload(&params).unwrap_or(payload);
    Ok(StoredEvent {
        seq,
        ordering_key: super::ordering_key(&params, key),
        params,
        payload_json,
    })
}

const UPDATE_DETAILS: &str = "UPDATE check_results SET details = $4, submitted_by = $5, last_checked = $6 \
    WHERE check_id = $1 AND entity_ref = $2 AND scope = $3";
const INSERT_SUBMISSION: &str = "INSERT INTO result_submissions (check_id, entity_ref, scope, state, stored_state, details, submitted_by, justification, at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

impl StateStore for SqlStore {
    async fn results_of(&self, entity_refs: &[String]) -> StoreResult<Vec<StoredResult>> {
        let refs = serde_json::to_string(entity_refs).unwrap_or_else(|_| "[]".into());
        let entities: Vec<&str> = entity_refs.iter().map(String::as_str).collect();
        let refs = refs.as_str();
        let (mut rows, held) = self.read_with_held(&entities, || async move { on_pool!(&self.pool, p => {
            let rows = sqlx::query(self.dialect.results_of).bind(refs).fetch_all(p).await?;
            rows.into_iter().map(|row| {
                let state: String = row.try_get(3)?;
                Ok(StoredResult { check_id: row.try_get(0)?, entity_ref: row.try_get(1)?, scope: row.try_get(2)?, state: check_state(&state)? })
            }).collect::<StoreResult<Vec<_>>>()
        })}).await?;
        if let Some(held) = held {
            held.patch_results(&mut rows);
        }
        Ok(rows)
    }

    async fn certifications_of(
        &self,
        entity_refs: &[String],
    ) -> StoreResult<Vec<StoredCertification>> {
        let refs = serde_json::to_string(entity_refs).unwrap_or_else(|_| "[]".into());
        let entities: Vec<&str> = entity_refs.iter().map(String::as_str).collect();
        let refs = refs.as_str();
        let (mut rows, held) = self.read_with_held(&entities, || async move { on_pool!(&self.pool, p => {
            let rows = sqlx::query(self.dialect.certifications_of).bind(refs).fetch_all(p).await?;
            rows.into_iter().map(|row| {
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
            }).collect::<StoreResult<Vec<_>>>()
        })}).await?;
        if let Some(held) = held {
            held.patch_certifications(&mut rows);
        }
        Ok(rows)
    }

    async fn active_exemptions(&self, now_ms: i64) -> StoreResult<Vec<(String, String)>> {
        const SQL: &str = "SELECT check_id, entity_ref FROM exemptions WHERE revoked = 0 AND (expires_at IS NULL OR expires_at > $1)";
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(SQL).bind(now_ms).fetch_all(p).await?;
            rows.into_iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
        })
    }

    type Encoded = EncodedChanges;

    fn encode(&self, changes: &StateChanges) -> EncodedChanges {
        EncodedChanges::of(changes, self.dialect.staged_facts.is_none())
    }

    async fn apply(&self, changes: &StateChanges, events: bool) -> StoreResult<Applied> {
        self.apply_encoded(changes, &self.encode(changes), events)
            .await
    }

    async fn apply_encoded(
        &self,
        changes: &StateChanges,
        encoded: &EncodedChanges,
        events: bool,
    ) -> StoreResult<Applied> {
        let d = self.dialect;
        let now = changes.now_ms;
        let EncodedChanges {
            facts,
            results,
            certifications: certs,
            touched_results,
            touched_certifications: touched_certs,
            touched_checks,
            touched_entity_checks,
        } = encoded;
        // Write-behind holds an evaluation's results and levels; any other change of them
        // is written through, after what is held.
        let deferred = self.deferred.as_deref();
        let defer = deferred.filter(|_| changes.deferrable());
        on_pool!(self.write_pool(), p => {
            let mut tx = p.begin_with(self.begin_sql()).await?;
            let taken = match defer {
                None => (&mut *tx).write_held(deferred).await?,
                Some(_) => Default::default(),
            };
            let lock = d.lock_event_log.filter(|_| events);
            if let Some(lock) = lock.filter(|_| !changes.disjoint) {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            match (facts, &d.staged_facts) {
                (Some((_, history)), Some(staged)) => {
                    sqlx::query(staged.clear).execute(&mut *tx).await?;
                    sqlx::query(staged.stage).bind(history.as_str()).execute(&mut *tx).await?;
                    sqlx::query(staged.upsert).bind(now).execute(&mut *tx).await?;
                    sqlx::query(staged.history).bind(now).execute(&mut *tx).await?;
                }
                (Some((latest, history)), None) => {
                    sqlx::query(d.upsert_facts).bind(latest.as_str()).bind(now).execute(&mut *tx).await?;
                    sqlx::query(d.insert_fact_history).bind(history.as_str()).bind(now).execute(&mut *tx).await?;
                }
                (None, _) => {}
            }
            for (sql, rows) in [(d.touch_results, &touched_results), (d.touch_certifications, &touched_certs), (d.touch_result_checks, &touched_checks)] {
                if let Some(rows) = rows {
                    sqlx::query(sql).bind(rows.as_str()).bind(now).execute(&mut *tx).await?;
                }
            }
            if let Some((entity_ref, scope, ids)) = touched_entity_checks {
                sqlx::query(d.touch_entity_checks).bind(ids.as_str()).bind(now).bind(entity_ref.as_str()).bind(scope.as_str()).execute(&mut *tx).await?;
            }
            // The current states first: they need no outbox position, so disjoint writers
            // (blocks of a batch run on PostgreSQL) only wait for each other from here on.
            let n_results = i64::try_from(changes.results.len()).unwrap_or(i64::MAX);
            let n_certs = i64::try_from(changes.certifications.len()).unwrap_or(i64::MAX);
            let (direct_results, direct_certs) = (n_results <= DIRECT_MAX, n_certs <= DIRECT_MAX);
            // Held (write-behind): no upsert, but large sets are still staged, for their
            // transitions.
            if let Some(rows) = &results {
                if !direct_results {
                    sqlx::query(d.clear_stage[0]).execute(&mut *tx).await?;
                    sqlx::query(d.stage_results).bind(rows.as_str()).execute(&mut *tx).await?;
                }
                match (defer, direct_results) {
                    (Some(_), _) => {}
                    (None, true) => { sqlx::query(d.direct[0]).bind(rows.as_str()).bind(now).execute(&mut *tx).await?; }
                    (None, false) => { sqlx::query(d.upsert_results).bind(now).execute(&mut *tx).await?; }
                }
            }
            if let Some(rows) = &certs {
                if !direct_certs {
                    sqlx::query(d.clear_stage[1]).execute(&mut *tx).await?;
                    sqlx::query(d.stage_certifications).bind(rows.as_str()).execute(&mut *tx).await?;
                }
                match (defer, direct_certs) {
                    (Some(_), _) => {}
                    (None, true) => { sqlx::query(d.direct[2]).bind(rows.as_str()).bind(now).execute(&mut *tx).await?; }
                    (None, false) => { sqlx::query(d.upsert_certifications).bind(now).execute(&mut *tx).await?; }
                }
            }
            // Then the transitions, which are the outbox: with events on, each takes the next
            // positions (results first, then certification levels, in the order computed),
            // and writers are serialised until commit so positions become visible in order.
            if let Some(lock) = lock.filter(|_| changes.disjoint) {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            let before: i64 = if events {
                let last: i64 = sqlx::query("UPDATE event_counter SET last = last + $1 WHERE id = 1 RETURNING last")
                    .bind(n_results + n_certs).fetch_one(&mut *tx).await?.try_get(0)?;
                last - n_results - n_certs
            } else {
                0
            };
            if let Some(rows) = &results {
                if direct_results {
                    sqlx::query(d.direct[1]).bind(rows.as_str()).bind(now).bind(events.then_some(before)).execute(&mut *tx).await?;
                } else {
                    sqlx::query(d.insert_check_transitions).bind(now).bind(events.then_some(before)).execute(&mut *tx).await?;
                }
            }
            if let Some(rows) = &certs {
                if direct_certs {
                    sqlx::query(d.direct[3]).bind(rows.as_str()).bind(now).bind(events.then_some(before + n_results)).execute(&mut *tx).await?;
                } else {
                    sqlx::query(d.insert_certification_transitions).bind(now).bind(events.then_some(before + n_results)).execute(&mut *tx).await?;
                }
            }
            for u in &changes.result_updates {
                sqlx::query(UPDATE_DETAILS).bind(u.check_id.as_str()).bind(u.entity_ref.as_str()).bind(u.scope.as_str())
                    .bind(u.details.as_ref().map(ToString::to_string)).bind(u.submitted_by.as_deref()).bind(now).execute(&mut *tx).await?;
            }
            for a in &changes.submissions {
                sqlx::query(INSERT_SUBMISSION).bind(a.check_id.as_str()).bind(a.entity_ref.as_str()).bind(a.scope.as_str())
                    .bind(a.state.as_str()).bind(a.stored_state.as_str()).bind(a.details.as_ref().map(ToString::to_string))
                    .bind(a.submitted_by.as_str()).bind(a.justification.as_deref()).bind(now).execute(&mut *tx).await?;
            }
            let last = before + n_results + n_certs;
            // SQLite: every state write moves the version a state cache checks against.
            let version: Option<i64> = match self.state_version_bump() {
                Some(bump) => Some(sqlx::query(sqlx::AssertSqlSafe(format!("{bump} RETURNING state_version")))
                    .fetch_one(&mut *tx).await?.try_get(0)?),
                None => None,
            };
            // Written through: the tables now reflect every transition. Held: reads see the
            // changes from here on, and lose them again if the commit fails.
            let held = match defer {
                None => {
                    (&mut *tx).mark_written().await?;
                    None
                }
                Some(deferred) => Some(deferred.hold(changes)),
            };
            // A read finding this version before `applied` below waits for it.
            let _committing = self.cache.as_deref().zip(version).map(|(cache, v)| cache.committing(v));
            tx.commit().await?;
            if let Some(held) = held {
                held.keep();
            }
            written(taken);
            if let (Some(cache), Some(version)) = (&self.cache, version) {
                cache.applied(version, changes);
            }
            if defer.is_some_and(|d| d.due(now)) {
                let store = self.clone();
                tokio::spawn(async move { store.write_behind().await });
            }
            Ok(if events { Applied { first_seq: before + 1, last_seq: last } } else { Applied { first_seq: 0, last_seq: -1 } })
        })
    }

    async fn publish(&self, params: &EventParams, ordering_key: &str) -> StoreResult<StoredEvent> {
        const SQL: &str = "INSERT INTO event_log (seq, event_id, topic, ordering_key, payload, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let now = chrono::Utc::now().timestamp_millis();
        let metadata = serde_json::to_string(&params.metadata).unwrap_or_else(|_| "null".into());
        let payload_json = params.event_payload.to_string();
        let lock = self.dialect.lock_event_log;
        let seq: i64 = on_pool!(self.write_pool(), p => {
            let mut tx = p.begin_with(self.begin_sql()).await?;
            if let Some(lock) = lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            let seq: i64 = sqlx::query("UPDATE event_counter SET last = last + 1 WHERE id = 1 RETURNING last").fetch_one(&mut *tx).await?.try_get(0)?;
            let event_id = params.event_id().map_or_else(|| self.event_id(seq), str::to_string);
            sqlx::query(SQL).bind(seq).bind(event_id.as_str()).bind(params.topic.as_str()).bind(ordering_key)
                .bind(payload_json.as_str()).bind(metadata.as_str()).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            seq
        });
        Ok(StoredEvent {
            seq,
            ordering_key: ordering_key.to_string(),
            params: params.clone(),
            payload_json,
        })
    }

    async fn events_after(&self, after: i64, limit: i64) -> StoreResult<Vec<StoredEvent>> {
        let rows: Vec<EventRow> = on_pool!(&self.pool, p => {
            sqlx::query(self.dialect.events_after).bind(after).bind(limit).fetch_all(p).await?.into_iter().map(|r| {
                Ok(EventRow {
                    seq: r.try_get(0)?, kind: r.try_get(1)?, a: r.try_get(2)?, b: r.try_get(3)?, c: r.try_get(4)?, d: r.try_get(5)?,
                    e: r.try_get(6)?, f: r.try_get(7)?, g: r.try_get(8)?, level: r.try_get(9)?, at: r.try_get(10)?,
                })
            }).collect::<StoreResult<Vec<_>>>()?
        });
        rows.into_iter().map(|row| self.decode_row(row)).collect()
    }

    async fn last_seq(&self) -> StoreResult<i64> {
        const SQL: &str = "SELECT last FROM event_counter WHERE id = 1";
        on_pool!(&self.pool, p => Ok(sqlx::query(SQL).fetch_one(p).await?.try_get::<i64, _>(0)?))
    }

    async fn cursor(&self, subscriber_id: &str) -> StoreResult<Option<i64>> {
        const SQL: &str = "SELECT cursor FROM subscriptions WHERE subscriber_id = $1";
        on_pool!(&self.pool, p => {
            let row = sqlx::query(SQL).bind(subscriber_id).fetch_optional(p).await?;
            row.map(|r| r.try_get::<i64, _>(0)).transpose().map_err(StoreError::from)
        })
    }

    async fn save_cursor(
        &self,
        subscriber_id: &str,
        topics: &[String],
        cursor: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO subscriptions (subscriber_id, cursor, topics, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
            ON CONFLICT (subscriber_id) DO UPDATE SET cursor = excluded.cursor, topics = excluded.topics, updated_at = excluded.updated_at";
        let topics = serde_json::to_string(topics).unwrap_or_else(|_| "[]".into());
        let now = chrono::Utc::now().timestamp_millis();
        on_pool!(self.write_pool(), p => {
            sqlx::query(SQL).bind(subscriber_id).bind(cursor).bind(topics.as_str()).bind(now).execute(p).await?;
        });
        Ok(())
    }

    async fn claim_subscriber(
        &self,
        subscriber_id: &str,
        owner: &str,
        now_ms: i64,
        until: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE subscriptions SET lease_owner = $2, lease_until = $4 WHERE subscriber_id = $1 \
            AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $3)";
        on_pool!(self.write_pool(), p => Ok(sqlx::query(SQL).bind(subscriber_id).bind(owner).bind(now_ms).bind(until).execute(p).await?.rows_affected() == 1))
    }

    async fn release_subscriber(&self, subscriber_id: &str, owner: &str) -> StoreResult<()> {
        const SQL: &str = "UPDATE subscriptions SET lease_owner = NULL, lease_until = NULL WHERE subscriber_id = $1 AND lease_owner = $2";
        on_pool!(self.write_pool(), p => { sqlx::query(SQL).bind(subscriber_id).bind(owner).execute(p).await?; });
        Ok(())
    }

    async fn park(
        &self,
        subscriber_id: &str,
        seq: i64,
        attempts: u32,
        error: &str,
    ) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO dead_events (subscriber_id, seq, attempts, last_error, dead_at) VALUES ($1, $2, $3, $4, $5) \
            ON CONFLICT (subscriber_id, seq) DO UPDATE SET attempts = excluded.attempts, last_error = excluded.last_error, dead_at = excluded.dead_at, replayed_at = NULL";
        let now = chrono::Utc::now().timestamp_millis();
        on_pool!(self.write_pool(), p => {
            sqlx::query(SQL).bind(subscriber_id).bind(seq).bind(i64::from(attempts)).bind(error).bind(now).execute(p).await?;
        });
        Ok(())
    }

    async fn dead_events(&self, subscriber_id: &str) -> StoreResult<Vec<DeadEvent>> {
        const SQL: &str = "SELECT seq, attempts, last_error, dead_at FROM dead_events WHERE subscriber_id = $1 AND replayed_at IS NULL ORDER BY seq";
        let rows: Vec<(i64, i64, String, i64)> = on_pool!(&self.pool, p => {
            sqlx::query(SQL).bind(subscriber_id).fetch_all(p).await?.into_iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))).collect::<StoreResult<Vec<_>>>()?
        });
        let mut out = Vec::with_capacity(rows.len());
        for (seq, attempts, last_error, dead_at) in rows {
            let Some(event) = self
                .events_after(seq - 1, 1)
                .await?
                .into_iter()
                .find(|e| e.seq == seq)
            else {
                continue;
            };
            out.push(DeadEvent {
                subscriber_id: subscriber_id.to_string(),
                event,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                last_error,
                dead_at,
            });
        }
        Ok(out)
    }

    async fn mark_replayed(&self, subscriber_id: &str, seq: i64) -> StoreResult<()> {
        const SQL: &str =
            "UPDATE dead_events SET replayed_at = $3 WHERE subscriber_id = $1 AND seq = $2";
        let now = chrono::Utc::now().timestamp_millis();
        on_pool!(self.write_pool(), p => {
            sqlx::query(SQL).bind(subscriber_id).bind(seq).bind(now).execute(p).await?;
        });
        Ok(())
    }

    async fn audit_outbox(&self) -> StoreResult<OutboxAudit> {
        // A transition written with events on carries its outbox position, so it *is* its event;
        // what can still go wrong is a position used twice or beyond the counter, or a
        // Soundcheck event in event_log, which would have no transition.
        const SQL: &str = "SELECT \
            (SELECT COUNT(*) FROM (SELECT seq FROM check_transitions WHERE seq IS NOT NULL UNION ALL SELECT seq FROM certification_transitions WHERE seq IS NOT NULL \
               UNION ALL SELECT seq FROM event_log) s WHERE s.seq > (SELECT last FROM event_counter WHERE id = 1)), \
            (SELECT COUNT(*) FROM event_log WHERE topic IN ('soundcheck-check-status-change', 'soundcheck-certification-change')), \
            (SELECT COUNT(*) FROM check_transitions) + (SELECT COUNT(*) FROM certification_transitions), \
            (SELECT COUNT(seq) FROM check_transitions) + (SELECT COUNT(seq) FROM certification_transitions) + (SELECT COUNT(*) FROM event_log), \
            (SELECT COUNT(*) FROM (SELECT seq FROM check_transitions WHERE seq IS NOT NULL UNION ALL SELECT seq FROM certification_transitions WHERE seq IS NOT NULL \
               UNION ALL SELECT seq FROM event_log) s) - (SELECT COUNT(DISTINCT seq) FROM (SELECT seq FROM check_transitions WHERE seq IS NOT NULL \
               UNION ALL SELECT seq FROM certification_transitions WHERE seq IS NOT NULL UNION ALL SELECT seq FROM event_log) s)";
        on_pool!(&self.pool, p => {
            let r = sqlx::query(SQL).fetch_one(p).await?;
            let (beyond, foreign, transitions, events, duplicates): (i64, i64, i64, i64, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
            Ok(OutboxAudit { transitions_without_event: beyond + duplicates, events_without_transition: foreign, transitions, events })
        })
    }
}
