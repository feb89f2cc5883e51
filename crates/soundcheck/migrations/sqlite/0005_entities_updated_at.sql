-- Each replica checks once a second whether the catalog changed (entity count and latest
-- update time). Without this index both read the whole entities table; with it the count
-- reads this small index and the latest time is one lookup.
CREATE INDEX entities_updated_at ON entities (updated_at);
