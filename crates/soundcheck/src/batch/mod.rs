//! Batch evaluation of a whole catalog: every entity, in every scope it has facts for, against
//! every check and track. Entities are evaluated in parallel blocks; each block is handed to a
//! sink in catalog order, so output files are deterministic.

pub mod gate;
pub mod generate;
pub mod latency;
pub mod load;
pub mod output;
pub mod sink_bench;
pub mod summary;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde_json::Value;
use soundcheck_core::certification::LevelOutcome;
use soundcheck_core::model::{CheckState, FactRef};
use std::borrow::Cow;

use soundcheck_core::rules::compiled::{FactSlot, ProjectedFacts, ProjectionId};
use soundcheck_core::{CheckView, Engine};

use crate::input::catalog::Catalog;
use crate::input::facts::FactSet;

/// Entities evaluated per parallel block.
pub const BLOCK: usize = 2048;

/// The built-in catalog collector's fact: the entity itself.
pub const ENTITY_DESCRIPTOR: &str = "catalog:default/entity_descriptor";

/// Outcomes of one entity in one scope.
#[derive(Debug, Clone)]
pub struct ScopeReport {
    /// Index into [`FactSet::scopes`].
    pub scope: u32,
    /// By check position; `None` = not reported.
    pub results: Vec<Option<CheckState>>,
    /// By track position; `None` = the track does not admit the entity.
    pub certifications: Vec<Option<Vec<LevelOutcome>>>,
}

/// Outcomes of one entity.
#[derive(Debug, Clone)]
pub struct EntityReport {
    /// Catalog position.
    pub entity: usize,
    /// One report per evaluated scope; `default` first.
    pub scopes: Vec<ScopeReport>,
}

/// Active exemptions: by catalog position, the positions of the exempt checks.
#[derive(Debug, Default, Clone)]
pub struct Exemptions(HashMap<usize, Vec<usize>>);

impl Exemptions {
    /// Resolves (check id, entity ref) pairs against the engine and catalog; pairs naming an
    /// unknown check or entity are ignored.
    pub fn resolve(pairs: &[(String, String)], engine: &Engine, catalog: &Catalog) -> Self {
        let mut map: HashMap<usize, Vec<usize>> = HashMap::new();
        for (check_id, entity_ref) in pairs {
            if let (Some(check), Some(entity)) = (
                engine.check_position(check_id),
                catalog.position(entity_ref),
            ) {
                map.entry(entity).or_default().push(check);
            }
        }
        Self(map)
    }

    fn is_exempt(&self, entity: usize, check: usize) -> bool {
        self.0
            .get(&entity)
            .is_some_and(|checks| checks.contains(&check))
    }
}

/// Everything a batch run reads.
pub struct Batch<'a> {
    /// The compiled config.
    pub engine: &'a Engine,
    /// Entities.
    pub catalog: &'a Catalog,
    /// Facts by entity.
    pub facts: &'a FactSet,
    /// Active exemptions (count as passing for certification).
    pub exemptions: &'a Exemptions,
}

impl Batch<'_> {
    /// Evaluates every entity, handing blocks of reports to `sink` in catalog order; returns
    /// the time spent evaluating (not in the sink).
    pub fn run(
        &self,
        mut sink: impl FnMut(&[EntityReport]) -> anyhow::Result<()>,
    ) -> anyhow::Result<Duration> {
        let descriptor = FactRef::parse(ENTITY_DESCRIPTOR)
            .ok()
            .and_then(|r| self.engine.fact_table().get(&r));
        let mut evaluating = Duration::ZERO;
        let total = self.catalog.entities.len();
        for start in (0..total).step_by(BLOCK) {
            let started = Instant::now();
            let block: Vec<EntityReport> = (start..(start + BLOCK).min(total))
                .into_par_iter()
                .map(|i| self.evaluate_entity(i, descriptor))
                .collect();
            evaluating += started.elapsed();
            sink(&block)?;
        }
        Ok(evaluating)
    }

    /// Evaluates one entity in each scope it has facts in (always `default`).
    pub fn evaluate_entity(&self, entity: usize, descriptor: Option<FactSlot>) -> EntityReport {
        let value = &self.catalog.entities[entity].value;
        let records = &self.facts.per_entity[entity];
        let mut scopes: Vec<u32> = vec![0];
        for r in records {
            if !scopes.contains(&r.scope) {
                scopes.push(r.scope);
            }
        }
        let table = self.engine.fact_table();
        let admissions = self.engine.admissions(value);
        // The entity itself is the catalog collector's fact, in every scope.
        let described: Vec<(ProjectionId, Cow<'_, Value>)> = descriptor
            .map(|slot| {
                table
                    .projections_of(slot)
                    .iter()
                    .filter_map(|&id| Some((id, table.projection(id).1.select(value)?)))
                    .collect()
            })
            .unwrap_or_default();
        let mut present = vec![false; table.len()];
        let mut values: Vec<Option<&Value>> = vec![None; table.projection_count()];
        let reports = scopes
            .into_iter()
            .map(|scope| {
                present.iter_mut().for_each(|p| *p = false);
                values.iter_mut().for_each(|v| *v = None);
                if let Some(slot) = descriptor {
                    present[slot.index()] = true;
                }
                for (id, v) in &described {
                    values[id.index()] = Some(v.as_ref());
                }
                for r in records.iter().filter(|r| r.scope == scope) {
                    present[r.slot.index()] = true;
                    for (id, v) in r.values.iter() {
                        values[id.index()] = Some(v);
                    }
                }
                let facts = ProjectedFacts {
                    present: &present,
                    values: &values,
                };
                let mut results = Vec::with_capacity(self.engine.check_count());
                self.engine.evaluate_all(&admissions, &facts, &mut results);
                let certifications = (0..self.engine.track_count())
                    .map(|t| {
                        self.engine.certify(t, &admissions, |c| CheckView {
                            state: results[c],
                            exempt: self.exemptions.is_exempt(entity, c),
                        })
                    })
                    .collect();
                ScopeReport {
                    scope,
                    results,
                    certifications,
                }
            })
            .collect();
        EntityReport {
            entity,
            scopes: reports,
        }
    }
}
