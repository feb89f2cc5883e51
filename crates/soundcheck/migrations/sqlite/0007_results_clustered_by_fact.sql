-- An entity's results stored with the checks that read the same fact next to each other.
-- A fact submission changes the results of the checks reading that fact; when those rows
-- are adjacent they share a page or two, instead of being spread over every page of the
-- entity's results, so a submission writes fewer pages (BENCHMARKS.md § 5, tenth session).
-- `check_clusters` names each check's cluster (the service keeps it in step with the check
-- definitions); every write of a result takes its cluster from there, so the key below
-- stays unique per (entity, scope, check).
CREATE TABLE check_clusters (
    check_id TEXT PRIMARY KEY NOT NULL,
    cluster BIGINT NOT NULL
);

CREATE TABLE check_results_clustered (
    check_id TEXT NOT NULL,
    entity_ref TEXT NOT NULL,
    scope TEXT NOT NULL,
    state TEXT NOT NULL,
    details TEXT,
    message TEXT,
    submitted_by TEXT,
    last_checked BIGINT NOT NULL,
    last_changed BIGINT NOT NULL,
    check_cluster BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (entity_ref, scope, check_cluster, check_id)
) WITHOUT ROWID;
INSERT INTO check_results_clustered
    (check_id, entity_ref, scope, state, details, message, submitted_by, last_checked, last_changed, check_cluster)
    SELECT check_id, entity_ref, scope, state, details, message, submitted_by, last_checked, last_changed, 0
    FROM check_results;
DROP TABLE check_results;
ALTER TABLE check_results_clustered RENAME TO check_results;
