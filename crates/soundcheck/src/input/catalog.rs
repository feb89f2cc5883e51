//! Catalog entities from Backstage `catalog-info.yaml` files (several documents per file) or
//! JSON lines (one entity per line). Each entity gets its normalised ref.

use std::collections::HashMap;
use std::path::Path;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::Value;
use soundcheck_core::model::EntityRef;

use super::{InputError, InputProblem, MAX_REPORTED};

/// A catalog entity and its ref.
#[derive(Debug, Clone)]
pub struct CatalogEntity {
    /// `kind:namespace/name`.
    pub entity_ref: EntityRef,
    /// The entity as JSON (also the `catalog:default/entity_descriptor` fact).
    pub value: Value,
}

/// The loaded catalog: entities in input order, de-duplicated by ref (the last one wins).
#[derive(Debug, Default)]
pub struct Catalog {
    /// Entities.
    pub entities: Vec<CatalogEntity>,
    index: HashMap<String, usize>,
}

impl Catalog {
    /// The position of an entity by normalised ref.
    pub fn position(&self, entity_ref: &str) -> Option<usize> {
        self.index.get(entity_ref).copied()
    }

    fn push(&mut self, entity: CatalogEntity) {
        match self.index.get(entity.entity_ref.as_str()) {
            Some(&i) => self.entities[i] = entity,
            None => {
                self.index
                    .insert(entity.entity_ref.as_str().to_string(), self.entities.len());
                self.entities.push(entity);
            }
        }
    }
}

/// Reads every file; `.json`/`.jsonl`/`.ndjson` as JSON lines, anything else as YAML.
/// `Location` entities are followed: their file targets (`spec.target`, `spec.targets`,
/// relative to the file that names them) are read too, each file once; URL and glob targets
/// are skipped with a warning.
pub fn load(paths: &[impl AsRef<Path>]) -> anyhow::Result<Result<Catalog, InputError>> {
    let mut catalog = Catalog::default();
    let mut problems = Vec::new();
    let mut queue: std::collections::VecDeque<std::path::PathBuf> =
        paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
    let mut seen = std::collections::HashSet::new();
    while let Some(path) = queue.pop_front() {
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if !seen.insert(key) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read catalog file `{}`: {e}", path.display()))?;
        let file = path.display().to_string();
        let is_json_lines = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "jsonl" | "ndjson")
        );
        let values = if is_json_lines && text.trim_start().starts_with('[') {
            json_array(&file, &text, &mut problems)
        } else if is_json_lines {
            json_lines(&file, &text, &mut problems)
        } else {
            yaml_docs(&file, &text, &mut problems)
        };
        for (line, value) in values {
            for target in location_targets(&value) {
                match follow(&path, &target) {
                    Some(next) if next.exists() => queue.push_back(next),
                    Some(next) => problems.push(InputProblem {
                        file: file.clone(),
                        line,
                        message: format!(
                            "Location target `{target}` does not exist (looked for `{}`)",
                            next.display()
                        ),
                    }),
                    None => {
                        tracing::warn!(target = %target, file = %file, "Location target skipped: only relative file targets are read")
                    }
                }
            }
            match entity_ref_of(&value) {
                Ok(entity_ref) => catalog.push(CatalogEntity { entity_ref, value }),
                Err(message) => problems.push(InputProblem {
                    file: file.clone(),
                    line,
                    message,
                }),
            }
        }
    }
    if problems.is_empty() {
        return Ok(Ok(catalog));
    }
    let total = problems.len();
    problems.truncate(MAX_REPORTED);
    Ok(Err(InputError { problems, total }))
}

/// The targets of a `Location` entity.
fn location_targets(entity: &Value) -> Vec<String> {
    if entity
        .get("kind")
        .and_then(Value::as_str)
        .map(str::to_lowercase)
        .as_deref()
        != Some("location")
    {
        return Vec::new();
    }
    let Some(spec) = entity.get("spec") else {
        return Vec::new();
    };
    let mut out: Vec<String> = spec
        .get("target")
        .and_then(Value::as_str)
        .map(str::to_string)
        .into_iter()
        .collect();
    if let Some(Value::Array(items)) = spec.get("targets") {
        out.extend(items.iter().filter_map(Value::as_str).map(str::to_string));
    }
    out
}

