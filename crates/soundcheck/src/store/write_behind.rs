//! Write-behind on SQLite, the database side (`store::deferred` holds the rows in memory):
//! the statements that write held results and levels and roll transitions forward, the
//! bulk write in the background, and the rule every other write of those tables follows
//! ([`WriteHeld`]: write what is held first, then mark the transitions written).

use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use super::StoreResult;
use super::deferred::{Deferred, HeldView, Taken};

/// Rows per transaction of a background bulk write: small enough that a fact submission
/// waits a few milliseconds for one, not for the whole write (20,000 gave a p99 of 379 ms
/// on the benchmark, 5,000 160 ms; BENCHMARKS.md § 5, twelfth session).
const WRITE_BEHIND_CHUNK: usize = 5_000;
use super::sql::{Pool, SqlStore};

/// Writes held results (`$1`: rows of a [`super::deferred::Taken::chunks`] statement), each keyed with its check's
/// cluster as every result write is (migration 7).
pub const WRITE_RESULTS: &str = "INSERT INTO check_results (check_id, entity_ref, scope, state, details, message, submitted_by, last_checked, last_changed, check_cluster) \
    SELECT value->>0, value->>1, value->>2, value->>3, NULL, NULL, NULL, value->>4, value->>4, \
    COALESCE((SELECT cluster FROM check_clusters c WHERE c.check_id = value->>0), 0) FROM json_each($1) WHERE true \
    ON CONFLICT (entity_ref, scope, check_cluster, check_id) DO UPDATE SET state = excluded.state, details = NULL, message = NULL, \
    submitted_by = NULL, last_checked = excluded.last_checked, last_changed = excluded.last_changed";

/// Writes held levels (`$1`: rows of a [`super::deferred::Taken::chunks`] statement).
pub const WRITE_LEVELS: &str = "INSERT INTO certifications (track_id, entity_ref, level_ordinal, scope, state, cumulative_state, last_checked, last_changed) \
    SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>6 FROM json_each($1) WHERE true \
    ON CONFLICT (entity_ref, scope, track_id, level_ordinal) DO UPDATE SET state = excluded.state, cumulative_state = excluded.cumulative_state, \
    last_checked = excluded.last_checked, last_changed = excluded.last_changed";

/// Marks the transitions up to `$1` (results) and `$2` (levels) as written: the end of a
/// bulk write spread over several transactions, which took its rows when those were the
/// newest.
pub const MARK_WRITTEN_UP_TO: &str = "UPDATE state_written SET check_transition = max(check_transition, $1), \
    certification_transition = max(certification_transition, $2) WHERE id = 1";

/// The newest transitions now: (results, levels).
pub const NEWEST_TRANSITIONS: &str = "SELECT (SELECT COALESCE(max(id), 0) FROM check_transitions), \
    (SELECT COALESCE(max(id), 0) FROM certification_transitions)";

/// Records that the tables reflect every transition committed so far. Run at the end of
/// every transaction that writes results or levels to their tables.
pub const MARK_WRITTEN: &str = "UPDATE state_written SET \
    check_transition = max(check_transition, (SELECT COALESCE(max(id), 0) FROM check_transitions)), \
    certification_transition = max(certification_transition, (SELECT COALESCE(max(id), 0) FROM certification_transitions)) \
    WHERE id = 1";

