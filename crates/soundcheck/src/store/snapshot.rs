//! Batch snapshot reads through the [`StateCache`]: pairs it holds come from memory; the
//! others are read whole from the database, with the `state_version` in the same statement,
//! and offered to it. The hits are used only when the cache reflects the version read.

use std::collections::HashMap;

use sqlx::Row;

use super::cache::{Fill, Key, StateCache};
use super::catalog::{PairRow, SnapshotRow, snapshot_from};
use super::deferred::HeldView;
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

/// Lookups tried before a version mismatch is taken for another writer's.
const LOOKUPS: usize = 3;

/// One pair's rows, with the raw text the cache keeps.
#[derive(Default)]
struct PairRows {
    rows: Vec<SnapshotRow>,
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
        // A commit of this process may land between the lookup and the read (the next
        // submission is read while the previous one commits): then wait for the cache to
        // follow it and look again, rather than take it for another writer's.
        for _ in 0..LOOKUPS {
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
            let ((pairs, version), held) = self.read_pairs_held(&misses).await?;
            if lookup.version.is_none_or(|v| v == version) {
                metrics::gauge!("soundcheck_state_cache_entries").set(cache.len() as f64);
                let mut out = lookup.hits;
                out.extend(decode_and_fill(
                    cache,
                    held.as_ref(),
                    pairs,
                    lookup.generation,
                    version,
                    now_ms,
                )?);
                return Ok(out);
            }
            if !cache.caught_up(version).await {
                break;
            }
        }
        // Someone else wrote since the cache last followed: none of it can be trusted.
        cache.invalidate();
        let generation = cache.lookup(&[], now_ms, needs).generation;
        let all: Vec<&Key> = keys.iter().collect();
        let ((pairs, version), held) = self.read_pairs_held(&all).await?;
        decode_and_fill(cache, held.as_ref(), pairs, generation, version, now_ms)
    }

    /// [`Self::read_pairs`] with what write-behind holds for those entities.
    async fn read_pairs_held(
        &self,
        pairs: &[&Key],
    ) -> StoreResult<((HashMap<Key, PairRows>, i64), Option<HeldView>)> {
        let entities: Vec<&str> = pairs.iter().map(|(e, _)| e.as_str()).collect();
        self.read_with_held(&entities, || self.read_pairs(pairs))
            .await
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
    held: Option<&HeldView>,
    pairs: HashMap<Key, PairRows>,
    generation: u64,
    version: i64,
    now_ms: i64,
) -> StoreResult<HashMap<Key, EntitySnapshot>> {
    let mut decoded = Vec::with_capacity(pairs.len());
    for (key, pair) in pairs {
        let mut snapshot = snapshot_from(pair.rows)?;
        if let Some(held) = held {
            held.patch_snapshot(&key.0, &key.1, &mut snapshot);
        }
        snapshot.exempt = pair
            .exemptions
            .iter()
            .filter(|(_, expires)| expires.is_none_or(|at| at > now_ms))
            .map(|(c, _)| c.clone())
            .collect();
        decoded.push((key, snapshot, pair.facts, pair.exemptions));
    }
    let fills: Vec<Fill<'_>> = decoded
        .iter()
        .map(|(key, snapshot, facts, exemptions)| Fill {
            key,
            snapshot,
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

#[cfg(test)]
mod tests {
    use super::super::{CatalogStore, FactNeeds, StateChanges};
    use super::*;

    /// A read that finds the version of this process's own commit before the cache has
    /// followed it waits for the cache instead of dropping it.
    #[tokio::test]
    async fn a_read_racing_our_own_commit_keeps_the_cache() {
        let (_dir, url) = crate::store::temp_sqlite_url("state.db");
        let store = SqlStore::open(&url).await.unwrap().with_state_cache(10);
        let body = serde_json::json!({"kind": "Component"});
        // Reads of one pair bypass the cache: three pairs, reads of two.
        let refs = [
            "component:default/a",
            "component:default/b",
            "component:default/c",
        ];
        let entities: Vec<(String, serde_json::Value)> = refs
            .iter()
            .map(|e| ((*e).to_string(), body.clone()))
            .collect();
        store.upsert_entities(&entities, 1).await.unwrap();
        let keys: Vec<Key> = refs
            .iter()
            .map(|e| ((*e).to_string(), "default".to_string()))
            .collect();
        store.snapshots(&keys, 0, FactNeeds::All).await.unwrap();
        let cache = store.state_cache().unwrap();
        assert_eq!(cache.len(), 3);
        let version = cache.lookup(&[], 0, FactNeeds::All).version.unwrap();

        // Our commit to `version + 1` lands in the database; the cache follows it 50 ms later.
        let committing = cache.committing(version + 1);
        let Pool::Sqlite(pool) = &store.pool else {
            panic!("a SQLite store");
        };
        sqlx::query("UPDATE instance SET state_version = state_version + 1")
            .execute(pool)
            .await
            .unwrap();
        let follower = async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            cache.applied(version + 1, &StateChanges::default());
            drop(committing);
        };
        let (read, ()) = tokio::join!(store.snapshots(&keys[..2], 0, FactNeeds::All), follower);
        assert!(read.unwrap()[&keys[0]].entity.is_some());
        assert_eq!(cache.len(), 3, "every entry kept");

        // A version nobody here is committing is another writer's: the cache is dropped.
        sqlx::query("UPDATE instance SET state_version = state_version + 1")
            .execute(pool)
            .await
            .unwrap();
        store
            .snapshots(&keys[..2], 0, FactNeeds::All)
            .await
            .unwrap();
        assert_eq!(cache.len(), 2, "only what was read since");
    }

    /// A body the catalog replaces is read again, not served from the cache.
    #[tokio::test]
    async fn a_replaced_body_is_not_served_from_the_cache() {
        let (_dir, url) = crate::store::temp_sqlite_url("state.db");
        let store = SqlStore::open(&url).await.unwrap().with_state_cache(10);
        let refs = ["component:default/a", "component:default/b"];
        let bodies = |kind: &str| -> Vec<(String, serde_json::Value)> {
            refs.iter()
                .map(|e| ((*e).to_string(), serde_json::json!({ "kind": kind })))
                .collect()
        };
        store
            .upsert_entities(&bodies("Component"), 1)
            .await
            .unwrap();
        let keys: Vec<Key> = refs
            .iter()
            .map(|e| ((*e).to_string(), "default".to_string()))
            .collect();
        store.snapshots(&keys, 0, FactNeeds::All).await.unwrap();
        assert_eq!(store.state_cache().unwrap().len(), 2);

        store.upsert_entities(&bodies("API"), 2).await.unwrap();
        let read = store.snapshots(&keys, 0, FactNeeds::All).await.unwrap();
        for key in &keys {
            let body = read[key].entity.as_deref();
            assert_eq!(body, Some(&serde_json::json!({"kind": "API"})), "{key:?}");
        }
    }
}
