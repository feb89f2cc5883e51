// Interop with a real Backstage backend: soundcheck-rs publishes its events into Backstage's
// events backend through both routes of the Backstage sink (the event bus and HTTP ingress),
// and the recorder plugin, subscribed exactly like the seed's example, must receive both event
// types with exactly the payloads the service stored, in order, with nothing missing and
// nothing twice, also when Backstage is down for a while and comes back.
//
// Runs with Backstage on SQLite (its bus is then an in-memory store of the last 1000 events)
// and, when SOUNDCHECK_TEST_POSTGRES_URL is set, on PostgreSQL (a durable bus).
//
// Needs the release binary (`cargo build --release --bin soundcheck`, or SOUNDCHECK_BIN) and
// the types package built (`npm ci` in clients/typescript runs its `prepare` script).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const project = path.resolve(here, '..');
const repo = path.resolve(project, '..', '..');
const bin = process.env.SOUNDCHECK_BIN ?? path.join(repo, 'target', 'release', 'soundcheck');
const types = createRequire(import.meta.url)('@soundcheck-rs/soundcheck-node');

const BACKSTAGE_TOKEN = 'interop-static-token-0123456789';
const WRITE_TOKEN = 'example-write-token-change-me';
const TOPICS = [types.CHECK_STATUS_CHANGE_TOPIC, types.CERTIFICATION_CHANGE_TOPIC];

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts a process whose output goes to `log`; rejects `exited` if it ends early. */
function start(command, args, env, log) {
  const child = spawn(command, args, { cwd: project, env: { ...process.env, ...env } });
  const write = chunk => appendFileSync(log, chunk);
  child.stdout.on('data', write);
  child.stderr.on('data', write);
  child.exited = new Promise(resolve => child.on('exit', code => resolve(code)));
  return child;
}

async function waitFor(what, check, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
}

/** Backstage's `backend.database`: in-memory SQLite, or PostgreSQL under a per-run prefix. */
function databaseConfig(postgres) {
  if (!postgres) return `{ client: better-sqlite3, connection: ':memory:' }`;
  const u = new URL(postgres.url);
  const connection = `{ host: '${u.hostname}', port: ${u.port || 5432}, user: '${decodeURIComponent(u.username)}', password: '${decodeURIComponent(u.password)}' }`;
  return `{ client: pg, connection: ${connection}, prefix: '${postgres.prefix}' }`;
}

function backstageConfig(port, postgres) {
  return `backend:
  baseUrl: http://127.0.0.1:${port}
  listen: { host: 127.0.0.1, port: ${port} }
  database: ${databaseConfig(postgres)}
  auth:
    externalAccess:
      - type: static
        options: { token: ${BACKSTAGE_TOKEN}, subject: soundcheck-rs }
        accessRestrictions: [ { plugin: events } ]
events:
  notifyTimeoutMs: 3000
  http:
    topics: [ ${TOPICS.join(', ')} ]
`;
}

function soundcheckConfig(backstagePort) {
  const retry = '{ maxAttempts: 100, initialBackoffMs: 100, maxBackoffMs: 1000 }';
  return `soundcheck:
  events:
    delivery: { pollIntervalMs: 100 }
    sinks:
      backstage:
        - id: bus
          baseUrl: http://127.0.0.1:${backstagePort}
          token: ${BACKSTAGE_TOKEN}
          requireSubscriber: true
          retry: ${retry}
        - id: ingress
          baseUrl: http://127.0.0.1:${backstagePort}
          route: http
          retry: ${retry}
`;
}

/** Reads the service's outbox from the live stream, up to and including position `last`. */
async function outbox(base, last) {
  const controller = new AbortController();
  const deadline = Date.now() + 30_000;
  const response = await fetch(`${base}/api/soundcheck/events/stream?after=0`, {
    signal: controller.signal,
  });
  assert.equal(response.status, 200);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  // Only messages ended by their blank line count: a chunk can end inside one.
  const complete = () => text.slice(0, text.lastIndexOf('\n\n') + 2);
  const lastId = () => Math.max(0, ...[...complete().matchAll(/^id: (\d+)$/gm)].map(m => Number(m[1])));
  let pending = null; // a read that lost the race to the timer still brings the next chunk
  while (lastId() < last) {
    assert.ok(Date.now() < deadline, `the live stream did not reach position ${last} within 30 s`);
    pending ??= reader.read();
    const chunk = await Promise.race([pending, sleep(1000).then(() => null)]);
    if (chunk === null) continue;
    pending = null;
    assert.ok(!chunk.done, 'the live stream ended');
    text += decoder.decode(chunk.value, { stream: true });
  }
  controller.abort();
  return complete()
    .split('\n')
    .filter(line => line.startsWith('data: '))
    .map(line => JSON.parse(line.slice('data: '.length)));
}

