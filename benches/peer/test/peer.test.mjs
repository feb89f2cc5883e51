// node --test benches/peer/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as sample from './sample.mjs';
import { canonicalFactRef, compileFilter, filterMatches, flattenEntity, parseEntityRef } from '../lib.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const runJs = join(here, '..', 'run.mjs');
const compareJs = join(here, '..', 'compare.mjs');

function writeSample() {
  const dir = mkdtempSync(join(tmpdir(), 'peer-sample-'));
  writeFileSync(join(dir, 'app-config.yaml'), sample.appConfig);
  writeFileSync(join(dir, 'catalog.jsonl'), sample.catalog.map((e) => JSON.stringify(e)).join('\n') + '\n');
  writeFileSync(join(dir, 'facts.jsonl'), sample.facts.map((f) => JSON.stringify(f)).join('\n') + '\n');
  return dir;
}

function run(dir, out, extra = []) {
  const stdout = execFileSync('node', [runJs, '--dir', dir, '--results-out', out, ...extra], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const stats = JSON.parse(stdout);
  const rows = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return { stats, rows };
}

const asMap = (rows) => new Map(rows.map((r) => [`${r.entityRef} ${r.checkId} ${r.scope}`, r.state]));
const expectedMap = (overrides = []) => {
  const m = new Map();
  for (const [e, c, s, scope = 'default'] of [...sample.expected, ...overrides]) m.set(`${e} ${c} ${scope}`, s);
  return m;
};

const strategies = [
  [],
  ['--almanac', 'per-run'],
  ['--lanes', '3'],
  ['--parallel-checks'],
  ['--almanac', 'per-run', '--lanes', '2', '--parallel-checks'],
];

for (const extra of strategies) {
  test(`sample gives the decisions.md results (${extra.join(' ') || 'defaults'})`, () => {
    const dir = writeSample();
    try {
      const { stats, rows } = run(dir, join(dir, 'theirs.jsonl'), extra);
      assert.deepEqual(asMap(rows), expectedMap());
      assert.ok(rows.every((r) => Object.keys(r).join() === 'entityRef,checkId,state,scope'));
      assert.equal(stats.engine, 'json-rules-engine');
      assert.match(stats.version, /^7\./);
      assert.equal(stats.entities, 5);
      assert.equal(stats.checks, 26); // as configured, manual and external ones included
      assert.equal(stats.evaluatedChecks, 23);
      assert.equal(stats.scopeEvaluations, 6); // svc-a has a `staging` scope too
      assert.equal(stats.pairs, 6 * 26);
      assert.equal(stats.reported, sample.expected.length);
      assert.equal(stats.errors, 1);
      for (const k of ['loadMs', 'evaluateMs', 'pairsPerSecond']) assert.equal(typeof stats[k], 'number');
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
}

test('stock path resolver differs only where documented', () => {
  const dir = writeSample();
  try {
    const { rows } = run(dir, join(dir, 'theirs.jsonl'), ['--path-resolver', 'stock']);
    assert.deepEqual(asMap(rows), expectedMap(sample.stockResolverDiffs));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('compare.mjs counts and exit codes', () => {
  const dir = writeSample();
  try {
    const theirs = join(dir, 'theirs.jsonl');
    run(dir, theirs);
    const same = spawnSync('node', [compareJs, theirs, theirs], { encoding: 'utf8' });
    assert.equal(same.status, 0, same.stdout);
    assert.match(same.stdout, new RegExp(`agreements:\\s+${sample.expected.length}\\b`));

    const rows = readFileSync(theirs, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    rows[0].state = rows[0].state === 'passed' ? 'failed' : 'passed'; // one disagreement
    rows.pop(); // one only in theirs
    rows.push({ entityRef: 'Component:Default/extra', checkId: 'x', state: 'passed' }); // one only in ours (scope defaults)
    rows[1].entityRef = rows[1].entityRef.toUpperCase().replace('SVC-A', 'svc-a'); // refs compare normalised
    const ours = join(dir, 'ours.jsonl');
    writeFileSync(ours, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const diff = spawnSync('node', [compareJs, ours, theirs], { encoding: 'utf8' });
    assert.equal(diff.status, 1, diff.stdout);
    assert.match(diff.stdout, /disagreements:\s+1\b/);
    assert.match(diff.stdout, /only in ours:\s+1\b/);
    assert.match(diff.stdout, /only in theirs:\s+1\b/);
    assert.match(diff.stdout, /agreements:\s+\d+/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('refs', () => {
  assert.equal(parseEntityRef('Component:Default/Foo'), 'component:default/Foo');
  assert.equal(parseEntityRef('API:bar'), 'api:default/bar');
  assert.throws(() => parseEntityRef('default/bar'));
  assert.equal(canonicalFactRef('soundcheck:default/track/basic-health'), 'soundcheck:default/track/basic-health');
  assert.equal(canonicalFactRef('ci:coverage'), 'ci:default/coverage');
  assert.equal(canonicalFactRef({ source: 'ci', scope: 'x', name: 'a/b' }), 'ci:x/a/b');
});

test('filters', () => {
  const flat = flattenEntity(sample.catalog[0]);
  const m = (f) => filterMatches(compileFilter(f, 't'), flat);
  assert.equal(compileFilter(undefined, 't'), null);
  assert.equal(compileFilter({}, 't'), null);
  assert.equal(compileFilter([], 't'), null);
  assert.equal(compileFilter([{}], 't'), null);
  assert.ok(m({ KIND: 'component' }));
  assert.ok(m({ 'metadata.tags': ['go', 'Internal'] }));
  assert.ok(!m({ 'metadata.tags': 'go' }));
  assert.ok(m({ kind: 'component', 'spec.type': 'service' }));
  assert.ok(!m({ kind: 'component', 'spec.type': 'website' }));
  assert.ok(m([{ kind: 'api' }, { 'spec.type': 'SERVICE' }]));
  assert.ok(m({ 'metadata.annotations.backstage.io/techdocs-ref': 'DIR:.' }));
  assert.ok(!m({ 'metadata.nope': 'x' }));
});
