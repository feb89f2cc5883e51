-- Bumped by every transaction that writes evaluation state (results, levels, facts through the
-- evaluator), so a process keeping that state in memory notices a write by another process.
ALTER TABLE instance ADD COLUMN state_version BIGINT NOT NULL DEFAULT 0;
