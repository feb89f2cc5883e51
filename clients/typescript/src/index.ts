/**
 * Topics and payload types of the events that soundcheck-rs publishes, for Backstage backend
 * plugins that subscribe to them with `EventsService.subscribe`.
 *
 * The payloads are exactly those of Soundcheck's events (see docs/state-and-events.md in the
 * soundcheck-rs repository). Code written against `@spotify/backstage-plugin-soundcheck-node`
 * compiles against this package with only the import path changed.
 */

/** Topic of check result changes. */
export const CHECK_STATUS_CHANGE_TOPIC = 'soundcheck-check-status-change';

/** Topic of certification changes. */
export const CERTIFICATION_CHANGE_TOPIC = 'soundcheck-certification-change';

/** Either Soundcheck topic. */
export type SoundcheckEventTopic =
  | typeof CHECK_STATUS_CHANGE_TOPIC
  | typeof CERTIFICATION_CHANGE_TOPIC;

/** The state of one check for one entity. */
export type CheckResultState =
  | 'passed'
  | 'failed'
  | 'warning'
  | 'not-applicable'
  | 'error';

/** The state of one track level for one entity. */
export type CertificationState = 'passed' | 'failed';

/** Payload of `soundcheck-check-status-change`: a check's stored state for an entity changed. */
export interface CheckStatusChangeEvent {
  /** The check. */
  checkId: string;
  /** The entity, e.g. `component:default/web`. */
  entityRef: string;
  /** The new state. */
  state: CheckResultState;
  /** The earlier state; absent (not `null`) when the check had no result for the entity. */
  previousState?: CheckResultState;
  /** When the new state was stored, in milliseconds since the Unix epoch. */
  timestampMs: number;
  /** The scope, `default` unless facts were submitted for another one. */
  scope: string;
}

/** Payload of `soundcheck-certification-change`: a track level's certification changed. */
export interface CertificationChangeEvent {
  /** The track. */
  trackId: string;
  /** The entity. */
  entityRef: string;
  /** This level on its own. */
  state: CertificationState;
  /** This level and every level below it. */
  cumulativeState: CertificationState;
  /** The level. */
  levelOrdinal: number;
  /** When the new state was stored, in milliseconds since the Unix epoch. */
  timestampMs: number;
  /** The level's earlier `state`; absent when there was none. */
  previousState?: CertificationState;
  /** The scope. */
  scope: string;
}

/**
 * Metadata keys soundcheck-rs sets on events delivered in-process, over webhooks, NATS and the
 * live stream. Backstage's event bus drops metadata; over Backstage's HTTP ingress the same
 * values arrive as headers, see `SOUNDCHECK_HTTP_HEADERS`.
 */
export const SOUNDCHECK_METADATA = {
  /** A unique id per event, for de-duplication. */
  eventId: 'eventId',
  /** A certification event's previous cumulative state. */
  previousCumulativeState: 'previousCumulativeState',
} as const;

/**
 * The `metadata` keys under which a Backstage subscriber finds soundcheck-rs's metadata when
 * the event came in through Backstage's HTTP ingress (`route: http`): Backstage passes the
 * request's headers, lower-cased, as `metadata`, and only to subscribers in the backend
 * process that received the request.
 */
export const SOUNDCHECK_HTTP_HEADERS = {
  /** A unique id per event, for de-duplication. */
  eventId: 'x-soundcheck-event-id',
  /** A certification event's previous cumulative state. */
  previousCumulativeState: 'x-soundcheck-previous-cumulative-state',
} as const;

const CHECK_STATES: readonly string[] = [
  'passed',
  'failed',
  'warning',
  'not-applicable',
  'error',
];
const CERT_STATES: readonly string[] = ['passed', 'failed'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function onlyKeys(value: Record<string, unknown>, keys: readonly string[]): boolean {
  return Object.keys(value).every(k => keys.includes(k));
}

function optionalState(value: unknown, states: readonly string[]): boolean {
  return value === undefined || (typeof value === 'string' && states.includes(value));
}

/** Whether `payload` is exactly a `CheckStatusChangeEvent` (no missing or extra fields). */
export function isCheckStatusChangeEvent(
  payload: unknown,
): payload is CheckStatusChangeEvent {
  if (!isRecord(payload)) return false;
  const p = payload;
  return (
    onlyKeys(p, ['checkId', 'entityRef', 'state', 'previousState', 'timestampMs', 'scope']) &&
    typeof p.checkId === 'string' &&
    typeof p.entityRef === 'string' &&
    typeof p.state === 'string' &&
    CHECK_STATES.includes(p.state) &&
    optionalState(p.previousState, CHECK_STATES) &&
    Number.isInteger(p.timestampMs) &&
    typeof p.scope === 'string'
  );
}

/** Whether `payload` is exactly a `CertificationChangeEvent` (no missing or extra fields). */
export function isCertificationChangeEvent(
  payload: unknown,
): payload is CertificationChangeEvent {
  if (!isRecord(payload)) return false;
  const p = payload;
  return (
    onlyKeys(p, [
      'trackId',
      'entityRef',
      'state',
      'cumulativeState',
      'levelOrdinal',
      'timestampMs',
      'previousState',
      'scope',
    ]) &&
    typeof p.trackId === 'string' &&
    typeof p.entityRef === 'string' &&
    typeof p.state === 'string' &&
    CERT_STATES.includes(p.state) &&
    typeof p.cumulativeState === 'string' &&
    CERT_STATES.includes(p.cumulativeState) &&
    Number.isInteger(p.levelOrdinal) &&
    Number.isInteger(p.timestampMs) &&
    optionalState(p.previousState, CERT_STATES) &&
    typeof p.scope === 'string'
  );
}
