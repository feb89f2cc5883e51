// A hand-made bench input (app-config.yaml, catalog.jsonl, facts.jsonl) and the results
// decisions.md §3 gives for it. Used by peer.test.mjs; written to a temp dir at test time.

export const appConfig = `
soundcheck:
  tracks: []
  checks:
    - id: has-readme
      filter: { kind: component }
      rule: { factRef: "scm:default/repo", path: $.readme, operator: equal, value: true }
    - id: coverage-80
      warning: true
      rule: { factRef: "ci:default/coverage", path: $.percent, operator: greaterThanInclusive, value: 80 }
    - id: coverage-vs-min
      rule:
        factRef: ci:default/coverage
        path: $.percent
        operator: greaterThanInclusive
        value: { factRef: "scm:default/repo", path: $.minCoverage }
    - id: coverage-low
      rule: { factRef: "ci:default/coverage", path: $.percent, operator: lessThan, value: 50 }
    - id: coverage-range
      rule:
        all:
          - { factRef: "ci:default/coverage", path: $.percent, operator: greaterThan, value: 0 }
          - { factRef: "ci:default/coverage", path: $.percent, operator: lessThanInclusive, value: 85 }
    - id: license-ok
      rule: { factRef: "scm:default/repo", path: $.license, operator: in, value: [Apache-2.0, BSD-3-Clause] }
    - id: absent-not-in
      rule: { factRef: "scm:default/repo", path: $.noSuchField, operator: notIn, value: [x] }
    - id: tagged-java
      rule: { factRef: "catalog:default/entity_descriptor", path: $.metadata.tags, operator: contains, value: java }
    - id: no-go
      rule: { factRef: "scm:default/repo", path: $.languages, operator: doesNotContain, value: go }
    - id: techdocs
      rule:
        factRef: catalog:default/entity_descriptor
        path: "$.metadata.annotations['backstage.io/techdocs-ref']"
        operator: matches
        value: "^dir:"
    - id: not-deprecated
      rule: { factRef: "catalog:default/entity_descriptor", path: $.spec.lifecycle, operator: notEqual, value: deprecated }
    - id: nested
      filter:
        - { spec.type: [service, website] }
        - { kind: API }
      exclude: { spec.lifecycle: EXPERIMENTAL }
      rule:
        any:
          - all:
              - { factRef: "ci:default/coverage", path: "$.jobs[?(@.status == 'failed')].name", operator: equal, value: build }
              - { factRef: "scm:default/repo", path: $.readme, operator: equal, value: false }
          - not: { factRef: "catalog:default/entity_descriptor", path: $.spec.type, operator: equal, value: service }
    - id: one-wildcard-node
      rule: { factRef: "ci:default/coverage", path: "$.flaky[*].name", operator: equal, value: t1 }
    - id: applicable-service
      applicable: { factRef: "catalog:default/entity_descriptor", path: $.spec.type, operator: equal, value: service }
      rule: { factRef: "scm:default/repo", path: $.readme, operator: equal, value: true }
    - id: bare-list
      rule:
        - { factRef: "ci:default/coverage", path: $.percent, operator: greaterThan, value: 10 }
        - { factRef: "ci:default/coverage", path: $.percent, operator: lessThan, value: 90 }
    - id: empty-any-is-false
      rule:
        all:
          - any: []
          - { factRef: "ci:default/coverage", path: $.percent, operator: greaterThan, value: 0 }
    - id: empty-all-is-true
      rule:
        any:
          - all: []
          - { factRef: "ci:default/coverage", path: $.percent, operator: equal, value: -1 }
    - id: external-check
      name: results pushed from outside, no rule
    - id: manual-check
      type: manual
    - id: java-svc-name
      filter: { metadata.tags: JAVA, kind: Component }
      rule: { factRef: "catalog:default/entity_descriptor", path: $.metadata.name, operator: matches, value: "^svc" }
    - id: pagerduty
      filter: { metadata.annotations.pagerduty.com/integration-key: K }
      rule: { factRef: "scm:default/repo", path: $.readme, operator: equal, value: true }
    - id: owner-listed
      filter: { spec.type: [service, website] }
      exclude: [{ metadata.name: no-facts }]
      rule:
        factRef: catalog:default/entity_descriptor
        path: $.spec.owner
        operator: in
        value: { factRef: "scm:default/repo", path: $.owners }
    - id: manual-with-rule
      type: manual
      rule: { factRef: "scm:default/repo", path: $.readme, operator: equal, value: true }
    - id: exclude-empty-map
      exclude: [{}]
      rule: { factRef: "catalog:default/entity_descriptor", path: $.kind, operator: equal, value: Component }
    - id: equal-both-absent
      filter: { metadata.name: svc-a }
      rule:
        factRef: scm:default/repo
        path: $.nope
        operator: equal
        value: { factRef: "scm:default/repo", path: $.nope2 }
    - id: owner-listed-unguarded
      filter: { metadata.name: no-facts }
      rule:
        factRef: catalog:default/entity_descriptor
        path: $.spec.owner
        operator: in
        value: { factRef: "scm:default/repo", path: $.owners }
`;

