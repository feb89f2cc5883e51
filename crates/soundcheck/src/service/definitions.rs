//! Checks, tracks and campaigns created, replaced and deleted through the API. Every change is
//! validated together with the config files (ids stay unique, levels name known checks), then
//! stored, then swapped in; the entities are re-evaluated in the background.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;
use soundcheck_core::Engine;
use soundcheck_core::config::Node;
use soundcheck_core::config::json::{json_node, load_with};

use super::{App, Definitions, ServiceError, ServiceResult, now_ms};
use crate::store::{DefinitionKind, DefinitionStore, QueryStore, SqlStore, StoreError};

/// Which definitions a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Checks.
    Checks,
    /// Tracks of type `standard`.
    Tracks,
    /// Tracks of type `campaign`.
    Campaigns,
}

impl Family {
    fn kind(self) -> DefinitionKind {
        match self {
            Self::Checks => DefinitionKind::Check,
            Self::Tracks | Self::Campaigns => DefinitionKind::Track,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Checks => "check",
            Self::Tracks => "track",
            Self::Campaigns => "campaign",
        }
    }
}

/// Why stored definitions could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// They no longer validate against the config files.
    #[error("{0}")]
    Invalid(String),
}

fn stored_nodes(items: &[(String, Value)], kind: &str) -> Vec<Node> {
    items
        .iter()
        .map(|(id, body)| json_node(body, &format!("database:{kind}/{id}")))
        .collect()
}

fn compile(
    base: &Node,
    checks: Vec<Node>,
    tracks: Vec<Node>,
    api_checks: HashSet<String>,
    api_tracks: HashSet<String>,
) -> Result<Definitions, soundcheck_core::config::ConfigError> {
    let loaded = load_with(base, checks, tracks)?;
    Ok(Definitions {
        engine: Arc::new(Engine::new(&loaded.config)),
        config: loaded.config,
        api_checks,
        api_tracks,
        api_collectors: Vec::new(),
    })
}

/// Each check's cluster of stored results (see `store::clusters`): checks reading the same
/// fact share one, so a submission of that fact changes results stored side by side. A
/// check is placed by the first, in text order, of the facts it reads other than the entity
/// descriptor (which any check may read); one that reads no other fact is in cluster 0. The
/// number is 15 bits of a checksum of that fact ref (two bytes in every stored result; two
/// facts sharing a number only share a cluster), so it stays the same across restarts and
/// across config changes that keep the check's facts.
pub(super) fn check_clusters(engine: &Engine) -> Vec<(String, i64)> {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let table = engine.fact_table();
    (0..engine.check_count())
        .map(|check| {
            let first = engine
                .slots_read_by(check)
                .iter()
                .map(|slot| table.fact_ref(*slot).as_str())
                .filter(|fact_ref| *fact_ref != crate::batch::ENTITY_DESCRIPTOR)
                .min();
            let cluster = first.map_or(0, |f| i64::from(CRC.checksum(f.as_bytes()) & 0x7fff));
            (engine.check_id(check).to_string(), cluster)
        })
        .collect()
}

/// The definitions from the config files and the database.
pub(super) async fn load(base: &Node, store: &SqlStore) -> Result<Definitions, LoadError> {
    let checks = store.definitions(DefinitionKind::Check).await?;
    let tracks = store.definitions(DefinitionKind::Track).await?;
    let mut defs = compile(
        base,
        stored_nodes(&checks, "check"),
        stored_nodes(&tracks, "track"),
        checks.iter().map(|(id, _)| id.clone()).collect(),
        tracks.iter().map(|(id, _)| id.clone()).collect(),
    )
    .map_err(|e| LoadError::Invalid(e.to_string()))?;
    let collectors = store.definitions(DefinitionKind::Collector).await?;
    defs.api_collectors =
        super::collector_defs::decode_stored(&collectors).map_err(LoadError::Invalid)?;
    Ok(defs)
}

/// One definition in a request body, with where it was.
pub struct Incoming {
    /// Its id.
    pub id: String,
    /// The JSON as sent.
    pub body: Value,
    /// Its JSON pointer in the request body.
    pub pointer: String,
}

impl App {
    /// Places the stored results by the current checks' clusters. A failure costs only
    /// locality (results are the same wherever they sit), so it is logged, not returned.
    pub(super) async fn cluster_results(&self) {
        let clusters = check_clusters(&self.definitions().engine);
        match self.store.set_check_clusters(&clusters).await {
            Ok(0) => {}
            Ok(moved) => tracing::info!(moved, "stored results placed by their checks' clusters"),
            Err(e) => {
                tracing::warn!(error = %e, "could not record the checks' clusters; stored results stay where they are")
            }
        }
    }

