-- soundcheck state on SQLite. Times are milliseconds since the Unix epoch; JSON is TEXT.
CREATE TABLE entities (
    entity_ref TEXT PRIMARY KEY NOT NULL,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE facts (
    entity_ref TEXT NOT NULL,
    fact_ref TEXT NOT NULL,
    scope TEXT NOT NULL,
    data TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (entity_ref, fact_ref, scope)
);

CREATE TABLE fact_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_ref TEXT NOT NULL,
    fact_ref TEXT NOT NULL,
    scope TEXT NOT NULL,
    data TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX fact_history_key ON fact_history (entity_ref, fact_ref, scope, received_at);
CREATE INDEX fact_history_age ON fact_history (received_at);

CREATE TABLE check_results (
    check_id TEXT NOT NULL,
    entity_ref TEXT NOT NULL,
    scope TEXT NOT NULL,
    state TEXT NOT NULL,
    details TEXT,
    message TEXT,
    submitted_by TEXT,
    last_checked BIGINT NOT NULL,
    last_changed BIGINT NOT NULL,
    PRIMARY KEY (entity_ref, scope, check_id)
) WITHOUT ROWID;

CREATE TABLE check_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    check_id TEXT NOT NULL,
    entity_ref TEXT NOT NULL,
    scope TEXT NOT NULL,
    previous_state TEXT,
    state TEXT NOT NULL,
    at BIGINT NOT NULL,
    seq BIGINT
);

CREATE UNIQUE INDEX check_transitions_seq ON check_transitions (seq);

CREATE TABLE certifications (
    track_id TEXT NOT NULL,
    entity_ref TEXT NOT NULL,
    level_ordinal BIGINT NOT NULL,
    scope TEXT NOT NULL,
    state TEXT NOT NULL,
    cumulative_state TEXT NOT NULL,
    last_checked BIGINT NOT NULL,
    last_changed BIGINT NOT NULL,
    PRIMARY KEY (entity_ref, scope, track_id, level_ordinal)
) WITHOUT ROWID;

CREATE TABLE certification_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id TEXT NOT NULL,
    entity_ref TEXT NOT NULL,
    level_ordinal BIGINT NOT NULL,
    scope TEXT NOT NULL,
    previous_state TEXT,
    state TEXT NOT NULL,
    previous_cumulative_state TEXT,
    cumulative_state TEXT NOT NULL,
    at BIGINT NOT NULL,
    seq BIGINT
);

CREATE UNIQUE INDEX certification_transitions_seq ON certification_transitions (seq);

CREATE TABLE exemptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    check_id TEXT NOT NULL,
    entity_ref TEXT NOT NULL,
    justification TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked BIGINT NOT NULL DEFAULT 0,
    revoked_by TEXT,
    revoked_at BIGINT,
    revoke_reason TEXT
);
CREATE INDEX exemptions_key ON exemptions (check_id, entity_ref);

CREATE TABLE daily_check_status (
    day TEXT NOT NULL,
    check_id TEXT NOT NULL,
    number_of_entities BIGINT NOT NULL,
    passed BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    warning BIGINT NOT NULL,
    not_applicable BIGINT NOT NULL,
    error BIGINT NOT NULL,
    not_reported BIGINT NOT NULL,
    exempt BIGINT NOT NULL,
    PRIMARY KEY (day, check_id)
);

CREATE TABLE daily_track_status (
    day TEXT NOT NULL,
    track_id TEXT NOT NULL,
    level_ordinal BIGINT NOT NULL,
    number_of_entities BIGINT NOT NULL,
    passed BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    cumulatively_passed BIGINT NOT NULL,
    cumulatively_failed BIGINT NOT NULL,
    not_reported BIGINT NOT NULL,
    PRIMARY KEY (day, track_id, level_ordinal)
);

-- The transactional outbox. An event's position is `seq`, from one counter shared by three
-- tables: a transition row written with events on *is* its event (its payload is built from its
-- columns when read), and event_log holds events published by others.
CREATE TABLE event_counter (
    id INTEGER PRIMARY KEY,
    last BIGINT NOT NULL
);
INSERT INTO event_counter (id, last) VALUES (1, 0);

-- A random prefix that makes event ids (prefix + seq) unique across databases.
CREATE TABLE instance (
    id INTEGER PRIMARY KEY,
    event_id_prefix BIGINT NOT NULL
);
INSERT INTO instance (id, event_id_prefix) VALUES (1, random());

CREATE TABLE event_log (
    seq BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    ordering_key TEXT,
    payload TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE subscriptions (
    subscriber_id TEXT PRIMARY KEY NOT NULL,
    cursor BIGINT NOT NULL,
    topics TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE dead_events (
    subscriber_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    dead_at BIGINT NOT NULL,
    replayed_at BIGINT,
    PRIMARY KEY (subscriber_id, seq)
);
