//! Reads behind the REST API: result and certification rows with their times, the states of
//! one check or track across entities, exemptions with their audit fields, and the catalog.

use std::future::Future;

use serde_json::Value;
use soundcheck_core::model::{CertState, CheckState};
use sqlx::Row;

use super::sql::SqlStore;
use super::write_behind::{WriteHeld, written};
use super::{StoreError, StoreResult};

/// One stored check result with everything the API shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    /// The check.
    pub check_id: String,
    /// The entity.
    pub entity_ref: String,
    /// The scope.
    pub scope: String,
    /// The state.
    pub state: CheckState,
    /// Free-form details (from a submission or the evaluator).
    pub details: Option<Value>,
    /// The rendered message.
    pub message: Option<String>,
    /// Who submitted it (`None` for the evaluator).
    pub submitted_by: Option<String>,
    /// Last write of the row (ms): a fact submission leaves unchanged results alone, see
    /// `state::checked` for the time the API reports.
    pub last_checked: i64,
    /// Last change of state (ms).
    pub last_changed: i64,
}

/// When the stored copy of one of an entity's latest facts arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactArrival {
    /// The fact.
    pub fact_ref: String,
    /// The scope.
    pub scope: String,
    /// Arrival time (ms).
    pub received_at: i64,
}

/// One stored certification level with its times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelRow {
    /// The track.
    pub track_id: String,
    /// The entity.
    pub entity_ref: String,
    /// The level.
    pub level_ordinal: u32,
    /// The scope.
    pub scope: String,
    /// This level alone.
    pub state: CertState,
    /// This level and all below.
    pub cumulative_state: CertState,
    /// Last change (ms).
    pub last_changed: i64,
}

/// An exemption with its audit fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExemptionRow {
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
    /// Who revoked it.
    pub revoked_by: Option<String>,
    /// When it was revoked (ms).
    pub revoked_at: Option<i64>,
    /// Why it was revoked.
    pub revoke_reason: Option<String>,
}

