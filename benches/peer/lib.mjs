// Loading and compiling for the json-rules-engine peer (see README.md).
//
// Everything here is plain JS: reading the bench inputs, entity and fact refs,
// catalog filters, and the mapping of our rule trees onto json-rules-engine
// conditions. Rule evaluation itself is left to json-rules-engine (run.mjs).

import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import yaml from 'js-yaml';
import { Engine } from 'json-rules-engine';
import { JSONPath } from 'jsonpath-plus';

const require = createRequire(import.meta.url);

export const ENTITY_DESCRIPTOR = 'catalog:default/entity_descriptor';

export const OPERATORS = new Set([
  'equal', 'notEqual',
  'lessThan', 'lessThanInclusive', 'greaterThan', 'greaterThanInclusive',
  'in', 'notIn', 'contains', 'doesNotContain', 'matches',
]);

export function engineVersion() {
  return require('json-rules-engine/package.json').version;
}

// ---------------------------------------------------------------- refs

/** `kind:namespace/name` with kind and namespace lower-cased; namespace defaults to `default`. */
export function parseEntityRef(ref) {
  if (typeof ref !== 'string') throw new Error(`entity ref must be a string, got ${JSON.stringify(ref)}`);
  const colon = ref.indexOf(':');
  if (colon <= 0) throw new Error(`entity ref without a kind: ${JSON.stringify(ref)}`);
  const kind = ref.slice(0, colon);
  const rest = ref.slice(colon + 1);
  const slash = rest.indexOf('/');
  const namespace = slash < 0 ? 'default' : rest.slice(0, slash);
  const name = slash < 0 ? rest : rest.slice(slash + 1);
  if (!name) throw new Error(`entity ref without a name: ${JSON.stringify(ref)}`);
  return `${kind.toLowerCase()}:${(namespace || 'default').toLowerCase()}/${name}`;
}

export function entityRefOf(entity) {
  const kind = entity?.kind;
  const name = entity?.metadata?.name;
  if (typeof kind !== 'string' || typeof name !== 'string') {
    throw new Error('catalog entity without kind or metadata.name');
  }
  const namespace = entity.metadata.namespace || 'default';
  return `${kind.toLowerCase()}:${String(namespace).toLowerCase()}/${name}`;
}

/**
 * `source:scope/name` (split at the first `:` and the first `/` after it; the name may contain
 * `/`), or the object form `{source, scope?, name}`. Scope defaults to `default`.
 */
export function canonicalFactRef(ref) {
  if (ref && typeof ref === 'object') {
    if (!ref.source || !ref.name) throw new Error(`fact ref object needs source and name: ${JSON.stringify(ref)}`);
    return `${ref.source}:${ref.scope || 'default'}/${ref.name}`;
  }
  if (typeof ref !== 'string') throw new Error(`fact ref must be a string or object, got ${JSON.stringify(ref)}`);
  const colon = ref.indexOf(':');
  if (colon <= 0) throw new Error(`fact ref without a source: ${JSON.stringify(ref)}`);
  const rest = ref.slice(colon + 1);
  const slash = rest.indexOf('/');
  if (slash < 0) return `${ref.slice(0, colon)}:default/${rest}`;
  if (slash === 0) return `${ref.slice(0, colon)}:default${rest}`;
  return ref;
}

// ---------------------------------------------------------------- input files

