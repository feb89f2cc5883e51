"""What one submission of 500 facts would cost SQLite under five storage designs.

An experiment behind BENCHMARKS.md § 5 ("Which redesign could reach 20,000 facts/s"), run
with Python's standard library only, to choose between redesigns before building one. Each
design holds the state of the end-to-end benchmark (100,000 entities, 50 checks, 6 tracks of
5 levels, an `entity_descriptor` fact of about 900 bytes and a CI fact per entity), 1 KiB
pages, WAL, `synchronous = NORMAL`, a 1 GiB page cache, as `serve` runs SQLite. Then 300
transactions, each what one `POST /facts` of 500 random entities writes in `serve` today
(500 facts, 1,350 result and 900 level changes, their transitions), timed in CPU time (the
budget that matters on a machine of 2 cores) from BEGIN to the end of a passive checkpoint
after COMMIT (`serve` checkpoints in the background; here each design pays for copying the
pages it wrote; the wall time, which includes the checkpoint's `fsync`, is printed too); the first 50 are not counted (the cache warms
up). Every design gets the same submissions.

    python3 crates/soundcheck/benches/write_designs.py rows     # the schema in use: a row per result and per level
    python3 crates/soundcheck/benches/write_designs.py packed   # one row per entity holding all its results and levels
    python3 crates/soundcheck/benches/write_designs.py appends  # current state kept in memory: only the logs are written
    python3 crates/soundcheck/benches/write_designs.py batchlog # the same, the logs as one row per submission
    python3 crates/soundcheck/benches/write_designs.py deferred # batchlog, and every 20 submissions the state tables
                                                                # and per-row logs written from it at once
    python3 crates/soundcheck/benches/write_designs.py rows 3   # rows, 3 submissions per transaction (group commit):
                                                                # COMMIT and checkpoint after every third
    python3 crates/soundcheck/benches/write_designs.py deferstate 200  # facts and logs a row each as in `rows`,
                                                                # result and level changes as one row of JSON per
                                                                # submission, and every 200 submissions the result and
                                                                # level tables brought up to date at once

`rows` and `packed` also upsert the latest facts; `appends` and `batchlog` write fact
history and transitions only (a design where the current state lives in memory and is
rebuilt from a snapshot and the logs on start-up), `batchlog` as one row of JSON per
submission instead of a row per fact and per transition. Each design prints its mean time
CPU time per part: the upserts, the logs, the commit and the checkpoint; `deferred` also the catch-up
writes with their checkpoints, per submission (they run every 20 submissions, each key once
and in key order). The script writes a database of 1-2 GB under $TMPDIR (removed at the end).
"""

import json
import os
import random
import sqlite3
import sys
import tempfile
import time

ENTITIES = 100_000
CHECKS = 50
TRACKS = 6
LEVELS = 5
BATCHES = 300
WARM_UP = 50
RESULT_CHANGES = 1_350
LEVEL_CHANGES = 900
START_MS = 1_795_000_000_000

entities = [f"component:default/svc-{i:06d}" for i in range(ENTITIES)]
checks = [f"check-{j:03d}" for j in range(CHECKS)]
tracks = [f"track-{k}" for k in range(TRACKS)]
DESCRIPTOR = '{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"%s",' + \
    '"namespace":"default","annotations":{"github.com/project-slug":"example/%s"},' + \
    '"tags":["java","service"],"description":"' + "x" * 600 + '"},' + \
    '"spec":{"type":"service","lifecycle":"production","owner":"team-a","system":"core"}}'


def ci_fact(rng):
    return '{"build":{"status":"%s","durationSeconds":%d,"branch":"main"},"coverage":%d}' % (
        rng.choice(["passed", "failed"]), rng.randrange(600), rng.randrange(100))