/// Which exemptions to list.
#[derive(Debug, Clone, Default)]
pub struct ExemptionQuery {
    /// Only these checks (empty: all).
    pub check_ids: Vec<String>,
    /// Only this entity.
    pub entity_ref: Option<String>,
    /// Revoked ones instead of active ones.
    pub revoked: bool,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// What `QueryStore::change_marker` reads: entity and definition counts and latest update
/// times (on SQLite the entity half reads the `entities_updated_at` index).
pub(super) const CHANGE_MARKER: &str = "SELECT (SELECT COUNT(*) FROM entities), (SELECT COALESCE(MAX(updated_at), 0) FROM entities), \
    (SELECT COUNT(*) FROM definitions), (SELECT COALESCE(MAX(updated_at), 0) FROM definitions)";

/// Reads for the API.
pub trait QueryStore: Send + Sync {
    /// When the stored copy of each of an entity's latest facts arrived, optionally in one
    /// scope.
    fn fact_arrivals(
        &self,
        entity_ref: &str,
        scope: Option<&str>,
    ) -> impl Future<Output = StoreResult<Vec<FactArrival>>> + Send;
    /// Results of one entity, optionally of one scope and some checks (empty: all).
    fn result_rows(
        &self,
        entity_ref: &str,
        scope: Option<&str>,
        checks: &[String],
    ) -> impl Future<Output = StoreResult<Vec<ResultRow>>> + Send;
    /// Deletes results of one entity (optionally one scope, some checks); returns rows removed.
    fn delete_results(
        &self,
        entity_ref: &str,
        scope: Option<&str>,
        checks: &[String],
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Deletes every result of a check. With `history`, also its daily aggregates and the
    /// audit rows of submitted results, and its transitions so far leave its status history
    /// (they stay stored: with events on they are the outbox, perhaps not delivered yet).
    fn delete_check_results(
        &self,
        check_id: &str,
        history: bool,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Certification levels of one entity.
    fn level_rows(
        &self,
        entity_ref: &str,
    ) -> impl Future<Output = StoreResult<Vec<LevelRow>>> + Send;
    /// (entity, state) of every result of a check in a scope.
    fn check_states(
        &self,
        check_id: &str,
        scope: &str,
    ) -> impl Future<Output = StoreResult<Vec<(String, CheckState)>>> + Send;
    /// Every level row of a track in a scope.
    fn track_levels(
        &self,
        track_id: &str,
        scope: &str,
    ) -> impl Future<Output = StoreResult<Vec<LevelRow>>> + Send;
    /// Exemptions matching a query, and how many match in all.
    fn exemptions(
        &self,
        query: &ExemptionQuery,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<(Vec<ExemptionRow>, i64)>> + Send;
    /// Restores the most recently revoked exemption of a pair; returns how many.
    fn restore_exemption(
        &self,
        check_id: &str,
        entity_ref: &str,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Every transition of a check in a scope, oldest first: (entity, state, at).
    fn check_transitions(
        &self,
        check_id: &str,
        scope: &str,
    ) -> impl Future<Output = StoreResult<Vec<(String, CheckState, i64)>>> + Send;
    /// Every transition of a track's levels in a scope, oldest first, as level rows whose
    /// `last_changed` is the time of the transition.
    fn level_transitions(
        &self,
        track_id: &str,
        scope: &str,
    ) -> impl Future<Output = StoreResult<Vec<LevelRow>>> + Send;
    /// Every exemption of a check, revoked or not.
    fn exemption_history(
        &self,
        check_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<ExemptionRow>>> + Send;
    /// When each of these facts of each of these entities was last received (ms), scope
    /// `default`: (entity, fact ref, received at).
    fn fact_times(
        &self,
        entity_refs: &[String],
        fact_refs: &[String],
    ) -> impl Future<Output = StoreResult<Vec<(String, String, i64)>>> + Send;
    /// What changes when another replica changes the catalog or the API-created definitions:
    /// (entities, their newest update, definitions, their newest update).
    fn change_marker(&self) -> impl Future<Output = StoreResult<[i64; 4]>> + Send;
    /// Entities with an exemption (not revoked) that expired in `(from, to]`.
    fn exemptions_expired_between(
        &self,
        from: i64,
        to: i64,
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;
    /// Every entity: (ref, body).
    fn entities(&self) -> impl Future<Output = StoreResult<Vec<(String, Value)>>> + Send;
    /// Removes entities with their facts and results; returns how many entities.
    fn delete_entities(&self, refs: &[String]) -> impl Future<Output = StoreResult<u64>> + Send;
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn check_state(text: &str) -> StoreResult<CheckState> {
    CheckState::parse(text).ok_or_else(|| corrupt("check state", text))
}

fn cert_state(text: &str) -> StoreResult<CertState> {
    CertState::parse(text).ok_or_else(|| corrupt("certification state", text))
}

fn ordinal(value: i64) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| corrupt("level ordinal", value))
}

/// `AND column IN (json array $n)`, or nothing for an empty list.
fn in_list(sqlite: bool, column: &str, n: usize, empty: bool) -> String {
    if empty {
        String::new()
    } else if sqlite {
        format!(" AND {column} IN (SELECT value FROM json_each(${n}))")
    } else {
        format!(" AND {column} IN (SELECT jsonb_array_elements_text(${n}::text::jsonb))")
    }
}

/// Moves a check's status history floor (`$1`) past every transition stored so far.
const HISTORY_FLOOR: &str = "INSERT INTO check_history_floors (check_id, after_id) \
    SELECT CAST($1 AS TEXT), COALESCE(MAX(id), 0) FROM check_transitions WHERE true \
    ON CONFLICT (check_id) DO UPDATE SET after_id = excluded.after_id";
const RESULT_COLUMNS: &str = "check_id, entity_ref, scope, state, details, message, submitted_by, last_checked, last_changed";
const LEVEL_COLUMNS: &str =
    "track_id, entity_ref, level_ordinal, scope, state, cumulative_state, last_changed";
const EXEMPTION_COLUMNS: &str = "check_id, entity_ref, justification, created_by, created_at, expires_at, revoked_by, revoked_at, revoke_reason";

macro_rules! level_row {
    ($r:expr) => {
        LevelRow {
            track_id: $r.try_get(0)?,
            entity_ref: $r.try_get(1)?,
            level_ordinal: ordinal($r.try_get(2)?)?,
            scope: $r.try_get(3)?,
            state: cert_state(&$r.try_get::<String, _>(4)?)?,
            cumulative_state: cert_state(&$r.try_get::<String, _>(5)?)?,
            last_changed: $r.try_get(6)?,
        }
    };
}

impl SqlStore {
    fn is_sqlite(&self) -> bool {
        self.backend() == "sqlite"
    }

    /// Results of one entity (`$1`), optionally of one scope (`$2`, null for all) and some
    /// checks (`$3`, a JSON array; left out when `all_checks`).
    fn results_where(&self, all_checks: bool) -> String {
        let scope = if self.is_sqlite() {
            "($2 IS NULL OR scope = $2)"
        } else {
            "($2::text IS NULL OR scope = $2)"
        };
        format!(
            "entity_ref = $1 AND {scope}{}",
            in_list(self.is_sqlite(), "check_id", 3, all_checks)
        )
    }
}

impl QueryStore for SqlStore {
    async fn fact_arrivals(
        &self,
        entity_ref: &str,
        scope: Option<&str>,
    ) -> StoreResult<Vec<FactArrival>> {
        let scope_is = if self.is_sqlite() {
            "($2 IS NULL OR scope = $2)"
        } else {
            "($2::text IS NULL OR scope = $2)"
        };
        let sql = format!(
            "SELECT fact_ref, scope, received_at FROM facts WHERE entity_ref = $1 AND {scope_is}"
        );
        on_pool!(&self.pool, p => {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(entity_ref).bind(scope).fetch_all(p).await?.into_iter().map(|r| {
                Ok(FactArrival { fact_ref: r.try_get(0)?, scope: r.try_get(1)?, received_at: r.try_get(2)? })
            }).collect()
        })
    }

    async fn result_rows(
        &self,
        entity_ref: &str,
        scope: Option<&str>,
        checks: &[String],
    ) -> StoreResult<Vec<ResultRow>> {
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM check_results WHERE {} ORDER BY check_id, scope",
            self.results_where(checks.is_empty())
        );
        let list = serde_json::to_string(checks).unwrap_or_else(|_| "[]".into());
        let (sql, list) = (&sql, list.as_str());
        let read = || async move {
            Ok::<Vec<ResultRow>, StoreError>(on_pool!(&self.pool, p => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(entity_ref).bind(scope);
                if !checks.is_empty() {
                    q = q.bind(list);
                }
                q.fetch_all(p).await?.into_iter().map(|r| {
                    let details: Option<String> = r.try_get(4)?;
                    Ok(ResultRow {
                        check_id: r.try_get(0)?,
                        entity_ref: r.try_get(1)?,
                        scope: r.try_get(2)?,
                        state: check_state(&r.try_get::<String, _>(3)?)?,
                        details: details.map(|d| serde_json::from_str(&d).map_err(|e| corrupt("result details", e))).transpose()?,
                        message: r.try_get(5)?,
                        submitted_by: r.try_get(6)?,
                        last_checked: r.try_get(7)?,
                        last_changed: r.try_get(8)?,
                    })
                }).collect::<StoreResult<_>>()?
            }))
        };
        let (mut rows, held) = self.read_with_held(&[entity_ref], read).await?;
        if let Some(held) = held {
            held.patch_result_rows(entity_ref, scope, checks, &mut rows);
        }
        Ok(rows)
    }

    async fn delete_results(
        &self,
        entity_ref: &str,
        scope: Option<&str>,
        checks: &[String],
    ) -> StoreResult<u64> {
        let _cache = self.dropping_cache();
        let sql = format!(
            "DELETE FROM check_results WHERE {}",
            self.results_where(checks.is_empty())
        );
        let list = serde_json::to_string(checks).unwrap_or_else(|_| "[]".into());
        on_pool!(self.write_pool(), p => {
            let mut tx = p.begin_with(self.begin_sql()).await?;
            let held = (&mut *tx).write_held(self.deferred.as_deref()).await?;
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(entity_ref).bind(scope);
            if !checks.is_empty() {
                q = q.bind(list.as_str());
            }
            let n = q.execute(&mut *tx).await?.rows_affected();
            if let Some(bump) = self.state_version_bump() {
                sqlx::query(bump).execute(&mut *tx).await?;
            }
            (&mut *tx).mark_written().await?;
            tx.commit().await?;
            written(held);
            Ok(n)
        })
    }

    async fn delete_check_results(&self, check_id: &str, history: bool) -> StoreResult<u64> {
        let _cache = self.dropping_cache();
        on_pool!(self.write_pool(), p => {
            let mut tx = p.begin_with(self.begin_sql()).await?;
            let held = (&mut *tx).write_held(self.deferred.as_deref()).await?;
            let n = sqlx::query("DELETE FROM check_results WHERE check_id = $1").bind(check_id).execute(&mut *tx).await?.rows_affected();
            if history {
                sqlx::query("DELETE FROM daily_check_status WHERE check_id = $1").bind(check_id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM result_submissions WHERE check_id = $1").bind(check_id).execute(&mut *tx).await?;
                sqlx::query(HISTORY_FLOOR).bind(check_id).execute(&mut *tx).await?;
            }
            if let Some(bump) = self.state_version_bump() {
                sqlx::query(bump).execute(&mut *tx).await?;
            }
            (&mut *tx).mark_written().await?;
            tx.commit().await?;
            written(held);
            Ok(n)
        })
    }

    async fn level_rows(&self, entity_ref: &str) -> StoreResult<Vec<LevelRow>> {
        let sql = format!(
            "SELECT {LEVEL_COLUMNS} FROM certifications WHERE entity_ref = $1 ORDER BY track_id, scope, level_ordinal"
        );
        let sql = &sql;
        let read = || async move {
            Ok::<Vec<LevelRow>, StoreError>(on_pool!(&self.pool, p => {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(entity_ref).fetch_all(p).await?.into_iter().map(|r| Ok(level_row!(r))).collect::<StoreResult<_>>()?
            }))
        };
        let (mut rows, held) = self.read_with_held(&[entity_ref], read).await?;
        if let Some(held) = held {
            held.patch_level_rows(entity_ref, &mut rows);
        }
        Ok(rows)
    }

    async fn check_states(
        &self,
        check_id: &str,
        scope: &str,
    ) -> StoreResult<Vec<(String, CheckState)>> {
        const SQL: &str =
            "SELECT entity_ref, state FROM check_results WHERE check_id = $1 AND scope = $2";
        self.settle().await?;
        on_pool!(&self.pool, p => {
            sqlx::query(SQL).bind(check_id).bind(scope).fetch_all(p).await?.into_iter()
                .map(|r| Ok((r.try_get(0)?, check_state(&r.try_get::<String, _>(1)?)?))).collect()
        })
    }

    async fn track_levels(&self, track_id: &str, scope: &str) -> StoreResult<Vec<LevelRow>> {
        let sql = format!(
            "SELECT {LEVEL_COLUMNS} FROM certifications WHERE track_id = $1 AND scope = $2 ORDER BY entity_ref, level_ordinal"
        );
        self.settle().await?;
        on_pool!(&self.pool, p => {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(track_id).bind(scope).fetch_all(p).await?.into_iter().map(|r| Ok(level_row!(r))).collect()
        })
    }

    async fn exemptions(
        &self,
        query: &ExemptionQuery,
        now_ms: i64,
    ) -> StoreResult<(Vec<ExemptionRow>, i64)> {
        let state = if query.revoked {
            "revoked = 1"
        } else {
            "revoked = 0 AND (expires_at IS NULL OR expires_at > $1)"
        };
        let filters = format!(
            "{state} AND ($2 IS NULL OR entity_ref = $2){}",
            in_list(self.is_sqlite(), "check_id", 3, query.check_ids.is_empty())
        );
        let filters = if self.is_sqlite() {
            filters
        } else {
            filters
                .replace("$2 IS NULL", "$2::text IS NULL")
                .replace("> $1", "> $1::bigint")
        };
        // `$1` is bound even when the revoked form does not read it.
        let filters = if query.revoked {
            format!("($1 = $1) AND {filters}")
        } else {
            filters
        };
        let filters = if self.is_sqlite() || !query.revoked {
            filters
        } else {
            filters.replace("($1 = $1)", "($1::bigint = $1::bigint)")
        };
        let list = serde_json::to_string(&query.check_ids).unwrap_or_else(|_| "[]".into());
        let page = format!(
            "SELECT {EXEMPTION_COLUMNS} FROM exemptions WHERE {filters} ORDER BY created_at, id LIMIT {} OFFSET {}",
            query.limit.max(0),
            query.offset.max(0)
        );
        let count = format!("SELECT COUNT(*) FROM exemptions WHERE {filters}");
        on_pool!(&self.pool, p => {
            let bind = |sql: &str| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).bind(now_ms).bind(query.entity_ref.clone());
                if !query.check_ids.is_empty() {
                    q = q.bind(list.clone());
                }
                q
            };
            let rows = bind(&page).fetch_all(p).await?.into_iter().map(|r| Ok(ExemptionRow {
                check_id: r.try_get(0)?,
                entity_ref: r.try_get(1)?,
                justification: r.try_get(2)?,
                created_by: r.try_get(3)?,
                created_at: r.try_get(4)?,
                expires_at: r.try_get(5)?,
                revoked_by: r.try_get(6)?,
                revoked_at: r.try_get(7)?,
                revoke_reason: r.try_get(8)?,
            })).collect::<StoreResult<Vec<_>>>()?;
            let total: i64 = bind(&count).fetch_one(p).await?.try_get(0)?;
            Ok((rows, total))
        })
    }

    async fn restore_exemption(&self, check_id: &str, entity_ref: &str) -> StoreResult<u64> {
        let _cache = self.dropping_cache();
        const SQL: &str = "UPDATE exemptions SET revoked = 0, revoked_by = NULL, revoked_at = NULL, revoke_reason = NULL \
            WHERE id = (SELECT MAX(id) FROM exemptions WHERE check_id = $1 AND entity_ref = $2 AND revoked = 1) \
            AND NOT EXISTS (SELECT 1 FROM exemptions WHERE check_id = $1 AND entity_ref = $2 AND revoked = 0)";
        on_pool!(self.write_pool(), p => {
            let mut tx = p.begin_with(self.begin_sql()).await?;
            let n = sqlx::query(SQL).bind(check_id).bind(entity_ref).execute(&mut *tx).await?.rows_affected();
            if let Some(bump) = self.state_version_bump() {
                sqlx::query(bump).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(n)
        })
    }

    async fn check_transitions(
        &self,
        check_id: &str,
        scope: &str,
    ) -> StoreResult<Vec<(String, CheckState, i64)>> {
        const SQL: &str = "SELECT entity_ref, state, at FROM check_transitions WHERE check_id = $1 AND scope = $2 \
            AND id > COALESCE((SELECT after_id FROM check_history_floors WHERE check_id = $1), 0) ORDER BY at, id";
        on_pool!(&self.pool, p => {
            sqlx::query(SQL).bind(check_id).bind(scope).fetch_all(p).await?.into_iter()
                .map(|r| Ok((r.try_get(0)?, check_state(&r.try_get::<String, _>(1)?)?, r.try_get(2)?))).collect()
        })
    }

    async fn level_transitions(&self, track_id: &str, scope: &str) -> StoreResult<Vec<LevelRow>> {
        const SQL: &str = "SELECT track_id, entity_ref, level_ordinal, scope, state, cumulative_state, at FROM certification_transitions \
            WHERE track_id = $1 AND scope = $2 ORDER BY at, id";
        on_pool!(&self.pool, p => {
            sqlx::query(SQL).bind(track_id).bind(scope).fetch_all(p).await?.into_iter().map(|r| Ok(level_row!(r))).collect()
        })
    }

    async fn exemption_history(&self, check_id: &str) -> StoreResult<Vec<ExemptionRow>> {
        let sql =
            format!("SELECT {EXEMPTION_COLUMNS} FROM exemptions WHERE check_id = $1 ORDER BY id");
        on_pool!(&self.pool, p => {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(check_id).fetch_all(p).await?.into_iter().map(|r| Ok(ExemptionRow {
                check_id: r.try_get(0)?,
                entity_ref: r.try_get(1)?,
                justification: r.try_get(2)?,
                created_by: r.try_get(3)?,
                created_at: r.try_get(4)?,
                expires_at: r.try_get(5)?,
                revoked_by: r.try_get(6)?,
                revoked_at: r.try_get(7)?,
                revoke_reason: r.try_get(8)?,
            })).collect()
        })
    }

    async fn fact_times(
        &self,
        entity_refs: &[String],
        fact_refs: &[String],
    ) -> StoreResult<Vec<(String, String, i64)>> {
        let sqlite = self.is_sqlite();
        let sql = format!(
            "SELECT entity_ref, fact_ref, received_at FROM facts WHERE scope = 'default'{}{}",
            in_list(sqlite, "entity_ref", 1, false),
            in_list(sqlite, "fact_ref", 2, false)
        );
        let entities = serde_json::to_string(entity_refs).unwrap_or_else(|_| "[]".into());
        let facts = serde_json::to_string(fact_refs).unwrap_or_else(|_| "[]".into());
        on_pool!(&self.pool, p => {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(entities.as_str()).bind(facts.as_str()).fetch_all(p).await?.into_iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
        })
    }

    async fn change_marker(&self) -> StoreResult<[i64; 4]> {
        on_pool!(&self.pool, p => {
            let r = sqlx::query(CHANGE_MARKER).fetch_one(p).await?;
            Ok([r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?])
        })
    }

    async fn exemptions_expired_between(&self, from: i64, to: i64) -> StoreResult<Vec<String>> {
        const SQL: &str = "SELECT DISTINCT entity_ref FROM exemptions WHERE revoked = 0 AND expires_at > $1 AND expires_at <= $2";
        on_pool!(&self.pool, p => {
            sqlx::query(SQL).bind(from).bind(to).fetch_all(p).await?.into_iter().map(|r| Ok(r.try_get(0)?)).collect()
        })
    }

    async fn entities(&self) -> StoreResult<Vec<(String, Value)>> {
        on_pool!(&self.pool, p => {
            sqlx::query("SELECT entity_ref, body FROM entities ORDER BY entity_ref").fetch_all(p).await?.into_iter().map(|r| {
                let body: String = r.try_get(1)?;
                Ok((r.try_get(0)?, serde_json::from_str(&body).map_err(|e| corrupt("entity body", e))?))
            }).collect()
        })
    }

    async fn delete_entities(&self, refs: &[String]) -> StoreResult<u64> {
        let _cache = self.dropping_cache();
        let list = serde_json::to_string(refs).unwrap_or_else(|_| "[]".into());
        let tables = ["check_results", "certifications", "facts", "entities"];
        let sqlite = self.is_sqlite();
        on_pool!(self.write_pool(), p => {
            let mut tx = p.begin_with(self.begin_sql()).await?;
            let held = (&mut *tx).write_held(self.deferred.as_deref()).await?;
            let mut removed = 0;
            for table in tables {
                let sql = format!("DELETE FROM {table} WHERE true{}", in_list(sqlite, "entity_ref", 1, false));
                removed = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(list.as_str()).execute(&mut *tx).await?.rows_affected();
            }
            if let Some(bump) = self.state_version_bump() {
                sqlx::query(bump).execute(&mut *tx).await?;
            }
            (&mut *tx).mark_written().await?;
            tx.commit().await?;
            written(held);
            Ok(removed)
        })
    }
}
