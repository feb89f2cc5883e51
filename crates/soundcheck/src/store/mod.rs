//! Durable state: check results, certifications, their transitions, the event outbox,
//! subscriber cursors and dead letters, exemptions, facts and daily aggregates.
//!
//! [`StateStore`] is the narrow interface the evaluator and the events service use; [`SqlStore`]
//! implements it on SQLite (the embedded default, a WAL-mode file created on first run) and on
//! PostgreSQL. A database URL picks the backend: `sqlite://soundcheck.db`,
//! `postgres://user@host/db`. Migrations for each backend are applied on open.

/// Runs the same code against whichever pool is open (expanded once per backend).
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::store::sql::Pool::Sqlite($p) => $body,
            $crate::store::sql::Pool::Postgres($p) => $body,
        }
    };
}

mod cache;
mod catalog;
mod clusters;
mod deferred;
mod definitions;
mod dialect;
mod encode;
mod held_view;
mod jobs;
mod read;
mod snapshot;
mod sql;
mod sqlite;
mod write_behind;

use std::future::Future;

use serde_json::Value;
use soundcheck_core::events::EventParams;
use soundcheck_core::model::{CertState, CheckState};

pub use cache::StateCache;
pub use catalog::{
    CatalogStore, EntitySnapshot, ExemptionRecord, FactNeeds, FactRecord, NeededFact, Retention,
    SnapshotMap,
};
pub use definitions::{DefinitionKind, DefinitionStore};
pub use encode::EncodedChanges;
pub use jobs::{JobState, JobStore};
pub use read::{ExemptionQuery, ExemptionRow, FactArrival, LevelRow, QueryStore, ResultRow};
pub use sql::{SqlStore, create_postgres_database};

/// Errors at the storage boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported backend.
    #[error("unsupported database URL `{0}`: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// Nothing was stored: the write depended on an earlier one that failed (see
    /// `state::pipeline`). Submitting again is safe.
    #[error("not stored: {0}; submit again")]
    Abandoned(String),
    /// A write stopped without saying whether it was stored (its task panicked or the
    /// runtime stopped); a transaction is never half-written.
    #[error("write interrupted: {0}")]
    Interrupted(String),
}

/// Result alias for the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// The stored state of one (check, entity, scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResult {
    /// The check.
    pub check_id: String,
    /// The entity.
    pub entity_ref: String,
    /// The scope.
    pub scope: String,
    /// The state.
    pub state: CheckState,
}

/// The stored state of one (track, entity, level, scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCertification {
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
}

/// A new or changed check result, with its transition.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultChange {
    /// The new state.
    pub result: StoredResult,
    /// The earlier state, `None` for the first.
    pub previous: Option<CheckState>,
    /// Result details (messages, evaluation info).
    pub details: Option<Value>,
    /// The rendered message.
    pub message: Option<String>,
    /// Who submitted it (`None` for the engine).
    pub submitted_by: Option<String>,
}

/// A new or changed certification level, with its transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificationChange {
    /// The new state.
    pub certification: StoredCertification,
    /// The earlier `state`.
    pub previous_state: Option<CertState>,
    /// The earlier `cumulativeState`.
    pub previous_cumulative: Option<CertState>,
}

/// Rows evaluated without a change: only their last-checked time moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// The entity.
    pub entity_ref: String,
    /// The scope.
    pub scope: String,
}

/// Everything one evaluation step writes, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct StateChanges {
    /// When the changes are stored (milliseconds since the epoch): `timestampMs` of events.
    pub now_ms: i64,
    /// Changed check results.
    pub results: Vec<ResultChange>,
    /// Changed certification levels.
    pub certifications: Vec<CertificationChange>,
    /// (entity, scope) pairs whose check results were re-evaluated.
    pub touched_results: Vec<Touch>,
    /// (entity, scope) pairs whose certifications were re-computed.
    pub touched_certifications: Vec<Touch>,
    /// Single (entity, scope, check id) results re-evaluated without a change.
    pub touched_checks: Vec<(String, String, String)>,
    /// Set by writers whose concurrent transactions never touch the same rows (the blocks of
    /// a batch run): the outbox lock is then taken only after the current states are
    /// written, so such transactions overlap. Otherwise it is taken first, and concurrent
    /// writers of the same entities queue instead of risking a deadlock on their rows.
    pub disjoint: bool,
    /// Facts stored in the same transaction (history always; the latest replaced when not
    /// older, its arrival time moved in any case).
    pub facts: Vec<catalog::FactRecord>,
    /// Results whose state stays but whose details and submitter change
    /// (`preserveStateOnError`).
    pub result_updates: Vec<ResultUpdate>,
    /// Submitted results, recorded for audit.
    pub submissions: Vec<Submission>,
}

