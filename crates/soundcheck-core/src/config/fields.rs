//! Small typed readers over [`Node`]s that report wrong types and unknown keys as diagnostics
//! instead of failing, so a whole file is checked in one pass.

use super::diagnostics::Diagnostics;
use super::yaml::{Node, NodeKind};

/// The fields of one mapping, checked against the keys a section allows.
pub struct Fields<'n> {
    node: &'n Node,
}

impl<'n> Fields<'n> {
    /// Reads `node` as a mapping named `what`, reporting keys outside `allowed`.
    pub fn new(
        node: &'n Node,
        what: &str,
        allowed: &[&str],
        diags: &mut Diagnostics,
    ) -> Option<Self> {
        let Some(entries) = node.entries() else {
            diags.error(
                &node.pos,
                format!("expected a mapping for {what}, found {}", node.type_name()),
            );
            return None;
        };
        for entry in entries {
            if !allowed.contains(&entry.key.as_str()) {
                diags.error(
                    &entry.key_pos,
                    format!(
                        "unknown key `{}` in {what}; expected one of: {}",
                        entry.key,
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(Self { node })
    }

    /// The raw value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.node.get(key)
    }

    /// A required string; reports when missing or not a string.
    pub fn required_str(&self, key: &str, what: &str, diags: &mut Diagnostics) -> Option<String> {
        match self.get(key) {
            Some(node) => string(node, key, diags),
            None => {
                diags.error(
                    &self.node.pos,
                    format!("{what} is missing required key `{key}`"),
                );
                None
            }
        }
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str, diags: &mut Diagnostics) -> Option<String> {
        self.get(key)
            .filter(|n| n.kind != NodeKind::Null)
            .and_then(|n| string(n, key, diags))
    }

    /// An optional integer that must lie in `min..=max`; reports anything else.
    pub fn int_in(&self, key: &str, min: u64, max: u64, diags: &mut Diagnostics) -> Option<u64> {
        let node = self.get(key)?;
        match node.kind {
            NodeKind::Int(i) if u64::try_from(i).is_ok_and(|v| (min..=max).contains(&v)) => {
                u64::try_from(i).ok()
            }
            _ => {
                diags.error(
                    &node.pos,
                    format!(
                        "expected an integer from {min} to {max} for `{key}`, found {}",
                        node.type_name()
                    ),
                );
                None
            }
        }
    }

    /// An optional boolean, `false` when absent.
    pub fn flag(&self, key: &str, diags: &mut Diagnostics) -> bool {
        match self.get(key).map(|n| (&n.kind, n)) {
            None | Some((NodeKind::Null, _)) => false,
            Some((NodeKind::Bool(b), _)) => *b,
            Some((_, node)) => {
                diags.error(
                    &node.pos,
                    format!("expected a boolean for `{key}`, found {}", node.type_name()),
                );
                false
            }
        }
    }
}

/// Reads a string node; numbers and booleans are not silently accepted as strings.
pub fn string(node: &Node, key: &str, diags: &mut Diagnostics) -> Option<String> {
    match &node.kind {
        NodeKind::Str(s) => Some(s.clone()),
        _ => {
            diags.error(
                &node.pos,
                format!("expected a string for `{key}`, found {}", node.type_name()),
            );
            None
        }
    }
}

/// Reads a list node; reports anything else.
pub fn list<'n>(node: &'n Node, key: &str, diags: &mut Diagnostics) -> &'n [Node] {
    match &node.kind {
        NodeKind::Seq(items) => items,
        NodeKind::Null => &[],
        _ => {
            diags.error(
                &node.pos,
                format!("expected a list for `{key}`, found {}", node.type_name()),
            );
            &[]
        }
    }
}