function recorded(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(line => line.trim() !== '')
    .map(line => JSON.parse(line));
}

async function postFacts(base, facts) {
  const response = await fetch(`${base}/api/soundcheck/facts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${WRITE_TOKEN}` },
    body: JSON.stringify({ facts }),
  });
  assert.equal(response.status, 200, await response.text());
}

/** The Backstage sinks' total lag and their furthest position. */
async function sinkProgress(base) {
  const response = await fetch(`${base}/api/soundcheck/events/subscribers`);
  const { subscribers } = await response.json();
  const sinks = subscribers.filter(s => s.id.startsWith('backstage:'));
  assert.equal(sinks.length, 2, JSON.stringify(subscribers));
  return { lag: sinks.reduce((sum, s) => sum + s.lag, 0), cursor: Math.max(...sinks.map(s => s.cursor ?? 0)) };
}

async function lagOfSinks(base) {
  return (await sinkProgress(base)).lag;
}

/** Waits until both sinks delivered everything; the outbox up to there, from the live stream. */
async function deliveredOutbox(base, what, timeoutMs = 60_000) {
  const { cursor } = await waitFor(what, async () => {
    const progress = await sinkProgress(base);
    return progress.lag === 0 ? progress : null;
  }, timeoutMs);
  return outbox(base, cursor);
}

/** Drops the databases Backstage made under the run's prefix. */
async function dropDatabases(postgres) {
  const { Client } = createRequire(import.meta.url)('pg');
  const client = new Client({ connectionString: postgres.url });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [postgres.prefix]);
    for (const { datname } of rows) await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

test('Backstage on SQLite receives every event through the bus and HTTP ingress', { timeout: 300_000 }, async () => {
  await interop(null);
});

test('Backstage on PostgreSQL receives every event through the bus and HTTP ingress', {
  timeout: 300_000,
  skip: process.env.SOUNDCHECK_TEST_POSTGRES_URL ? false : 'SOUNDCHECK_TEST_POSTGRES_URL is not set',
}, async () => {
  const postgres = { url: process.env.SOUNDCHECK_TEST_POSTGRES_URL, prefix: `scinterop${process.pid}_${Date.now()}_` };
  try {
    await interop(postgres);
  } finally {
    await dropDatabases(postgres);
  }
});

