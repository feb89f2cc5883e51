-- Which transitions `check_results` and `certifications` reflect. With write-behind
-- (`stateWriteBehindSeconds`) a fact submission commits its transitions at once and its
-- results and levels a few seconds later, in bulk; after a crash, the transitions after these
-- ids are rolled forward into the tables on open. Every write of those tables moves them.
CREATE TABLE state_written (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    check_transition BIGINT NOT NULL,
    certification_transition BIGINT NOT NULL
);
INSERT INTO state_written (id, check_transition, certification_transition)
    SELECT 1, (SELECT COALESCE(max(id), 0) FROM check_transitions),
              (SELECT COALESCE(max(id), 0) FROM certification_transitions);
