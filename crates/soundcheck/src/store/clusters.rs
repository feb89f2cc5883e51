//! Where an entity's results sit on SQLite: each check belongs to a cluster, and an entity's
//! results are stored by cluster, then check (migration 7). The service names a check's
//! cluster after a fact it reads, so the results a fact submission changes are side by side
//! and the submission writes fewer pages. Clusters only place rows: reads and results are
//! the same whatever they are. PostgreSQL keeps one order and ignores them.

use sqlx::Row;

use super::StoreResult;
use super::sql::{Pool, SqlStore};

/// The listed checks (`$1`, a JSON array of `[check id, cluster]`) whose recorded cluster
/// differs; a check never recorded has its results in cluster 0.
const CHANGED: &str = "SELECT j.value->>0, j.value->>1 FROM json_each($1) j \
    LEFT JOIN check_clusters c ON c.check_id = j.value->>0 WHERE COALESCE(c.cluster, 0) <> j.value->>1";
const RECORD: &str = "INSERT INTO check_clusters (check_id, cluster) SELECT value->>0, value->>1 FROM json_each($1) WHERE true \
    ON CONFLICT (check_id) DO UPDATE SET cluster = excluded.cluster";
/// Moves the results of the checks in `$1` (a JSON array of ids, just recorded) to their
/// recorded cluster: one pass over the table.
const MOVE_RESULTS: &str = "UPDATE check_results \
    SET check_cluster = (SELECT cluster FROM check_clusters c WHERE c.check_id = check_results.check_id) \
    WHERE check_id IN (SELECT value FROM json_each($1)) \
    AND check_cluster <> (SELECT cluster FROM check_clusters c WHERE c.check_id = check_results.check_id)";

impl SqlStore {
    /// Records each listed check's cluster (`(check id, cluster)`, ids unique) and moves the
    /// stored results of those whose cluster changed, in one transaction; returns the
    /// results moved. Nothing is written when none changed. A check no longer listed keeps
    /// its recorded cluster, so its stored results and any later write of them still agree.
    pub async fn set_check_clusters(&self, clusters: &[(String, i64)]) -> StoreResult<u64> {
        let Pool::Sqlite(pool) = self.write_pool() else {
            return Ok(0);
        };
        let listed = pairs(clusters);
        // Immediate: it reads, then writes, and another process may be writing the file.
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let changed: Vec<(String, i64)> = sqlx::query(CHANGED)
            .bind(listed.as_str())
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        if changed.is_empty() {
            return Ok(0);
        }
        sqlx::query(RECORD)
            .bind(pairs(&changed))
            .execute(&mut *tx)
            .await?;
        let ids = serde_json::Value::from(
            changed
                .into_iter()
                .map(|(id, _)| serde_json::Value::from(id))
                .collect::<Vec<_>>(),
        );
        let moved = sqlx::query(MOVE_RESULTS)
            .bind(ids.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(moved)
    }
}

/// `(check id, cluster)` pairs as the JSON array of `[id, cluster]` the statements read.
fn pairs(clusters: &[(String, i64)]) -> String {
    serde_json::Value::from(
        clusters
            .iter()
            .map(|(id, cluster)| serde_json::json!([id, cluster]))
            .collect::<Vec<_>>(),
    )
    .to_string()
}
