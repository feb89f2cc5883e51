//! Loading Soundcheck config as users write it: Backstage app-config YAML with a top-level
//! `soundcheck:` key, `$include`/`$file`/`$env`, `${VAR}` substitution, several files merged
//! in order. Every problem found is reported at once as `file:line:column: message`; a config
//! with any error is rejected whole.
//!
//! Merging follows Backstage (later files win, mappings merge key by key) with one difference:
//! the `soundcheck.checks`, `soundcheck.tracks` and `soundcheck.programs` lists of later files
//! are appended, so checks can be split across files; duplicate ids are then an error.

mod decode;
pub mod decode_collectors;
mod decode_rule;
mod decode_server;
mod decode_service;
mod decode_sinks;
pub mod diagnostics;
mod fields;
pub mod json;
pub mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};

pub use diagnostics::{Diagnostic, Diagnostics, Pos, Severity};
pub use yaml::{Node, NodeKind};

use crate::model::SoundcheckConfig;

/// A successfully loaded config.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated checks and tracks.
    pub config: SoundcheckConfig,
    /// Accepted, but worth telling the user (legacy forms).
    pub warnings: Vec<Diagnostic>,
    /// The merged document, for sections decoded elsewhere (collectors, server settings).
    pub root: Node,
}

/// A rejected config: every problem found, errors and warnings in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// What was wrong, where.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.errors().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// Looks variables up in the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads and merges `paths` in order; variables come from `env`.
pub fn load_files(
    paths: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let mut diags = Diagnostics::default();
    let mut merged: Option<Node> = None;
    {
        let mut reader = yaml::Reader::new(env, &mut diags);
        for path in paths {
            if let Some(node) = reader.read_file(path, None) {
                merged = Some(match merged {
                    Some(base) => merge(base, node, &[]),
                    None => node,
                });
            }
        }
    }
    let root = merged.unwrap_or_else(|| Node {
        pos: Pos::file_start("<none>"),
        kind: NodeKind::Map(Vec::new()),
    });
    finish(root, diags)
}

/// Loads one config from text; `name` is used in positions and `$include`s resolve against
/// `dir`.
pub fn load_str(
    name: &str,
    text: &str,
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let mut diags = Diagnostics::default();
    let root = yaml::Reader::new(env, &mut diags).read_str(&name.into(), text, dir);
    let root = root.unwrap_or_else(|| Node {
        pos: Pos::file_start(name),
        kind: NodeKind::Map(Vec::new()),
    });
    finish(root, diags)
}

fn finish(root: Node, mut diags: Diagnostics) -> Result<Loaded, ConfigError> {
    if !matches!(root.kind, NodeKind::Map(_) | NodeKind::Null) {
        diags.error(
            &root.pos,
            format!(
                "expected a mapping at the top of the config, found {}",
                root.type_name()
            ),
        );
    }
    let config = decode::decode_root(&root, &mut diags);
    if diags.has_errors() {
        return Err(ConfigError {
            diagnostics: sorted(diags.into_vec()),
        });
    }
    Ok(Loaded {
        config,
        warnings: sorted(diags.into_vec()),
        root,
    })
}

/// Problems in file order (files in the order first seen), so they read top to bottom.
fn sorted(mut items: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut files: Vec<std::sync::Arc<str>> = Vec::new();
    for d in &items {
        if !files.contains(&d.pos.file) {
            files.push(d.pos.file.clone());
        }
    }
    items.sort_by_key(|d| {
        (
            files.iter().position(|f| *f == d.pos.file),
            d.pos.line,
            d.pos.column,
        )
    });
    items
}

const APPENDED_LISTS: [[&str; 2]; 3] = [
    ["soundcheck", "checks"],
    ["soundcheck", "tracks"],
    ["soundcheck", "programs"],
];

/// Merges `over` into `base`: mappings key by key, the check and track lists appended,
/// anything else replaced.
fn merge(base: Node, over: Node, path: &[&str]) -> Node {
    match (base.kind, over.kind) {
        (NodeKind::Map(mut base_entries), NodeKind::Map(over_entries)) => {
            for entry in over_entries {
                match base_entries.iter().position(|e| e.key == entry.key) {
                    Some(i) => {
                        let key = entry.key.clone();
                        let mut sub_path = path.to_vec();
                        sub_path.push(&key);
                        let old = std::mem::replace(
                            &mut base_entries[i].value,
                            Node {
                                pos: entry.value.pos.clone(),
                                kind: NodeKind::Null,
                            },
                        );
                        base_entries[i].value = merge(old, entry.value, &sub_path);
                    }
                    None => base_entries.push(entry),
                }
            }
            Node {
                pos: base.pos,
                kind: NodeKind::Map(base_entries),
            }
        }
        (NodeKind::Seq(mut base_items), NodeKind::Seq(over_items))
            if APPENDED_LISTS.iter().any(|p| p == path) =>
        {
            base_items.extend(over_items);
            Node {
                pos: base.pos,
                kind: NodeKind::Seq(base_items),
            }
        }
        // An empty file or a key without a value does not erase what earlier files set.
        (kind, NodeKind::Null) => Node {
            pos: base.pos,
            kind,
        },
        (_, kind) => Node {
            pos: over.pos,
            kind,
        },
    }
}

#[cfg(test)]
mod tests;
