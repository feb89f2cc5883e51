//! SQLite connections: the settings every connection gets, the one connection every write
//! goes through, and the background WAL checkpointer.
//!
//! Fact ingestion writes a few thousand rows about random entities per transaction, so each
//! transaction dirties about one page per row. What keeps that fast (measured in
//! BENCHMARKS.md § 5):
//! - small pages (1 KiB for new files): every dirty page is copied into the WAL at commit
//!   and again into the database file at checkpoint, so bytes written scale with page size;
//! - one writer connection with a large page cache, so the pages a write needs are in
//!   memory rather than read back from the file; every write of the process goes through
//!   it, because SQLite empties a connection's whole cache when another connection has
//!   committed since its last transaction (a job's lease, an exemption, a cursor);
//! - checkpoints in the background, every few milliseconds while the WAL grows, so commits
//!   rarely copy pages themselves; SQLite's own auto-checkpoint stays as a backstop, at
//!   128 MiB of WAL (a commit that runs it waits for two `fsync`s).

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use super::StoreResult;
use super::dialect;

/// Page size of new database files (existing files keep theirs).
const PAGE_SIZE: u32 = 1024;
/// Page cache of each reading connection.
const READER_CACHE_KIB: u32 = 128 * 1024;
/// Page cache of the writer connection: it only grows as pages are used, up to this.
const WRITER_CACHE_KIB: u32 = 1024 * 1024;
/// WAL size at which a committing connection checkpoints itself, if the background
/// checkpointer has fallen behind.
const AUTOCHECKPOINT_BYTES: i64 = 128 * 1024 * 1024;
/// Background checkpoint interval while the WAL holds pages not yet copied, and when idle.
const CHECKPOINT_BUSY: Duration = Duration::from_millis(20);
const CHECKPOINT_IDLE: Duration = Duration::from_millis(200);

/// The reading pool (reads only) and the writer connection every write goes through, of
/// the SQLite file at `url`, created if missing. Migrations are the caller's.
pub(super) async fn open(url: &str) -> StoreResult<(SqlitePool, SqlitePool)> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .page_size(PAGE_SIZE)
        .pragma("temp_store", "memory")
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30));
    let readers = SqlitePoolOptions::new()
        .max_connections(4)
        .after_connect(|conn, _| Box::pin(async move { prepare(conn).await }))
        .connect_with(
            options
                .clone()
                .pragma("cache_size", format!("-{READER_CACHE_KIB}")),
        )
        .await?;
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        // One connection, always the same, kept with its page cache warm; no ping before
        // each write (sqlx still checks it when a write gives it back).
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .after_connect(|conn, _| Box::pin(async move { prepare(conn).await }))
        .connect_lazy_with(options.pragma("cache_size", format!("-{WRITER_CACHE_KIB}")));
    Ok((readers, writer))
}

