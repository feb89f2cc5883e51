//! Facts from JSON lines, each shaped like an item of `POST /facts`:
//! `{factRef, entityRef, data, timestamp?, scope?}` with `factRef` as a string or
//! `{source, scope, name}`. Lines are parsed in parallel; only facts that some rule reads are
//! kept, and for a repeated (entity, fact ref, scope) the newest timestamp wins (the later
//! line on a tie or when neither has one).

use std::borrow::Cow;
use std::path::Path;

use rayon::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use soundcheck_core::model::{EntityRef, FactRef};
use soundcheck_core::rules::compiled::{FactSlot, FactTable, ProjectionId};

use super::catalog::Catalog;
use super::{InputError, InputProblem, MAX_REPORTED};

/// The scope used when a fact names none.
pub const DEFAULT_SCOPE: &str = "default";

/// One kept fact of one entity.
#[derive(Debug, Clone)]
pub struct FactRecord {
    /// Which fact (slot in the engine's fact table).
    pub slot: FactSlot,
    /// Index into [`FactSet::scopes`].
    pub scope: u32,
    /// Milliseconds since the epoch; `i64::MIN` when the line had no timestamp.
    pub timestamp_ms: i64,
    /// The values the rules select from this fact (the rest of its data is not kept).
    pub values: Box<[(ProjectionId, Value)]>,
}

/// What reading the facts did, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FactStats {
    /// Non-empty lines read.
    pub lines: usize,
    /// Facts kept (after newest-wins).
    pub kept: usize,
    /// Facts no rule reads, and `catalog:default/entity_descriptor` lines (the catalog is its
    /// source); skipped without parsing their data.
    pub unreferenced: usize,
    /// Facts about entities not in the catalog.
    pub unknown_entity: usize,
    /// Duplicate lines dropped: another line for the same entity, fact ref and scope had a
    /// newer (or equal, later-line) timestamp.
    pub superseded: usize,
}

impl std::ops::AddAssign for FactStats {
    fn add_assign(&mut self, o: Self) {
        self.lines += o.lines;
        self.kept += o.kept;
        self.unreferenced += o.unreferenced;
        self.unknown_entity += o.unknown_entity;
        self.superseded += o.superseded;
    }
}

/// The facts of every catalog entity.
#[derive(Debug, Default)]
pub struct FactSet {
    /// By catalog position.
    pub per_entity: Vec<Vec<FactRecord>>,
    /// Scope names; index 0 is `default`.
    pub scopes: Vec<String>,
    /// Counts.
    pub stats: FactStats,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFact<'a> {
    fact_ref: FactRef,
    #[serde(borrow)]
    entity_ref: Cow<'a, str>,
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    scope: Option<Cow<'a, str>>,
}

struct Parsed {
    entity: usize,
    scope: Option<String>,
    record: FactRecord,
}

enum LineOutcome {
    Keep(Box<Parsed>),
    Unreferenced,
    UnknownEntity,
}

/// Reads every facts file against the catalog and the fact refs the rules read.
pub fn load(
    paths: &[impl AsRef<Path>],
    catalog: &Catalog,
    table: &FactTable,
) -> anyhow::Result<Result<FactSet, InputError>> {
    let mut set = FactSet {
        per_entity: vec![Vec::new(); catalog.entities.len()],
        scopes: vec![DEFAULT_SCOPE.to_string()],
        stats: FactStats::default(),
    };
    let mut problems = Vec::new();
    let mut total_problems = 0;
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read facts file `{}`: {e}", path.display()))?;
        let file = path.display().to_string();
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .collect();
        set.stats.lines += lines.len();
        let chunks: Vec<Vec<Result<LineOutcome, InputProblem>>> = lines
            .par_chunks(4096)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|(i, line)| parse_line(&file, i + 1, line, catalog, table))
                    .collect()
            })
            .collect();
        for outcome in chunks.into_iter().flatten() {
            match outcome {
                Ok(LineOutcome::Keep(parsed)) => set.insert(*parsed),
                Ok(LineOutcome::Unreferenced) => set.stats.unreferenced += 1,
                Ok(LineOutcome::UnknownEntity) => set.stats.unknown_entity += 1,
                Err(problem) => {
                    total_problems += 1;
                    if problems.len() < MAX_REPORTED {
                        problems.push(problem);
                    }
                }
            }
        }
    }
    if total_problems > 0 {
        return Ok(Err(InputError {
            problems,
            total: total_problems,
        }));
    }
    set.stats.kept = set.per_entity.iter().map(Vec::len).sum();
    Ok(Ok(set))
}

impl FactSet {
    fn insert(&mut self, parsed: Parsed) {
        let scope = match parsed.scope {
            None => 0,
            Some(name) => match self.scopes.iter().position(|s| *s == name) {
                Some(i) => i,
                None => {
                    self.scopes.push(name);
                    self.scopes.len() - 1
                }
            },
        };
        let mut record = parsed.record;
        record.scope = u32::try_from(scope).unwrap_or(u32::MAX);
        let facts = &mut self.per_entity[parsed.entity];
        match facts
            .iter_mut()
            .find(|f| f.slot == record.slot && f.scope == record.scope)
        {
            Some(existing) => {
                self.stats.superseded += 1;
                if record.timestamp_ms >= existing.timestamp_ms {
                    *existing = record;
                }
            }
            None => facts.push(record),
        }
    }
}

/// The values every rule path selects from `data`, by projection.
pub fn project(table: &FactTable, slot: FactSlot, data: &Value) -> Box<[(ProjectionId, Value)]> {
    table
        .projections_of(slot)
        .iter()
        .filter_map(|&id| {
            table
                .projection(id)
                .1
                .select(data)
                .map(|v| (id, v.into_owned()))
        })
        .collect()
}

fn parse_line(
    file: &str,
    line: usize,
    text: &str,
    catalog: &Catalog,
    table: &FactTable,
) -> Result<LineOutcome, InputProblem> {
    let problem = |message: String| InputProblem {
        file: file.to_string(),
        line,
        message,
    };
    let raw: RawFact<'_> =
        serde_json::from_str(text).map_err(|e| problem(format!("invalid fact: {e}")))?;
    let entity_ref = EntityRef::parse(&raw.entity_ref).map_err(|e| problem(e.to_string()))?;
    let timestamp_ms = match raw.timestamp.as_deref() {
        None => i64::MIN,
        Some(ts) => chrono::DateTime::parse_from_rfc3339(ts)
            .map_err(|e| problem(format!("invalid timestamp `{ts}`: {e}; expected RFC 3339")))?
            .timestamp_millis(),
    };
    // The catalog is the one source of the entity itself; lines for it are skipped.
    let Some(slot) = table
        .get(&raw.fact_ref)
        .filter(|_| raw.fact_ref.as_str() != crate::batch::ENTITY_DESCRIPTOR)
    else {
        return Ok(LineOutcome::Unreferenced);
    };
    let Some(entity) = catalog.position(entity_ref.as_str()) else {
        return Ok(LineOutcome::UnknownEntity);
    };
    let data: Value =
        serde_json::from_str(raw.data.get()).map_err(|e| problem(format!("invalid data: {e}")))?;
    let values = project(table, slot, &data);
    let scope = raw
        .scope
        .filter(|s| s != DEFAULT_SCOPE)
        .map(Cow::into_owned);
    Ok(LineOutcome::Keep(Box::new(Parsed {
        entity,
        scope,
        record: FactRecord {
            slot,
            scope: 0,
            timestamp_ms,
            values,
        },
    })))
}
