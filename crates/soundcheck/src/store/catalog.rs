//! The catalog side of the store: entities, the latest fact per (entity, fact ref, scope) with
//! its history and retention, exemptions, and the daily aggregates behind status history.

use std::future::Future;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use soundcheck_core::model::{CertState, CheckState};
use sqlx::Row;

use super::sql::SqlStore;
use super::write_behind::{WriteHeld, written};
use super::{StoreError, StoreResult};

/// A fact as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FactRecord {
    /// The entity.
    pub entity_ref: String,
    /// `source:scope/name`.
    pub fact_ref: String,
    /// Evaluation scope.
    pub scope: String,
    /// The data.
    pub data: Value,
    /// When the fact was observed (ms); the newest wins.
    pub timestamp_ms: i64,
}

/// Fact history retention (`soundcheck.retention.factHistory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Drop history older than this many milliseconds.
    pub max_age_ms: Option<i64>,
    /// Keep at most this many history rows per (entity, fact ref, scope).
    pub max_per_fact: Option<i64>,
}

impl From<&soundcheck_core::model::RetentionConfig> for Retention {
    fn from(c: &soundcheck_core::model::RetentionConfig) -> Self {
        Self {
            max_age_ms: c.max_age_days.map(|d| i64::from(d) * 86_400_000),
            max_per_fact: c.max_per_fact.map(i64::from),
        }
    }
}

/// An exemption as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExemptionRecord {
    /// The check.
    pub check_id: String,
    /// The entity.
    pub entity_ref: String,
    /// Why.
    pub justification: String,
    /// Who created it.
    pub created_by: String,
    /// When (ms).
    pub created_at: i64,
    /// Optional expiry (ms).
    pub expires_at: Option<i64>,
    /// Revoked (kept for audit).
    pub revoked: bool,
}

/// The maps of a snapshot, looked up for every check and level of each entity a batch
/// evaluates: foldhash (seeded per process) costs a fraction of the default SipHash there.
pub type SnapshotMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What incremental evaluation reads about one entity in one scope, in one round trip.
/// Bodies and names are shared (`Arc`) so the state cache hands them out without copying.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntitySnapshot {
    /// The entity body; `None` when the entity is not in the catalog.
    pub entity: Option<Arc<Value>>,
    /// The latest facts: (fact ref, data, timestamp).
    pub facts: Vec<(String, Value, i64)>,
    /// Stored check states by check id.
    pub results: SnapshotMap<Arc<str>, CheckState>,
    /// Stored certification states by (track id, level): (state, cumulative state).
    pub certifications: SnapshotMap<(Arc<str>, u32), (CertState, CertState)>,
    /// Checks with an active exemption.
    pub exempt: Vec<String>,
}

/// A fact an evaluation reads, with the timestamp of the copy being submitted, if any: the
/// stored copy matters only when it is newer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeededFact {
    /// `source:scope/name`.
    pub fact_ref: String,
    /// Timestamp (ms) of the submitted copy.
    pub incoming_ms: Option<i64>,
}

/// Which stored facts a batch snapshot returns.
#[derive(Debug, Clone, Copy)]
pub enum FactNeeds<'a> {
    /// Every stored fact of each entity.
    All,
    /// Per (entity, scope), the facts its evaluation reads. A store may return more (every
    /// fact), never fewer of those whose stored copy is newer than the submitted one.
    Only(&'a HashMap<(String, String), Vec<NeededFact>>),
}

