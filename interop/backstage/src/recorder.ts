// A Backstage backend plugin that subscribes to soundcheck-rs events exactly like the seed's
// example, with the types package's import path, and appends every event it receives to the
// JSON-lines file named by RECORDER_OUT, so the interop test can compare them with what the
// service stored.
import { appendFileSync } from 'node:fs';
import { coreServices, createBackendPlugin } from '@backstage/backend-plugin-api';
import { eventsServiceRef } from '@backstage/plugin-events-node';
import {
  CERTIFICATION_CHANGE_TOPIC,
  CHECK_STATUS_CHANGE_TOPIC,
  CertificationChangeEvent,
  CheckStatusChangeEvent,
} from '@soundcheck-rs/soundcheck-node';

// With RECORDER_FORWARD_URL set (by `soundcheck bench sinks --sink backstage`), each event is
// also POSTed there as `{topic, eventPayload}`, so the benchmark sees when it arrived.
async function record(subscriber: string, topic: string, payload: unknown, metadata: unknown) {
  const out = process.env.RECORDER_OUT;
  if (out) {
    appendFileSync(out, `${JSON.stringify({ subscriber, topic, eventPayload: payload, metadata: metadata ?? null })}\n`);
  }
  const forward = process.env.RECORDER_FORWARD_URL;
  if (forward) {
    await fetch(forward, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic, eventPayload: payload }),
    });
  }
}

export const recorderPlugin = createBackendPlugin({
  pluginId: 'recorder',
  register(env) {
    env.registerInit({
      deps: { events: eventsServiceRef, logger: coreServices.logger },
      async init({ events, logger }) {
        // The seed's subscriber, unchanged but for the import path above.
        events.subscribe({
          id: 'test-sub',
          topics: [CHECK_STATUS_CHANGE_TOPIC],
          onEvent: async params => {
            const event = params.eventPayload as CheckStatusChangeEvent;
            logger.info(`check ${event.checkId} on ${event.entityRef}: ${event.previousState ?? 'none'} -> ${event.state}`);
            await record('test-sub', params.topic, event, params.metadata);
          },
        });
        events.subscribe({
          id: 'test-cert',
          topics: [CERTIFICATION_CHANGE_TOPIC],
          onEvent: async params => {
            const event = params.eventPayload as CertificationChangeEvent;
            logger.info(`track ${event.trackId} level ${event.levelOrdinal} on ${event.entityRef}: ${event.state}`);
            await record('test-cert', params.topic, event, params.metadata);
          },
        });
      },
    });
  },
});
