//! Definitions that arrive as JSON (API request bodies, definitions stored in the database)
//! go through the same decoder as YAML files: each value becomes a [`Node`] whose position is
//! its JSON pointer, so every problem is reported as `/checks/0/rule/operator: ...`.

use serde_json::Value;

use super::diagnostics::{Diagnostics, Pos};
use super::yaml::{Entry, Node, NodeKind};
use super::{ConfigError, Loaded};

/// Escapes one JSON pointer segment (RFC 6901).
fn segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The node tree of a JSON value whose own place is `pointer`.
pub fn json_node(value: &Value, pointer: &str) -> Node {
    let pos = Pos::json_pointer(pointer);
    let kind = match value {
        Value::Null => NodeKind::Null,
        Value::Bool(b) => NodeKind::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => NodeKind::Int(i),
            None => NodeKind::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => NodeKind::Str(s.clone()),
        Value::Array(items) => NodeKind::Seq(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| json_node(v, &format!("{pointer}/{i}")))
                .collect(),
        ),
        Value::Object(map) => NodeKind::Map(
            map.iter()
                .map(|(k, v)| {
                    let child = format!("{pointer}/{}", segment(k));
                    Entry {
                        key: k.clone(),
                        key_pos: Pos::json_pointer(&child),
                        value: json_node(v, &child),
                    }
                })
                .collect(),
        ),
    };
    Node { pos, kind }
}

/// Loads the file config `base` with extra check and track nodes appended (as if they were
/// listed last in the files), validating everything together: ids must stay unique and every
/// level must name a known check.
pub fn load_with(base: &Node, checks: Vec<Node>, tracks: Vec<Node>) -> Result<Loaded, ConfigError> {
    let at = Pos::json_pointer("");
    let list = |key: &str, items: Vec<Node>| Entry {
        key: key.to_string(),
        key_pos: at.clone(),
        value: Node {
            pos: at.clone(),
            kind: NodeKind::Seq(items),
        },
    };
    let extra = Node {
        pos: at.clone(),
        kind: NodeKind::Map(vec![Entry {
            key: "soundcheck".to_string(),
            key_pos: at.clone(),
            value: Node {
                pos: at.clone(),
                kind: NodeKind::Map(vec![list("checks", checks), list("tracks", tracks)]),
            },
        }]),
    };
    let root = super::merge(base.clone(), extra, &[]);
    super::finish(root, Diagnostics::default())
}

/// An entity filter from a request body (`{key: value | [values]}` or a list of those), with
/// problems reported at their JSON pointer.
pub fn filter_from_json(
    value: &Value,
    pointer: &str,
) -> Result<crate::filter::EntityFilter, ConfigError> {
    let mut diags = Diagnostics::default();
    let key = pointer.rsplit('/').next().unwrap_or("filter");
    let filter = super::decode::decode_filter(&json_node(value, pointer), key, &mut diags);
    if diags.has_errors() {
        return Err(ConfigError {
            diagnostics: diags.into_vec(),
        });
    }
    Ok(filter)
}
