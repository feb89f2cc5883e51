-- Tables used by `soundcheck serve`: the audit trail of submitted results.
CREATE TABLE result_submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    check_id TEXT NOT NULL,
    entity_ref TEXT NOT NULL,
    scope TEXT NOT NULL,
    state TEXT NOT NULL,
    stored_state TEXT NOT NULL,
    details TEXT,
    submitted_by TEXT NOT NULL,
    justification TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX result_submissions_key ON result_submissions (entity_ref, check_id, at);

-- Definitions created through the API (checks, tracks, campaigns, fact collectors) as the JSON
-- they were submitted with; definitions from config files are never stored here.
CREATE TABLE definitions (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);

-- Scheduled jobs (collector runs, check schedules, catalog refresh). A replica runs a job only
-- after claiming its lease with a conditional UPDATE, so replicas sharing one database never
-- run the same due job twice.
CREATE TABLE scheduled_jobs (
    job_id TEXT PRIMARY KEY NOT NULL,
    next_run_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    last_run_at BIGINT,
    last_error TEXT,
    runs BIGINT NOT NULL DEFAULT 0
);

-- A subscriber id is delivered by one process at a time: the one holding its lease. Other
-- processes with handlers for the same id wait and take over when the lease expires.
ALTER TABLE subscriptions ADD COLUMN lease_owner TEXT;
ALTER TABLE subscriptions ADD COLUMN lease_until BIGINT;

-- At most one active exemption per (check, entity), also under concurrent creates.
CREATE UNIQUE INDEX exemptions_active ON exemptions (check_id, entity_ref) WHERE revoked = 0;
