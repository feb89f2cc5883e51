#!/usr/bin/env bash
# Side-by-side: our Rust evaluator vs the json-rules-engine peer, on the same generated input.
#
#   benches/peer/side-by-side.sh [BIN]
#
# BIN defaults to target/release/soundcheck (relative to the repository root).
# Environment: ENTITIES (5000), CHECKS (50), TRACKS (6), DIR (a new mktemp dir; kept afterwards).
# Exit status: 0 when both produce the same results, 1 when they differ, other values on failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

BIN="${1:-target/release/soundcheck}"
ENTITIES="${ENTITIES:-5000}"
CHECKS="${CHECKS:-50}"
TRACKS="${TRACKS:-6}"
DIR="${DIR:-$(mktemp -d "${TMPDIR:-/tmp}/soundcheck-side-by-side.XXXXXX")}"
mkdir -p "$DIR"

if [[ ! -x "$BIN" ]]; then
  echo "error: $BIN is not an executable (build it with: cargo build --release)" >&2
  exit 2
fi

echo "== input: $ENTITIES entities, $CHECKS checks, $TRACKS tracks in $DIR"
"$BIN" bench generate --entities "$ENTITIES" --checks "$CHECKS" --tracks "$TRACKS" --out "$DIR"

echo "== ours: $BIN evaluate"
"$BIN" evaluate \
  --config "$DIR/app-config.yaml" \
  --catalog "$DIR/catalog.jsonl" \
  --facts "$DIR/facts.jsonl" \
  --results-out "$DIR/ours.jsonl" \
  --stats-out "$DIR/ours-stats.json" \
  --quiet

if [[ ! -d "$here/node_modules" ]]; then
  echo "== npm ci (benches/peer)"
  npm ci --prefix "$here" --no-audit --no-fund
fi

echo "== theirs: json-rules-engine (node $(node --version))"
node "$here/run.mjs" --dir "$DIR" --results-out "$DIR/theirs.jsonl" > "$DIR/theirs-stats.json"

echo "== compare"
status=0
node "$here/compare.mjs" "$DIR/ours.jsonl" "$DIR/theirs.jsonl" || status=$?
if [[ $status -gt 1 ]]; then
  exit "$status"
fi

echo "== evaluate throughput"
node --input-type=module - "$DIR/ours-stats.json" "$DIR/theirs-stats.json" <<'EOF'
import { readFileSync } from 'node:fs';
const [oursFile, theirsFile] = process.argv.slice(2);
const ours = JSON.parse(readFileSync(oursFile, 'utf8'));
const theirs = JSON.parse(readFileSync(theirsFile, 'utf8'));
const rate = (s) => s.pairs / (s.evaluateMs / 1000);
const line = (name, s) => console.log(
  `${name.padEnd(36)} ${String(s.pairs).padStart(10)} pairs ${s.evaluateMs.toFixed(1).padStart(10)} ms ${Math.round(rate(s)).toLocaleString('en-US').padStart(14)} pairs/s`);
line('ours (soundcheck evaluate)', ours);
line(`theirs (json-rules-engine ${theirs.version})`, theirs);
console.log(`ratio ours/theirs: ${(rate(ours) / rate(theirs)).toFixed(2)}x (pairs per second)`);
if (ours.pairs !== theirs.pairs) {
  // same input, so the time ratio is the fair one when the two count pairs differently
  console.log(`warning: the pair counts differ (${ours.pairs} vs ${theirs.pairs}); ` +
    `evaluate time ratio theirs/ours: ${(theirs.evaluateMs / ours.evaluateMs).toFixed(2)}x`);
}
EOF

echo "== files in $DIR"
exit "$status"
