//! Fact collector configurations created through the API (`/fact-collectors`): one block per
//! collector id, validated by the same decoder as `soundcheck.collectors` in config files.
//! Collectors configured in files are read-only through the API.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use soundcheck_core::config::Diagnostics;
use soundcheck_core::config::decode_collectors::block;
use soundcheck_core::config::json::json_node;
use soundcheck_core::model::CollectorConfig;
use utoipa::ToSchema;

use super::{App, Definitions, ServiceError, ServiceResult, now_ms};
use crate::store::{DefinitionKind, DefinitionStore};

/// A collector as the API shows it: its id and its configuration as given.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FactCollectorView {
    /// The collector id.
    pub collector_id: String,
    /// Its configuration (a list when several blocks come from config files).
    #[schema(value_type = Object)]
    pub config: Value,
    /// False for collectors configured in config files.
    pub editable: bool,
}

/// Decodes one block at `pointer`.
fn decode(id: &str, config: &Value, pointer: &str) -> Result<CollectorConfig, String> {
    let mut diags = Diagnostics::default();
    let decoded = block(id, &json_node(config, pointer), &mut diags);
    let errors: Vec<String> = diags
        .into_vec()
        .into_iter()
        .filter(|d| d.severity == soundcheck_core::config::Severity::Error)
        .map(|d| d.to_string())
        .collect();
    match decoded {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(errors.join("\n")),
    }
}

/// The stored API-created blocks.
pub(super) fn decode_stored(items: &[(String, Value)]) -> Result<Vec<CollectorConfig>, String> {
    items
        .iter()
        .map(|(id, config)| decode(id, config, &format!("database:collector/{id}")))
        .collect()
}

/// The block as it was written, with secrets (keys naming a token, password, secret or API
/// key) replaced by `<redacted>`.
fn config_json(c: &CollectorConfig) -> Value {
    redact(&c.source)
}

/// Every scalar inside replaced.
fn redact_all(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_all(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_all).collect()),
        Value::Null => Value::Null,
        _ => Value::String("<redacted>".into()),
    }
}

fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    // `api_key`, `x-api-key` and `apiKey` all read as `apikey`.
                    let key: String = k
                        .to_lowercase()
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .collect();
                    let secret = key == "pat" || SECRET_WORDS.iter().any(|s| key.contains(s));
                    let shown = if secret { redact_all(v) } else { redact(v) };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(s) => Value::String(without_userinfo(s)),
        other => other.clone(),
    }
}

/// Key words that mark a setting as secret.
const SECRET_WORDS: &[&str] = &[
    "token",
    "password",
    "passwd",
    "secret",
    "key",
    "authorization",
    "credential",
    "private",
    "cert",
];

/// A URL with `user:password@` hidden.
fn without_userinfo(text: &str) -> String {
    match (text.find("://"), text.find('@')) {
        (Some(scheme), Some(at)) if at > scheme && !text[scheme + 3..at].contains('/') => {
            format!("{}://<redacted>@{}", &text[..scheme], &text[at + 1..])
        }
        _ => text.to_string(),
    }
}

impl App {
    /// Every collector: config-file ones (read-only), API-created ones, and registered
    /// collectors without configuration.
    pub fn fact_collectors(&self) -> Vec<FactCollectorView> {
        let defs = self.definitions();
        let mut out: Vec<FactCollectorView> = Vec::new();
        for c in &defs.config.collectors {
            match out.iter_mut().find(|v| v.collector_id == c.id) {
                Some(v) => {
                    let first = std::mem::take(&mut v.config);
                    v.config = match first {
                        Value::Array(mut items) => {
                            items.push(config_json(c));
                            Value::Array(items)
                        }
                        other => Value::Array(vec![other, config_json(c)]),
                    };
                }
                None => out.push(FactCollectorView {
                    collector_id: c.id.clone(),
                    config: config_json(c),
                    editable: false,
                }),
            }
        }
        for c in &defs.api_collectors {
            out.push(FactCollectorView {
                collector_id: c.id.clone(),
                config: config_json(c),
                editable: true,
            });
        }
        if let Ok(registered) = self.collectors.read() {
            for c in registered.iter() {
                if !out.iter().any(|v| v.collector_id == c.id()) {
                    out.push(FactCollectorView {
                        collector_id: c.id().to_string(),
                        config: Value::Object(Default::default()),
                        editable: false,
                    });
                }
            }
        }
        out
    }

    /// Creates (or with `replace`, replaces) API-configured collectors: `(id, config,
    /// pointer)`.
    pub async fn put_collectors(
        &self,
        items: Vec<(String, Value, String)>,
        replace: bool,
    ) -> ServiceResult<Vec<FactCollectorView>> {
        let _guard = self.definitions_lock.lock().await;
        let current = self.definitions();
        let mut decoded = Vec::new();
        let mut problems = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (id, config, pointer) in &items {
            if !seen.insert(id.as_str()) {
                return Err(ServiceError::Invalid(format!(
                    "{pointer}/collectorId: `{id}` appears twice in the request"
                )));
            }
            if current.config.collectors.iter().any(|c| &c.id == id) {
                return Err(ServiceError::Forbidden(format!(
                    "collector `{id}` is configured in a config file and is read-only through the API"
                )));
            }
            let exists = current.api_collectors.iter().any(|c| &c.id == id);
            if exists && !replace {
                return Err(ServiceError::Conflict(format!(
                    "{pointer}: collector `{id}` already exists"
                )));
            }
            if !exists && replace {
                return Err(ServiceError::NotFound(format!(
                    "collector `{id}` not found"
                )));
            }
            match decode(id, config, &format!("{pointer}/config")) {
                Ok(c) => decoded.push(c),
                Err(e) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems.join("\n")));
        }
        let rows: Vec<(String, Value)> = items
            .iter()
            .map(|(id, c, _)| (id.clone(), c.clone()))
            .collect();
        self.store
            .put_definitions(DefinitionKind::Collector, &rows, now_ms())
            .await?;
        let mut collectors: Vec<CollectorConfig> = current
            .api_collectors
            .iter()
            .filter(|c| !decoded.iter().any(|d| d.id == c.id))
            .cloned()
            .collect();
        collectors.extend(decoded.iter().cloned());
        self.swap_collectors(&current, collectors);
        Ok(decoded
            .iter()
            .map(|c| FactCollectorView {
                collector_id: c.id.clone(),
                config: config_json(c),
                editable: true,
            })
            .collect())
    }

    /// Deletes an API-configured collector.
    pub async fn delete_collector(&self, id: &str) -> ServiceResult<()> {
        let _guard = self.definitions_lock.lock().await;
        let current = self.definitions();
        if current.config.collectors.iter().any(|c| c.id == id) {
            return Err(ServiceError::Forbidden(format!(
                "collector `{id}` is configured in a config file and is read-only through the API"
            )));
        }
        if !self
            .store
            .delete_definition(DefinitionKind::Collector, id)
            .await?
        {
            return Err(ServiceError::NotFound(format!(
                "collector `{id}` not found"
            )));
        }
        let kept = current
            .api_collectors
            .iter()
            .filter(|c| c.id != id)
            .cloned()
            .collect();
        self.swap_collectors(&current, kept);
        Ok(())
    }

    fn swap_collectors(&self, current: &Definitions, api_collectors: Vec<CollectorConfig>) {
        self.defs.store(Arc::new(Definitions {
            config: current.config.clone(),
            engine: current.engine.clone(),
            api_checks: current.api_checks.clone(),
            api_tracks: current.api_tracks.clone(),
            api_collectors,
        }));
    }
}
