//! What reads of one entity see of write-behind: the held rows of some entities, read at
//! one epoch ([`super::deferred::Deferred::view`]), put over the rows read from the tables.

use std::collections::HashMap;
use std::sync::Arc;

use super::deferred::EntityRows;
use super::read::{LevelRow, ResultRow};
use super::{EntitySnapshot, StoredCertification, StoredResult};

/// Held rows of some entities, read at one epoch; see [`Deferred::view`].
#[derive(Debug, Default)]
pub struct HeldView {
    entities: HashMap<String, EntityRows, foldhash::fast::RandomState>,
}

impl HeldView {
    pub(super) fn new(entities: HashMap<String, EntityRows, foldhash::fast::RandomState>) -> Self {
        Self { entities }
    }

    /// `snapshot` of (entity, scope) with the held results and levels over the stored ones.
    pub fn patch_snapshot(&self, entity_ref: &str, scope: &str, snapshot: &mut EntitySnapshot) {
        let Some(held) = self.entities.get(entity_ref) else {
            return;
        };
        for (s, check, (state, _)) in &held.results {
            if s == scope {
                snapshot.results.insert(Arc::from(check.as_str()), *state);
            }
        }
        for (s, track, level, (state, cumulative, _)) in &held.levels {
            if s == scope {
                snapshot
                    .certifications
                    .insert((Arc::from(track.as_str()), *level), (*state, *cumulative));
            }
        }
    }

    /// Stored result states of the viewed entities with the held ones over them.
    pub fn patch_results(&self, rows: &mut Vec<StoredResult>) {
        for (entity_ref, held) in &self.entities {
            for (scope, check_id, (state, _)) in &held.results {
                let found = rows.iter_mut().find(|r| {
                    r.entity_ref == *entity_ref && r.scope == *scope && r.check_id == *check_id
                });
                match found {
                    Some(row) => row.state = *state,
                    None => rows.push(StoredResult {
                        check_id: check_id.clone(),
                        entity_ref: entity_ref.clone(),
                        scope: scope.clone(),
                        state: *state,
                    }),
                }
            }
        }
    }

    /// Stored levels of the viewed entities with the held ones over them.
    pub fn patch_certifications(&self, rows: &mut Vec<StoredCertification>) {
        for (entity_ref, held) in &self.entities {
            for (scope, track_id, level_ordinal, (state, cumulative_state, _)) in &held.levels {
                let found = rows.iter_mut().find(|r| {
                    r.entity_ref == *entity_ref
                        && r.scope == *scope
                        && r.track_id == *track_id
                        && r.level_ordinal == *level_ordinal
                });
                match found {
                    Some(row) => (row.state, row.cumulative_state) = (*state, *cumulative_state),
                    None => rows.push(StoredCertification {
                        track_id: track_id.clone(),
                        entity_ref: entity_ref.clone(),
                        level_ordinal: *level_ordinal,
                        scope: scope.clone(),
                        state: *state,
                        cumulative_state: *cumulative_state,
                    }),
                }
            }
        }
    }

    /// Result rows of one entity (as `QueryStore::result_rows` filters them) with the held
    /// ones over them, in (check, scope) order. A held result is an evaluation's: no details,
    /// message or submitter.
    pub fn patch_result_rows(
        &self,
        entity_ref: &str,
        scope: Option<&str>,
        checks: &[String],
        rows: &mut Vec<ResultRow>,
    ) {
        let Some(held) = self.entities.get(entity_ref) else {
            return;
        };
        let wanted = |s: &str, c: &str| {
            scope.is_none_or(|x| x == s) && (checks.is_empty() || checks.iter().any(|x| x == c))
        };
        for (s, check_id, (state, at)) in held.results.iter().filter(|(s, c, _)| wanted(s, c)) {
            let row = ResultRow {
                check_id: check_id.clone(),
                entity_ref: entity_ref.to_string(),
                scope: s.clone(),
                state: *state,
                details: None,
                message: None,
                submitted_by: None,
                last_checked: *at,
                last_changed: *at,
            };
            match rows
                .iter_mut()
                .find(|r| r.check_id == row.check_id && r.scope == row.scope)
            {
                Some(old) => *old = row,
                None => rows.push(row),
            }
        }
        rows.sort_by(|a, b| (&a.check_id, &a.scope).cmp(&(&b.check_id, &b.scope)));
    }

    /// Level rows of one entity with the held ones over them, in (track, scope, level) order.
    pub fn patch_level_rows(&self, entity_ref: &str, rows: &mut Vec<LevelRow>) {
        let Some(held) = self.entities.get(entity_ref) else {
            return;
        };
        for (scope, track_id, level_ordinal, (state, cumulative_state, at)) in &held.levels {
            let row = LevelRow {
                track_id: track_id.clone(),
                entity_ref: entity_ref.to_string(),
                level_ordinal: *level_ordinal,
                scope: scope.clone(),
                state: *state,
                cumulative_state: *cumulative_state,
                last_changed: *at,
            };
            let same = |r: &&mut LevelRow| {
                r.track_id == row.track_id
                    && r.scope == row.scope
                    && r.level_ordinal == row.level_ordinal
            };
            match rows.iter_mut().find(same) {
                Some(old) => *old = row,
                None => rows.push(row),
            }
        }
        rows.sort_by(|a, b| {
            (&a.track_id, &a.scope, a.level_ordinal).cmp(&(&b.track_id, &b.scope, b.level_ordinal))
        });
    }
}