LOGS = [
    "CREATE TABLE fact_history (id INTEGER PRIMARY KEY AUTOINCREMENT, entity_ref TEXT NOT NULL, fact_ref TEXT NOT NULL, "
    "scope TEXT NOT NULL, data TEXT NOT NULL, timestamp BIGINT NOT NULL, received_at BIGINT NOT NULL)",
    "CREATE TABLE check_transitions (id INTEGER PRIMARY KEY AUTOINCREMENT, check_id TEXT NOT NULL, entity_ref TEXT NOT NULL, "
    "scope TEXT NOT NULL, previous_state TEXT, state TEXT NOT NULL, at BIGINT NOT NULL, seq BIGINT)",
    "CREATE UNIQUE INDEX check_transitions_seq ON check_transitions (seq)",
    "CREATE TABLE certification_transitions (id INTEGER PRIMARY KEY AUTOINCREMENT, track_id TEXT NOT NULL, "
    "entity_ref TEXT NOT NULL, level_ordinal BIGINT NOT NULL, scope TEXT NOT NULL, previous_state TEXT, state TEXT NOT NULL, "
    "previous_cumulative_state TEXT, cumulative_state TEXT NOT NULL, at BIGINT NOT NULL, seq BIGINT)",
    "CREATE UNIQUE INDEX certification_transitions_seq ON certification_transitions (seq)",
]
FACTS = ("CREATE TABLE facts (entity_ref TEXT NOT NULL, fact_ref TEXT NOT NULL, scope TEXT NOT NULL, data TEXT NOT NULL, "
         "timestamp BIGINT NOT NULL, received_at BIGINT NOT NULL, PRIMARY KEY (entity_ref, fact_ref, scope)) WITHOUT ROWID")
RESULTS = ("CREATE TABLE check_results (check_id TEXT NOT NULL, entity_ref TEXT NOT NULL, scope TEXT NOT NULL, "
           "state TEXT NOT NULL, details TEXT, message TEXT, submitted_by TEXT, last_checked BIGINT NOT NULL, "
           "last_changed BIGINT NOT NULL, PRIMARY KEY (entity_ref, scope, check_id)) WITHOUT ROWID")
LEVELS_TABLE = ("CREATE TABLE certifications (track_id TEXT NOT NULL, entity_ref TEXT NOT NULL, level_ordinal BIGINT NOT NULL, "
                "scope TEXT NOT NULL, state TEXT NOT NULL, cumulative_state TEXT NOT NULL, last_checked BIGINT NOT NULL, "
                "last_changed BIGINT NOT NULL, PRIMARY KEY (entity_ref, scope, track_id, level_ordinal)) WITHOUT ROWID")
PACKED = "CREATE TABLE entity_state (entity_ref TEXT PRIMARY KEY NOT NULL, scope TEXT NOT NULL, state BLOB NOT NULL) WITHOUT ROWID"

UPSERT_FACT = ("INSERT INTO facts VALUES (?,?,?,?,?,?) ON CONFLICT (entity_ref, fact_ref, scope) DO UPDATE SET "
               "data = excluded.data, timestamp = excluded.timestamp, received_at = excluded.received_at")
INSERT_HISTORY = "INSERT INTO fact_history (entity_ref, fact_ref, scope, data, timestamp, received_at) VALUES (?,?,?,?,?,?)"
UPSERT_RESULT = ("INSERT INTO check_results (check_id, entity_ref, scope, state, last_checked, last_changed) VALUES (?,?,?,?,?,?) "
                 "ON CONFLICT (entity_ref, scope, check_id) DO UPDATE SET state = excluded.state, "
                 "last_checked = excluded.last_checked, last_changed = excluded.last_changed")
UPSERT_LEVEL = ("INSERT INTO certifications VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (entity_ref, scope, track_id, level_ordinal) "
                "DO UPDATE SET state = excluded.state, cumulative_state = excluded.cumulative_state, "
                "last_checked = excluded.last_checked, last_changed = excluded.last_changed")
