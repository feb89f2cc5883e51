#!/usr/bin/env node
// Peer evaluator: the same checks over the same facts, evaluated by json-rules-engine.
//
//   node benches/peer/run.mjs --dir DIR --results-out FILE
//       [--almanac shared|per-run] [--lanes N] [--parallel-checks] [--path-resolver contract|stock]
//
// Writes one JSON line per reported (entity, check) pair to FILE and prints one JSON stats
// object to stdout. See README.md for the semantics and the known differences.
//
// Evaluation strategy. Defaults chosen by measurement: 2000 entities x 50 checks, 8-10
// interleaved runs per option on the 2-core dev VM, median CPU time of the evaluate loop.
// - `--almanac shared` (default): one json-rules-engine Almanac per (entity, scope), holding
//   all of its facts, reused by every check's engine.run(). Each fact is registered (and hashed
//   for the fact cache) once instead of once per run. `per-run` passes the referenced facts as
//   runtime facts to every engine.run(): about 10-15% slower.
// - `--lanes 1` (default): entities one after another, each run awaited. N lanes run N entities
//   at once, each lane with its own engines (an Engine keeps a run status on itself, so one
//   Engine must not run twice concurrently). It is all one JS thread, so lanes only add
//   promise interleaving and live garbage: 2 lanes ~7% slower, 4-16 lanes 30-60% slower.
// - `--parallel-checks`: the checks of one entity under Promise.all instead of one by one.
//   Within the noise (+-5%) of the default; kept as an option.
// - `--path-resolver contract` (default): JSONPath-Plus with wrap:true, unwrapped by us (see
//   lib.mjs). `stock` is json-rules-engine's own resolver (JSONPath-Plus, wrap:false), which
//   returns a scalar result by throwing and catching it inside JSONPath-Plus: about 2x slower
//   overall on the generated workload, and different on one-node wildcard paths.
// Most of the remaining time is json-rules-engine itself (deep-cloning the conditions into a
// RuleResult on every run, promises, event emission); the code here is a few percent.

import { createWriteStream } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Almanac } from 'json-rules-engine';
import {
  buildEngines, compileChecks, contractPathResolver, engineVersion, filterMatches,
  flattenEntity, loadCatalog, loadConfig, loadFacts,
} from './lib.mjs';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    'results-out': { type: 'string' },
    almanac: { type: 'string', default: 'shared' },
    lanes: { type: 'string', default: '1' },
    'parallel-checks': { type: 'boolean', default: false },
    'path-resolver': { type: 'string', default: 'contract' },
  },
});

function usage(msg) {
  process.stderr.write(`${msg}\nusage: node run.mjs --dir DIR --results-out FILE [--almanac shared|per-run] [--lanes N] [--parallel-checks] [--path-resolver contract|stock]\n`);
  process.exit(2);
}
if (!args.dir || !args['results-out']) usage('--dir and --results-out are required');
if (!['shared', 'per-run'].includes(args.almanac)) usage('--almanac must be shared or per-run');
if (!['contract', 'stock'].includes(args['path-resolver'])) usage('--path-resolver must be contract or stock');
const lanes = Number.parseInt(args.lanes, 10);
if (!(lanes >= 1)) usage('--lanes must be a positive integer');
const sharedAlmanac = args.almanac === 'shared';
const parallelChecks = args['parallel-checks'];
// undefined = json-rules-engine's own default (JSONPath-Plus, wrap: false)
const pathResolver = args['path-resolver'] === 'contract' ? contractPathResolver : undefined;

// ------------------------------------------------------------------ load (timed as loadMs)

const t0 = performance.now();
const config = loadConfig(`${args.dir}/app-config.yaml`);
const specs = compileChecks(config.checks);
const catalog = await loadCatalog(`${args.dir}/catalog.jsonl`);
const { facts, unknownEntityFacts } = await loadFacts(`${args.dir}/facts.jsonl`, catalog);
const laneEngines = Array.from({ length: lanes }, () => buildEngines(specs, pathResolver));
const anyFilter = specs.some((s) => s.filter || s.exclude);
const loadMs = performance.now() - t0;

// ------------------------------------------------------------------ evaluate (timed as evaluateMs)

const NA = 'not-applicable';
const ERROR = 'error';
let errors = 0;
let firstError = null;

function pick(entityFacts, refs) {
  const out = {};
  for (const r of refs) if (r in entityFacts) out[r] = entityFacts[r];
  return out;
}

async function runEngine(engine, entityFacts, refs, almanac) {
  if (!almanac) {
    // one rule per engine, so exactly one rule result
    const { results } = await engine.run(pick(entityFacts, refs));
    return results.length > 0;
  }
  // A shared almanac accumulates the rule results of every run on it (and with
  // --parallel-checks, of runs interleaved with this one): take the newest of this rule.
  const { almanac: a } = await engine.run({}, { almanac });
  const name = engine.rules[0].name;
  const all = a.getResults();
  for (let k = all.length - 1; k >= 0; k -= 1) if (all[k].name === name) return all[k].result === true;
  throw new Error(`no rule result for ${name}`);
}