async function interop(postgres) {
  assert.ok(existsSync(bin), `no soundcheck binary at ${bin}: run cargo build --release --bin soundcheck`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'soundcheck-interop-'));
  const [backstagePort, soundcheckPort] = [await freePort(), await freePort()];
  const backstageBase = `http://127.0.0.1:${backstagePort}`;
  const base = `http://127.0.0.1:${soundcheckPort}`;
  const recorderOut = path.join(dir, 'received.jsonl');
  writeFileSync(path.join(dir, 'app-config.yaml'), backstageConfig(backstagePort, postgres));
  writeFileSync(path.join(dir, 'sinks.yaml'), soundcheckConfig(backstagePort));
  const log = path.join(dir, 'processes.log');
  console.log(`interop: logs in ${log}`);

  const startBackstage = async () => {
    const child = start(
      process.execPath,
      ['dist/index.js', '--config', path.join(dir, 'app-config.yaml')],
      { RECORDER_OUT: recorderOut, NODE_ENV: 'development', LOG_LEVEL: 'warn' },
      log,
    );
    await waitFor('Backstage to answer', async () => {
      const r = await fetch(`${backstageBase}/.backstage/health/v1/readiness`);
      return r.status === 200;
    });
    return child;
  };
  let backstage = await startBackstage();
  const soundcheck = start(
    bin,
    [
      'serve',
      '--config', path.join(repo, 'examples', 'app-config.yaml'), path.join(dir, 'sinks.yaml'),
      '--catalog', path.join(repo, 'examples', 'catalog', 'catalog-info.yaml'),
      '--database', `sqlite://${path.join(dir, 'soundcheck.db')}`,
      '--port', String(soundcheckPort),
    ],
    { RUST_LOG: 'warn' },
    log,
  );
  try {
    await waitFor('soundcheck to be ready', async () => (await fetch(`${base}/readyz`)).status === 200);

    // Phase 1: the example facts give every entity its first states, one entity at a time,
    // each delivered before the next: Backstage's in-memory bus keeps only its newest 1000
    // events, so a larger burst than its subscribers can read would be lost on its side.
    const facts = readFileSync(path.join(repo, 'examples', 'facts.jsonl'), 'utf8')
      .split('\n')
      .filter(line => line.trim() !== '')
      .map(line => JSON.parse(line));
    for (const entity of new Set(facts.map(f => f.entityRef))) {
      await postFacts(base, facts.filter(f => f.entityRef === entity));
      const stored = (await deliveredOutbox(base, `the sinks to deliver ${entity}`)).length;
      await waitFor(`the recorder to get ${entity}'s events twice (bus and ingress)`, () => recorded(recorderOut).length >= 2 * stored);
    }
    const phase1 = (await deliveredOutbox(base, 'the sinks to deliver phase 1')).length;
    assert.ok(phase1 > 0, 'phase 1 stored no events');

    // Phase 2: Backstage goes down; states change; Backstage comes back.
    backstage.kill('SIGKILL');
    await backstage.exited;
    const flipped = facts
      .filter(f => f.factRef === 'ci:default/pipeline' || f.factRef === 'scm:default/files')
      .map(f => ({ ...f, data: Object.fromEntries(Object.entries(f.data).map(([k, v]) => [k, typeof v === 'boolean' ? !v : v])), timestamp: undefined }));
    assert.ok(flipped.length > 0);
    await postFacts(base, flipped);
    await waitFor('the sinks to fail while Backstage is down', async () => (await lagOfSinks(base)) > 0, 10_000);
    await sleep(2000);
    backstage = await startBackstage();
    const stored = await deliveredOutbox(base, 'the sinks to deliver phase 2', 120_000);
    assert.ok(stored.length > phase1, 'phase 2 stored no events');
    await waitFor('the recorder to get everything', () => recorded(recorderOut).length >= 2 * stored.length, 30_000);
    await sleep(1000); // anything extra (a duplicate) would arrive now
    const received = recorded(recorderOut);

    for (const topic of TOPICS) {
      const expected = stored.filter(e => e.topic === topic);
      assert.ok(expected.length > 0, `no ${topic} events stored`);
      assert.ok(expected.some(e => e.eventPayload.previousState !== undefined), `no ${topic} event with a previousState`);
      const subscriber = topic === types.CHECK_STATUS_CHANGE_TOPIC ? 'test-sub' : 'test-cert';
      const guard = topic === types.CHECK_STATUS_CHANGE_TOPIC ? types.isCheckStatusChangeEvent : types.isCertificationChangeEvent;
      const mine = received.filter(r => r.subscriber === subscriber);
      assert.ok(mine.every(r => r.topic === topic));
      // Bus: no metadata travels; payloads exactly as stored, in the stored order.
      const header = types.SOUNDCHECK_HTTP_HEADERS.eventId;
      const viaBus = mine.filter(r => !r.metadata || !r.metadata[header]);
      assert.deepEqual(viaBus.map(r => r.eventPayload), expected.map(e => e.eventPayload), `${topic} over the bus`);
      // HTTP ingress: the same, and each event id once, matching the stored one.
      const viaHttp = mine.filter(r => r.metadata && r.metadata[header]);
      assert.deepEqual(viaHttp.map(r => r.eventPayload), expected.map(e => e.eventPayload), `${topic} over HTTP ingress`);
      assert.deepEqual(viaHttp.map(r => r.metadata[header]), expected.map(e => e.metadata.eventId));
      for (const r of mine) assert.ok(guard(r.eventPayload), `not a ${topic} payload: ${JSON.stringify(r.eventPayload)}`);
    }
    // The outage was real: both sinks retried, and nothing was parked as dead.
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const sinkLines = metrics.split('\n').filter(l => l.includes('backstage:') && !l.startsWith('#'));
    for (const id of ['bus', 'ingress']) {
      const retried = sinkLines.find(l => l.startsWith('soundcheck_events_retried_total') && l.includes(`"backstage:${id}"`));
      assert.ok(retried && Number(retried.split(' ').pop()) > 0, `backstage:${id} never retried:\n${sinkLines.join('\n')}`);
      assert.ok(!sinkLines.some(l => l.startsWith('soundcheck_events_dead_total') && l.includes(`"backstage:${id}"`) && Number(l.split(' ').pop()) > 0));
    }
    console.log(sinkLines.filter(l => l.startsWith('soundcheck_sink_requests_total') || l.startsWith('soundcheck_events_retried_total')).join('\n'));
    console.log(`interop (${postgres ? 'PostgreSQL' : 'SQLite'}): ${stored.length} events stored (${phase1} before the outage), ${received.length} received`);
  } finally {
    soundcheck.kill('SIGTERM');
    backstage.kill('SIGKILL');
    await Promise.all([soundcheck.exited, backstage.exited]);
  }
}