UPSERT_PACKED = "INSERT INTO entity_state VALUES (?,?,?) ON CONFLICT (entity_ref) DO UPDATE SET state = excluded.state"
BATCHES_TABLE = ("CREATE TABLE submissions (first_seq BIGINT PRIMARY KEY NOT NULL, facts TEXT NOT NULL, "
                 "check_transitions TEXT NOT NULL, level_transitions TEXT NOT NULL)")
INSERT_BATCH = "INSERT INTO submissions VALUES (?,?,?,?)"
INSERT_CHECK_TRANSITION = ("INSERT INTO check_transitions (check_id, entity_ref, scope, previous_state, state, at, seq) "
                           "VALUES (?,?,?,?,?,?,?)")
INSERT_LEVEL_TRANSITION = ("INSERT INTO certification_transitions (track_id, entity_ref, level_ordinal, scope, previous_state, "
                           "state, previous_cumulative_state, cumulative_state, at, seq) VALUES (?,?,?,?,?,?,?,?,?,?)")


def packed_state(rng):
    """An entity's 50 results (state byte + two times) and 30 levels (two state bytes + time)."""
    return rng.randbytes(CHECKS * 17 + TRACKS * LEVELS * 10)


def fill(con, design, rng):
    con.execute("BEGIN")
    con.executemany(UPSERT_FACT, ((e, f, "default", data, START_MS, START_MS) for e in entities
                                  for f, data in (("entity_descriptor", DESCRIPTOR % (e, e)), ("ci", ci_fact(rng)))))
    if design in ("rows", "deferred", "deferstate"):
        con.executemany(UPSERT_RESULT, ((c, e, "default", "passed", START_MS, START_MS) for e in entities for c in checks))
        con.executemany(UPSERT_LEVEL, ((t, e, o, "default", "passed", "passed", START_MS, START_MS)
                                       for e in entities for t in tracks for o in range(1, LEVELS + 1)))
    if design == "packed":
        con.executemany(UPSERT_PACKED, ((e, "default", packed_state(rng)) for e in entities))
    con.execute("COMMIT")


