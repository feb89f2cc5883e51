//! Where an entity's results sit on SQLite: each check belongs to a cluster, and an entity's
//! results are stored by cluster, then check (migration 7). The service names a check's
//! cluster after a fact it reads, so the results a fact submission changes are side by side
//! and the submission writes fewer pages. Clusters only place rows: reads and results are
//! the same whatever they are. PostgreSQL keeps one order and ignores them.

use sqlx::Row;

use super::StoreResult;
use super::sql::{Pool, SqlStore};

/// Whether the stored clusters are exactly `$1` (a JSON array of `[check id, cluster]`).
const SAME_CLUSTERS: &str = "SELECT (SELECT count(*) FROM check_clusters) = json_array_length($1) \
    AND NOT EXISTS (SELECT 1 FROM json_each($1) j LEFT JOIN check_clusters c ON c.check_id = j.value->>0 \
    WHERE c.cluster IS NOT j.value->>1)";
const CLEAR_CLUSTERS: &str = "DELETE FROM check_clusters";
const INSERT_CLUSTERS: &str =
    "INSERT INTO check_clusters (check_id, cluster) SELECT value->>0, value->>1 FROM json_each($1)";
/// Moves the results whose check changed cluster (a check not listed is in cluster 0).
const MOVE_RESULTS: &str = "UPDATE check_results SET check_cluster = \
    COALESCE((SELECT cluster FROM check_clusters c WHERE c.check_id = check_results.check_id), 0) \
    WHERE check_cluster <> COALESCE((SELECT cluster FROM check_clusters c WHERE c.check_id = check_results.check_id), 0)";

impl SqlStore {
    /// Records each check's cluster (`(check id, cluster)`, ids unique) and moves the stored
    /// results of checks whose cluster changed, in one transaction; returns the results
    /// moved. Nothing is written when the clusters are the ones stored.
    pub async fn set_check_clusters(&self, clusters: &[(String, i64)]) -> StoreResult<u64> {
        let Pool::Sqlite(pool) = self.write_pool() else {
            return Ok(0);
        };
        let rows = serde_json::Value::from(
            clusters
                .iter()
                .map(|(id, cluster)| serde_json::json!([id, cluster]))
                .collect::<Vec<_>>(),
        )
        .to_string();
        let mut tx = pool.begin().await?;
        let same: bool = sqlx::query(SAME_CLUSTERS)
            .bind(rows.as_str())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if same {
            return Ok(0);
        }
        sqlx::query(CLEAR_CLUSTERS).execute(&mut *tx).await?;
        sqlx::query(INSERT_CLUSTERS)
            .bind(rows.as_str())
            .execute(&mut *tx)
            .await?;
        let moved = sqlx::query(MOVE_RESULTS)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(moved)
    }
}
