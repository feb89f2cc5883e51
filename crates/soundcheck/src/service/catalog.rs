//! The catalog the service evaluates: Backstage YAML or JSON-lines files (following
//! `Location` entities) and/or the Backstage catalog API (`/api/catalog/entities/by-query`,
//! paged, with a token). Loading replaces the stored catalog: entities that are gone are
//! removed with their facts and results, and entities that are new or changed are
//! re-evaluated. Facts files can be submitted at start.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;

use super::{App, now_ms};
use crate::input::catalog;
use crate::store::{CatalogStore, QueryStore};

/// The Backstage catalog API as a source.
#[derive(Debug, Clone)]
pub struct BackstageCatalog {
    /// Backstage's base URL, e.g. `https://backstage.example.com`.
    pub base_url: String,
    /// A static token (Backstage `externalAccess`), sent as a bearer token.
    pub token: Option<String>,
    /// Entities per page (default 500).
    pub page_size: u32,
}

/// Where the catalog comes from.
#[derive(Debug, Clone, Default)]
pub struct CatalogSource {
    /// Backstage YAML (several documents per file) or JSON-lines files.
    pub files: Vec<PathBuf>,
    /// The Backstage catalog API.
    pub backstage: Option<BackstageCatalog>,
}

impl CatalogSource {
    /// The source configured under `soundcheck.collectors.catalog` (`files`, `backstage`).
    pub fn from_settings(settings: &Value) -> anyhow::Result<Option<Self>> {
        let files: Vec<PathBuf> = match settings.get("files") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|f| {
                    f.as_str()
                        .map(PathBuf::from)
                        .context("`collectors.catalog.files` must be a list of paths")
                })
                .collect::<anyhow::Result<_>>()?,
            Some(_) => anyhow::bail!("`collectors.catalog.files` must be a list of paths"),
        };
        let backstage = match settings.get("backstage") {
            None => None,
            Some(b) => Some(BackstageCatalog {
                base_url: b
                    .get("baseUrl")
                    .and_then(Value::as_str)
                    .context("`collectors.catalog.backstage.baseUrl` is required")?
                    .trim_end_matches('/')
                    .to_string(),
                token: b.get("token").and_then(Value::as_str).map(str::to_string),
                page_size: b
                    .get("pageSize")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(500),
            }),
        };
        Ok((!files.is_empty() || backstage.is_some()).then_some(Self { files, backstage }))
    }
}

/// Every entity of the Backstage catalog, page by page.
async fn fetch_backstage(source: &BackstageCatalog) -> anyhow::Result<Vec<Value>> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let mut entities = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = client
            .get(format!("{}/api/catalog/entities/by-query", source.base_url))
            .query(&[("limit", source.page_size.to_string())]);
        if let Some(c) = &cursor {
            request = request.query(&[("cursor", c)]);
        }
        if let Some(token) = &source.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| {
            format!("cannot reach the Backstage catalog at {}", source.base_url)
        })?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!(
                "the Backstage catalog answered {status} to {}",
                response.url().path()
            );
        }
        let page: Value = response
            .json()
            .await
            .context("the Backstage catalog answered with invalid JSON")?;
        let items = page
            .get("items")
            .and_then(Value::as_array)
            .context("the Backstage catalog page has no `items`")?;
        entities.extend(items.iter().cloned());
        cursor = page
            .pointer("/pageInfo/nextCursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        if cursor.is_none() || items.is_empty() {
            break;
        }
    }
    Ok(entities)
}

