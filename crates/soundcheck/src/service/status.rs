//! Aggregates over entities: the status of a check or a track now (optionally limited by an
//! entity filter), their daily history replayed from the stored transitions, and the entity
//! lists behind them.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use soundcheck_core::filter::EntityFilter;
use soundcheck_core::model::{CertState, CheckState, Track};
use utoipa::ToSchema;

use super::views::{
    CertificationStatus, CheckHistoryDay, CheckStateCounts, CheckStatus, CheckStatusHistory,
    LevelStatus, TrackHistoryDay, TrackStatusHistory,
};
use super::{App, ServiceError, ServiceResult, now_ms, rfc3339};
use crate::store::{ExemptionRow, LevelRow, QueryStore, StateStore};

const DAY_MS: i64 = 86_400_000;

/// One entity of a check with its state.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckEntity {
    /// The entity.
    pub entity_ref: String,
    /// A result state, `exempt` or `not-reported`.
    pub state: String,
}

/// One entity of a track with its certification.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackEntity {
    /// The entity.
    pub entity_ref: String,
    /// The highest certified level; 0 when none is.
    pub level_ordinal: u32,
    /// When that level was last certified (absent when never evaluated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certification_timestamp: Option<String>,
}

fn count(counts: &mut CheckStateCounts, state: Option<CheckState>, exempt: bool) {
    match (exempt, state) {
        (true, _) => counts.exempt += 1,
        (false, None) => counts.not_reported += 1,
        (false, Some(CheckState::Passed)) => counts.passed += 1,
        (false, Some(CheckState::Failed)) => counts.failed += 1,
        (false, Some(CheckState::Warning)) => counts.warning += 1,
        (false, Some(CheckState::NotApplicable)) => counts.not_applicable += 1,
        (false, Some(CheckState::Error)) => counts.error += 1,
    }
}

fn exempt_at(e: &ExemptionRow, at: i64) -> bool {
    e.created_at <= at && e.revoked_at.is_none_or(|r| r > at) && e.expires_at.is_none_or(|x| x > at)
}

/// The days of a history: the start of each of the last `days` UTC days, oldest first.
fn day_starts(days: i64) -> Vec<i64> {
    let today = now_ms().div_euclid(DAY_MS) * DAY_MS;
    (0..days).rev().map(|d| today - d * DAY_MS).collect()
}

fn level_counts(
    track: &Track,
    entities: &HashSet<&str>,
    rows: &HashMap<(&str, u32), (CertState, CertState)>,
) -> Vec<LevelStatus> {
    let n = i64::try_from(entities.len()).unwrap_or(i64::MAX);
    track
        .levels
        .iter()
        .map(|level| {
            let mut s = LevelStatus {
                ordinal: level.ordinal,
                ..Default::default()
            };
            let mut reported = 0;
            for entity in entities {
                if let Some((state, cumulative)) = rows.get(&(*entity, level.ordinal)) {
                    reported += 1;
                    match state {
                        CertState::Passed => s.passed += 1,
                        CertState::Failed => s.failed += 1,
                    }
                    match cumulative {
                        CertState::Passed => s.cumulatively_passed += 1,
                        CertState::Failed => s.cumulatively_failed += 1,
                    }
                }
            }
            s.not_reported = n - reported;
            s
        })
        .collect()
}

impl App {
    /// Entity refs, limited by an optional filter and a predicate on the body.
    fn entity_set(
        &self,
        filter: Option<&EntityFilter>,
        admits: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<String> {
        self.entities()
            .iter()
            .filter(|(_, body)| filter.is_none_or(|f| f.admits(body)) && admits(body))
            .map(|(r, _)| r.clone())
            .collect()
    }

    fn track_or_404(&self, id: &str) -> ServiceResult<Track> {
        self.definitions()
            .config
            .track(id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("track `{id}` not found")))
    }