/// The file a relative target names, or `None` for URLs and globs.
fn follow(from: &Path, target: &str) -> Option<std::path::PathBuf> {
    let target = target.strip_prefix("file:").unwrap_or(target);
    if target.contains("://") || target.contains(['*', '?', '[']) {
        return None;
    }
    let base = from.parent().unwrap_or_else(|| Path::new("."));
    Some(base.join(target))
}

fn json_lines(file: &str, text: &str, problems: &mut Vec<InputProblem>) -> Vec<(usize, Value)> {
    use rayon::prelude::*;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let parsed: Vec<Result<(usize, Value), InputProblem>> = lines
        .par_iter()
        .map(|(i, line)| {
            serde_json::from_str::<Value>(line)
                .map(|v| (i + 1, v))
                .map_err(|e| InputProblem {
                    file: file.to_string(),
                    line: i + 1,
                    message: format!("invalid JSON: {e}"),
                })
        })
        .collect();
    let mut out = Vec::with_capacity(parsed.len());
    for item in parsed {
        match item {
            Ok(v) => out.push(v),
            Err(p) => problems.push(p),
        }
    }
    out
}

/// A `.json` file holding one array of entities (as `GET /api/catalog/entities` returns).
fn json_array(file: &str, text: &str, problems: &mut Vec<InputProblem>) -> Vec<(usize, Value)> {
    match serde_json::from_str::<Vec<Value>>(text) {
        Ok(items) => items.into_iter().map(|v| (1, v)).collect(),
        Err(e) => {
            problems.push(InputProblem {
                file: file.to_string(),
                line: e.line(),
                message: format!("invalid JSON: {e}"),
            });
            Vec::new()
        }
    }
}

fn yaml_docs(file: &str, text: &str, problems: &mut Vec<InputProblem>) -> Vec<(usize, Value)> {
    let docs = match saphyr::MarkedYaml::load_from_str(text) {
        Ok(docs) => docs,
        Err(e) => {
            problems.push(InputProblem {
                file: file.to_string(),
                line: e.marker().line(),
                message: format!("invalid YAML: {}", e.info()),
            });
            return Vec::new();
        }
    };
    docs.into_iter()
        .filter(|doc| !matches!(doc.data, YamlData::Value(Scalar::Null)))
        .map(|doc| (doc.span.start.line(), yaml_to_json(&doc)))
        .collect()
}

fn yaml_to_json(yaml: &MarkedYaml<'_>) -> Value {
    match &yaml.data {
        YamlData::Value(Scalar::Null) => Value::Null,
        YamlData::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        YamlData::Value(Scalar::Integer(i)) => Value::from(*i),
        YamlData::Value(Scalar::FloatingPoint(f)) => {
            serde_json::Number::from_f64(f.into_inner()).map_or(Value::Null, Value::Number)
        }
        YamlData::Value(Scalar::String(s)) => Value::String(s.to_string()),
        YamlData::Sequence(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        YamlData::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (scalar_key(k), yaml_to_json(v)))
                .collect(),
        ),
        YamlData::Tagged(_, inner) => yaml_to_json(inner),
        _ => Value::Null,
    }
}

fn scalar_key(key: &MarkedYaml<'_>) -> String {
    match yaml_to_json(key) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The entity ref from `kind`, `metadata.namespace` (default `default`) and `metadata.name`.
pub fn entity_ref_of(entity: &Value) -> Result<EntityRef, String> {
    let kind = entity
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("entity has no string `kind`")?;
    let metadata = entity.get("metadata").ok_or("entity has no `metadata`")?;
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .ok_or("entity has no string `metadata.name`")?;
    let namespace = metadata
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    if kind.is_empty() || name.is_empty() || namespace.is_empty() {
        return Err("entity has an empty kind, namespace or name".to_string());
    }
    Ok(EntityRef::from_parts(kind, namespace, name))
}