/** State for one (entity, check), or undefined when the pair is not reported. */
async function evaluatePair(spec, engines, entityFacts, flat, almanac) {
  if (spec.filter && !filterMatches(spec.filter, flat)) return NA;
  if (spec.exclude && filterMatches(spec.exclude, flat)) return NA;
  let present = false;
  for (const r of spec.refs) if (r in entityFacts) { present = true; break; }
  if (!present) return undefined;
  try {
    if (engines.applicable && !(await runEngine(engines.applicable, entityFacts, spec.appRefs, almanac))) return NA;
    return (await runEngine(engines.rule, entityFacts, spec.refs, almanac)) ? 'passed' : spec.failState;
  } catch (e) {
    // decisions.md: a leaf never raises. json-rules-engine can (e.g. `in` with a number as value);
    // report it as `error` so that compare.mjs shows the pair.
    errors += 1;
    firstError ??= `${spec.id}: ${e.message}`;
    return ERROR;
  }
}

function newAlmanac(entityFacts) {
  const almanac = new Almanac({ allowUndefinedFacts: true, pathResolver });
  for (const factRef in entityFacts) almanac.addFact(factRef, entityFacts[factRef]);
  return almanac;
}

async function evaluateScope(engines, entityFacts, flat) {
  const almanac = sharedAlmanac ? newAlmanac(entityFacts) : null;
  if (parallelChecks) {
    return Promise.all(specs.map((s, c) => evaluatePair(s, engines[c], entityFacts, flat, almanac)));
  }
  const states = new Array(specs.length);
  for (let c = 0; c < specs.length; c += 1) {
    states[c] = await evaluatePair(specs[c], engines[c], entityFacts, flat, almanac);
  }
  return states;
}

/** [[scope, states]] for one entity: every scope it has facts in, `default` first. */
async function evaluateEntity(i, engines) {
  const { ref, entity } = catalog[i];
  const flat = anyFilter ? flattenEntity(entity) : null;
  const out = [];
  for (const [scope, entityFacts] of facts.get(ref)) {
    out.push([scope, await evaluateScope(engines, entityFacts, flat)]);
  }
  return out;
}

const stateRows = new Array(catalog.length);
const cpu1 = process.cpuUsage();
const t1 = performance.now();
let next = 0;
await Promise.all(laneEngines.map(async (engines) => {
  while (next < catalog.length) {
    const i = next;
    next += 1;
    stateRows[i] = await evaluateEntity(i, engines);
  }
}));
const evaluateMs = performance.now() - t1;
// CPU time of the whole process (GC threads included) over the loop: steadier than wall time
// on a busy machine.
const cpu = process.cpuUsage(cpu1);
const evaluateCpuMs = (cpu.user + cpu.system) / 1000;

// ------------------------------------------------------------------ write results

const out = createWriteStream(args['results-out']);
let reported = 0;
let scopeEvaluations = 0;
let chunk = '';
for (let i = 0; i < catalog.length; i += 1) {
  for (const [scope, states] of stateRows[i]) {
    scopeEvaluations += 1;
    for (let c = 0; c < specs.length; c += 1) {
      const state = states[c];
      if (state === undefined) continue;
      reported += 1;
      chunk += `${JSON.stringify({ entityRef: catalog[i].ref, checkId: specs[c].id, state, scope })}\n`;
      if (chunk.length > 1 << 20) {
        if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
        chunk = '';
      }
    }
  }
}
out.end(chunk);
await new Promise((resolve, reject) => { out.on('finish', resolve); out.on('error', reject); });

if (unknownEntityFacts > 0) {
  process.stderr.write(`note: ${unknownEntityFacts} fact line(s) for entities not in the catalog were ignored\n`);
}
if (errors > 0) process.stderr.write(`note: ${errors} pair(s) raised in json-rules-engine; first: ${firstError}\n`);

// Counted like `soundcheck evaluate --stats-out`: (entity, scope) evaluations x every configured
// check, rule-less (manual, external) checks included; they cost nothing on either side.
const pairs = scopeEvaluations * config.checks.length;
const round = (x) => Math.round(x * 1000) / 1000;
process.stdout.write(`${JSON.stringify({
  engine: 'json-rules-engine',
  version: engineVersion(),
  entities: catalog.length,
  checks: config.checks.length,
  evaluatedChecks: specs.length,
  pairs,
  scopeEvaluations,
  reported,
  errors,
  loadMs: round(loadMs),
  evaluateMs: round(evaluateMs),
  evaluateCpuMs: round(evaluateCpuMs),
  pairsPerSecond: Math.round(pairs / (evaluateMs / 1000)),
  strategy: { almanac: args.almanac, lanes, parallelChecks, pathResolver: args['path-resolver'] },
  node: process.version,
})}\n`);
