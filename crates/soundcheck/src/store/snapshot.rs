//! Batch snapshot reads through the [`StateCache`]: pairs it holds come from memory; the
//! others are read whole from the database, with the `state_version` in the same statement,
//! and offered to it. The hits are used only when the cache reflects the version read.

use std::collections::HashMap;

use sqlx::Row;

use super::cache::{Fill, Key, StateCache};
use super::catalog::{PairRow, SnapshotRow, snapshot_from};
use super::sql::{Pool, SqlStore};
use super::{EntitySnapshot, FactNeeds, StoreError, StoreResult};

/// `$1`: the pairs to read. Kind 4 carries exemptions with their expiry, kind 7 the state
/// version (always one row).
const CACHED_SNAPSHOTS: &str = "WITH m(e, s) AS (SELECT value->>0, value->>1 FROM json_each($1)) \
    SELECT 0, m.e, m.s, body, CAST(NULL AS TEXT), CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM entities JOIN m ON entity_ref = m.e \
    UNION ALL SELECT 1, m.e, m.s, fact_ref, data, timestamp, CAST(NULL AS TEXT) FROM facts x JOIN m ON x.entity_ref = m.e AND x.scope = m.s \
    UNION ALL SELECT 5, m.e, m.s, group_concat(check_id || char(31) || state, char(30)), CAST(NULL AS TEXT), CAST(NULL AS BIGINT), CAST(NULL AS TEXT) \
      FROM check_results r JOIN m ON r.entity_ref = m.e AND r.scope = m.s GROUP BY m.e, m.s \
    UNION ALL SELECT 6, m.e, m.s, group_concat(track_id || char(31) || level_ordinal || char(31) || state || char(31) || cumulative_state, char(30)), \
      CAST(NULL AS TEXT), CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM certifications c JOIN m ON c.entity_ref = m.e AND c.scope = m.s GROUP BY m.e, m.s \
    UNION ALL SELECT 4, m.e, m.s, check_id, CAST(NULL AS TEXT), expires_at, CAST(NULL AS TEXT) FROM exemptions x JOIN m ON x.entity_ref = m.e WHERE revoked = 0 \
    UNION ALL SELECT 7, '', '', '', CAST(NULL AS TEXT), state_version, CAST(NULL AS TEXT) FROM instance WHERE id = 1";

/// One pair's rows, with the raw text the cache keeps.
#[derive(Default)]
struct PairRows {
    rows: Vec<SnapshotRow>,
    body: String,
    facts: Vec<(String, i64, String)>,
    exemptions: Vec<(String, Option<i64>)>,
}

impl SqlStore {
    /// [`super::CatalogStore::snapshots`] of two or more pairs with the cache on.
    pub(super) async fn cached_snapshots(
        &self,
        cache: &StateCache,
        keys: &[Key],
        now_ms: i64,
        needs: FactNeeds<'_>,
    ) -> StoreResult<HashMap<Key, EntitySnapshot>> {
        let lookup = cache.lookup(keys, now_ms, needs);
        let misses: Vec<&Key> = keys
            .iter()
            .filter(|k| !lookup.hits.contains_key(*k))
            .collect();
        tracing::debug!(
            hits = lookup.hits.len(),
            misses = misses.len(),
            "snapshot read through the state cache"
        );
        let (pairs, version) = self.read_pairs(&misses).await?;
        if lookup.version != Some(version) && !lookup.hits.is_empty() {
            // Someone wrote since the cache last followed: none of the hits can be trusted.
            cache.invalidate();
            let generation = cache.lookup(&[], now_ms, needs).generation;
            let all: Vec<&Key> = keys.iter().collect();
            let (pairs, version) = self.read_pairs(&all).await?;
            return decode_and_fill(cache, pairs, generation, version, now_ms);
        }
        metrics::gauge!("soundcheck_state_cache_entries").set(cache.len() as f64);
        let mut out = lookup.hits;
        out.extend(decode_and_fill(
            cache,
            pairs,
            lookup.generation,
            version,
            now_ms,
        )?);
        Ok(out)
    }

    /// One statement: everything about `pairs` and the state version; rows grouped by pair
    /// (every pair present, known or not).
    async fn read_pairs(&self, pairs: &[&Key]) -> StoreResult<(HashMap<Key, PairRows>, i64)> {
        let list = serde_json::to_string(pairs).unwrap_or_else(|_| "[]".into());
        let Pool::Sqlite(pool) = &self.pool else {
            return Err(StoreError::Corrupt(
                "the state cache needs SQLite".to_string(),
            ));
        };
        let rows: Vec<PairRow> = sqlx::query(CACHED_SNAPSHOTS)
            .bind(list)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                    r.try_get(6)?,
                ))
            })
            .collect::<StoreResult<_>>()?;
        let mut grouped: HashMap<Key, PairRows> = pairs
            .iter()
            .map(|k| ((*k).clone(), PairRows::default()))
            .collect();
        let mut version = None;
        for (kind, e, s, a, b, c, d) in rows {
            if kind == 7 {
                version = c;
                continue;
            }
            let pair = grouped.entry((e, s)).or_default();
            let a = a.unwrap_or_default();
            match kind {
                4 => {
                    pair.exemptions.push((a, c));
                    continue;
                }
                0 => pair.body.clone_from(&a),
                1 => pair.facts.push((
                    a.clone(),
                    c.unwrap_or(i64::MIN),
                    b.clone().unwrap_or_else(|| "null".into()),
                )),
                _ => {}
            }
            pair.rows.push((kind, a, b, c, d));
        }
        let version = version.ok_or_else(|| StoreError::Corrupt("no state version".into()))?;
        Ok((grouped, version))
    }
}

/// Decodes pairs read whole and offers them to the cache.
fn decode_and_fill(
    cache: &StateCache,
    pairs: HashMap<Key, PairRows>,
    generation: u64,
    version: i64,
    now_ms: i64,
) -> StoreResult<HashMap<Key, EntitySnapshot>> {
    let mut decoded = Vec::with_capacity(pairs.len());
    for (key, pair) in pairs {
        let mut snapshot = snapshot_from(pair.rows)?;
        snapshot.exempt = pair
            .exemptions
            .iter()
            .filter(|(_, expires)| expires.is_none_or(|at| at > now_ms))
            .map(|(c, _)| c.clone())
            .collect();
        decoded.push((key, snapshot, pair.body, pair.facts, pair.exemptions));
    }
    let fills: Vec<Fill<'_>> = decoded
        .iter()
        .map(|(key, snapshot, body, facts, exemptions)| Fill {
            key,
            snapshot,
            body,
            facts,
            exemptions,
        })
        .collect();
    cache.fill(generation, version, &fills);
    Ok(decoded
        .into_iter()
        .map(|(key, snapshot, ..)| (key, snapshot))
        .collect())
}
