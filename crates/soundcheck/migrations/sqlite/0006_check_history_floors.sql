-- `DELETE /checks/{id}?deleteHistory=true` deletes a check's history. Its transitions stay,
-- because with events on they are the outbox and may not be delivered yet; the status
-- history of a check with that id (re-created later) reads only transitions after this id.
CREATE TABLE check_history_floors (
    check_id TEXT PRIMARY KEY NOT NULL,
    after_id BIGINT NOT NULL
);
