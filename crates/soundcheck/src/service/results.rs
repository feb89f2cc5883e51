//! Check results and certifications of one entity: reading, submitting (external and manual
//! checks), deleting, executing checks on demand, and the certification view.

use std::collections::HashMap;

use serde_json::Value;
use soundcheck_core::model::{CertState, CheckState, CheckType, EntityRef, Track};

use super::views::{
    Certification, CertificationCheck, CertificationLevel, CheckResultView, TrackRef,
};
use super::{App, ServiceError, ServiceResult, rfc3339};
use crate::state::submit::{SubmitResultsOutcome, SubmittedResult};
use crate::state::world::Executed;
use crate::store::{CatalogStore, LevelRow, QueryStore, ResultRow};

/// Parses an entity ref from a request, normalised.
pub fn entity_ref(text: &str, pointer: &str) -> ServiceResult<String> {
    EntityRef::parse(text)
        .map(|r| r.to_string())
        .map_err(|e| ServiceError::Invalid(format!("{pointer}: {e}")))
}

impl App {
    /// Stored results of one entity.
    pub async fn results(
        &self,
        entity: &str,
        scope: Option<&str>,
        checks: &[String],
    ) -> ServiceResult<Vec<CheckResultView>> {
        let entity = entity_ref(entity, "entityRef")?;
        let defs = self.definitions();
        let rows =
            crate::state::checked::result_rows(&self.store, &defs.engine, &entity, scope, checks)
                .await?;
        Ok(rows.iter().map(CheckResultView::from).collect())
    }

    /// Deletes stored results of one entity; returns how many.
    pub async fn delete_results(
        &self,
        entity: &str,
        scope: Option<&str>,
        checks: &[String],
    ) -> ServiceResult<u64> {
        let entity = entity_ref(entity, "entityRef")?;
        // Under the writer lock, so no submission reads the rows before they go and writes
        // them back; certification counts a removed result as not reported.
        let _writer = self.writer.lock().await;
        let removed = self.store.delete_results(&entity, scope, checks).await?;
        let live = crate::state::live::LiveState::new(
            self.definitions().engine.clone(),
            self.store.clone(),
            self.events.clone(),
        );
        live.recertify(&entity, scope.unwrap_or("default")).await?;
        Ok(removed)
    }