impl StateChanges {
    /// Whether write-behind may hold these changes (`store::deferred`): an evaluation's
    /// results and levels only, nothing with details, a message or a submitter, and no
    /// other write of those tables.
    pub fn deferrable(&self) -> bool {
        self.touched_results.is_empty()
            && self.touched_certifications.is_empty()
            && self.touched_checks.is_empty()
            && self.result_updates.is_empty()
            && self.submissions.is_empty()
            && self
                .results
                .iter()
                .all(|r| r.details.is_none() && r.message.is_none() && r.submitted_by.is_none())
    }
}

/// New details for a stored result whose state is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultUpdate {
    /// The check.
    pub check_id: String,
    /// The entity.
    pub entity_ref: String,
    /// The scope.
    pub scope: String,
    /// New details.
    pub details: Option<Value>,
    /// Who submitted them.
    pub submitted_by: Option<String>,
}

/// One submitted result as received, for the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The check.
    pub check_id: String,
    /// The entity.
    pub entity_ref: String,
    /// The scope.
    pub scope: String,
    /// The submitted state.
    pub state: CheckState,
    /// The state stored as a result (differs with `preserveStateOnError`).
    pub stored_state: CheckState,
    /// Submitted details.
    pub details: Option<Value>,
    /// Who submitted it.
    pub submitted_by: String,
    /// Why (required for manual checks).
    pub justification: Option<String>,
}

impl StateChanges {
    /// True when nothing changed state.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty() && self.certifications.is_empty()
    }
}

/// The outbox positions one `apply` wrote: `first_seq..=last_seq` (empty when
/// `last_seq < first_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// First position written.
    pub first_seq: i64,
    /// Last position written.
    pub last_seq: i64,
}

impl Applied {
    /// Number of events written.
    pub fn events(&self) -> i64 {
        (self.last_seq - self.first_seq + 1).max(0)
    }
}

/// The order key of an event: one (check, entity, scope) or (track, entity, level, scope), read
/// from the payload of the two Soundcheck topics; the stored key (or the topic) otherwise.
pub fn ordering_key(params: &EventParams, stored: Option<String>) -> String {
    let field = |name: &str| {
        params
            .event_payload
            .get(name)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_default()
    };
    match params.topic.as_str() {
        soundcheck_core::events::CHECK_STATUS_CHANGE_TOPIC => format!(
            "check|{}|{}|{}",
            field("checkId"),
            field("entityRef"),
            field("scope")
        ),
        soundcheck_core::events::CERTIFICATION_CHANGE_TOPIC => {
            format!(
                "cert|{}|{}|{}|{}",
                field("trackId"),
                field("entityRef"),
                field("levelOrdinal"),
                field("scope")
            )
        }
        _ => stored.unwrap_or_else(|| params.topic.clone()),
    }
}

/// An event read back from the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Position in the outbox (strictly increasing in commit order).
    pub seq: i64,
    /// Events with the same key are delivered in order.
    pub ordering_key: String,
    /// The envelope.
    pub params: EventParams,
    /// The payload exactly as stored (fields in the contract's order), for wire output.
    pub payload_json: String,
}

impl StoredEvent {
    /// The envelope `{topic, eventPayload, metadata}` as one JSON line, payload fields in the
    /// contract's order.
    pub fn envelope_json(&self) -> String {
        let topic = serde_json::to_string(&self.params.topic).unwrap_or_default();
        match &self.params.metadata {
            Some(metadata) => {
                let metadata = serde_json::to_string(metadata).unwrap_or_else(|_| "{}".into());
                format!(
                    r#"{{"topic":{topic},"eventPayload":{},"metadata":{metadata}}}"#,
                    self.payload_json
                )
            }
            None => format!(
                r#"{{"topic":{topic},"eventPayload":{}}}"#,
                self.payload_json
            ),
        }
    }
}

/// An event a subscriber gave up on.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadEvent {
    /// The subscriber id.
    pub subscriber_id: String,
    /// The event.
    pub event: StoredEvent,
    /// Delivery attempts made.
    pub attempts: u32,
    /// The last handler error.
    pub last_error: String,
    /// When it was parked (ms).
    pub dead_at: i64,
}

/// Outbox consistency counts; all zero when the outbox invariant holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxAudit {
    /// Transitions that should have an event but have none.
    pub transitions_without_event: i64,
    /// Events that name no stored transition.
    pub events_without_transition: i64,
    /// Number of transitions.
    pub transitions: i64,
    /// Number of events.
    pub events: i64,
}