async function* jsonLines(file) {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of rl) {
    lineNo += 1;
    if (!line.trim()) continue;
    try {
      yield JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${lineNo}: ${e.message}`);
    }
  }
}

export function loadConfig(file) {
  // YAML 1.2 core schema, like our loader: no timestamps (`2026-01-01` stays a string), no
  // `<<` merge keys, no `yes`/`no` booleans.
  const doc = yaml.load(readFileSync(file, 'utf8'), { schema: yaml.CORE_SCHEMA, filename: file });
  const sc = doc?.soundcheck ?? {};
  return { checks: sc.checks ?? [], tracks: sc.tracks ?? [] };
}

/** Catalog entities in file order; a ref seen twice keeps its first position and its last body. */
export async function loadCatalog(file) {
  const byRef = new Map();
  for await (const entity of jsonLines(file)) byRef.set(entityRefOf(entity), entity);
  return [...byRef].map(([ref, entity]) => ({ ref, entity }));
}

function timeOf(ts) {
  const t = Date.parse(ts);
  return Number.isNaN(t) ? -Infinity : t;
}

export const DEFAULT_SCOPE = 'default';

/**
 * Map entityRef -> Map scope -> { [factRef]: data }, `default` scope first and always present.
 * The scope is the fact line's own `scope` field (absent = `default`), not the scope part of
 * the fact ref. For a repeated (entity, scope, factRef) the newest timestamp wins; on a tie the
 * later line wins; a missing timestamp is the oldest. Facts for entities that are not in the
 * catalog are dropped (only known entities are evaluated). `catalog:default/entity_descriptor`
 * is the catalog entity itself, in every scope.
 */
export async function loadFacts(file, catalog) {
  const facts = new Map();
  const times = new Map();
  for (const { ref } of catalog) {
    facts.set(ref, new Map([[DEFAULT_SCOPE, Object.create(null)]]));
    times.set(ref, new Map());
  }
  let unknown = 0;
  for await (const line of jsonLines(file)) {
    const entityRef = parseEntityRef(line.entityRef);
    const byScope = facts.get(entityRef);
    if (!byScope) { unknown += 1; continue; }
    const scope = line.scope == null ? DEFAULT_SCOPE : String(line.scope);
    let byFact = byScope.get(scope);
    if (!byFact) byScope.set(scope, (byFact = Object.create(null)));
    const factRef = canonicalFactRef(line.factRef);
    const t = timeOf(line.timestamp);
    const seen = times.get(entityRef);
    const key = `${scope}\u0000${factRef}`;
    const prev = seen.get(key);
    if (prev !== undefined && t < prev) continue;
    seen.set(key, t);
    byFact[factRef] = line.data;
  }
  for (const { ref, entity } of catalog) {
    for (const byFact of facts.get(ref).values()) byFact[ENTITY_DESCRIPTOR] = entity;
  }
  return { facts, unknownEntityFacts: unknown };
}

// ---------------------------------------------------------------- filters

/** Lower-cased dot path -> Set of lower-cased leaf values. Arrays keep their parent's path. */
export function flattenEntity(entity) {
  const out = new Map();
  const walk = (v, path) => {
    if (Array.isArray(v)) {
      for (const el of v) walk(el, path);
    } else if (v !== null && typeof v === 'object') {
      for (const k of Object.keys(v)) walk(v[k], path ? `${path}.${k.toLowerCase()}` : k.toLowerCase());
    } else if (v !== null && v !== undefined && path) {
      let set = out.get(path);
      if (!set) out.set(path, (set = new Set()));
      set.add(String(v).toLowerCase());
    }
  };
  walk(entity, '');
  return out;
}

/**
 * A filter is a map (AND of keys) or a list of maps (OR). Each key's value is a string or a
 * list of strings (any-of). Returns null for an absent or empty filter, else a list of
 * alternatives, each a list of [key, Set(values)].
 */
export function compileFilter(filter, where) {
  if (filter == null) return null;
  const list = Array.isArray(filter) ? filter : [filter];
  if (list.length === 0) return null;
  const alternatives = list.map((m, i) => {
    if (!m || typeof m !== 'object' || Array.isArray(m)) {
      throw new Error(`${where}[${i}]: a filter must be a map of key -> value(s)`);
    }
    return Object.entries(m).map(([k, v]) => {
      const values = (Array.isArray(v) ? v : [v]).map((x) => String(x).toLowerCase());
      return [k.toLowerCase(), new Set(values)];
    });
  }).filter((keys) => keys.length > 0); // an empty map adds no condition, as in the Rust engine
  return alternatives.length === 0 ? null : alternatives;
}

export function filterMatches(alternatives, flat) {
  return alternatives.some((keys) => keys.every(([key, wanted]) => {
    const have = flat.get(key);
    if (!have) return false;
    for (const v of wanted) if (have.has(v)) return true;
    return false;
  }));
}

// ---------------------------------------------------------------- rules

/**
 * Our rule tree -> json-rules-engine condition. Collects every fact ref the rule mentions
 * (leaf factRefs and fact-valued `value`s) into `refs`.
 */
export function toCondition(rule, refs, where) {
  if (Array.isArray(rule)) return { all: rule.map((r, i) => toCondition(r, refs, `${where}[${i}]`)) };
  if (!rule || typeof rule !== 'object') throw new Error(`${where}: a rule must be a map or a list`);
  if ('all' in rule) {
    if (!Array.isArray(rule.all)) throw new Error(`${where}.all: must be a list`);
    return { all: rule.all.map((r, i) => toCondition(r, refs, `${where}.all[${i}]`)) };
  }
  if ('any' in rule) {
    if (!Array.isArray(rule.any)) throw new Error(`${where}.any: must be a list`);
    // json-rules-engine treats an empty `any` as true; decisions.md §2 says false.
    if (rule.any.length === 0) return { not: { all: [] } };
    return { any: rule.any.map((r, i) => toCondition(r, refs, `${where}.any[${i}]`)) };
  }
  if ('not' in rule) return { not: toCondition(rule.not, refs, `${where}.not`) };

  if (rule.factRef == null) throw new Error(`${where}: leaf without factRef`);
  if (!OPERATORS.has(rule.operator)) throw new Error(`${where}.operator: unknown operator ${JSON.stringify(rule.operator)}`);
  if (!('value' in rule)) throw new Error(`${where}: leaf without value`);
  const fact = canonicalFactRef(rule.factRef);
  refs.add(fact);
  const cond = { fact, operator: rule.operator, value: rule.value };
  if (rule.path != null) cond.path = String(rule.path);
  const v = rule.value;
  if (v && typeof v === 'object' && !Array.isArray(v) && v.factRef != null) {
    const vfact = canonicalFactRef(v.factRef);
    refs.add(vfact);
    cond.value = v.path != null ? { fact: vfact, path: String(v.path) } : { fact: vfact };
  } else if (rule.operator === 'matches' && typeof v === 'string') {
    try {
      new RegExp(v); // eslint-disable-line no-new
    } catch (e) {
      throw new Error(`${where}.value: invalid regular expression: ${e.message}`);
    }
  }
  return cond;
}

/** Top-level json-rules-engine conditions must be all/any/not: wrap a bare leaf. */
function topLevel(cond) {
  return ('all' in cond || 'any' in cond || 'not' in cond) ? cond : { all: [cond] };
}

/**
 * decisions.md §2 path rule: one node -> the node, several -> array, none -> absent.
 * The stock resolver (JSONPath-Plus, wrap:false) returns `[node]` when a wildcard, filter,
 * slice, union or `..` selects exactly one node; this one does not.
 */
export function contractPathResolver(value, path) {
  const nodes = JSONPath({ path, json: value, wrap: true });
  if (nodes.length === 0) return undefined;
  return nodes.length === 1 ? nodes[0] : nodes;
}

const regexCache = new Map();
function cachedRegExp(source) {
  let re = regexCache.get(source);
  if (re === undefined) {
    re = new RegExp(source); // no `g`/`y` flag, so `test` is stateless and a cached RegExp is safe
    regexCache.set(source, re);
  }
  return re;
}

/** Exactly `typeof factValue === 'string' && new RegExp(value).test(factValue)`, with the RegExp cached. */
export function matchesOperator(factValue, value) {
  return typeof factValue === 'string' && cachedRegExp(value).test(factValue);
}

export function newEngine(conditions, id, pathResolver) {
  const options = { allowUndefinedFacts: true };
  if (pathResolver) options.pathResolver = pathResolver;
  const engine = new Engine([], options);
  engine.addOperator('matches', matchesOperator);
  engine.addRule({ name: id, conditions: topLevel(conditions), event: { type: id } });
  return engine;
}

/**
 * Compiles the checks the engine evaluates: those with a `rule` whose `type` is absent or
 * `default` (`manual` and `external` checks get no result from evaluation). Returns specs (no
 * engines): engines are built by
 * `buildEngines` so that each concurrent lane can have its own (a json-rules-engine Engine
 * keeps a run status on itself and must not run twice at once).
 */
export function compileChecks(checks) {
  const out = [];
  const ids = new Set();
  checks.forEach((check, i) => {
    const where = `soundcheck.checks[${i}]${check?.id ? ` (${check.id})` : ''}`;
    if (!check || typeof check !== 'object') throw new Error(`${where}: a check must be a map`);
    if (check.rule == null || (check.type != null && check.type !== 'default')) return;
    if (ids.has(check.id)) throw new Error(`${where}: duplicate check id`);
    ids.add(check.id);
    const refs = new Set();
    const rule = toCondition(check.rule, refs, `${where}.rule`);
    const appRefs = new Set();
    const applicable = check.applicable == null ? null : toCondition(check.applicable, appRefs, `${where}.applicable`);
    out.push({
      id: String(check.id),
      rule,
      applicable,
      refs: [...refs],
      appRefs: [...appRefs],
      filter: compileFilter(check.filter, `${where}.filter`),
      exclude: compileFilter(check.exclude, `${where}.exclude`),
      failState: check.warning === true ? 'warning' : 'failed',
    });
  });
  return out;
}

export function buildEngines(specs, pathResolver) {
  return specs.map((s) => ({
    rule: newEngine(s.rule, s.id, pathResolver),
    applicable: s.applicable ? newEngine(s.applicable, `${s.id}#applicable`, pathResolver) : null,
  }));
}
