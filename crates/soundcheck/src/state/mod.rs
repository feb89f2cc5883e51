//! Change detection: what a fresh evaluation changes against the stored state. Only real
//! changes become state writes, transitions and events; unchanged pairs only move their
//! last-checked time, and not even that after a fact submission (see [`checked`]).

pub mod checked;
pub mod live;
pub mod pipeline;
pub mod submit;
pub mod world;

use std::collections::HashMap;

use soundcheck_core::Engine;
use soundcheck_core::model::{CertState, CheckState};

use crate::batch::EntityReport;
use crate::store::{
    CertificationChange, ResultChange, StateChanges, StoredCertification, StoredResult, Touch,
};

/// Stored check states by (check id, entity ref, scope).
pub type ResultIndex = HashMap<(String, String, String), CheckState>;
/// Stored certification states by (track id, entity ref, level, scope).
pub type CertificationIndex = HashMap<(String, String, u32, String), (CertState, CertState)>;

/// Indexes stored results for lookups.
pub fn index_results(rows: Vec<StoredResult>) -> ResultIndex {
    rows.into_iter()
        .map(|r| ((r.check_id, r.entity_ref, r.scope), r.state))
        .collect()
}

/// Indexes stored certifications for lookups.
pub fn index_certifications(rows: Vec<StoredCertification>) -> CertificationIndex {
    rows.into_iter()
        .map(|c| {
            (
                (c.track_id, c.entity_ref, c.level_ordinal, c.scope),
                (c.state, c.cumulative_state),
            )
        })
        .collect()
}

/// Names needed to turn positions in a report into stored keys.
pub struct Names<'a> {
    /// The compiled config.
    pub engine: &'a Engine,
    /// Entity ref of each report's entity position.
    pub entity_ref: &'a dyn Fn(usize) -> String,
    /// Scope names by index.
    pub scopes: &'a [String],
}

/// Adds to `changes` what `reports` change against the stored state.
pub fn diff_reports(
    names: &Names<'_>,
    reports: &[EntityReport],
    results: &ResultIndex,
    certifications: &CertificationIndex,
    changes: &mut StateChanges,
) {
    let engine = names.engine;
    for report in reports {
        let entity_ref = (names.entity_ref)(report.entity);
        for scope_report in &report.scopes {
            let scope = names.scopes[scope_report.scope as usize].clone();
            changes.touched_results.push(Touch {
                entity_ref: entity_ref.clone(),
                scope: scope.clone(),
            });
            changes.touched_certifications.push(Touch {
                entity_ref: entity_ref.clone(),
                scope: scope.clone(),
            });
            for (check, state) in scope_report.results.iter().enumerate() {
                let Some(state) = *state else { continue };
                let key = (
                    engine.check_id(check).to_string(),
                    entity_ref.clone(),
                    scope.clone(),
                );
                let previous = results.get(&key).copied();
                if previous != Some(state) {
                    let (check_id, entity_ref, scope) = key;
                    changes.results.push(ResultChange {
                        result: StoredResult {
                            check_id,
                            entity_ref,
                            scope,
                            state,
                        },
                        previous,
                        details: None,
                        message: None,
                        submitted_by: None,
                    });
                }
            }
            for (track, levels) in scope_report.certifications.iter().enumerate() {
                for level in levels.iter().flatten() {
                    let key = (
                        engine.track_id(track).to_string(),
                        entity_ref.clone(),
                        level.level_ordinal,
                        scope.clone(),
                    );
                    let previous = certifications.get(&key).copied();
                    if previous != Some((level.state, level.cumulative_state)) {
                        let (track_id, entity_ref, level_ordinal, scope) = key;
                        changes.certifications.push(CertificationChange {
                            certification: StoredCertification {
                                track_id,
                                entity_ref,
                                level_ordinal,
                                scope,
                                state: level.state,
                                cumulative_state: level.cumulative_state,
                            },
                            previous_state: previous.map(|p| p.0),
                            previous_cumulative: previous.map(|p| p.1),
                        });
                    }
                }
            }
        }
    }
}
