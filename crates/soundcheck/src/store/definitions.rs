//! Definitions created through the API (checks, tracks, campaigns, fact collectors), kept as
//! the JSON they were submitted with and validated again whenever they are loaded.

use std::future::Future;

use serde_json::Value;
use sqlx::Row;

use super::sql::SqlStore;
use super::{StoreError, StoreResult};

/// What kind of definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefinitionKind {
    /// A check.
    Check,
    /// A track or a campaign (a track with `type: campaign`).
    Track,
    /// A fact collector.
    Collector,
}

impl DefinitionKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Track => "track",
            Self::Collector => "collector",
        }
    }
}

/// Storage of API-created definitions.
pub trait DefinitionStore: Send + Sync {
    /// Every definition of a kind, oldest first: (id, body).
    fn definitions(
        &self,
        kind: DefinitionKind,
    ) -> impl Future<Output = StoreResult<Vec<(String, Value)>>> + Send;
    /// Creates or replaces definitions, all or none.
    fn put_definitions(
        &self,
        kind: DefinitionKind,
        items: &[(String, Value)],
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes one; true when it existed.
    fn delete_definition(
        &self,
        kind: DefinitionKind,
        id: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}

const UPSERT: &str = "INSERT INTO definitions (kind, id, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
    ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at";

impl DefinitionStore for SqlStore {
    async fn definitions(&self, kind: DefinitionKind) -> StoreResult<Vec<(String, Value)>> {
        const SQL: &str =
            "SELECT id, body FROM definitions WHERE kind = $1 ORDER BY created_at, id";
        on_pool!(&self.pool, p => {
            sqlx::query(SQL).bind(kind.as_str()).fetch_all(p).await?.into_iter().map(|r| {
                let body: String = r.try_get(1)?;
                let body = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("definition: {e}")))?;
                Ok((r.try_get(0)?, body))
            }).collect()
        })
    }

    async fn put_definitions(
        &self,
        kind: DefinitionKind,
        items: &[(String, Value)],
        now_ms: i64,
    ) -> StoreResult<()> {
        on_pool!(self.write_pool(), p => {
            let mut tx = p.begin_with(self.begin_sql()).await?;
            for (id, body) in items {
                sqlx::query(UPSERT).bind(kind.as_str()).bind(id.as_str()).bind(body.to_string()).bind(now_ms).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    async fn delete_definition(&self, kind: DefinitionKind, id: &str) -> StoreResult<bool> {
        const SQL: &str = "DELETE FROM definitions WHERE kind = $1 AND id = $2";
        on_pool!(self.write_pool(), p => Ok(sqlx::query(SQL).bind(kind.as_str()).bind(id).execute(p).await?.rows_affected() > 0))
    }
}