/// After a crash: the newest transition of each key committed after the tables were last
/// written, written to the tables (results, then levels), then [`MARK_WRITTEN`].
pub const ROLL_FORWARD: [&str; 3] = [
    "INSERT INTO check_results (check_id, entity_ref, scope, state, details, message, submitted_by, last_checked, last_changed, check_cluster) \
        SELECT t.check_id, t.entity_ref, t.scope, t.state, NULL, NULL, NULL, t.at, t.at, \
        COALESCE((SELECT cluster FROM check_clusters c WHERE c.check_id = t.check_id), 0) \
        FROM (SELECT check_id, entity_ref, scope, state, at, max(id) FROM check_transitions \
              WHERE id > (SELECT check_transition FROM state_written WHERE id = 1) GROUP BY check_id, entity_ref, scope) t WHERE true \
        ON CONFLICT (entity_ref, scope, check_cluster, check_id) DO UPDATE SET state = excluded.state, details = NULL, message = NULL, \
        submitted_by = NULL, last_checked = excluded.last_checked, last_changed = excluded.last_changed",
    "INSERT INTO certifications (track_id, entity_ref, level_ordinal, scope, state, cumulative_state, last_checked, last_changed) \
        SELECT t.track_id, t.entity_ref, t.level_ordinal, t.scope, t.state, t.cumulative_state, t.at, t.at \
        FROM (SELECT track_id, entity_ref, level_ordinal, scope, state, cumulative_state, at, max(id) FROM certification_transitions \
              WHERE id > (SELECT certification_transition FROM state_written WHERE id = 1) GROUP BY track_id, entity_ref, level_ordinal, scope) t WHERE true \
        ON CONFLICT (entity_ref, scope, track_id, level_ordinal) DO UPDATE SET state = excluded.state, cumulative_state = excluded.cumulative_state, \
        last_checked = excluded.last_checked, last_changed = excluded.last_changed",
    MARK_WRITTEN,
];

/// On open: transitions committed after the tables were last written (write-behind, then a
/// crash) rolled forward into them; see `store::deferred`.
pub(super) async fn roll_forward(writer: &SqlitePool) -> StoreResult<()> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut rows = 0;
    for sql in ROLL_FORWARD {
        rows += sqlx::query(sql).execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    if rows > 1 {
        tracing::info!(
            rows = rows - 1,
            "results and levels rolled forward from their transitions"
        );
    }
    Ok(())
}

/// Writing what write-behind holds, inside a write transaction: on SQLite the held rows and
/// the transitions the tables now reflect; on PostgreSQL (never write-behind) nothing.
pub(super) trait WriteHeld {
    /// Writes everything held (when `deferred` holds anything), after rolling transitions
    /// forward if a hold may have committed unseen. The caller runs
    /// [`WriteHeld::mark_written`] before its commit and passes the result to [`written`]
    /// after it.
    async fn write_held<'d>(&mut self, deferred: Option<&'d Deferred>) -> StoreResult<Written<'d>>;
    /// Marks every transition committed so far (this transaction's too) as written.
    async fn mark_written(&mut self) -> StoreResult<()>;
}

/// What a transaction wrote of what write-behind held; see [`written`].
#[derive(Default)]
pub(super) struct Written<'d> {
    taken: Option<Taken<'d>>,
    rolled: Option<(&'d Deferred, u64)>,
}

/// After the commit of a transaction that wrote what was held: those rows leave memory.
pub(super) fn written(written: Written<'_>) {
    if let Some(taken) = written.taken {
        taken.done(chrono::Utc::now().timestamp_millis());
    }
    if let Some((deferred, count)) = written.rolled {
        deferred.rolled_forward(count);
    }
}

/// A bulk write of `rows` held rows, begun at `started`, committed: its metric and log line.
fn record_write(rows: usize, started: std::time::Instant) {
    metrics::histogram!("soundcheck_state_write_behind_seconds")
        .record(started.elapsed().as_secs_f64());
    tracing::debug!(
        rows,
        ms = started.elapsed().as_millis() as u64,
        "held results and levels written"
    );
}

/// Rolls transitions forward when a hold may have committed unseen; returns what to pass to
/// [`Deferred::rolled_forward`] after the commit.
async fn roll_forward_if_unsure(
    conn: &mut sqlx::SqliteConnection,
    deferred: &Deferred,
) -> StoreResult<Option<u64>> {
    let Some(count) = deferred.unsure() else {
        return Ok(None);
    };
    for sql in &ROLL_FORWARD[..2] {
        sqlx::query(*sql).execute(&mut *conn).await?;
    }
    tracing::warn!(
        "a transaction ended without saying whether it committed: results and levels rolled forward from their transitions"
    );
    Ok(Some(count))
}

