#!/usr/bin/env bash
# One fresh start of the end-to-end ingestion benchmark of BENCHMARKS.md § 5:
#   1. starts `soundcheck serve` on an empty SQLite file with the generated catalog and facts,
#   2. waits for the start-up re-evaluation of every entity, then 10 s more,
#   3. sends REQUESTS batches of BATCH new facts with CONCURRENCY clients (`bench load ingest`),
#   4. reads certifications for 5,000 random entities (`bench load certifications`),
#   5. prints facts/s, latencies, the machine's CPU split, the server's CPU per request, its
#      threads' figures (thread_times.py) and its resident memory, then stops the server.
#
# Usage (from the repository root, after `cargo build --release -p soundcheck` and
# `target/release/soundcheck bench generate --entities 100000 --checks 50 --tracks 6 --out bench-data/100k`):
#
#   crates/soundcheck/benches/fresh_start.sh LABEL
#
# Settings, from the environment: BIN (target/release/soundcheck), DATA (bench-data/100k),
# SEED (1; give each start of a series its own), REQUESTS (1000), BATCH (500), CONCURRENCY (4),
# PORT (7070), WRITE_BEHIND (`stateWriteBehindSeconds`, 10), KEEP_DB (set it to keep the
# database). Everything a run writes goes to
# bench-data/runs/LABEL. Linux only (/proc).
set -euo pipefail

label=${1:?usage: fresh_start.sh LABEL}
bin=${BIN:-target/release/soundcheck}
data=${DATA:-bench-data/100k}
seed=${SEED:-1}
requests=${REQUESTS:-1000}
batch=${BATCH:-500}
concurrency=${CONCURRENCY:-4}
port=${PORT:-7070}
write_behind=${WRITE_BEHIND:-10}
token=bench-write-token-0123456789
out=bench-data/runs/$label
here=$(dirname "$0")
url=http://127.0.0.1:$port/api/soundcheck

mkdir -p "$out"
rm -f "$out"/serve.db "$out"/serve.db-wal "$out"/serve.db-shm
cat > "$out/serve.yaml" <<YAML
soundcheck:
  events: { enabled: true }
  server:
    port: $port
    database: sqlite://$out/serve.db
    stateWriteBehindSeconds: $write_behind
    auth:
      allowAnonymousReads: true
      tokens: [ { token: $token, subject: bench, access: write } ]
YAML

"$bin" serve --config "$data/app-config.yaml" "$out/serve.yaml" \
  --catalog "$data/catalog.jsonl" --facts "$data/facts.jsonl" > "$out/serve.log" 2>&1 &
server=$!
stop() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  # The database is 2 GB or so at 100k entities: kept only when asked (KEEP_DB=1).
  [[ -n "${KEEP_DB:-}" ]] || rm -f "$out"/serve.db "$out"/serve.db-wal "$out"/serve.db-shm
}
trap stop EXIT

started=$SECONDS
until grep -q "re-evaluated every entity" "$out/serve.log"; do
  if ! kill -0 "$server" 2>/dev/null; then
    echo "the server stopped during start-up; its log:" >&2
    tail -n 20 "$out/serve.log" >&2
    exit 1
  fi
  if (( SECONDS - started > 900 )); then
    echo "the server was not ready after 900 s (see $out/serve.log)" >&2
    exit 1
  fi
  sleep 2
done
echo "ready after $(( SECONDS - started )) s"
sleep 10

cpu_of() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
machine() { awk '/^cpu / { print $2 + $3, $4, $5 + $6 }' /proc/stat; }

python3 "$here/thread_times.py" snap "$server" "$out/threads-before.json"
read -r user0 system0 idle0 < <(machine)
server0=$(cpu_of)
TIMEFORMAT="load tool: user %U s, system %S s"
time "$bin" bench load --url "$url" --token "$token" --catalog "$data/catalog.jsonl" \
  --concurrency "$concurrency" --requests "$requests" --seed "$seed" --out "$out/ingest.json" \
  ingest --batch "$batch" > "$out/ingest.txt"
server1=$(cpu_of)
read -r user1 system1 idle1 < <(machine)
python3 "$here/thread_times.py" snap "$server" "$out/threads-after.json"

"$bin" bench load --url "$url" --catalog "$data/catalog.jsonl" --concurrency 4 --requests 5000 \
  --out "$out/certifications.json" certifications > "$out/certifications.txt"

ticks=$(getconf CLK_TCK)
python3 - "$out" "$requests" "$ticks" "$server0" "$server1" "$user0" "$user1" "$system0" "$system1" "$idle0" "$idle1" <<'PY'
import json, sys
out, requests, ticks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s0, s1, u0, u1, y0, y1, i0, i1 = (int(v) for v in sys.argv[4:])
per = lambda a, b: (b - a) * 1000 / ticks / requests
with open(f"{out}/ingest.json") as f:
    ingest = json.load(f)
with open(f"{out}/certifications.json") as f:
    certs = json.load(f)
print(f"POST /facts: {ingest['itemsPerSecond']:,.0f} facts/s, p50 {ingest['p50Ms']:.0f} ms, p99 {ingest['p99Ms']:.0f} ms")
print(f"GET /certifications: p99 {certs['p99Ms']:.2f} ms")
print(f"per request: server CPU {per(s0, s1):.1f} ms; machine user {per(u0, u1):.1f}, system {per(y0, y1):.1f}, idle {per(i0, i1):.1f} ms")
PY
python3 "$here/thread_times.py" diff "$out/threads-before.json" "$out/threads-after.json" "$requests"
grep -E "VmRSS|RssAnon|RssFile" "/proc/$server/status" | tr -s " \t" " " | paste -sd " "