    /// Validates and stores submitted results (`results` is the body's array, at `pointer`).
    pub async fn submit_results(
        &self,
        results: &[Value],
        pointer: &str,
        preserve_on_error: bool,
        submitted_by: &str,
    ) -> ServiceResult<(Vec<SubmittedResult>, SubmitResultsOutcome)> {
        let defs = self.definitions();
        let mut parsed = Vec::with_capacity(results.len());
        let mut problems = Vec::new();
        for (i, r) in results.iter().enumerate() {
            match parse_result(&defs, r, &format!("{pointer}/{i}")) {
                Ok(p) => parsed.push(p),
                Err(e) => problems.push(e),
            }
        }
        let mut seen = std::collections::HashSet::new();
        let parsed_all = problems.is_empty();
        for (i, p) in parsed.iter().enumerate().filter(|_| parsed_all) {
            if !seen.insert((p.check, p.entity_ref.as_str(), p.scope.as_str())) {
                problems.push(format!(
                    "{pointer}/{i}: a second result for the same check, entity and scope in one request"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems.join("\n")));
        }
        let unknown: Vec<&str> = parsed
            .iter()
            .filter(|p| self.entity_body(&p.entity_ref).is_none())
            .map(|p| p.entity_ref.as_str())
            .collect();
        if let Some(first) = unknown.first() {
            return Err(ServiceError::NotFound(format!(
                "entity `{first}` is not in the catalog"
            )));
        }
        let live = crate::state::live::LiveState::new(
            defs.engine.clone(),
            self.store.clone(),
            self.events.clone(),
        )
        .with_writer(std::sync::Arc::clone(&self.writer));
        let outcome = live
            .submit_results(parsed.clone(), preserve_on_error, submitted_by)
            .await?;
        Ok((parsed, outcome))
    }

    /// The body of a known entity.
    pub fn entity_body(&self, entity_ref: &str) -> Option<Value> {
        let entities = self.entities();
        entities
            .binary_search_by(|(r, _)| r.as_str().cmp(entity_ref))
            .ok()
            .map(|i| entities[i].1.clone())
    }

    /// Executes checks (`None`: all) for entities, from their stored facts.
    pub async fn execute(
        &self,
        check_ids: Option<&[String]>,
        entities: &[String],
        dry_run: bool,
    ) -> ServiceResult<Vec<Executed>> {
        let defs = self.definitions();
        let positions = match check_ids {
            Some(ids) => Some(
                ids.iter()
                    .map(|id| {
                        defs.engine.check_position(id).ok_or_else(|| {
                            ServiceError::NotFound(format!("check `{id}` not found"))
                        })
                    })
                    .collect::<ServiceResult<Vec<usize>>>()
                    .map(|mut p| {
                        p.sort_unstable();
                        p.dedup();
                        p
                    })?,
            ),
            None => None,
        };
        let mut unique: Vec<&String> = Vec::with_capacity(entities.len());
        let mut seen = std::collections::HashSet::new();
        for entity in entities {
            if self.entity_body(entity).is_none() {
                return Err(ServiceError::NotFound(format!(
                    "entity `{entity}` is not in the catalog"
                )));
            }
            if seen.insert(entity.as_str()) {
                unique.push(entity);
            }
        }
        let live = self.live();
        let mut out = Vec::new();
        for entity in unique {
            let Some((executed, _)) = live
                .execute(entity, "default", positions.as_deref(), dry_run)
                .await?
            else {
                return Err(ServiceError::NotFound(format!(
                    "entity `{entity}` is not in the catalog"
                )));
            };
            out.extend(executed);
        }
        Ok(out)
    }

    /// Certifications of one entity, optionally on one track.
    pub async fn certifications(
        &self,
        entity: &str,
        track_id: Option<&str>,
        include_filtered: bool,
    ) -> ServiceResult<Vec<Certification>> {
        let entity = entity_ref(entity, "entityRef")?;
        let Some(body) = self.entity_body(&entity) else {
            return Err(ServiceError::NotFound(format!(
                "entity `{entity}` is not in the catalog"
            )));
        };
        let defs = self.definitions();
        if let Some(id) = track_id
            && defs.config.track(id).is_none()
        {
            return Err(ServiceError::NotFound(format!("track `{id}` not found")));
        }
        let results = self
            .store
            .result_rows(&entity, Some("default"), &[])
            .await?;
        let levels = self.store.level_rows(&entity).await?;
        let exempt = self.store.exemptions_of(&entity, super::now_ms()).await?;
        let results: HashMap<&str, &ResultRow> =
            results.iter().map(|r| (r.check_id.as_str(), r)).collect();
        let tracks = defs
            .config
            .tracks
            .iter()
            .filter(|t| !t.archived && track_id.is_none_or(|id| id == t.id))
            .filter(|t| t.applies_to.admits(&body));
        let view = CertificationInputs {
            entity: &entity,
            body: &body,
            results: &results,
            exempt: &exempt,
            include_filtered,
            config: &defs.config,
        };
        Ok(tracks
            .map(|t| {
                let rows: Vec<&LevelRow> = levels
                    .iter()
                    .filter(|l| l.track_id == t.id && l.scope == "default")
                    .collect();
                view.certification(t, &rows)
            })
            .collect())
    }
}

/// Reads one submitted result.
fn parse_result(
    defs: &super::Definitions,
    value: &Value,
    pointer: &str,
) -> Result<SubmittedResult, String> {
    let obj = value
        .as_object()
        .ok_or_else(|| format!("{pointer}: expected a result object"))?;
    let text = |key: &str| -> Result<Option<&str>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("{pointer}/{key}: expected a string")),
        }
    };
    let check_id =
        text("checkId")?.ok_or_else(|| format!("{pointer}: missing required key `checkId`"))?;
    let check = defs
        .config
        .check(check_id)
        .ok_or_else(|| format!("{pointer}/checkId: check `{check_id}` not found"))?;
    if check.check_type == CheckType::Default {
        return Err(format!(
            "{pointer}/checkId: check `{check_id}` is evaluated by Soundcheck from facts; submit facts to POST /facts instead"
        ));
    }
    let entity =
        text("entityRef")?.ok_or_else(|| format!("{pointer}: missing required key `entityRef`"))?;
    let entity_ref = EntityRef::parse(entity)
        .map_err(|e| format!("{pointer}/entityRef: {e}"))?
        .to_string();
    let state_text =
        text("state")?.ok_or_else(|| format!("{pointer}: missing required key `state`"))?;
    let state = CheckState::parse(state_text).ok_or_else(|| {
        format!("{pointer}/state: unknown state `{state_text}`; expected passed, failed, warning, not-applicable or error")
    })?;
    let details = match obj.get("details") {
        None | Some(Value::Null) => None,
        Some(d @ Value::Object(_)) => Some(d.clone()),
        Some(_) => return Err(format!("{pointer}/details: expected an object")),
    };
    let justification = text("justification")?
        .map(str::to_string)
        .or_else(|| {
            details
                .as_ref()
                .and_then(|d| d.get("justification"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|j| !j.trim().is_empty());
    if check.check_type == CheckType::Manual && justification.is_none() {
        return Err(format!(
            "{pointer}: check `{check_id}` is manual; a result needs a `justification`"
        ));
    }
    let scope = text("scope")?.unwrap_or("default").to_string();
    let position = defs
        .engine
        .check_position(check_id)
        .ok_or_else(|| format!("{pointer}/checkId: check `{check_id}` not found"))?;
    Ok(SubmittedResult {
        check: position,
        check_id: check_id.to_string(),
        entity_ref,
        scope,
        state,
        details,
        justification,
    })
}

/// What the certification view of one entity is built from.
struct CertificationInputs<'a> {
    entity: &'a str,
    body: &'a Value,
    results: &'a HashMap<&'a str, &'a ResultRow>,
    exempt: &'a [String],
    include_filtered: bool,
    config: &'a soundcheck_core::model::SoundcheckConfig,
}

impl CertificationInputs<'_> {
    fn certification(&self, track: &Track, rows: &[&LevelRow]) -> Certification {
        let levels: Vec<CertificationLevel> = track
            .levels
            .iter()
            .map(|level| {
                let row = rows.iter().find(|r| r.level_ordinal == level.ordinal);
                let checks = level
                    .checks
                    .iter()
                    .filter_map(|entry| {
                        let check = self.config.check(&entry.id)?;
                        let applies = check.applies_to.admits(self.body)
                            && entry.applies_to.admits(self.body);
                        (applies || self.include_filtered).then(|| self.check_view(check, entry))
                    })
                    .collect();
                let state = row.map_or("not-reported", |r| r.state.as_str());
                let cumulative = row.map_or("not-reported", |r| r.cumulative_state.as_str());
                CertificationLevel {
                    ordinal: level.ordinal,
                    name: level
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("Level {}", level.ordinal)),
                    description: level.description.clone(),
                    entity_ref: self.entity.to_string(),
                    certified: row.is_some_and(|r| r.cumulative_state == CertState::Passed),
                    state: state.to_string(),
                    cumulative_state: cumulative.to_string(),
                    checks,
                }
            })
            .collect();
        let highest_level = levels.iter().rev().find(|l| l.certified).cloned();
        Certification {
            entity_ref: self.entity.to_string(),
            track: TrackRef {
                id: track.id.clone(),
                name: track.name.clone(),
            },
            scope: "default".to_string(),
            levels,
            highest_level,
        }
    }

    fn check_view(
        &self,
        check: &soundcheck_core::model::Check,
        entry: &soundcheck_core::model::LevelCheck,
    ) -> CertificationCheck {
        let result = self.results.get(check.id.as_str());
        let exempt = self.exempt.contains(&check.id);
        let state = match (exempt, result) {
            (true, _) => "exempt".to_string(),
            (false, Some(r)) => r.state.as_str().to_string(),
            (false, None) => "not-reported".to_string(),
        };
        let view = result.map(|r| CheckResultView::from(*r));
        CertificationCheck {
            id: check.id.clone(),
            name: entry
                .name
                .clone()
                .or_else(|| check.name.clone())
                .unwrap_or_else(|| check.id.clone()),
            description: entry
                .description
                .clone()
                .or_else(|| check.description.clone()),
            entity_ref: self.entity.to_string(),
            state,
            timestamp: result.map(|r| rfc3339(r.last_changed)),
            details: view.and_then(|v| v.details).unwrap_or(Value::Null),
        }
    }
}