impl WriteHeld for &mut sqlx::SqliteConnection {
    async fn write_held<'d>(&mut self, deferred: Option<&'d Deferred>) -> StoreResult<Written<'d>> {
        let Some(deferred) = deferred else {
            return Ok(Written::default());
        };
        let rolled = roll_forward_if_unsure(self, deferred).await?;
        let taken = deferred.take();
        if let Some(taken) = &taken {
            for (sql, rows) in taken.chunks(usize::MAX) {
                sqlx::query(sql).bind(rows).execute(&mut **self).await?;
            }
        }
        Ok(Written {
            taken,
            rolled: rolled.map(|count| (deferred, count)),
        })
    }

    async fn mark_written(&mut self) -> StoreResult<()> {
        sqlx::query(MARK_WRITTEN).execute(&mut **self).await?;
        Ok(())
    }
}

impl WriteHeld for &mut sqlx::PgConnection {
    async fn write_held<'d>(
        &mut self,
        _deferred: Option<&'d Deferred>,
    ) -> StoreResult<Written<'d>> {
        Ok(Written::default())
    }

    async fn mark_written(&mut self) -> StoreResult<()> {
        Ok(())
    }
}

impl SqlStore {
    /// Holds the check results and levels that fact submissions change for up to
    /// `seconds` and writes them in bulk (`store::deferred`). SQLite only; 0, or a
    /// PostgreSQL store, writes them with each submission.
    #[must_use]
    pub fn with_write_behind(mut self, seconds: u64) -> Self {
        if matches!(self.pool, Pool::Sqlite(_)) && seconds > 0 {
            let ms = i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
            let now = chrono::Utc::now().timestamp_millis();
            self.deferred = Some(std::sync::Arc::new(super::deferred::Deferred::new(ms, now)));
        }
        self
    }