    /// Creates (or, with `replace`, replaces) definitions of one family; returns them as
    /// stored. A file-defined id is read-only; a new id must be unused.
    pub async fn put_definitions(
        self: &Arc<Self>,
        family: Family,
        items: Vec<Incoming>,
        replace: bool,
    ) -> ServiceResult<Vec<Value>> {
        let _guard = self.definitions_lock.lock().await;
        let current = self.definitions();
        let mut seen = HashSet::new();
        for item in &items {
            let exists_in_api = match family {
                Family::Checks => current.api_checks.contains(&item.id),
                _ => current.api_tracks.contains(&item.id),
            };
            let exists = match family {
                Family::Checks => current.config.check(&item.id).is_some(),
                _ => current.config.track(&item.id).is_some(),
            };
            if exists && !exists_in_api {
                return Err(ServiceError::Forbidden(format!(
                    "{} `{}` is defined in a config file and is read-only through the API",
                    family.noun(),
                    item.id
                )));
            }
            if exists && !replace {
                return Err(ServiceError::Conflict(format!(
                    "{}: a {} with id `{}` already exists",
                    item.pointer,
                    family.noun(),
                    item.id
                )));
            }
            if exists && replace && family != Family::Checks {
                let is_campaign = current
                    .config
                    .track(&item.id)
                    .is_some_and(|t| t.track_type == "campaign");
                if is_campaign != (family == Family::Campaigns) {
                    return Err(ServiceError::NotFound(format!(
                        "{} `{}` not found",
                        family.noun(),
                        item.id
                    )));
                }
            }
            if !exists && replace {
                return Err(ServiceError::NotFound(format!(
                    "{} `{}` not found",
                    family.noun(),
                    item.id
                )));
            }
            if !seen.insert(item.id.clone()) {
                return Err(ServiceError::Invalid(format!(
                    "{}: id `{}` appears twice in the request",
                    item.pointer, item.id
                )));
            }
            let wanted = if family == Family::Campaigns {
                "campaign"
            } else {
                "standard"
            };
            if family != Family::Checks {
                let given = item
                    .body
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("standard");
                if given != wanted {
                    return Err(ServiceError::Invalid(format!(
                        "{}/type: expected `{wanted}` here, found `{given}`",
                        item.pointer
                    )));
                }
            }
        }
        let stored = self.store.definitions(family.kind()).await?;
        let replaced: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
        let mut nodes = stored_nodes(
            &stored
                .iter()
                .filter(|(id, _)| !replaced.contains(id.as_str()))
                .cloned()
                .collect::<Vec<_>>(),
            family.noun(),
        );
        nodes.extend(items.iter().map(|i| json_node(&i.body, &i.pointer)));
        let (check_nodes, track_nodes) = self.other_family(family, nodes).await?;
        let mut api_checks = current.api_checks.clone();
        let mut api_tracks = current.api_tracks.clone();
        for item in &items {
            match family {
                Family::Checks => api_checks.insert(item.id.clone()),
                _ => api_tracks.insert(item.id.clone()),
            };
        }
        let mut defs = compile(&self.base, check_nodes, track_nodes, api_checks, api_tracks)
            .map_err(|e| ServiceError::from_config(&e))?;
        defs.api_collectors = current.api_collectors.clone();
        let rows: Vec<(String, Value)> = items
            .iter()
            .map(|i| (i.id.clone(), i.body.clone()))
            .collect();
        self.store
            .put_definitions(family.kind(), &rows, now_ms())
            .await?;
        let out = items
            .iter()
            .filter_map(|i| definition_json(&defs, family, &i.id))
            .collect();
        self.defs.store(Arc::new(defs));
        self.cluster_results().await;
        self.reevaluate_in_background().await;
        Ok(out)
    }

    /// Deletes an API-created definition; checks still named by a track cannot go.
    pub async fn delete_definition(
        self: &Arc<Self>,
        family: Family,
        id: &str,
    ) -> ServiceResult<()> {
        let _guard = self.definitions_lock.lock().await;
        let current = self.definitions();
        let in_api = match family {
            Family::Checks => current.api_checks.contains(id),
            _ => current.api_tracks.contains(id),
        };
        if !in_api {
            let exists = match family {
                Family::Checks => current.config.check(id).is_some(),
                _ => current.config.track(id).is_some(),
            };
            return Err(if exists {
                ServiceError::Forbidden(format!(
                    "{} `{id}` is defined in a config file and is read-only through the API",
                    family.noun()
                ))
            } else {
                ServiceError::NotFound(format!("{} `{id}` not found", family.noun()))
            });
        }
        let stored = self.store.definitions(family.kind()).await?;
        let kept: Vec<(String, Value)> = stored.into_iter().filter(|(i, _)| i != id).collect();
        let (check_nodes, track_nodes) = self
            .other_family(family, stored_nodes(&kept, family.noun()))
            .await?;
        let mut api_checks = current.api_checks.clone();
        let mut api_tracks = current.api_tracks.clone();
        api_checks.remove(id);
        if family != Family::Checks {
            api_tracks.remove(id);
        }
        let mut defs = compile(&self.base, check_nodes, track_nodes, api_checks, api_tracks)
            .map_err(|e| {
                ServiceError::Conflict(format!(
                    "{} `{id}` cannot be deleted: {}",
                    family.noun(),
                    ServiceError::from_config(&e)
                ))
            })?;
        defs.api_collectors = current.api_collectors.clone();
        self.store.delete_definition(family.kind(), id).await?;
        self.defs.store(Arc::new(defs));
        self.cluster_results().await;
        Ok(())
    }

