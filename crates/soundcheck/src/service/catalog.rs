//! The catalog the service evaluates: loaded from Backstage YAML or JSON-lines files at start
//! (entities that are no longer there are removed with their facts and results), and facts
//! files submitted at start.

use std::path::PathBuf;

use anyhow::Context;

use super::{App, now_ms};
use crate::input::catalog;
use crate::store::{CatalogStore, QueryStore};

/// Where the catalog comes from.
#[derive(Debug, Clone)]
pub struct CatalogSource {
    /// Backstage YAML (several documents per file) or JSON-lines files.
    pub files: Vec<PathBuf>,
}

impl App {
    /// Replaces the stored catalog with the source's entities.
    pub async fn load_catalog(&self, source: &CatalogSource) -> anyhow::Result<()> {
        let loaded = catalog::load(&source.files)?.map_err(|e| anyhow::anyhow!("{e}"))?;
        let entities: Vec<(String, serde_json::Value)> = loaded
            .entities
            .into_iter()
            .map(|e| (e.entity_ref.to_string(), e.value))
            .collect();
        let keep: std::collections::HashSet<&str> =
            entities.iter().map(|(r, _)| r.as_str()).collect();
        let gone: Vec<String> = self
            .store
            .entities()
            .await?
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| !keep.contains(r.as_str()))
            .collect();
        self.store
            .upsert_entities(&entities, now_ms())
            .await
            .context("cannot store the catalog")?;
        if !gone.is_empty() {
            self.store.delete_entities(&gone).await?;
            tracing::info!(
                removed = gone.len(),
                "entities no longer in the catalog were removed with their facts and results"
            );
        }
        tracing::info!(entities = entities.len(), "catalog loaded");
        self.refresh_entities().await?;
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
        let outcome = self.live().submit_facts(records).await?;
        tracing::info!(
            facts = outcome.facts,
            evaluated = outcome.evaluated,
            events = outcome.events,
            "facts files submitted"
        );
        Ok(())
    }
}
