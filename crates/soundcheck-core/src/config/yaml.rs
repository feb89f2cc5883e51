//! YAML read into a tree that remembers where every node came from, with Backstage's config
//! conveniences applied while reading: `$include` (another YAML file), `$file` (a file's text),
//! `$env` (an environment variable) and `${VAR}` substitution inside strings (`$${` escapes).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::Value;

use super::diagnostics::{Diagnostics, Pos};

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What it holds.
    pub kind: NodeKind,
}

/// The content of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `null`, `~` or empty.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<Entry>),
}

/// One `key: value` of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Where the key is.
    pub key_pos: Pos,
    /// The value.
    pub value: Node,
}

impl Node {
    /// A short name of the node's type for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) | NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// The entries of a mapping node.
    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key` in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    /// The node as plain JSON (positions dropped).
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Reads YAML files into [`Node`] trees, resolving includes and variables.
pub struct Reader<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    diags: &'a mut Diagnostics,
    stack: Vec<PathBuf>,
}

impl<'a> Reader<'a> {
    /// A reader that looks variables up with `env` and reports into `diags`.
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>, diags: &'a mut Diagnostics) -> Self {
        Self {
            env,
            diags,
            stack: Vec::new(),
        }
    }

    /// Reads one file; `None` (with a diagnostic) when it cannot be read or parsed.
    pub fn read_file(&mut self, path: &Path, from: Option<&Pos>) -> Option<Node> {
        let shown: Arc<str> = path.display().to_string().into();
        let here = from.cloned().unwrap_or_else(|| Pos::file_start(&shown));
        let identity = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if self.stack.contains(&identity) {
            self.diags
                .error(&here, format!("`$include` of `{shown}` forms a cycle"));
            return None;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                self.diags
                    .error(&here, format!("cannot read `{shown}`: {e}"));
                return None;
            }
        };
        self.stack.push(identity);
        let node = self.read_str(&shown, &text, path.parent().unwrap_or(Path::new(".")));
        self.stack.pop();
        node
    }

    /// Reads YAML text; includes resolve relative to `dir`. An empty document is `Null`.
    pub fn read_str(&mut self, file: &Arc<str>, text: &str, dir: &Path) -> Option<Node> {
        let docs = match MarkedYaml::load_from_str(text) {
            Ok(docs) => docs,
            Err(e) => {
                let pos = Pos {
                    file: file.clone(),
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                };
                self.diags
                    .error(&pos, format!("invalid YAML: {}", e.info()));
                return None;
            }
        };
        let mut docs = docs.into_iter();
        let Some(first) = docs.next() else {
            return Some(Node {
                pos: Pos::file_start(file),
                kind: NodeKind::Null,
            });
        };
        if let Some(extra) = docs.next() {
            let pos = self.pos(file, &extra);
            self.diags
                .error(&pos, "expected a single YAML document in a config file");
        }
        Some(self.convert(first, file, dir))
    }

    fn pos(&self, file: &Arc<str>, node: &MarkedYaml<'_>) -> Pos {
        Pos {
            file: file.clone(),
            line: node.span.start.line(),
            column: node.span.start.col() + 1,
        }
    }

    fn convert(&mut self, node: MarkedYaml<'_>, file: &Arc<str>, dir: &Path) -> Node {
        let pos = self.pos(file, &node);
        let kind = match node.data {
            YamlData::Value(scalar) => self.scalar(scalar, &pos),
            YamlData::Sequence(items) => NodeKind::Seq(
                items
                    .into_iter()
                    .map(|n| self.convert(n, file, dir))
                    .collect(),
            ),
            YamlData::Mapping(map) => {
                let mut entries = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let key_pos = self.pos(file, &k);
                    let key = match k.data {
                        YamlData::Value(Scalar::String(s)) => s.into_owned(),
                        YamlData::Value(Scalar::Integer(i)) => i.to_string(),
                        YamlData::Value(Scalar::Boolean(b)) => b.to_string(),
                        YamlData::Value(Scalar::FloatingPoint(f)) => f.to_string(),
                        _ => {
                            self.diags
                                .error(&key_pos, "expected a plain scalar as a mapping key");
                            continue;
                        }
                    };
                    let value = self.convert(v, file, dir);
                    entries.push(Entry {
                        key,
                        key_pos,
                        value,
                    });
                }
                return self.directive(entries, pos, dir);
            }
            YamlData::Tagged(_, inner) => return self.convert(*inner, file, dir),
            _ => {
                self.diags.error(
                    &pos,
                    "unsupported YAML node (bad value or unresolved alias)",
                );
                NodeKind::Null
            }
        };
        Node { pos, kind }
    }

    fn scalar(&mut self, scalar: Scalar<'_>, pos: &Pos) -> NodeKind {
        match scalar {
            Scalar::Null => NodeKind::Null,
            Scalar::Boolean(b) => NodeKind::Bool(b),
            Scalar::Integer(i) => NodeKind::Int(i),
            Scalar::FloatingPoint(f) => NodeKind::Float(f.into_inner()),
            Scalar::String(s) => NodeKind::Str(self.substitute(&s, pos)),
        }
    }

    /// Applies `$include`, `$file` and `$env` when a mapping is exactly one of them.
    fn directive(&mut self, entries: Vec<Entry>, pos: Pos, dir: &Path) -> Node {
        let [entry] = entries.as_slice() else {
            return Node {
                pos,
                kind: NodeKind::Map(entries),
            };
        };
        let NodeKind::Str(arg) = &entry.value.kind else {
            if entry.key.starts_with('$')
                && matches!(entry.key.as_str(), "$include" | "$file" | "$env")
            {
                self.diags.error(
                    &entry.value.pos,
                    format!("`{}` expects a string", entry.key),
                );
            }
            return Node {
                pos,
                kind: NodeKind::Map(entries),
            };
        };
        match entry.key.as_str() {
            "$include" => {
                let target: PathBuf = dir.join(arg).components().collect();
                self.read_file(&target, Some(&entry.value.pos))
                    .unwrap_or(Node {
                        pos,
                        kind: NodeKind::Null,
                    })
            }
            "$file" => match std::fs::read_to_string(dir.join(arg)) {
                Ok(text) => Node {
                    pos,
                    kind: NodeKind::Str(text),
                },
                Err(e) => {
                    self.diags
                        .error(&entry.value.pos, format!("cannot read `{arg}`: {e}"));
                    Node {
                        pos,
                        kind: NodeKind::Null,
                    }
                }
            },
            "$env" => match (self.env)(arg) {
                Some(value) => Node {
                    pos,
                    kind: NodeKind::Str(value),
                },
                None => {
                    self.diags.error(
                        &entry.value.pos,
                        format!("environment variable `{arg}` is not set"),
                    );
                    Node {
                        pos,
                        kind: NodeKind::Null,
                    }
                }
            },
            _ => Node {
                pos,
                kind: NodeKind::Map(entries),
            },
        }
    }

    /// Replaces `${VAR}` with the variable's value; `$${` stands for a literal `${`.
    fn substitute(&mut self, text: &str, pos: &Pos) -> String {
        if !text.contains("${") {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("${") {
            if rest[..at].ends_with('$') {
                out.push_str(&rest[..at - 1]);
                out.push_str("${");
                rest = &rest[at + 2..];
                continue;
            }
            out.push_str(&rest[..at]);
            let Some(end) = rest[at..].find('}') else {
                self.diags
                    .error(pos, format!("unterminated `${{` in `{text}`"));
                out.push_str(&rest[at..]);
                return out;
            };
            let name = rest[at + 2..at + end].trim();
            match (self.env)(name) {
                Some(value) => out.push_str(&value),
                None => self
                    .diags
                    .error(pos, format!("environment variable `{name}` is not set")),
            }
            rest = &rest[at + end + 1..];
        }
        out.push_str(rest);
        out
    }
}