    fn check_or_404(&self, id: &str) -> ServiceResult<soundcheck_core::model::Check> {
        self.definitions()
            .config
            .check(id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("check `{id}` not found")))
    }

    /// A check's stored state per entity and the entities with an active exemption from it.
    async fn check_states_now(
        &self,
        check_id: &str,
    ) -> ServiceResult<(HashMap<String, CheckState>, HashSet<String>)> {
        let states = self
            .store
            .check_states(check_id, "default")
            .await?
            .into_iter()
            .collect();
        let exempt = self
            .store
            .active_exemptions(now_ms())
            .await?
            .into_iter()
            .filter(|(c, _)| c == check_id)
            .map(|(_, e)| e)
            .collect();
        Ok((states, exempt))
    }

    /// The aggregate status of a check over every entity (or the ones matching `filter`).
    pub async fn check_status(
        &self,
        id: &str,
        filter: Option<&EntityFilter>,
    ) -> ServiceResult<CheckStatus> {
        self.check_or_404(id)?;
        let entities = self.entity_set(filter, |_| true);
        let (states, exempt) = self.check_states_now(id).await?;
        let mut counts = CheckStateCounts::default();
        for e in &entities {
            count(&mut counts, states.get(e).copied(), exempt.contains(e));
        }
        Ok(CheckStatus {
            id: id.to_string(),
            number_of_entities: i64::try_from(entities.len()).unwrap_or(i64::MAX),
            counts,
        })
    }

    /// A check's counts at the end of each of the last `days` days, replayed from its
    /// transitions and exemptions.
    pub async fn check_history(
        &self,
        id: &str,
        days: i64,
        filter: Option<&EntityFilter>,
    ) -> ServiceResult<CheckStatusHistory> {
        self.check_or_404(id)?;
        let entities = self.entity_set(filter, |_| true);
        let wanted: HashSet<&str> = entities.iter().map(String::as_str).collect();
        let transitions = self.store.check_transitions(id, "default").await?;
        let exemptions = self.store.exemption_history(id).await?;
        let mut by_entity: HashMap<&str, Vec<&ExemptionRow>> = HashMap::new();
        for x in &exemptions {
            by_entity.entry(x.entity_ref.as_str()).or_default().push(x);
        }
        let mut state: HashMap<&str, CheckState> = HashMap::new();
        let mut next = 0;
        let mut history = Vec::new();
        for start in day_starts(days) {
            let end = start + DAY_MS - 1;
            while let Some((entity, s, _)) = transitions.get(next).filter(|t| t.2 <= end) {
                state.insert(entity.as_str(), *s);
                next += 1;
            }
            let mut counts = CheckStateCounts::default();
            for e in &wanted {
                let exempt = by_entity
                    .get(e)
                    .is_some_and(|xs| xs.iter().any(|x| exempt_at(x, end)));
                count(&mut counts, state.get(e).copied(), exempt);
            }
            history.push(CheckHistoryDay {
                date: rfc3339(start),
                counts,
            });
        }
        Ok(CheckStatusHistory {
            id: id.to_string(),
            number_of_entities: i64::try_from(entities.len()).unwrap_or(i64::MAX),
            history,
        })
    }

    /// The aggregate certification status of a track over the entities it applies to.
    pub async fn track_status(
        &self,
        id: &str,
        filter: Option<&EntityFilter>,
    ) -> ServiceResult<CertificationStatus> {
        let track = self.track_or_404(id)?;
        let entities = self.entity_set(filter, |b| track.applies_to.admits(b));
        let set: HashSet<&str> = entities.iter().map(String::as_str).collect();
        let rows = self.store.track_levels(id, "default").await?;
        let map: HashMap<(&str, u32), (CertState, CertState)> = rows
            .iter()
            .map(|r| {
                (
                    (r.entity_ref.as_str(), r.level_ordinal),
                    (r.state, r.cumulative_state),
                )
            })
            .collect();
        Ok(CertificationStatus {
            id: id.to_string(),
            number_of_entities: i64::try_from(set.len()).unwrap_or(i64::MAX),
            status_by_level: level_counts(&track, &set, &map),
        })
    }

    /// A track's per-level counts at the end of each of the last `days` days.
    pub async fn track_history(
        &self,
        id: &str,
        days: i64,
        filter: Option<&EntityFilter>,
    ) -> ServiceResult<TrackStatusHistory> {
        let track = self.track_or_404(id)?;
        let entities = self.entity_set(filter, |b| track.applies_to.admits(b));
        let set: HashSet<&str> = entities.iter().map(String::as_str).collect();
        let transitions: Vec<LevelRow> = self.store.level_transitions(id, "default").await?;
        let mut map: HashMap<(&str, u32), (CertState, CertState)> = HashMap::new();
        let mut next = 0;
        let mut history = Vec::new();
        for start in day_starts(days) {
            let end = start + DAY_MS - 1;
            while let Some(t) = transitions.get(next).filter(|t| t.last_changed <= end) {
                map.insert(
                    (t.entity_ref.as_str(), t.level_ordinal),
                    (t.state, t.cumulative_state),
                );
                next += 1;
            }
            history.push(TrackHistoryDay {
                date: rfc3339(start),
                status_by_level: level_counts(&track, &set, &map),
            });
        }
        Ok(TrackStatusHistory {
            id: id.to_string(),
            number_of_entities: i64::try_from(set.len()).unwrap_or(i64::MAX),
            history,
        })
    }

    /// The entities a check applies to (optionally within a track), with their states,
    /// filtered by state and entity filter; one page and the total.
    pub async fn check_entities(
        &self,
        check_id: &str,
        track_id: Option<&str>,
        states: &[String],
        filter: Option<&EntityFilter>,
        limit: usize,
        offset: usize,
    ) -> ServiceResult<(Vec<CheckEntity>, usize)> {
        let check = self.check_or_404(check_id)?;
        let track = track_id.map(|t| self.track_or_404(t)).transpose()?;
        if let Some(t) = &track
            && !t
                .levels
                .iter()
                .any(|l| l.checks.iter().any(|c| c.id == check_id))
        {
            return Err(ServiceError::Invalid(format!(
                "trackId: track `{}` has no check `{check_id}`",
                t.id
            )));
        }
        let entities = self.entity_set(filter, |b| {
            check.applies_to.admits(b) && track.as_ref().is_none_or(|t| t.applies_to.admits(b))
        });
        let (stored, exempt) = self.check_states_now(check_id).await?;
        let all: Vec<CheckEntity> = entities
            .into_iter()
            .map(|e| {
                let state = if exempt.contains(&e) {
                    "exempt".to_string()
                } else {
                    stored
                        .get(&e)
                        .map_or("not-reported", |s| s.as_str())
                        .to_string()
                };
                CheckEntity {
                    entity_ref: e,
                    state,
                }
            })
            .filter(|e| states.is_empty() || states.contains(&e.state))
            .collect();
        let total = all.len();
        Ok((all.into_iter().skip(offset).take(limit).collect(), total))
    }

    /// The entities a track applies to with their highest certified level, optionally only
    /// certified (`passed`) or uncertified (`failed`) ones.
    pub async fn track_entities(
        &self,
        track_id: &str,
        status: Option<CertState>,
    ) -> ServiceResult<Vec<TrackEntity>> {
        let track = self.track_or_404(track_id)?;
        let entities = self.entity_set(None, |b| track.applies_to.admits(b));
        let rows = self.store.track_levels(track_id, "default").await?;
        let mut by_entity: HashMap<&str, Vec<&LevelRow>> = HashMap::new();
        for r in &rows {
            by_entity.entry(r.entity_ref.as_str()).or_default().push(r);
        }
        Ok(entities
            .into_iter()
            .filter_map(|e| {
                let levels = by_entity.get(e.as_str());
                let best = levels.and_then(|ls| {
                    ls.iter()
                        .filter(|l| l.cumulative_state == CertState::Passed)
                        .max_by_key(|l| l.level_ordinal)
                        .copied()
                });
                let certified = best.is_some();
                let wanted = match status {
                    Some(CertState::Passed) => certified,
                    Some(CertState::Failed) => !certified,
                    None => true,
                };
                wanted.then(|| TrackEntity {
                    entity_ref: e.clone(),
                    level_ordinal: best.map_or(0, |b| b.level_ordinal),
                    certification_timestamp: best
                        .map(|b| b.last_changed)
                        .or_else(|| levels.and_then(|ls| ls.iter().map(|l| l.last_changed).max()))
                        .map(rfc3339),
                })
            })
            .collect())
    }
}