def submission(con, design, rng, batch, seq):
    """The writes of one submission; returns the next outbox position."""
    now = START_MS + 1000 * (batch + 1)
    chosen = rng.sample(range(ENTITIES), 500)
    facts = [(entities[i], "ci", "default", ci_fact(rng), now, now) for i in chosen]
    results = sorted((entities[chosen[k // CHECKS]], checks[k % CHECKS])
                     for k in rng.sample(range(500 * CHECKS), RESULT_CHANGES))
    levels = sorted((entities[chosen[k // (TRACKS * LEVELS)]], tracks[k // LEVELS % TRACKS], 1 + k % LEVELS)
                    for k in rng.sample(range(500 * TRACKS * LEVELS), LEVEL_CHANGES))
    new, old = ("passed", "failed")[batch % 2], ("passed", "failed")[1 - batch % 2]
    result_rows = [(c, e, "default", new, now, now) for e, c in results]
    level_rows = [(t, e, o, "default", new, new, now, now) for e, t, o in levels]
    packed_rows = sorted((entities[i], "default", packed_state(rng)) for i in chosen)
    first_seq = seq
    check_transitions = [(c, e, "default", old, new, now, seq + n) for n, (e, c) in enumerate(results)]
    seq += len(results)
    level_transitions = [(t, e, o, "default", old, new, old, new, now, seq + n) for n, (e, t, o) in enumerate(levels)]
    seq += len(levels)
    if design == "deferstate":
        PENDING["results"].update(((row[1], row[0]), row) for row in result_rows)
        PENDING["levels"].update(((row[1], row[0], row[2]), row) for row in level_rows)
    if design == "deferred":
        PENDING["facts"].update(((e, f, sc), row) for row in facts for e, f, sc in [row[:3]])
        PENDING["results"].update(((row[1], row[0]), row) for row in result_rows)
        PENDING["levels"].update(((row[1], row[0], row[2]), row) for row in level_rows)
        PENDING["transitions"].append((facts, check_transitions, level_transitions))
    parts = []
    started = time.process_time()
    if batch % GROUP == 0:
        con.execute("BEGIN")
    if design in ("rows", "packed", "deferstate"):
        con.executemany(UPSERT_FACT, sorted(facts))
        parts.append(("latest facts", time.process_time()))
    if design == "rows":
        con.executemany(UPSERT_RESULT, result_rows)
        parts.append(("results", time.process_time()))
        con.executemany(UPSERT_LEVEL, level_rows)
        parts.append(("levels", time.process_time()))
    if design == "packed":
        con.executemany(UPSERT_PACKED, packed_rows)
        parts.append(("entity states", time.process_time()))
    if design == "deferstate":
        con.execute(INSERT_BATCH, (first_seq, "[]", json.dumps(result_rows), json.dumps(level_rows)))
        parts.append(("state log row", time.process_time()))
    if design in ("batchlog", "deferred"):
        # Encoded inside the clock, as the other designs bind their rows inside it.
        con.execute(INSERT_BATCH, (first_seq, json.dumps(facts), json.dumps(check_transitions),
                                   json.dumps(level_transitions)))
    else:
        con.executemany(INSERT_HISTORY, facts)
        con.executemany(INSERT_CHECK_TRANSITION, check_transitions)
        con.executemany(INSERT_LEVEL_TRANSITION, level_transitions)
    parts.append(("logs", time.process_time()))
    # With group commit, the submission that ends a group pays for its COMMIT and checkpoint.
    if batch % GROUP == GROUP - 1:
        con.execute("COMMIT")
    parts.append(("commit", time.process_time()))
    if batch % GROUP == GROUP - 1:
        con.execute("PRAGMA wal_checkpoint(PASSIVE)")
    parts.append(("checkpoint", time.process_time()))
    spans, last = {}, started
    for name, at in parts:
        spans[name], last = at - last, at
    return spans, seq


PENDING = {"facts": {}, "results": {}, "levels": {}, "transitions": []}
# Submissions per transaction (the optional second argument).
GROUP = 1
DEFER = 20


def apply_state(con):
    """`deferstate`: the result and level tables brought up to date from the last DEFER
    submissions' changes at once, each key once, in key order; the log rows then deleted."""
    results, levels = ([pending[k] for k in sorted(pending)] for pending in (PENDING["results"], PENDING["levels"]))
    started = time.process_time()
    con.execute("BEGIN")
    con.executemany(UPSERT_RESULT, results)
    con.executemany(UPSERT_LEVEL, levels)
    con.execute("DELETE FROM submissions")
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(PASSIVE)")
    rows = len(results) + len(levels)
    for pending in PENDING.values():
        pending.clear()
    return {"deferred state": (time.process_time() - started) / DEFER}, rows


def apply_pending(con):
    """`deferred`: the state tables brought up to date from the last DEFER submissions at once,
    each key written once, in key order; then the per-row logs, for queries by check or entity."""
    facts, results, levels = ([pending[k] for k in sorted(pending)]
                              for pending in (PENDING["facts"], PENDING["results"], PENDING["levels"]))
    parts = []
    started = time.process_time()
    con.execute("BEGIN")
    con.executemany(UPSERT_FACT, facts)
    con.executemany(UPSERT_RESULT, results)
    con.executemany(UPSERT_LEVEL, levels)
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(PASSIVE)")
    parts.append(("deferred state", time.process_time()))
    con.execute("BEGIN")
    for facts, check_transitions, level_transitions in PENDING["transitions"]:
        con.executemany(INSERT_HISTORY, facts)
        con.executemany(INSERT_CHECK_TRANSITION, check_transitions)
        con.executemany(INSERT_LEVEL_TRANSITION, level_transitions)
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(PASSIVE)")
    parts.append(("deferred log rows", time.process_time()))
    for pending in PENDING.values():
        pending.clear()
    spans, last = {}, started
    for name, at in parts:
        spans[name], last = (at - last) / DEFER, at
    return spans


def main(design):
    rng = random.Random(7)
    fill_rng = random.Random(11)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "s.db")
        con = sqlite3.connect(path, isolation_level=None)
        for pragma in ("page_size = 1024", "journal_mode = WAL", "synchronous = NORMAL",
                       "cache_size = -1048576", "wal_autocheckpoint = 0"):
            con.execute(f"PRAGMA {pragma}")
        tables = {"rows": [FACTS, RESULTS, LEVELS_TABLE], "packed": [FACTS, PACKED], "appends": [FACTS],
                  "batchlog": [FACTS, BATCHES_TABLE], "deferred": [FACTS, RESULTS, LEVELS_TABLE, BATCHES_TABLE],
                  "deferstate": [FACTS, RESULTS, LEVELS_TABLE, BATCHES_TABLE]}
        for sql in LOGS + tables[design]:
            con.execute(sql)
        started = time.time()
        fill(con, design, fill_rng)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(f"{design}: filled in {time.time() - started:.1f} s, {os.path.getsize(path) // 2**20} MB", flush=True)
        times, walls, spans, seq, flushed = [], [], [], 0, []
        batches = max(BATCHES, WARM_UP + 2 * DEFER) if design == "deferstate" else BATCHES
        for batch in range(batches):
            wall = time.perf_counter()
            parts, seq = submission(con, design, rng, batch, seq)
            walls.append(time.perf_counter() - wall)
            times.append(sum(parts.values()))
            spans.append(parts)
            if design == "deferstate" and batch % DEFER == DEFER - 1:
                applied, rows = apply_state(con)
                flushed.append(rows)
                for parts in spans[-DEFER:]:
                    parts.update(applied)
            if design == "deferred" and batch % DEFER == DEFER - 1:
                applied = apply_pending(con)
                for parts in spans[-DEFER:]:
                    parts.update(applied)
        if design == "deferstate":
            # Only whole windows count, each submission with its share of its window's catch-up.
            last = len(spans) - len(spans) % DEFER
            spans, walls = spans[:last], walls[:last]
            times = [sum(parts.values()) for parts in spans]
            print(f"{design}: rows written per catch-up of {DEFER} submissions: {flushed}", flush=True)
        counted = sorted(times[WARM_UP:])
        mean = 1000 * sum(counted) / len(counted)
        print(f"{design}: one submission's writes: CPU mean {mean:.2f} ms, p50 {1000 * counted[len(counted) // 2]:.2f} ms, "
              f"p90 {1000 * counted[len(counted) * 9 // 10]:.2f} ms; wall time of the submission "
              f"(not of the catch-up) {1000 * sum(walls[WARM_UP:]) / len(counted):.2f} ms", flush=True)
        print(f"{design}: of which " + ", ".join(
            f"{name} {1000 * sum(s[name] for s in spans[WARM_UP:]) / len(counted):.2f}" for name in spans[0]) + " ms", flush=True)
        con.close()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in ("rows", "packed", "appends", "batchlog", "deferred", "deferstate"):
        sys.exit(__doc__)
    if len(sys.argv) == 3 and sys.argv[1] == "deferstate":
        if not sys.argv[2].isdigit() or int(sys.argv[2]) < 1:
            sys.exit("the second argument, submissions per catch-up, is a positive integer")
        DEFER = int(sys.argv[2])
    elif len(sys.argv) == 3:
        if not sys.argv[2].isdigit() or int(sys.argv[2]) < 1 or sys.argv[1] == "deferred":
            sys.exit("the second argument, submissions per transaction, is a positive integer (not with deferred)")
        GROUP = int(sys.argv[2])
    main(sys.argv[1])