/// The storage interface of the evaluator and the events service.
pub trait StateStore: Send + Sync {
    /// Stored check results of these entities.
    fn results_of(
        &self,
        entity_refs: &[String],
    ) -> impl Future<Output = StoreResult<Vec<StoredResult>>> + Send;
    /// Stored certifications of these entities.
    fn certifications_of(
        &self,
        entity_refs: &[String],
    ) -> impl Future<Output = StoreResult<Vec<StoredCertification>>> + Send;
    /// Active exemptions (not revoked, not expired at `now_ms`) as (check id, entity ref).
    fn active_exemptions(
        &self,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<Vec<(String, String)>>> + Send;
    /// Changes in the form this store writes them, prepared outside the transaction.
    type Encoded: Send + Sync + 'static;
    /// Encodes `changes` for [`Self::apply_encoded`]: a pipelined fact submission does it
    /// while the previous one commits.
    fn encode(&self, changes: &StateChanges) -> Self::Encoded;
    /// [`Self::apply`] of changes encoded by [`Self::encode`]: `encoded` must be
    /// `encode(changes)` (the database gets `encoded`, caches follow `changes`).
    fn apply_encoded(
        &self,
        changes: &StateChanges,
        encoded: &Self::Encoded,
        events: bool,
    ) -> impl Future<Output = StoreResult<Applied>> + Send;
    /// Writes state changes, their transitions and (when `events` is on) their events in one
    /// transaction; returns the range of outbox positions written.
    fn apply(
        &self,
        changes: &StateChanges,
        events: bool,
    ) -> impl Future<Output = StoreResult<Applied>> + Send;
    /// Appends an event published by someone else.
    fn publish(
        &self,
        params: &EventParams,
        ordering_key: &str,
    ) -> impl Future<Output = StoreResult<StoredEvent>> + Send;
    /// Events after `after`, oldest first.
    fn events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<StoredEvent>>> + Send;
    /// The newest event's position (0 when none).
    fn last_seq(&self) -> impl Future<Output = StoreResult<i64>> + Send;
    /// A subscriber's durable cursor.
    fn cursor(&self, subscriber_id: &str) -> impl Future<Output = StoreResult<Option<i64>>> + Send;
    /// Saves a subscriber's cursor and topics.
    fn save_cursor(
        &self,
        subscriber_id: &str,
        topics: &[String],
        cursor: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Takes or renews the delivery lease of a subscriber id for `owner` until `until`; false
    /// while another owner's lease is still running.
    fn claim_subscriber(
        &self,
        subscriber_id: &str,
        owner: &str,
        now_ms: i64,
        until: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Gives the lease back (at shutdown).
    fn release_subscriber(
        &self,
        subscriber_id: &str,
        owner: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Parks an event for a subscriber.
    fn park(
        &self,
        subscriber_id: &str,
        seq: i64,
        attempts: u32,
        error: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Parked (not yet replayed) events of a subscriber.
    fn dead_events(
        &self,
        subscriber_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<DeadEvent>>> + Send;
    /// Marks a parked event replayed.
    fn mark_replayed(
        &self,
        subscriber_id: &str,
        seq: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Checks the outbox invariant.
    fn audit_outbox(&self) -> impl Future<Output = StoreResult<OutboxAudit>> + Send;
}

/// A database URL with its password hidden, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:<redacted>@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// A new SQLite file's URL in a temporary directory (removed when the directory is dropped).
#[cfg(test)]
pub(crate) fn temp_sqlite_url(file: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join(file).display());
    (dir, url)
}

#[cfg(test)]
mod tests {
    /// A database written before migration 4 rebuilt `facts` keeps its facts and history.
    #[tokio::test]
    async fn upgrading_a_sqlite_database_keeps_its_facts() {
        let (_dir, url) = super::temp_sqlite_url("old.db");
        let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        super::sql::migrator(&super::sql::SQLITE_MIGRATIONS[..3])
            .run(&pool)
            .await
            .unwrap();
        for sql in [
            "INSERT INTO facts VALUES ('component:default/a', 'github:default/repo', 'default', '{\"stars\":3}', 5, 6)",
            "INSERT INTO fact_history (entity_ref, fact_ref, scope, data, timestamp, received_at) VALUES ('component:default/a', 'github:default/repo', 'default', '{}', 4, 5)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let store = super::SqlStore::open(&url).await.unwrap();
        let times = super::QueryStore::fact_times(
            &store,
            &["component:default/a".to_string()],
            &["github:default/repo".to_string()],
        )
        .await
        .unwrap();
        assert_eq!(times.len(), 1);
        let snapshot = super::CatalogStore::snapshot(&store, "component:default/a", "default", 0)
            .await
            .unwrap();
        assert_eq!(
            snapshot.facts,
            vec![(
                "github:default/repo".to_string(),
                serde_json::json!({"stars": 3}),
                5
            )]
        );
        let super::sql::Pool::Sqlite(pool) = &store.pool else {
            panic!("a SQLite store");
        };
        let history: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM fact_history")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(history, 1);
    }

    #[test]
    fn passwords_in_database_urls_are_hidden() {
        assert_eq!(
            super::redact_url("postgres://app:s3cret@db:5432/soundcheck"),
            "postgres://app:<redacted>@db:5432/soundcheck"
        );
        assert_eq!(
            super::redact_url("sqlite://soundcheck.db"),
            "sqlite://soundcheck.db"
        );
    }
}