/// Per connection: the staging tables of bulk writes, and an auto-checkpoint threshold in
/// bytes whatever the file's page size.
async fn prepare(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let staged_facts = dialect::SQLITE.staged_facts.as_ref().map(|s| s.create);
    for sql in dialect::SQLITE.create_stage.into_iter().chain(staged_facts) {
        sqlx::query(sql).execute(&mut *conn).await?;
    }
    let page_size: i64 = sqlx::query("PRAGMA page_size")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let pages = AUTOCHECKPOINT_BYTES / page_size.max(512);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA wal_autocheckpoint = {pages}"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Checkpoints the WAL in the background (passive: never blocks writers), often while it
/// holds pages not yet copied. Ends when the pool closes or the runtime stops.
pub(super) fn spawn_checkpointer(pool: SqlitePool) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        let mut pause = CHECKPOINT_IDLE;
        // (pages in the WAL, pages copied) after the previous pass.
        let mut last = (-1, -1);
        while !pool.is_closed() {
            tokio::time::sleep(pause).await;
            let pass = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await
                .and_then(|row| Ok((row.try_get::<i64, _>(1)?, row.try_get::<i64, _>(2)?)));
            pause = match pass {
                // Busy while the WAL moves or holds pages not yet copied.
                Ok((log, copied)) => {
                    let busy = (log, copied) != last || copied < log;
                    last = (log, copied);
                    if busy {
                        CHECKPOINT_BUSY
                    } else {
                        CHECKPOINT_IDLE
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "background checkpoint failed");
                    CHECKPOINT_IDLE
                }
            };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        CatalogStore, DefinitionKind, DefinitionStore, JobStore, SqlStore, StateStore,
    };

    /// The once-a-second check for catalog changes (`QueryStore::change_marker`) reads the
    /// update-time index, not every entity body.
    #[tokio::test]
    async fn the_catalog_change_check_reads_an_index() {
        let (_dir, url) = crate::store::temp_sqlite_url("state.db");
        let store = SqlStore::open(&url).await.unwrap();
        let crate::store::sql::Pool::Sqlite(readers) = &store.pool else {
            panic!("a SQLite store reads through a SQLite pool");
        };
        let sql = format!("EXPLAIN QUERY PLAN {}", crate::store::read::CHANGE_MARKER);
        let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(readers)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(3))
            .collect();
        // The entity count and the latest update time both read the index.
        let entity_steps: Vec<&String> = plan.iter().filter(|s| s.contains("entities")).collect();
        assert_eq!(entity_steps.len(), 2, "{plan:?}");
        assert!(
            entity_steps
                .iter()
                .all(|s| s.contains("entities_updated_at")),
            "{plan:?}"
        );
    }

    /// `PRAGMA data_version` on `pool`'s connection: it moves when another connection has
    /// committed since that connection's previous transaction.
    async fn data_version(pool: &SqlitePool) -> i64 {
        sqlx::query("PRAGMA data_version")
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0)
    }

    /// Writes other than evaluation state (catalog, definitions, job leases, delivery
    /// positions) go through the writer connection too: a commit on any other connection
    /// would empty the writer's page cache.
    #[tokio::test]
    async fn every_write_goes_through_the_writer_connection() {
        let (_dir, url) = crate::store::temp_sqlite_url("state.db");
        let store = SqlStore::open(&url).await.unwrap();
        let crate::store::sql::Pool::Sqlite(writer) = store.write_pool() else {
            panic!("a SQLite store writes through its writer");
        };
        let crate::store::sql::Pool::Sqlite(readers) = &store.pool else {
            panic!("a SQLite store reads through a SQLite pool");
        };
        let before = data_version(writer).await;
        let body = serde_json::json!({"kind": "Component", "metadata": {"name": "a"}});
        store
            .upsert_entities(&[("component:default/a".into(), body)], 1)
            .await
            .unwrap();
        let check = serde_json::json!({"id": "c", "rule": {"factRef": "f", "path": "$.x", "operator": "equal", "value": 1}});
        store
            .put_definitions(DefinitionKind::Check, &[("c".into(), check)], 1)
            .await
            .unwrap();
        store.ensure_job("job", 0).await.unwrap();
        assert!(store.claim_job("job", "me", 1, 1_000).await.unwrap());
        store.save_cursor("subscriber", &[], 0).await.unwrap();
        assert_eq!(data_version(writer).await, before);
        // The pragma does notice another connection's commit.
        sqlx::query("INSERT INTO definitions (kind, id, body, created_at, updated_at) VALUES ('check', 'd', '{}', 1, 1)")
            .execute(readers)
            .await
            .unwrap();
        assert_ne!(data_version(writer).await, before);
    }

    /// The bundled SQLite is built with `.cargo/config.toml`'s `LIBSQLITE3_FLAGS`: without
    /// the shared page-cache group and memory statistics, whose process-wide mutexes every
    /// connection took on each page and allocation.
    #[tokio::test]
    async fn sqlite_is_built_without_its_process_wide_mutexes() {
        let (_dir, url) = crate::store::temp_sqlite_url("state.db");
        let (readers, _writer) = open(&url).await.unwrap();
        let options: Vec<String> = sqlx::query("PRAGMA compile_options")
            .fetch_all(&readers)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }
}