/// Entities, facts, exemptions and daily aggregates.
pub trait CatalogStore: Send + Sync {
    /// Everything incremental evaluation needs about one entity and scope.
    fn snapshot(
        &self,
        entity_ref: &str,
        scope: &str,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<EntitySnapshot>> + Send;
    /// [`CatalogStore::snapshot`] of many (entity, scope) pairs in one query, with the facts
    /// `facts` asks for; pairs whose entity is unknown come back with `entity: None`.
    fn snapshots(
        &self,
        keys: &[(String, String)],
        now_ms: i64,
        facts: FactNeeds<'_>,
    ) -> impl Future<Output = StoreResult<HashMap<(String, String), EntitySnapshot>>> + Send;
    /// Adds or replaces entities.
    fn upsert_entities(
        &self,
        entities: &[(String, Value)],
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// One entity's body.
    fn entity(&self, entity_ref: &str) -> impl Future<Output = StoreResult<Option<Value>>> + Send;
    /// Applies retention and removes facts of entities that are gone; returns rows removed.
    fn prune_facts(
        &self,
        retention: Retention,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Active exemptions of one entity (check ids).
    fn exemptions_of(
        &self,
        entity_ref: &str,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;
    /// Creates an exemption.
    fn create_exemption(
        &self,
        exemption: &ExemptionRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Revokes the active exemptions of a pair; returns how many.
    fn revoke_exemption(
        &self,
        check_id: &str,
        entity_ref: &str,
        by: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Writes the day's aggregate counts per check and per track level.
    fn snapshot_daily(
        &self,
        day: &str,
        number_of_entities: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Daily check counts of one check, oldest first: (day, [passed, failed, warning,
    /// notApplicable, error, notReported, exempt], numberOfEntities).
    fn check_history(
        &self,
        check_id: &str,
        days: i64,
    ) -> impl Future<Output = StoreResult<Vec<(String, [i64; 7], i64)>>> + Send;
}

const UPSERT_ENTITY: &str = "INSERT INTO entities (entity_ref, body, updated_at) VALUES ($1, $2, $3) \
    ON CONFLICT (entity_ref) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at";
const PRUNE_AGE: &str = "DELETE FROM fact_history WHERE received_at < $1";
const PRUNE_COUNT: &str = "DELETE FROM fact_history WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
    (PARTITION BY entity_ref, fact_ref, scope ORDER BY timestamp DESC, id DESC) AS rn FROM fact_history) ranked WHERE rn > $1)";
const PRUNE_GONE: [&str; 2] = [
    "DELETE FROM facts WHERE entity_ref NOT IN (SELECT entity_ref FROM entities)",
    "DELETE FROM fact_history WHERE entity_ref NOT IN (SELECT entity_ref FROM entities)",
];
const DAILY_CHECKS: &str = "INSERT INTO daily_check_status (day, check_id, number_of_entities, passed, failed, warning, not_applicable, error, not_reported, exempt) \
    SELECT $1, r.check_id, $2, \
      CAST(SUM(CASE WHEN r.state = 'passed' THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN r.state = 'failed' THEN 1 ELSE 0 END) AS BIGINT), \
      CAST(SUM(CASE WHEN r.state = 'warning' THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN r.state = 'not-applicable' THEN 1 ELSE 0 END) AS BIGINT), \
      CAST(SUM(CASE WHEN r.state = 'error' THEN 1 ELSE 0 END) AS BIGINT), $2 - COUNT(*), \
      (SELECT COUNT(*) FROM exemptions x WHERE x.check_id = r.check_id AND x.revoked = 0) \
    FROM check_results r WHERE r.scope = 'default' GROUP BY r.check_id \
    ON CONFLICT (day, check_id) DO UPDATE SET number_of_entities = excluded.number_of_entities, passed = excluded.passed, failed = excluded.failed, \
      warning = excluded.warning, not_applicable = excluded.not_applicable, error = excluded.error, not_reported = excluded.not_reported, exempt = excluded.exempt";
const DAILY_TRACKS: &str = "INSERT INTO daily_track_status (day, track_id, level_ordinal, number_of_entities, passed, failed, cumulatively_passed, cumulatively_failed, not_reported) \
    SELECT $1, track_id, level_ordinal, $2, \
      CAST(SUM(CASE WHEN state = 'passed' THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS BIGINT), \
      CAST(SUM(CASE WHEN cumulative_state = 'passed' THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN cumulative_state = 'failed' THEN 1 ELSE 0 END) AS BIGINT), \
      $2 - COUNT(*) \
    FROM certifications WHERE scope = 'default' GROUP BY track_id, level_ordinal \
    ON CONFLICT (day, track_id, level_ordinal) DO UPDATE SET number_of_entities = excluded.number_of_entities, passed = excluded.passed, \
      failed = excluded.failed, cumulatively_passed = excluded.cumulatively_passed, cumulatively_failed = excluded.cumulatively_failed, \
      not_reported = excluded.not_reported";

const SNAPSHOT: &str = "SELECT 0, body, CAST(NULL AS TEXT), CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM entities WHERE entity_ref = $1 \
    UNION ALL SELECT 1, fact_ref, data, timestamp, CAST(NULL AS TEXT) FROM facts WHERE entity_ref = $1 AND scope = $2 \
    UNION ALL SELECT 2, check_id, state, CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM check_results WHERE entity_ref = $1 AND scope = $2 \
    UNION ALL SELECT 3, track_id, state, level_ordinal, cumulative_state FROM certifications WHERE entity_ref = $1 AND scope = $2 \
    UNION ALL SELECT 4, check_id, CAST(NULL AS TEXT), CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM exemptions \
      WHERE entity_ref = $1 AND revoked = 0 AND (expires_at IS NULL OR expires_at > $3)";

/// A row of a many-pair snapshot read: kind, entity, scope, then a [`SnapshotRow`]'s fields.
pub(super) type PairRow = (
    i32,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

pub(super) type SnapshotRow = (i32, String, Option<String>, Option<i64>, Option<String>);

const SNAPSHOTS_SQLITE: &str = "WITH k(e, s) AS (SELECT value->>0, value->>1 FROM json_each($1)) \
    SELECT 0, k.e, k.s, body, CAST(NULL AS TEXT), CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM entities JOIN k ON entity_ref = k.e \
    UNION ALL SELECT 1, k.e, k.s, fact_ref, data, timestamp, CAST(NULL AS TEXT) FROM facts f JOIN k ON f.entity_ref = k.e AND f.scope = k.s \
    UNION ALL SELECT 5, k.e, k.s, group_concat(check_id || char(31) || state, char(30)), CAST(NULL AS TEXT), CAST(NULL AS BIGINT), CAST(NULL AS TEXT) \
      FROM check_results r JOIN k ON r.entity_ref = k.e AND r.scope = k.s GROUP BY k.e, k.s \
    UNION ALL SELECT 6, k.e, k.s, group_concat(track_id || char(31) || level_ordinal || char(31) || state || char(31) || cumulative_state, char(30)), \
      CAST(NULL AS TEXT), CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM certifications c JOIN k ON c.entity_ref = k.e AND c.scope = k.s GROUP BY k.e, k.s \
    UNION ALL SELECT 4, k.e, k.s, check_id, CAST(NULL AS TEXT), CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM exemptions x JOIN k ON x.entity_ref = k.e \
      WHERE revoked = 0 AND (expires_at IS NULL OR expires_at > $2)";
const SNAPSHOTS_POSTGRES: &str = "WITH k(e, s) AS (SELECT value->>0, value->>1 FROM jsonb_array_elements($1::text::jsonb) AS j(value)) \
    SELECT 0, k.e, k.s, body, NULL::text, NULL::bigint, NULL::text FROM entities JOIN k ON entity_ref = k.e \
    UNION ALL SELECT 1, k.e, k.s, fact_ref, data, timestamp, NULL::text FROM facts f JOIN k ON f.entity_ref = k.e AND f.scope = k.s \
    UNION ALL SELECT 5, k.e, k.s, string_agg(check_id || chr(31) || state, chr(30)), NULL::text, NULL::bigint, NULL::text \
      FROM check_results r JOIN k ON r.entity_ref = k.e AND r.scope = k.s GROUP BY k.e, k.s \
    UNION ALL SELECT 6, k.e, k.s, string_agg(track_id || chr(31) || level_ordinal::text || chr(31) || state || chr(31) || cumulative_state, chr(30)), \
      NULL::text, NULL::bigint, NULL::text FROM certifications c JOIN k ON c.entity_ref = k.e AND c.scope = k.s GROUP BY k.e, k.s \
    UNION ALL SELECT 4, k.e, k.s, check_id, NULL::text, NULL::bigint, NULL::text FROM exemptions x JOIN k ON x.entity_ref = k.e \
      WHERE revoked = 0 AND (expires_at IS NULL OR expires_at > $2::bigint)";

pub(super) fn snapshot_from(rows: Vec<SnapshotRow>) -> StoreResult<EntitySnapshot> {
    let mut snap = EntitySnapshot::default();
    let state = |s: Option<String>| {
        CheckState::parse(s.as_deref().unwrap_or_default())
            .ok_or_else(|| corrupt("check state", s.unwrap_or_default()))
    };
    let cert = |s: Option<String>| {
        CertState::parse(s.as_deref().unwrap_or_default())
            .ok_or_else(|| corrupt("certification state", s.unwrap_or_default()))
    };
    for (kind, a, b, c, d) in rows {
        match kind {
            0 => {
                let body = serde_json::from_str(&a).map_err(|e| corrupt("entity body", e))?;
                snap.entity = Some(Arc::new(body));
            }
            1 => {
                let data = serde_json::from_str(b.as_deref().unwrap_or("null"))
                    .map_err(|e| corrupt("fact data", e))?;
                snap.facts.push((a, data, c.unwrap_or(i64::MIN)));
            }
            2 => {
                snap.results.insert(Arc::from(a), state(b)?);
            }
            3 => {
                let level = c
                    .and_then(|l| u32::try_from(l).ok())
                    .ok_or_else(|| corrupt("level ordinal", "missing"))?;
                snap.certifications
                    .insert((Arc::from(a), level), (cert(b)?, cert(d)?));
            }
            // Kinds 5 and 6: every result / level of the entity in one string (many-entity
            // reads), records separated by U+001E and fields by U+001F.
            5 => {
                for record in a.split('\u{1e}').filter(|r| !r.is_empty()) {
                    let (check, state_text) = record
                        .split_once('\u{1f}')
                        .ok_or_else(|| corrupt("result record", record))?;
                    snap.results
                        .insert(Arc::from(check), state(Some(state_text.to_string()))?);
                }
            }
            6 => {
                for record in a.split('\u{1e}').filter(|r| !r.is_empty()) {
                    let fields: Vec<&str> = record.split('\u{1f}').collect();
                    let [track, level, s, c] = fields[..] else {
                        return Err(corrupt("certification record", record));
                    };
                    let level: u32 = level.parse().map_err(|_| corrupt("level ordinal", level))?;
                    snap.certifications.insert(
                        (Arc::from(track), level),
                        (cert(Some(s.to_string()))?, cert(Some(c.to_string()))?),
                    );
                }
            }
            _ => snap.exempt.push(a),
        }
    }
    Ok(snap)
}

/// Makes the state cache forget entities whose bodies are being replaced, however the write
/// ends.
struct ForgetOnDrop<'a>(Option<&'a super::StateCache>, &'a [(String, Value)]);

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(cache) = self.0 {
            let refs: Vec<String> = self.1.iter().map(|(r, _)| r.clone()).collect();
            cache.forget_entities(&refs);
        }
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl CatalogStore for SqlStore {
    async fn snapshot(
        &self,
        entity_ref: &str,
        scope: &str,
        now_ms: i64,
    ) -> StoreResult<EntitySnapshot> {
        let read = || async move {
            Ok::<Vec<SnapshotRow>, StoreError>(on_pool!(&self.pool, p => {
                sqlx::query(SNAPSHOT).bind(entity_ref).bind(scope).bind(now_ms).fetch_all(p).await?.into_iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?)))
                    .collect::<StoreResult<Vec<_>>>()?
            }))
        };
        let (rows, held) = self.read_with_held(&[entity_ref], read).await?;
        let mut snapshot = snapshot_from(rows)?;
        if let Some(held) = held {
            held.patch_snapshot(entity_ref, scope, &mut snapshot);
        }
        Ok(snapshot)
    }

    async fn snapshots(
        &self,
        keys: &[(String, String)],
        now_ms: i64,
        facts: FactNeeds<'_>,
    ) -> StoreResult<HashMap<(String, String), EntitySnapshot>> {
        // One entity (a single submission): equality on each table's key, which PostgreSQL
        // plans as index lookups; the batch form's JSON list is estimated at 100 rows, which
        // on small tables makes it scan them.
        if let [(entity_ref, scope)] = keys {
            let snapshot = self.snapshot(entity_ref, scope, now_ms).await?;
            return Ok(HashMap::from([(
                (entity_ref.clone(), scope.clone()),
                snapshot,
            )]));
        }
        if let Some(cache) = &self.cache {
            return self.cached_snapshots(cache, keys, now_ms, facts).await;
        }
        let list = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
        let sql = if self.backend() == "sqlite" {
            SNAPSHOTS_SQLITE
        } else {
            SNAPSHOTS_POSTGRES
        };
        let list = list.as_str();
        let read = || async move {
            Ok::<Vec<PairRow>, StoreError>(on_pool!(&self.pool, p => {
                sqlx::query(sql).bind(list).bind(now_ms).fetch_all(p).await?.into_iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?, r.try_get(6)?)))
                    .collect::<StoreResult<Vec<_>>>()?
            }))
        };
        let entities: Vec<&str> = keys.iter().map(|(e, _)| e.as_str()).collect();
        let (rows, held) = self.read_with_held(&entities, read).await?;
        let mut grouped: HashMap<(String, String), Vec<SnapshotRow>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for (kind, e, s, a, b, c, d) in rows {
            // Kind 0 carries the body in `a`; the single-entity decoder expects it there too.
            grouped
                .entry((e, s))
                .or_default()
                .push((kind, a.unwrap_or_default(), b, c, d));
        }
        grouped
            .into_iter()
            .map(|(k, rows)| {
                let mut snapshot = snapshot_from(rows)?;
                if let Some(held) = &held {
                    held.patch_snapshot(&k.0, &k.1, &mut snapshot);
                }
                Ok((k, snapshot))
            })
            .collect()
    }

    async fn upsert_entities(&self, entities: &[(String, Value)], now_ms: i64) -> StoreResult<()> {
        let _cache = ForgetOnDrop(self.cache.as_deref(), entities);
        on_pool!(self.write_pool(), p => {
            let mut tx = p.begin_with(self.begin_sql()).await?;
            for (entity_ref, body) in entities {
                sqlx::query(UPSERT_ENTITY).bind(entity_ref.as_str()).bind(body.to_string()).bind(now_ms).execute(&mut *tx).await?;
            }
            if let Some(bump) = self.state_version_bump() {
                sqlx::query(bump).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    async fn entity(&self, entity_ref: &str) -> StoreResult<Option<Value>> {
        let body: Option<String> = on_pool!(&self.pool, p => {
            sqlx::query("SELECT body FROM entities WHERE entity_ref = $1").bind(entity_ref).fetch_optional(p).await?
                .map(|r| r.try_get::<String, _>(0)).transpose()?
        });
        body.map(|b| serde_json::from_str(&b).map_err(|e| corrupt("entity body", e)))
            .transpose()
    }

    async fn prune_facts(&self, retention: Retention, now_ms: i64) -> StoreResult<u64> {
        let _cache = self.dropping_cache();
        on_pool!(self.write_pool(), p => {
            let mut tx = p.begin_with(self.begin_sql()).await?;
            let mut removed = 0;
            if let Some(age) = retention.max_age_ms {
                removed += sqlx::query(PRUNE_AGE).bind(now_ms - age).execute(&mut *tx).await?.rows_affected();
            }
            if let Some(count) = retention.max_per_fact {
                removed += sqlx::query(PRUNE_COUNT).bind(count).execute(&mut *tx).await?.rows_affected();
            }
            for sql in PRUNE_GONE {
                removed += sqlx::query(sql).execute(&mut *tx).await?.rows_affected();
            }
            if let Some(bump) = self.state_version_bump() {
                sqlx::query(bump).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(removed)
        })
    }

    async fn exemptions_of(&self, entity_ref: &str, now_ms: i64) -> StoreResult<Vec<String>> {
        const SQL: &str = "SELECT check_id FROM exemptions WHERE entity_ref = $1 AND revoked = 0 AND (expires_at IS NULL OR expires_at > $2)";
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(SQL).bind(entity_ref).bind(now_ms).fetch_all(p).await?;
            rows.into_iter().map(|r| Ok(r.try_get(0)?)).collect()
        })
    }

    async fn create_exemption(&self, e: &ExemptionRecord) -> StoreResult<()> {
        let _cache = self.dropping_cache();
        const SQL: &str = "INSERT INTO exemptions (check_id, entity_ref, justification, created_by, created_at, expires_at, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self.write_pool(), p => {
            let mut tx = p.begin_with(self.begin_sql()).await?;
            sqlx::query(SQL).bind(e.check_id.as_str()).bind(e.entity_ref.as_str()).bind(e.justification.as_str()).bind(e.created_by.as_str())
                .bind(e.created_at).bind(e.expires_at).bind(i64::from(e.revoked)).execute(&mut *tx).await?;
            if let Some(bump) = self.state_version_bump() {
                sqlx::query(bump).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    async fn revoke_exemption(
        &self,
        check_id: &str,
        entity_ref: &str,
        by: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let _cache = self.dropping_cache();
        const SQL: &str = "UPDATE exemptions SET revoked = 1, revoked_by = $3, revoked_at = $4, revoke_reason = $5 WHERE check_id = $1 AND entity_ref = $2 AND revoked = 0 AND (expires_at IS NULL OR expires_at > $4)";
        on_pool!(self.write_pool(), p => {
            let mut tx = p.begin_with(self.begin_sql()).await?;
            let n = sqlx::query(SQL).bind(check_id).bind(entity_ref).bind(by).bind(now_ms).bind(reason).execute(&mut *tx).await?.rows_affected();
            if let Some(bump) = self.state_version_bump() {
                sqlx::query(bump).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(n)
        })
    }

    async fn snapshot_daily(&self, day: &str, number_of_entities: i64) -> StoreResult<()> {
        on_pool!(self.write_pool(), p => {
            let mut tx = p.begin_with(self.begin_sql()).await?;
            let held = (&mut *tx).write_held(self.deferred.as_deref()).await?;
            sqlx::query(DAILY_CHECKS).bind(day).bind(number_of_entities).execute(&mut *tx).await?;
            sqlx::query(DAILY_TRACKS).bind(day).bind(number_of_entities).execute(&mut *tx).await?;
            (&mut *tx).mark_written().await?;
            tx.commit().await?;
            written(held);
        });
        Ok(())
    }

    async fn check_history(
        &self,
        check_id: &str,
        days: i64,
    ) -> StoreResult<Vec<(String, [i64; 7], i64)>> {
        const SQL: &str = "SELECT day, passed, failed, warning, not_applicable, error, not_reported, exempt, number_of_entities FROM daily_check_status \
            WHERE check_id = $1 ORDER BY day DESC LIMIT $2";
        let mut rows: Vec<(String, [i64; 7], i64)> = on_pool!(&self.pool, p => {
            sqlx::query(SQL).bind(check_id).bind(days).fetch_all(p).await?.into_iter().map(|r| {
                let mut counts = [0i64; 7];
                for (i, c) in counts.iter_mut().enumerate() {
                    *c = r.try_get(i + 1)?;
                }
                Ok((r.try_get(0)?, counts, r.try_get(8)?))
            }).collect::<StoreResult<Vec<_>>>()?
        });
        rows.reverse();
        Ok(rows)
    }
}
