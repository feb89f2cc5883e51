"""How the key layout of a SQLite results table changes the cost of random upserts.

An experiment behind BENCHMARKS.md § 5 ("The write measured alone"), run with Python's
standard library only: the table of check results at the size of the end-to-end benchmark
(100,000 entities x 50 checks, ids shaped like `soundcheck bench generate`'s), filled in
key order, 1 KiB pages, WAL, a 1 GiB page cache, then 300 transactions of 1,500 random
upserts each (500 entities, 3 checks each), timed from BEGIN to COMMIT. The first 50 are not
counted (the cache warms up). Times are epoch milliseconds, as in `serve`, so an update never
changes a row's size.

    python3 crates/soundcheck/benches/key_layouts.py text       # the layout in use
    python3 crates/soundcheck/benches/key_layouts.py rowid      # rowid table + unique text key
    python3 crates/soundcheck/benches/key_layouts.py clustered  # integer key, entity * 64 + check
    python3 crates/soundcheck/benches/key_layouts.py hashed     # integer key, 64-bit hash

It writes a database of 0.5-1 GB under $TMPDIR (removed at the end).
"""

import hashlib
import os
import random
import sqlite3
import struct
import sys
import tempfile
import time

ENTITIES = 100_000
CHECKS = 50
BATCHES = 300
WARM_UP = 50
COLUMNS = (
    "check_id TEXT NOT NULL, entity_ref TEXT NOT NULL, scope TEXT NOT NULL, state TEXT NOT NULL, "
    "details TEXT, message TEXT, submitted_by TEXT, last_checked BIGINT NOT NULL, last_changed BIGINT NOT NULL"
)
SET = "state = excluded.state, last_checked = excluded.last_checked, last_changed = excluded.last_changed"
TEXT_INSERT = "INSERT INTO r (check_id, entity_ref, scope, state, last_checked, last_changed) VALUES (?,?,?,?,?,?)"
KEY_INSERT = "INSERT INTO r (key, check_id, entity_ref, scope, state, last_checked, last_changed) VALUES (?,?,?,?,?,?,?)"

START_MS = 1_795_000_000_000
entities = [f"component:default/svc-{i:06d}" for i in range(ENTITIES)]
checks = [f"check-{j:03d}" for j in range(CHECKS)]


def hashed(i, j):
    digest = hashlib.blake2b(f"{entities[i]}\0default\0{checks[j]}".encode(), digest_size=8).digest()
    return struct.unpack("<q", digest)[0]


def layout(name):
    """(create statements, insert, upsert, row builder, index created after the fill)."""
    text_row = lambda i, j, state, t: (checks[j], entities[i], "default", state, t, t)
    if name == "text":
        create = [f"CREATE TABLE r ({COLUMNS}, PRIMARY KEY (entity_ref, scope, check_id)) WITHOUT ROWID"]
        upsert = f"{TEXT_INSERT} ON CONFLICT (entity_ref, scope, check_id) DO UPDATE SET {SET}"
        return create, TEXT_INSERT, upsert, text_row, None
    if name == "rowid":
        create = [f"CREATE TABLE r ({COLUMNS})", "CREATE UNIQUE INDEX r_key ON r (entity_ref, scope, check_id)"]
        upsert = f"{TEXT_INSERT} ON CONFLICT (entity_ref, scope, check_id) DO UPDATE SET {SET}"
        return create, TEXT_INSERT, upsert, text_row, None
    key = {"clustered": lambda i, j: i * 64 + j, "hashed": hashed}[name]
    create = [f"CREATE TABLE r (key INTEGER PRIMARY KEY, {COLUMNS})"]
    upsert = f"{KEY_INSERT} ON CONFLICT (key) DO UPDATE SET {SET}"
    row = lambda i, j, state, t: (key(i, j), checks[j], entities[i], "default", state, t, t)
    return create, KEY_INSERT, upsert, row, "CREATE INDEX r_entity ON r (entity_ref, scope, check_id)"


def main(name):
    create, insert, upsert, row, index = layout(name)
    with tempfile.TemporaryDirectory() as directory:
        con = sqlite3.connect(os.path.join(directory, "r.db"), isolation_level=None)
        for pragma in ("page_size = 1024", "journal_mode = WAL", "synchronous = NORMAL",
                       "cache_size = -1048576", "wal_autocheckpoint = 131072"):
            con.execute(f"PRAGMA {pragma}")
        for sql in create:
            con.execute(sql)
        started = time.time()
        order = [(i, j) for i in range(ENTITIES) for j in range(CHECKS)]
        if name == "hashed":
            order.sort(key=lambda ij: hashed(*ij))
        con.execute("BEGIN")
        con.executemany(insert, (row(i, j, "passed", START_MS) for i, j in order))
        con.execute("COMMIT")
        if index:
            con.execute(index)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = os.path.getsize(os.path.join(directory, "r.db")) // 2**20
        print(f"{name}: filled in {time.time() - started:.1f} s, {size} MB", flush=True)
        rng = random.Random(7)
        times = []
        for batch in range(BATCHES):
            rows = [row(i, j, rng.choice(["passed", "failed"]), START_MS + 1000 * (batch + 1))
                    for i in (rng.randrange(ENTITIES) for _ in range(500))
                    for j in rng.sample(range(CHECKS), 3)]
            started = time.perf_counter()
            con.execute("BEGIN")
            con.executemany(upsert, rows)
            con.execute("COMMIT")
            times.append(time.perf_counter() - started)
            if batch % 50 == 49:
                con.execute("PRAGMA wal_checkpoint(PASSIVE)")
        counted = sorted(times[WARM_UP:])
        mean = 1000 * sum(counted) / len(counted)
        print(f"{name}: 1,500 upserts per transaction: mean {mean:.2f} ms, "
              f"p50 {1000 * counted[len(counted) // 2]:.2f} ms", flush=True)
        con.close()


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("text", "rowid", "clustered", "hashed"):
        sys.exit(__doc__)
    main(sys.argv[1])