    /// The background bulk write of what write-behind holds, in transactions of
    /// [`WRITE_BEHIND_CHUNK`] rows so that fact submissions commit between them. The tables
    /// are marked as reflecting the transitions committed when the rows were taken only with
    /// the last chunk; a write of the tables in between takes the rows over, and this one
    /// stops.
    pub(super) async fn write_behind(&self) {
        let Some(deferred) = self.deferred.as_deref() else {
            return;
        };
        /// Lets the next due write start however this one ends, a panic included.
        struct Finish<'a>(&'a Deferred);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                self.0.finished();
            }
        }
        let _finish = Finish(deferred);
        let started = std::time::Instant::now();
        match self.write_in_chunks(deferred).await {
            Ok(Some(rows)) => record_write(rows, started),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "writing held results and levels failed; they stay held and are written with the next write")
            }
        }
    }

    /// Starts the bulk writes that come due while no submission arrives to start them (every
    /// second, it looks). SQLite with write-behind only; the task ends with the runtime.
    pub fn spawn_write_behind_timer(&self) {
        if self.deferred.is_none() {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let due = store
                    .deferred
                    .as_deref()
                    .is_some_and(|d| d.due(chrono::Utc::now().timestamp_millis()));
                if due {
                    store.write_behind().await;
                }
            }
        });
    }

    /// Runs `read`, a read of the state tables, and returns it with what write-behind holds
    /// for `entity_refs`; read again when a bulk write committed in between (its rows then
    /// left memory, and the read may have missed them). No view without write-behind.
    pub(super) async fn read_with_held<T, F, Fut>(
        &self,
        entity_refs: &[&str],
        read: F,
    ) -> StoreResult<(T, Option<HeldView>)>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = StoreResult<T>>,
    {
        let Some(deferred) = self.deferred.as_deref() else {
            return Ok((read().await?, None));
        };
        loop {
            let epoch = deferred.epoch();
            let value = read().await?;
            if let Some(view) = deferred.view(entity_refs.iter().copied(), epoch) {
                return Ok((value, Some(view)));
            }
        }
    }

    async fn write_in_chunks(
        &self,
        deferred: &super::deferred::Deferred,
    ) -> StoreResult<Option<usize>> {
        let Pool::Sqlite(p) = self.write_pool() else {
            return Ok(None);
        };
        let mut first = p.begin_with("BEGIN IMMEDIATE").await?;
        let Some(taken) = deferred.take() else {
            return Ok(None);
        };
        let rolled = roll_forward_if_unsure(&mut first, deferred).await?;
        let newest = sqlx::query(NEWEST_TRANSITIONS)
            .fetch_one(&mut *first)
            .await?;
        let (results_up_to, levels_up_to): (i64, i64) = (newest.try_get(0)?, newest.try_get(1)?);
        let chunks = taken.chunks(WRITE_BEHIND_CHUNK);
        let last = chunks.len().saturating_sub(1);
        let mut first = Some(first);
        for (i, (sql, rows)) in chunks.into_iter().enumerate() {
            let mut tx = match first.take() {
                Some(tx) => tx,
                None => {
                    let tx = p.begin_with("BEGIN IMMEDIATE").await?;
                    if !taken.still_writing() {
                        return Ok(None);
                    }
                    tx
                }
            };
            sqlx::query(sql).bind(rows).execute(&mut *tx).await?;
            if i == last {
                sqlx::query(MARK_WRITTEN_UP_TO)
                    .bind(results_up_to)
                    .bind(levels_up_to)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            if let Some(count) = rolled.filter(|_| i == 0) {
                deferred.rolled_forward(count);
            }
        }
        let rows = taken.len();
        taken.done(chrono::Utc::now().timestamp_millis());
        Ok(Some(rows))
    }

    /// Writes the results and levels held by write-behind to their tables, so that reads
    /// across entities find them. Does nothing when nothing is held.
    pub async fn settle(&self) -> StoreResult<()> {
        let Some(deferred) = self
            .deferred
            .as_deref()
            .filter(|d| !d.is_empty() || d.unsure().is_some())
        else {
            return Ok(());
        };
        let Pool::Sqlite(p) = self.write_pool() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
        let held = (&mut *tx).write_held(Some(deferred)).await?;
        (&mut *tx).mark_written().await?;
        tx.commit().await?;
        let rows = held.taken.as_ref().map_or(0, Taken::len);
        written(held);
        if rows > 0 {
            record_write(rows, started);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{QueryStore, ResultChange, StateChanges, StoredResult};
    use super::*;
    use soundcheck_core::model::CheckState;

    /// A hold taken back although its transaction may have committed (here: its transition
    /// is in the log) makes the next write roll the transitions forward, so the tables
    /// still get the result.
    #[tokio::test]
    async fn an_unsure_hold_is_rolled_forward_by_the_next_write() {
        let (_dir, url) = crate::store::temp_sqlite_url("unsure.db");
        let store = SqlStore::open(&url).await.unwrap().with_write_behind(3600);
        let changes = StateChanges {
            now_ms: 5_000,
            results: vec![ResultChange {
                result: StoredResult {
                    check_id: "c1".into(),
                    entity_ref: "component:default/a".into(),
                    scope: "default".into(),
                    state: CheckState::Failed,
                },
                previous: None,
                details: None,
                message: None,
                submitted_by: None,
            }],
            ..Default::default()
        };
        // The transaction's transition reached the log; its hold was dropped unkept.
        let Pool::Sqlite(writer) = store.write_pool() else {
            panic!("a SQLite store");
        };
        sqlx::query("INSERT INTO check_transitions (check_id, entity_ref, scope, previous_state, state, at) VALUES ('c1', 'component:default/a', 'default', NULL, 'failed', 5000)")
            .execute(writer)
            .await
            .unwrap();
        let deferred = store.deferred.as_deref().unwrap();
        drop(deferred.hold(&changes));
        assert!(deferred.is_empty() && deferred.unsure().is_some());
        assert!(
            store
                .result_rows("component:default/a", None, &[])
                .await
                .unwrap()
                .is_empty()
        );
        store.settle().await.unwrap();
        let rows = store
            .result_rows("component:default/a", None, &[])
            .await
            .unwrap();
        assert_eq!(
            (rows.len(), rows[0].state, rows[0].last_changed),
            (1, CheckState::Failed, 5_000)
        );
        assert_eq!(deferred.unsure(), None);
        // And the tables are marked: nothing to roll forward on the next open.
        let marks: (i64,) = sqlx::query_as("SELECT check_transition FROM state_written")
            .fetch_one(writer)
            .await
            .unwrap();
        assert_eq!(marks.0, 1);
    }
}
