//! Decodes `soundcheck.collectors` (one block or a list of blocks per collector id) and
//! `soundcheck.job.workers.<id>.limiter`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::decode::{decode_filter, decode_frequency};
use super::diagnostics::Diagnostics;
use super::fields::Fields;
use super::yaml::{Node, NodeKind};
use crate::filter::Applicability;
use crate::model::{CacheSetting, CollectEntry, CollectorConfig, Limiter};

/// Keys every collector block understands; any other key is collector-specific.
const COMMON: &[&str] = &[
    "frequency",
    "initialDelay",
    "batchSize",
    "filter",
    "exclude",
    "cache",
    "collects",
];

/// Every collector block, in file order.
pub fn collectors(node: &Node, diags: &mut Diagnostics) -> Vec<CollectorConfig> {
    let Some(entries) = node.entries() else {
        diags.error(
            &node.pos,
            format!(
                "expected a mapping of collector ids for `collectors`, found {}",
                node.type_name()
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries {
        match &entry.value.kind {
            NodeKind::Seq(blocks) => {
                out.extend(blocks.iter().filter_map(|b| block(&entry.key, b, diags)));
            }
            _ => out.extend(block(&entry.key, &entry.value, diags)),
        }
    }
    out
}

/// One collector block, read from JSON or YAML.
pub fn block(id: &str, node: &Node, diags: &mut Diagnostics) -> Option<CollectorConfig> {
    let Some(entries) = node.entries() else {
        diags.error(
            &node.pos,
            format!(
                "expected a mapping for collector `{id}`, found {}",
                node.type_name()
            ),
        );
        return None;
    };
    if id.is_empty() || id.contains([':', '/']) {
        diags.error(
            &node.pos,
            format!("`{id}` cannot be a collector id: it must be non-empty without `:` or `/`"),
        );
    }
    let get = |key: &str| node.get(key);
    let frequency = get("frequency").and_then(|n| decode_frequency(n, diags));
    let initial_delay_seconds = get("initialDelay")
        .and_then(|n| decode_frequency(n, diags))
        .map_or(0, |f| match f {
            crate::model::Frequency::Every(s) => s,
            crate::model::Frequency::Cron(_) => 0,
        });
    let batch_size = match get("batchSize") {
        None => 100,
        Some(n) => match n.kind {
            NodeKind::Int(b) if (1..=10_000).contains(&b) => u32::try_from(b).unwrap_or(100),
            _ => {
                diags.error(
                    &n.pos,
                    format!(
                        "expected an integer from 1 to 10000 for `batchSize`, found {}",
                        n.type_name()
                    ),
                );
                100
            }
        },
    };
    let applies_to = Applicability {
        filter: get("filter")
            .map(|n| decode_filter(n, "filter", diags))
            .unwrap_or_default(),
        exclude: get("exclude")
            .map(|n| decode_filter(n, "exclude", diags))
            .unwrap_or_default(),
    };
    let cache = get("cache")
        .and_then(|n| cache(n, diags))
        .unwrap_or(CacheSetting::Off);
    let collects = match get("collects") {
        None => Vec::new(),
        Some(n) => match &n.kind {
            NodeKind::Seq(items) => items
                .iter()
                .filter_map(|i| collect_entry(i, diags))
                .collect(),
            _ => {
                diags.error(
                    &n.pos,
                    format!("expected a list for `collects`, found {}", n.type_name()),
                );
                Vec::new()
            }
        },
    };
    let settings: Map<String, Value> = entries
        .iter()
        .filter(|e| !COMMON.contains(&e.key.as_str()))
        .map(|e| (e.key.clone(), e.value.to_json()))
        .collect();
    Some(CollectorConfig {
        id: id.to_string(),
        frequency,
        initial_delay_seconds,
        batch_size,
        applies_to,
        cache,
        collects,
        settings: Value::Object(settings),
        source: node.to_json(),
    })
}

fn collect_entry(node: &Node, diags: &mut Diagnostics) -> Option<CollectEntry> {
    let entries = node.entries().or_else(|| {
        diags.error(
            &node.pos,
            format!(
                "expected a mapping in `collects`, found {}",
                node.type_name()
            ),
        );
        None
    })?;
    let fact_name = match node.get("factName") {
        Some(Node {
            kind: NodeKind::Str(s),
            ..
        }) if !s.is_empty() => s.clone(),
        Some(n) => {
            diags.error(&n.pos, "expected a non-empty string for `factName`");
            return None;
        }
        None => {
            diags.error(
                &node.pos,
                "a `collects` entry is missing required key `factName`",
            );
            return None;
        }
    };
    let extractor = match node.get("type") {
        Some(Node {
            kind: NodeKind::Str(s),
            ..
        }) => Some(s.clone()),
        Some(n) => {
            diags.error(&n.pos, "expected a string for `type`");
            None
        }
        None => None,
    };
    let settings: Map<String, Value> = entries
        .iter()
        .filter(|e| !["factName", "type", "cache"].contains(&e.key.as_str()))
        .map(|e| (e.key.clone(), e.value.to_json()))
        .collect();
    Some(CollectEntry {
        fact_name,
        extractor,
        cache: node.get("cache").and_then(|n| cache(n, diags)),
        settings: Value::Object(settings),
    })
}

/// `true`, `false` or `{duration: {days|hours|minutes|seconds}}`.
fn cache(node: &Node, diags: &mut Diagnostics) -> Option<CacheSetting> {
    match &node.kind {
        NodeKind::Bool(true) => Some(CacheSetting::On),
        NodeKind::Bool(false) => Some(CacheSetting::Off),
        NodeKind::Map(_) => {
            let f = Fields::new(node, "`cache`", &["duration"], diags)?;
            let Some(d) = f.get("duration") else {
                diags.error(
                    &node.pos,
                    "`cache` needs `duration` (or write `cache: true`)",
                );
                return None;
            };
            match decode_frequency(d, diags)? {
                crate::model::Frequency::Every(s) => Some(CacheSetting::ForSeconds(s)),
                crate::model::Frequency::Cron(_) => {
                    diags.error(
                        &d.pos,
                        "a cache duration is an interval, not a cron expression",
                    );
                    None
                }
            }
        }
        _ => {
            diags.error(
                &node.pos,
                format!(
                    "expected true, false or {{duration: ...}} for `cache`, found {}",
                    node.type_name()
                ),
            );
            None
        }
    }
}

/// `soundcheck.job`: `{workers: {<id>: {limiter: {max, duration}}}, statistics}`.
pub fn limiters(node: &Node, diags: &mut Diagnostics) -> BTreeMap<String, Limiter> {
    let mut out = BTreeMap::new();
    let Some(f) = Fields::new(node, "`soundcheck.job`", &["workers", "statistics"], diags) else {
        return out;
    };
    let Some(workers) = f.get("workers") else {
        return out;
    };
    let Some(entries) = workers.entries() else {
        diags.error(
            &workers.pos,
            "expected a mapping of collector ids for `workers`",
        );
        return out;
    };
    for entry in entries {
        let Some(w) = Fields::new(&entry.value, "a worker", &["limiter"], diags) else {
            continue;
        };
        let Some(limiter) = w.get("limiter") else {
            continue;
        };
        let Some(l) = Fields::new(limiter, "`limiter`", &["max", "duration"], diags) else {
            continue;
        };
        let number = |key: &str, diags: &mut Diagnostics| match l.get(key) {
            Some(Node {
                kind: NodeKind::Int(v),
                ..
            }) if *v > 0 => u64::try_from(*v).ok(),
            Some(n) => {
                diags.error(&n.pos, format!("expected a positive integer for `{key}`"));
                None
            }
            None => {
                diags.error(
                    &limiter.pos,
                    format!("`limiter` is missing required key `{key}`"),
                );
                None
            }
        };
        if let (Some(max), Some(duration)) = (number("max", diags), number("duration", diags)) {
            out.insert(
                entry.key.clone(),
                Limiter {
                    max: u32::try_from(max).unwrap_or(u32::MAX),
                    duration_ms: duration,
                },
            );
        }
    }
    out
}
