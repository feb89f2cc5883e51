#!/usr/bin/env node
// Compares two result files (JSON lines {entityRef, checkId, state, scope}).
//
//   node benches/peer/compare.mjs OURS.jsonl THEIRS.jsonl
//
// Keys by (entityRef, checkId, scope); entity refs are normalised (kind and namespace
// lower-cased, namespace `default` when absent) and a missing scope means `default`.
// Exits 1 on any difference, 2 on bad input.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseEntityRef } from './lib.mjs';

const SHOW = 20;

async function load(file) {
  const rows = new Map();
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let lineNo = 0;
  let duplicates = 0;
  for await (const line of rl) {
    lineNo += 1;
    if (!line.trim()) continue;
    let r;
    try {
      r = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${lineNo}: ${e.message}`);
    }
    if (typeof r.checkId !== 'string' || typeof r.state !== 'string') {
      throw new Error(`${file}:${lineNo}: expected {entityRef, checkId, state, scope?}`);
    }
    const key = JSON.stringify([parseEntityRef(r.entityRef), r.checkId, r.scope ?? 'default']);
    if (rows.has(key)) duplicates += 1;
    rows.set(key, r.state);
  }
  return { rows, duplicates };
}

const [oursFile, theirsFile] = process.argv.slice(2);
if (!oursFile || !theirsFile) {
  process.stderr.write('usage: node compare.mjs OURS.jsonl THEIRS.jsonl\n');
  process.exit(2);
}

let ours;
let theirs;
try {
  [ours, theirs] = await Promise.all([load(oursFile), load(theirsFile)]);
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(2);
}

let agree = 0;
const disagree = [];
const onlyOurs = [];
const onlyTheirs = [];
const byStates = new Map();
for (const [key, state] of ours.rows) {
  if (!theirs.rows.has(key)) { onlyOurs.push([key, state]); continue; }
  const other = theirs.rows.get(key);
  if (other === state) { agree += 1; continue; }
  disagree.push([key, state, other]);
  const k = `${state} vs ${other}`;
  byStates.set(k, (byStates.get(k) ?? 0) + 1);
}
for (const [key, state] of theirs.rows) if (!ours.rows.has(key)) onlyTheirs.push([key, state]);

const fmt = (key) => {
  const [entityRef, checkId, scope] = JSON.parse(key);
  return `${entityRef} ${checkId}${scope === 'default' ? '' : ` (scope ${scope})`}`;
};

console.log(`ours:   ${oursFile} (${ours.rows.size} pairs${ours.duplicates ? `, ${ours.duplicates} duplicate lines` : ''})`);
console.log(`theirs: ${theirsFile} (${theirs.rows.size} pairs${theirs.duplicates ? `, ${theirs.duplicates} duplicate lines` : ''})`);
console.log(`agreements:     ${agree}`);
console.log(`disagreements:  ${disagree.length}`);
for (const [k, n] of [...byStates].sort((a, b) => b[1] - a[1])) console.log(`  ${n}\t${k} (ours vs theirs)`);
for (const [key, a, b] of disagree.slice(0, SHOW)) console.log(`  ${fmt(key)}: ours=${a} theirs=${b}`);
console.log(`only in ours:   ${onlyOurs.length}`);
for (const [key, s] of onlyOurs.slice(0, SHOW)) console.log(`  ${fmt(key)}: ${s}`);
console.log(`only in theirs: ${onlyTheirs.length}`);
for (const [key, s] of onlyTheirs.slice(0, SHOW)) console.log(`  ${fmt(key)}: ${s}`);

const differs = disagree.length + onlyOurs.length + onlyTheirs.length > 0;
console.log(differs ? 'RESULT: differ' : 'RESULT: identical');
process.exit(differs ? 1 : 0);
