// Checks the package against the events the Rust service actually writes (its golden file),
// and that the seed's subscriber code type-checks against it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CERTIFICATION_CHANGE_TOPIC,
  CHECK_STATUS_CHANGE_TOPIC,
  CertificationChangeEvent,
  CheckStatusChangeEvent,
  isCertificationChangeEvent,
  isCheckStatusChangeEvent,
} from '../src';

const golden = join(__dirname, '..', '..', '..', '..', 'crates', 'soundcheck', 'tests', 'golden', 'events-out.jsonl');

function goldenEvents(): { topic: string; eventPayload: unknown }[] {
  return readFileSync(golden, 'utf8')
    .split('\n')
    .filter(line => line.trim() !== '')
    .map(line => JSON.parse(line));
}

test('topics are the ones the service publishes on', () => {
  const topics = new Set(goldenEvents().map(e => e.topic));
  assert.deepEqual([...topics].sort(), [CERTIFICATION_CHANGE_TOPIC, CHECK_STATUS_CHANGE_TOPIC].sort());
});

test('every golden payload matches its type exactly', () => {
  for (const e of goldenEvents()) {
    if (e.topic === CHECK_STATUS_CHANGE_TOPIC) {
      assert.ok(isCheckStatusChangeEvent(e.eventPayload), JSON.stringify(e));
      assert.ok(!isCertificationChangeEvent(e.eventPayload));
    } else {
      assert.ok(isCertificationChangeEvent(e.eventPayload), JSON.stringify(e));
      assert.ok(!isCheckStatusChangeEvent(e.eventPayload));
    }
  }
});

test('guards reject extra fields, null previousState and unknown states', () => {
  const ok: CheckStatusChangeEvent = {
    checkId: 'c',
    entityRef: 'component:default/a',
    state: 'failed',
    timestampMs: 1,
    scope: 'default',
  };
  assert.ok(isCheckStatusChangeEvent(ok));
  assert.ok(!isCheckStatusChangeEvent({ ...ok, previousState: null }));
  assert.ok(!isCheckStatusChangeEvent({ ...ok, extra: 1 }));
  assert.ok(!isCheckStatusChangeEvent({ ...ok, state: 'green' }));
  assert.ok(!isCheckStatusChangeEvent({ ...ok, timestampMs: 1.5 }));
  const cert: CertificationChangeEvent = {
    trackId: 't',
    entityRef: 'component:default/a',
    state: 'passed',
    cumulativeState: 'failed',
    levelOrdinal: 2,
    timestampMs: 1,
    scope: 'default',
  };
  assert.ok(isCertificationChangeEvent(cert));
  assert.ok(!isCertificationChangeEvent({ ...cert, cumulativeState: 'warning' }));
  assert.ok(!isCertificationChangeEvent({ ...cert, levelOrdinal: '2' }));
});

// The seed's subscriber, against a structural stand-in for Backstage's EventsService (the
// interop test under interop/backstage compiles the same code against the real one).
interface EventParams {
  topic: string;
  eventPayload: unknown;
  metadata?: Record<string, string | string[] | undefined>;
}
interface EventsService {
  subscribe(options: {
    id: string;
    topics: string[];
    onEvent: (params: EventParams) => Promise<void>;
  }): Promise<void>;
}

test("the seed's subscriber code compiles and runs", async () => {
  const seen: CheckStatusChangeEvent[] = [];
  const events: EventsService = {
    async subscribe(options) {
      await options.onEvent({
        topic: CHECK_STATUS_CHANGE_TOPIC,
        eventPayload: { checkId: 'c', entityRef: 'component:default/a', state: 'passed', timestampMs: 1, scope: 'default' },
      });
    },
  };
  await events.subscribe({
    id: 'test-sub',
    topics: [CHECK_STATUS_CHANGE_TOPIC],
    onEvent: async params => {
      const payload = params.eventPayload as CheckStatusChangeEvent;
      seen.push(payload);
    },
  });
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.state, 'passed');
});
