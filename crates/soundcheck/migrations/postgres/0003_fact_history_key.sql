-- Nothing looks up fact history by key (retention sorts the whole table anyway): the index
-- only cost a random page per submitted fact.
DROP INDEX IF EXISTS fact_history_key;