impl App {
    /// Replaces the stored catalog with the source's entities; returns the refs of entities
    /// that are new or changed.
    pub async fn load_catalog(&self, source: &CatalogSource) -> anyhow::Result<Vec<String>> {
        let mut entities: Vec<(String, Value)> = Vec::new();
        if !source.files.is_empty() {
            let loaded = catalog::load(&source.files)?.map_err(|e| anyhow::anyhow!("{e}"))?;
            entities.extend(
                loaded
                    .entities
                    .into_iter()
                    .map(|e| (e.entity_ref.to_string(), e.value)),
            );
        }
        if let Some(backstage) = &source.backstage {
            for value in fetch_backstage(backstage).await? {
                match catalog::entity_ref_of(&value) {
                    Ok(r) => entities.push((r.to_string(), value)),
                    Err(e) => {
                        tracing::warn!(problem = %e, "skipped an entity from the Backstage catalog")
                    }
                }
            }
        }
        let stored: HashMap<String, Value> = self.store.entities().await?.into_iter().collect();
        if entities.is_empty() && !stored.is_empty() {
            // An empty answer is far more likely a source problem (permissions, a catalog
            // still starting) than a catalog that really lost everything.
            anyhow::bail!(
                "the catalog source returned no entities; keeping the {} stored ones (remove them explicitly if that is intended)",
                stored.len()
            );
        }
        let keep: std::collections::HashSet<String> =
            entities.iter().map(|(r, _)| r.clone()).collect();
        let gone: Vec<String> = stored
            .keys()
            .filter(|r| !keep.contains(r.as_str()))
            .cloned()
            .collect();
        let changed: Vec<(String, Value)> = entities
            .into_iter()
            .filter(|(r, v)| stored.get(r) != Some(v))
            .collect();
        if !changed.is_empty() {
            self.store
                .upsert_entities(&changed, now_ms())
                .await
                .context("cannot store the catalog")?;
        }
        if !gone.is_empty() {
            let _writer = self.writer.lock().await;
            self.store.delete_entities(&gone).await?;
            tracing::info!(
                removed = gone.len(),
                "entities no longer in the catalog were removed with their facts and results"
            );
        }
        tracing::info!(
            entities = keep.len(),
            changed = changed.len(),
            "catalog loaded"
        );
        self.refresh_entities().await?;
        Ok(changed.into_iter().map(|(r, _)| r).collect())
    }

    /// Re-evaluates the checks that read the entity descriptor for these entities.
    pub async fn reevaluate_entities(&self, refs: &[String]) -> anyhow::Result<()> {
        // Filters depend on the entity body, so every check and track is evaluated again.
        let live = self.live();
        for entity in refs {
            live.execute(entity, "default", None, false).await?;
        }
        Ok(())
    }

    /// Submits facts files (JSON lines shaped like `POST /facts` items).
    pub async fn load_fact_files(&self, files: &[PathBuf]) -> anyhow::Result<()> {
        let mut records = Vec::new();
        let mut problems = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read facts file `{}`", file.display()))?;
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let parsed = serde_json::from_str(line)
                    .map_err(|e| e.to_string())
                    .and_then(|v| super::parse_fact(&v, ""));
                match parsed {
                    Ok(f) => records.push(f),
                    Err(e) => problems.push(format!("{}:{}: {e}", file.display(), n + 1)),
                }
            }
        }
        if !problems.is_empty() {
            anyhow::bail!("invalid facts:\n{}", problems.join("\n"));
        }
        // Grouped by entity so a chunk holds whole entities, and submitted in chunks so one
        // transaction stays small and progress shows.
        records.sort_by(|x, y| x.entity_ref.cmp(&y.entity_ref));
        let total = records.len();
        let (mut evaluated, mut events, mut done) = (0, 0, 0);
        let live = self.live();
        let mut last_report = std::time::Instant::now();
        let mut rest = records.as_slice();
        while !rest.is_empty() {
            let mut end = rest.len().min(5000);
            while end < rest.len() && rest[end].entity_ref == rest[end - 1].entity_ref {
                end += 1;
            }
            let (chunk, tail) = rest.split_at(end);
            rest = tail;
            done += chunk.len();
            let outcome = live.submit_facts(chunk.to_vec()).await?;
            evaluated += outcome.evaluated;
            events += outcome.events;
            if last_report.elapsed().as_secs() >= 5 {
                tracing::info!(done, total, "submitting facts files");
                last_report = std::time::Instant::now();
            }
        }
        tracing::info!(facts = total, evaluated, events, "facts files submitted");
        Ok(())
    }
}
