//! The SQL that differs between SQLite and PostgreSQL: bulk writes expand one JSON array
//! parameter server-side (`json_each` / `jsonb_array_elements`) so a block of thousands of
//! changes is a handful of statements, and event payloads are built in SQL with their keys in
//! the contract's order (`json_object` / `json_build_object`).
//!
//! Result rows: `[checkId, entityRef, scope, state, previousState, null, details, message,
//! submittedBy]`. Certification rows: `[trackId, entityRef, levelOrdinal, scope, state,
//! cumulativeState, previousState, previousCumulativeState, null]`. Staging takes the array as
//! `$1`; the statements reading the staging tables take the time in milliseconds as `$1` and,
//! for transitions, the outbox position before the block as `$2` (null when events are off). The rows are first copied into per-connection staging
//! tables, so the JSON is parsed once and every later statement reads plain columns.

/// The statements of one backend.
pub struct Dialect {
    /// Facts from a JSON array `$1` of `[entity, fact ref, scope, data text, timestamp]`
    /// received at `$2`: the latest (one row per key; an older copy than the stored one only
    /// moves `received_at`, the last arrival, which dates the results that read it, and never
    /// backwards, whatever the order replicas commit in) and the history (every row).
    pub upsert_facts: &'static str,
    pub insert_fact_history: &'static str,
    /// Where set, facts are staged once and both tables written from the staging table
    /// instead (every fact, in order: the latest table's upsert applies them one by one).
    pub staged_facts: Option<StagedFacts>,
    /// Creates the per-connection staging tables (run when a connection opens).
    pub create_stage: [&'static str; 2],
    /// Empties a staging table before it is filled: results, certifications.
    pub clear_stage: [&'static str; 2],
    pub stage_results: &'static str,
    pub stage_certifications: &'static str,
    pub upsert_results: &'static str,
    pub insert_check_transitions: &'static str,
    pub upsert_certifications: &'static str,
    pub insert_certification_transitions: &'static str,
    /// For small blocks: the same writes straight from the JSON array, without staging
    /// (`$1` array, `$2` time, `$3` the outbox position before the rows): results upsert,
    /// check transitions, certifications upsert, certification transitions.
    pub direct: [&'static str; 4],
    pub touch_results: &'static str,
    pub touch_certifications: &'static str,
    pub touch_result_checks: &'static str,
    /// The same for one entity and scope (`$3`, `$4`) and a JSON array of check ids: equality
    /// on the key's leading columns, so the planner uses the primary key whatever its
    /// estimate of the array's length (on SQLite it then reads the entity's results, which
    /// the key orders by cluster before check).
    pub touch_entity_checks: &'static str,
    pub results_of: &'static str,
    /// Events after `$1` (at most `$2`), from the three tables that hold them.
    pub events_after: &'static str,
    pub certifications_of: &'static str,
    /// Serialises event writers so sequence numbers become visible in order (PostgreSQL).
    pub lock_event_log: Option<&'static str>,
}

/// Facts written through a staging table (`$1` the JSON array of every fact; then the time
/// in milliseconds as `$1`).
pub struct StagedFacts {
    /// Creates the per-connection staging table (run when a connection opens).
    pub create: &'static str,
    pub clear: &'static str,
    pub stage: &'static str,
    pub upsert: &'static str,
    pub history: &'static str,
}

/// Statements that read the staging tables: the same on both backends.
macro_rules! from_stage {
    () => {
        (
            "INSERT INTO check_results (check_id, entity_ref, scope, state, details, message, submitted_by, last_checked, last_changed) \
             SELECT check_id, entity_ref, scope, state, details, message, submitted_by, $1, $1 FROM stage_results WHERE true \
             ON CONFLICT (entity_ref, scope, check_id) DO UPDATE SET state = excluded.state, details = excluded.details, message = excluded.message, \
             submitted_by = excluded.submitted_by, last_checked = excluded.last_checked, last_changed = excluded.last_changed",
            "INSERT INTO check_transitions (check_id, entity_ref, scope, previous_state, state, at, seq) \
             SELECT check_id, entity_ref, scope, previous_state, state, $1, $2 + idx + 1 FROM stage_results ORDER BY idx",
            "INSERT INTO certifications (track_id, entity_ref, level_ordinal, scope, state, cumulative_state, last_checked, last_changed) \
             SELECT track_id, entity_ref, level_ordinal, scope, state, cumulative_state, $1, $1 FROM stage_certifications WHERE true \
             ON CONFLICT (entity_ref, scope, track_id, level_ordinal) DO UPDATE SET state = excluded.state, cumulative_state = excluded.cumulative_state, \
             last_checked = excluded.last_checked, last_changed = excluded.last_changed",
            "INSERT INTO certification_transitions (track_id, entity_ref, level_ordinal, scope, previous_state, state, previous_cumulative_state, cumulative_state, at, seq) \
             SELECT track_id, entity_ref, level_ordinal, scope, previous_state, state, previous_cumulative_state, cumulative_state, $1, $2 + idx + 1 FROM stage_certifications ORDER BY idx",
        )
    };
}

const STAGE: (&str, &str, &str, &str) = from_stage!();

pub const SQLITE: Dialect = Dialect {
    upsert_facts: "INSERT INTO facts (entity_ref, fact_ref, scope, data, timestamp, received_at) \
        SELECT value->>0, value->>1, value->>2, value->>3, value->>4, $2 FROM jsonb_each($1) WHERE true \
        ON CONFLICT (entity_ref, fact_ref, scope) DO UPDATE SET \
        data = CASE WHEN excluded.timestamp >= facts.timestamp THEN excluded.data ELSE facts.data END, \
        timestamp = max(excluded.timestamp, facts.timestamp), received_at = max(excluded.received_at, facts.received_at)",
    insert_fact_history: "INSERT INTO fact_history (entity_ref, fact_ref, scope, data, timestamp, received_at) \
        SELECT value->>0, value->>1, value->>2, value->>3, value->>4, $2 FROM jsonb_each($1) ORDER BY key",
    // SQLite applies an upsert's rows one by one, so the same key twice in a batch is fine.
    staged_facts: Some(StagedFacts {
        create: "CREATE TEMP TABLE IF NOT EXISTS stage_facts (idx INTEGER PRIMARY KEY, entity_ref TEXT, fact_ref TEXT, scope TEXT, data TEXT, timestamp BIGINT)",
        clear: "DELETE FROM temp.stage_facts",
        stage: "INSERT INTO temp.stage_facts SELECT key, value->>0, value->>1, value->>2, value->>3, value->>4 FROM jsonb_each($1)",
        upsert: "INSERT INTO facts (entity_ref, fact_ref, scope, data, timestamp, received_at) \
            SELECT entity_ref, fact_ref, scope, data, timestamp, $1 FROM temp.stage_facts WHERE true ORDER BY idx \
            ON CONFLICT (entity_ref, fact_ref, scope) DO UPDATE SET \
            data = CASE WHEN excluded.timestamp >= facts.timestamp THEN excluded.data ELSE facts.data END, \
            timestamp = max(excluded.timestamp, facts.timestamp), received_at = max(excluded.received_at, facts.received_at)",
        history: "INSERT INTO fact_history (entity_ref, fact_ref, scope, data, timestamp, received_at) \
            SELECT entity_ref, fact_ref, scope, data, timestamp, $1 FROM temp.stage_facts ORDER BY idx",
    }),
    create_stage: [
        "CREATE TEMP TABLE IF NOT EXISTS stage_results (idx INTEGER PRIMARY KEY, check_id TEXT, entity_ref TEXT, scope TEXT, state TEXT, previous_state TEXT, event_id TEXT, details TEXT, message TEXT, submitted_by TEXT)",
        "CREATE TEMP TABLE IF NOT EXISTS stage_certifications (idx INTEGER PRIMARY KEY, track_id TEXT, entity_ref TEXT, level_ordinal BIGINT, scope TEXT, state TEXT, cumulative_state TEXT, previous_state TEXT, previous_cumulative_state TEXT, event_id TEXT)",
    ],
    clear_stage: [
        "DELETE FROM temp.stage_results",
        "DELETE FROM temp.stage_certifications",
    ],
    stage_results: "INSERT INTO temp.stage_results SELECT key, value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8 FROM jsonb_each($1)",
    stage_certifications: "INSERT INTO temp.stage_certifications SELECT key, value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8 FROM jsonb_each($1)",
    // Each result row takes its check's cluster (see migration 7): the key is
    // (entity, scope, cluster, check).
    upsert_results: "INSERT INTO check_results (check_id, entity_ref, scope, state, details, message, submitted_by, last_checked, last_changed, check_cluster) \
        SELECT check_id, entity_ref, scope, state, details, message, submitted_by, $1, $1, \
        COALESCE((SELECT cluster FROM check_clusters c WHERE c.check_id = stage_results.check_id), 0) FROM stage_results WHERE true \
        ON CONFLICT (entity_ref, scope, check_cluster, check_id) DO UPDATE SET state = excluded.state, details = excluded.details, message = excluded.message, \
        submitted_by = excluded.submitted_by, last_checked = excluded.last_checked, last_changed = excluded.last_changed",
    insert_check_transitions: STAGE.1,
    upsert_certifications: STAGE.2,
    insert_certification_transitions: STAGE.3,
    direct: [
        "INSERT INTO check_results (check_id, entity_ref, scope, state, details, message, submitted_by, last_checked, last_changed, check_cluster) \
            SELECT value->>0, value->>1, value->>2, value->>3, value->>6, value->>7, value->>8, $2, $2, \
            COALESCE((SELECT cluster FROM check_clusters c WHERE c.check_id = value->>0), 0) FROM jsonb_each($1) WHERE true \
            ON CONFLICT (entity_ref, scope, check_cluster, check_id) DO UPDATE SET state = excluded.state, details = excluded.details, message = excluded.message, \
            submitted_by = excluded.submitted_by, last_checked = excluded.last_checked, last_changed = excluded.last_changed",
        "INSERT INTO check_transitions (check_id, entity_ref, scope, previous_state, state, at, seq) \
            SELECT value->>0, value->>1, value->>2, value->>4, value->>3, $2, $3 + key + 1 FROM jsonb_each($1) ORDER BY key",
        "INSERT INTO certifications (track_id, entity_ref, level_ordinal, scope, state, cumulative_state, last_checked, last_changed) \
            SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, $2, $2 FROM jsonb_each($1) WHERE true \
            ON CONFLICT (entity_ref, scope, track_id, level_ordinal) DO UPDATE SET state = excluded.state, cumulative_state = excluded.cumulative_state, \
            last_checked = excluded.last_checked, last_changed = excluded.last_changed",
        "INSERT INTO certification_transitions (track_id, entity_ref, level_ordinal, scope, previous_state, state, previous_cumulative_state, cumulative_state, at, seq) \
            SELECT value->>0, value->>1, value->>2, value->>3, value->>6, value->>4, value->>7, value->>5, $2, $3 + key + 1 FROM jsonb_each($1) ORDER BY key",
    ],
    touch_results: "UPDATE check_results SET last_checked = $2 WHERE last_checked <> $2 AND (entity_ref, scope) IN (SELECT value->>0, value->>1 FROM json_each(jsonb($1)))",
    touch_certifications: "UPDATE certifications SET last_checked = $2 WHERE last_checked <> $2 AND (entity_ref, scope) IN (SELECT value->>0, value->>1 FROM json_each(jsonb($1)))",
    touch_result_checks: "UPDATE check_results SET last_checked = $2 WHERE (entity_ref, scope, check_id) IN (SELECT value->>0, value->>1, value->>2 FROM json_each(jsonb($1)))",
    touch_entity_checks: "UPDATE check_results SET last_checked = $2 WHERE entity_ref = $3 AND scope = $4 AND check_id IN (SELECT value FROM json_each($1))",
    results_of: "SELECT check_id, entity_ref, scope, state FROM check_results WHERE entity_ref IN (SELECT value FROM json_each($1))",
    events_after: "SELECT * FROM (SELECT seq, 0, check_id, entity_ref, scope, state, previous_state, NULL, NULL, NULL, at FROM check_transitions WHERE seq > $1 ORDER BY seq LIMIT $2) \
        UNION ALL SELECT * FROM (SELECT seq, 1, track_id, entity_ref, scope, state, previous_state, cumulative_state, previous_cumulative_state, level_ordinal, at FROM certification_transitions WHERE seq > $1 ORDER BY seq LIMIT $2) \
        UNION ALL SELECT * FROM (SELECT seq, 2, topic, event_id, ordering_key, payload, metadata, NULL, NULL, NULL, created_at FROM event_log WHERE seq > $1 ORDER BY seq LIMIT $2) \
        ORDER BY 1 LIMIT $2",
    certifications_of: "SELECT track_id, entity_ref, level_ordinal, scope, state, cumulative_state FROM certifications WHERE entity_ref IN (SELECT value FROM json_each($1))",
    lock_event_log: None,
};

pub const POSTGRES: Dialect = Dialect {
    upsert_facts: "INSERT INTO facts (entity_ref, fact_ref, scope, data, timestamp, received_at) \
        SELECT value->>0, value->>1, value->>2, value->>3, (value->>4)::bigint, $2::bigint FROM jsonb_array_elements($1::text::jsonb) AS j(value) \
        ON CONFLICT (entity_ref, fact_ref, scope) DO UPDATE SET \
        data = CASE WHEN excluded.timestamp >= facts.timestamp THEN excluded.data ELSE facts.data END, \
        timestamp = GREATEST(excluded.timestamp, facts.timestamp), received_at = GREATEST(excluded.received_at, facts.received_at)",
    insert_fact_history: "INSERT INTO fact_history (entity_ref, fact_ref, scope, data, timestamp, received_at) \
        SELECT value->>0, value->>1, value->>2, value->>3, (value->>4)::bigint, $2::bigint FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS j(value, idx) ORDER BY idx",
    // An upsert may not touch a row twice here: the latest facts go in deduplicated.
    staged_facts: None,
    create_stage: [
        "CREATE TEMP TABLE IF NOT EXISTS stage_results (idx BIGINT, check_id TEXT, entity_ref TEXT, scope TEXT, state TEXT, previous_state TEXT, event_id TEXT, details TEXT, message TEXT, submitted_by TEXT)",
        "CREATE TEMP TABLE IF NOT EXISTS stage_certifications (idx BIGINT, track_id TEXT, entity_ref TEXT, level_ordinal BIGINT, scope TEXT, state TEXT, cumulative_state TEXT, previous_state TEXT, previous_cumulative_state TEXT, event_id TEXT)",
    ],
    // TRUNCATE, not DELETE: autovacuum never visits temporary tables, so deleted rows would
    // pile up and every later block would scan them.
    clear_stage: ["TRUNCATE stage_results", "TRUNCATE stage_certifications"],
    stage_results: "INSERT INTO stage_results SELECT idx - 1, value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8 \
        FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS j(value, idx)",
    stage_certifications: "INSERT INTO stage_certifications SELECT idx - 1, value->>0, value->>1, (value->>2)::bigint, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8 \
        FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS j(value, idx)",
    upsert_results: STAGE.0,
    insert_check_transitions: STAGE.1,
    upsert_certifications: STAGE.2,
    insert_certification_transitions: STAGE.3,
    direct: [
        "INSERT INTO check_results (check_id, entity_ref, scope, state, details, message, submitted_by, last_checked, last_changed) \
            SELECT value->>0, value->>1, value->>2, value->>3, value->>6, value->>7, value->>8, $2::bigint, $2::bigint FROM jsonb_array_elements($1::text::jsonb) AS j(value) \
            ON CONFLICT (entity_ref, scope, check_id) DO UPDATE SET state = excluded.state, details = excluded.details, message = excluded.message, \
            submitted_by = excluded.submitted_by, last_checked = excluded.last_checked, last_changed = excluded.last_changed",
        "INSERT INTO check_transitions (check_id, entity_ref, scope, previous_state, state, at, seq) \
            SELECT value->>0, value->>1, value->>2, value->>4, value->>3, $2::bigint, $3::bigint + idx FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS j(value, idx) ORDER BY idx",
        "INSERT INTO certifications (track_id, entity_ref, level_ordinal, scope, state, cumulative_state, last_checked, last_changed) \
            SELECT value->>0, value->>1, (value->>2)::bigint, value->>3, value->>4, value->>5, $2::bigint, $2::bigint FROM jsonb_array_elements($1::text::jsonb) AS j(value) \
            ON CONFLICT (entity_ref, scope, track_id, level_ordinal) DO UPDATE SET state = excluded.state, cumulative_state = excluded.cumulative_state, \
            last_checked = excluded.last_checked, last_changed = excluded.last_changed",
        "INSERT INTO certification_transitions (track_id, entity_ref, level_ordinal, scope, previous_state, state, previous_cumulative_state, cumulative_state, at, seq) \
            SELECT value->>0, value->>1, (value->>2)::bigint, value->>3, value->>6, value->>4, value->>7, value->>5, $2::bigint, $3::bigint + idx \
            FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS j(value, idx) ORDER BY idx",
    ],
    touch_results: "UPDATE check_results SET last_checked = $2::bigint WHERE last_checked <> $2::bigint AND (entity_ref, scope) IN (SELECT value->>0, value->>1 FROM jsonb_array_elements($1::text::jsonb) AS j(value))",
    touch_certifications: "UPDATE certifications SET last_checked = $2::bigint WHERE last_checked <> $2::bigint AND (entity_ref, scope) IN (SELECT value->>0, value->>1 FROM jsonb_array_elements($1::text::jsonb) AS j(value))",
    touch_result_checks: "UPDATE check_results SET last_checked = $2::bigint WHERE (entity_ref, scope, check_id) IN (SELECT value->>0, value->>1, value->>2 FROM jsonb_array_elements($1::text::jsonb) AS j(value))",
    touch_entity_checks: "UPDATE check_results SET last_checked = $2::bigint WHERE entity_ref = $3 AND scope = $4 AND check_id IN (SELECT jsonb_array_elements_text($1::text::jsonb))",
    results_of: "SELECT check_id, entity_ref, scope, state FROM check_results WHERE entity_ref IN (SELECT jsonb_array_elements_text($1::text::jsonb))",
    // Each branch is ordered and limited on its own, so the `seq` indexes are used even when
    // the planner's statistics lag behind a fast-growing table.
    events_after: "(SELECT seq, 0, check_id, entity_ref, scope, state, previous_state, NULL::text, NULL::text, NULL::bigint, at FROM check_transitions WHERE seq > $1::bigint ORDER BY seq LIMIT $2::bigint) \
        UNION ALL (SELECT seq, 1, track_id, entity_ref, scope, state, previous_state, cumulative_state, previous_cumulative_state, level_ordinal, at FROM certification_transitions WHERE seq > $1::bigint ORDER BY seq LIMIT $2::bigint) \
        UNION ALL (SELECT seq, 2, topic, event_id, ordering_key, payload, metadata, NULL::text, NULL::text, NULL::bigint, created_at FROM event_log WHERE seq > $1::bigint ORDER BY seq LIMIT $2::bigint) \
        ORDER BY 1 LIMIT $2::bigint",
    certifications_of: "SELECT track_id, entity_ref, level_ordinal, scope, state, cumulative_state FROM certifications WHERE entity_ref IN (SELECT jsonb_array_elements_text($1::text::jsonb))",
    lock_event_log: Some("SELECT pg_advisory_xact_lock(4242424242)"),
};