    /// Deletes an API-created check and its current results; with `history`, its history
    /// too (see [`QueryStore::delete_check_results`]).
    pub async fn delete_check(self: &Arc<Self>, id: &str, history: bool) -> ServiceResult<()> {
        self.delete_definition(Family::Checks, id).await?;
        // Under the writer lock: a fact submission evaluated before the check went has
        // committed by then, so none writes results of the check after they are deleted.
        let _writer = self.writer.lock().await;
        self.store.delete_check_results(id, history).await?;
        Ok(())
    }

    /// Completes a node list of one family with the stored nodes of the other.
    async fn other_family(
        &self,
        family: Family,
        nodes: Vec<Node>,
    ) -> ServiceResult<(Vec<Node>, Vec<Node>)> {
        Ok(match family {
            Family::Checks => {
                let tracks = self.store.definitions(DefinitionKind::Track).await?;
                (nodes, stored_nodes(&tracks, "track"))
            }
            _ => {
                let checks = self.store.definitions(DefinitionKind::Check).await?;
                (stored_nodes(&checks, "check"), nodes)
            }
        })
    }

    /// Re-evaluates every entity against the definitions in force, in the background; one
    /// run at a time. [`App::settled`] waits for it.
    pub async fn reevaluate_in_background(self: &Arc<Self>) {
        // Counted before the task starts, so `settled` never misses it; the task waits for
        // any run in progress itself, so callers holding other locks never wait here.
        self.pending_reevaluations
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let app = Arc::clone(self);
        tokio::spawn(async move {
            let guard = app.reevaluation.lock().await;
            match app.certify_world("default").await {
                Ok(o) => tracing::info!(
                    entities = o.entities,
                    results = o.result_changes,
                    certifications = o.certification_changes,
                    "re-evaluated every entity against the definitions in force"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "re-evaluation after a definition change failed")
                }
            }
            drop(guard);
            app.pending_reevaluations
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        });
    }

    /// Waits until background re-evaluations (after definition changes) have finished.
    pub async fn settled(&self) {
        while self
            .pending_reevaluations
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// One definition as the API shows it.
pub fn definition_json(defs: &Definitions, family: Family, id: &str) -> Option<Value> {
    match family {
        Family::Checks => defs
            .config
            .check(id)
            .and_then(|c| serde_json::to_value(c).ok()),
        _ => defs
            .config
            .track(id)
            .and_then(|t| serde_json::to_value(t).ok()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use soundcheck_core::Engine;

    use super::check_clusters;

    const CONFIG: &str = r#"
soundcheck:
  checks:
    - id: private
      rule: { factRef: 'github:default/repo', path: '$.private', operator: equal, value: true }
    - id: documented
      rule:
        all:
          - { factRef: 'scm:default/files', path: '$.readme', operator: equal, value: true }
          - { factRef: 'github:default/repo', path: '$.size', operator: lessThan, value: 3 }
    - id: readme
      rule: { factRef: 'scm:default/files', path: '$.readme', operator: equal, value: true }
    - id: service
      rule: { factRef: 'catalog:default/entity_descriptor', path: '$.spec.type', operator: equal, value: service }
    - id: manual
"#;

    #[test]
    fn checks_reading_the_same_first_fact_share_a_cluster() {
        let loaded =
            soundcheck_core::config::load_str("c.yaml", CONFIG, Path::new("."), &|_| None).unwrap();
        let clusters = check_clusters(&Engine::new(&loaded.config));
        let of = |id: &str| clusters.iter().find(|(c, _)| c == id).map(|(_, n)| *n);
        // `documented` reads both facts; the first in text order places it.
        assert_eq!(of("documented"), of("private"));
        assert_ne!(of("readme"), of("private"));
        // The entity descriptor does not place a check, nor does having no rule.
        assert_eq!(of("service"), Some(0));
        assert_eq!(of("manual"), Some(0));
        // Stable across builds and restarts: a checksum of the fact ref, in 15 bits.
        assert_eq!(
            of("private"),
            Some(i64::from(
                crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(b"github:default/repo")
                    & 0x7fff
            ))
        );
        assert!(clusters.iter().all(|(_, n)| (0..0x8000).contains(n)));
        assert_eq!(clusters.len(), 5);
    }
}