export const catalog = [
  { apiVersion: 'backstage.io/v1alpha1', kind: 'Component',
    metadata: { name: 'svc-a', tags: ['java', 'internal'],
      annotations: { 'backstage.io/techdocs-ref': 'dir:.', 'pagerduty.com/integration-key': 'k' } },
    spec: { type: 'service', lifecycle: 'production', owner: 'team-a' } },
  { apiVersion: 'backstage.io/v1alpha1', kind: 'Component',
    metadata: { name: 'Svc-B', namespace: 'Payments', tags: ['python'] },
    spec: { type: 'website', lifecycle: 'experimental', owner: 'team-b' } },
  { apiVersion: 'backstage.io/v1alpha1', kind: 'Component',
    metadata: { name: 'lib-c' },
    spec: { type: 'library', lifecycle: 'deprecated', owner: 'team-a' } },
  { apiVersion: 'backstage.io/v1alpha1', kind: 'API',
    metadata: { name: 'api-d' },
    spec: { type: 'openapi', lifecycle: 'production', owner: 'team-a' } },
  { apiVersion: 'backstage.io/v1alpha1', kind: 'Component',
    metadata: { name: 'no-facts', tags: ['java'] },
    spec: { type: 'service', lifecycle: 'production', owner: 'team-z' } },
];

export const facts = [
  { factRef: 'ci:default/coverage', entityRef: 'component:default/svc-a', timestamp: '2026-01-02T00:00:00Z',
    data: { percent: 85, jobs: [{ name: 'build', status: 'ok' }, { name: 'test', status: 'ok' }], flaky: [{ name: 't1' }] } },
  // older, later in the file: must lose to the line above
  { factRef: 'ci:default/coverage', entityRef: 'component:default/svc-a', timestamp: '2026-01-01T00:00:00Z',
    data: { percent: 10 } },
  { factRef: 'ci:coverage', entityRef: 'Component:payments/Svc-B', timestamp: '2026-01-01T00:00:00Z',
    data: { percent: '72', jobs: [{ name: 'build', status: 'failed' }] } },
  { factRef: { source: 'ci', name: 'coverage' }, entityRef: 'component:lib-c', timestamp: '2026-01-01T00:00:00Z',
    data: { percent: 40 } },
  { factRef: 'scm:default/repo', entityRef: 'component:default/svc-a', timestamp: '2026-01-01T00:00:00Z',
    data: { readme: true, license: 'Apache-2.0', languages: ['java', 'go'], minCoverage: 80, owners: ['team-a'] } },
  { factRef: 'scm:default/repo', entityRef: 'component:payments/Svc-B', timestamp: '2026-01-01T00:00:00Z',
    data: { readme: false, license: 'MIT', languages: ['python'], minCoverage: 60, owners: ['team-x'] } },
  // a second scope for svc-a: evaluated on its own, with only the facts of that scope
  { factRef: 'scm:default/repo', entityRef: 'component:default/svc-a', scope: 'staging', timestamp: '2026-01-01T00:00:00Z',
    data: { readme: false, license: 'MIT', languages: ['java'], minCoverage: 90, owners: ['team-a'] } },
  { factRef: 'scm:default/repo', entityRef: 'component:default/ghost', timestamp: '2026-01-01T00:00:00Z',
    data: { readme: true } },
];

const A = 'component:default/svc-a';
const B = 'component:payments/Svc-B';
const C = 'component:default/lib-c';
const D = 'api:default/api-d';
const E = 'component:default/no-facts';

// [entityRef, checkId, state, scope = 'default'] per decisions.md §3 (pairs not listed: no result)
export const expected = [
  [A, 'has-readme', 'passed'], [B, 'has-readme', 'failed'], [D, 'has-readme', 'not-applicable'],
  [A, 'coverage-80', 'passed'], [B, 'coverage-80', 'warning'], [C, 'coverage-80', 'warning'],
  [A, 'coverage-vs-min', 'passed'], [B, 'coverage-vs-min', 'passed'], [C, 'coverage-vs-min', 'failed'],
  [A, 'coverage-low', 'failed'], [B, 'coverage-low', 'failed'], [C, 'coverage-low', 'passed'],
  [A, 'coverage-range', 'passed'], [B, 'coverage-range', 'passed'], [C, 'coverage-range', 'passed'],
  [A, 'license-ok', 'passed'], [B, 'license-ok', 'failed'],
  [A, 'absent-not-in', 'passed'], [B, 'absent-not-in', 'passed'],
  [A, 'tagged-java', 'passed'], [B, 'tagged-java', 'failed'], [C, 'tagged-java', 'failed'],
  [D, 'tagged-java', 'failed'], [E, 'tagged-java', 'passed'],
  [A, 'no-go', 'failed'], [B, 'no-go', 'passed'],
  [A, 'techdocs', 'passed'], [B, 'techdocs', 'failed'], [C, 'techdocs', 'failed'],
  [D, 'techdocs', 'failed'], [E, 'techdocs', 'failed'],
  [A, 'not-deprecated', 'passed'], [B, 'not-deprecated', 'passed'], [C, 'not-deprecated', 'failed'],
  [D, 'not-deprecated', 'passed'], [E, 'not-deprecated', 'passed'],
  [A, 'nested', 'failed'], [B, 'nested', 'not-applicable'], [C, 'nested', 'not-applicable'],
  [D, 'nested', 'passed'], [E, 'nested', 'failed'],
  [A, 'one-wildcard-node', 'passed'], [B, 'one-wildcard-node', 'failed'], [C, 'one-wildcard-node', 'failed'],
  [A, 'applicable-service', 'passed'], [B, 'applicable-service', 'not-applicable'],
  [A, 'bare-list', 'passed'], [B, 'bare-list', 'passed'], [C, 'bare-list', 'passed'],
  [A, 'empty-any-is-false', 'failed'], [B, 'empty-any-is-false', 'failed'], [C, 'empty-any-is-false', 'failed'],
  [A, 'empty-all-is-true', 'passed'], [B, 'empty-all-is-true', 'passed'], [C, 'empty-all-is-true', 'passed'],
  [A, 'java-svc-name', 'passed'], [B, 'java-svc-name', 'not-applicable'], [C, 'java-svc-name', 'not-applicable'],
  [D, 'java-svc-name', 'not-applicable'], [E, 'java-svc-name', 'failed'],
  [A, 'pagerduty', 'passed'], [B, 'pagerduty', 'not-applicable'], [C, 'pagerduty', 'not-applicable'],
  [D, 'pagerduty', 'not-applicable'], [E, 'pagerduty', 'not-applicable'],
  [A, 'owner-listed', 'passed'], [B, 'owner-listed', 'failed'], [C, 'owner-listed', 'not-applicable'],
  [D, 'owner-listed', 'not-applicable'], [E, 'owner-listed', 'not-applicable'],
  [A, 'owner-listed-unguarded', 'not-applicable'], [B, 'owner-listed-unguarded', 'not-applicable'],
  [C, 'owner-listed-unguarded', 'not-applicable'], [D, 'owner-listed-unguarded', 'not-applicable'],
  [A, 'exclude-empty-map', 'passed'], [B, 'exclude-empty-map', 'passed'], [C, 'exclude-empty-map', 'passed'],
  [D, 'exclude-empty-map', 'failed'], [E, 'exclude-empty-map', 'passed'],
  ...[
    ['has-readme', 'failed'], ['coverage-vs-min', 'failed'], ['license-ok', 'failed'], ['absent-not-in', 'passed'],
    ['tagged-java', 'passed'], ['no-go', 'passed'], ['techdocs', 'passed'], ['not-deprecated', 'passed'],
    ['nested', 'failed'], ['applicable-service', 'failed'], ['java-svc-name', 'passed'], ['pagerduty', 'failed'],
    ['owner-listed', 'passed'], ['owner-listed-unguarded', 'not-applicable'], ['exclude-empty-map', 'passed'],
  ].map(([check, state]) => [A, check, state, 'staging']),
  // Known difference: decisions.md says `failed` (absent is never equal); json-rules-engine
  // compares undefined === undefined.
  [A, 'equal-both-absent', 'passed'], [B, 'equal-both-absent', 'not-applicable'],
  [C, 'equal-both-absent', 'not-applicable'], [D, 'equal-both-absent', 'not-applicable'],
  [E, 'equal-both-absent', 'not-applicable'], [A, 'equal-both-absent', 'passed', 'staging'],
  // Known difference: decisions.md says `failed` (the value fact is absent, so `in` is false);
  // json-rules-engine's `in` calls `undefined.indexOf` and throws. run.mjs reports `error`.
  [E, 'owner-listed-unguarded', 'error'],
];

// Pairs where json-rules-engine's stock path resolver (JSONPath-Plus, wrap:false) differs:
// `$.flaky[*].name` selects one node, which the stock resolver returns as `["t1"]`.
export const stockResolverDiffs = [[A, 'one-wildcard-node', 'failed']];
