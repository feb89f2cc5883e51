//! JSONPath (RFC 9535) into a fact's `data`, with the value rule of decisions.md §2: one node
//! is the value, several nodes are an array of them in document order, none is *absent*.
//!
//! Every path is parsed by `serde_json_path`, the reference implementation we rely on. Paths
//! made only of member names and array indexes (`$.a.b[0]`, `$['x/y']`), by far the common
//! case, are also compiled to a list of steps walked without allocating.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;
use serde_json_path::JsonPath;

/// Why a path string was rejected, with the character offset the parser stopped at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath `{path}` at character {position}: {message}")]
pub struct PathError {
    /// The path as written.
    pub path: String,
    /// Character offset of the problem.
    pub position: usize,
    /// What the parser expected.
    pub message: String,
}

/// A compiled path into fact data.
#[derive(Clone)]
pub struct FactPath {
    text: String,
    query: JsonPath,
    steps: Option<Vec<Step>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Member(String),
    Index(i64),
}

impl FactPath {
    /// Parses and compiles a path.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let query = JsonPath::parse(text).map_err(|e| PathError {
            path: text.to_string(),
            position: e.position(),
            message: e.message().to_string(),
        })?;
        Ok(Self {
            text: text.to_string(),
            query,
            steps: simple_steps(text),
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the path is the root `$` (the whole fact).
    pub fn is_root(&self) -> bool {
        self.steps.as_ref().is_some_and(Vec::is_empty)
    }

    /// Selects the value at this path: `None` when absent, borrowed for one node, an owned array
    /// for several nodes.
    pub fn select<'v>(&self, data: &'v Value) -> Option<Cow<'v, Value>> {
        if let Some(steps) = &self.steps {
            return walk(data, steps).map(Cow::Borrowed);
        }
        nodes_value(self.query.query(data).all())
    }

    /// Selects through the general engine only; used to test the fast path against it.
    #[cfg(test)]
    fn select_general<'v>(&self, data: &'v Value) -> Option<Cow<'v, Value>> {
        nodes_value(self.query.query(data).all())
    }
}

fn nodes_value(nodes: Vec<&Value>) -> Option<Cow<'_, Value>> {
    match nodes.as_slice() {
        [] => None,
        [one] => Some(Cow::Borrowed(*one)),
        many => Some(Cow::Owned(Value::Array(
            many.iter().map(|v| (*v).clone()).collect(),
        ))),
    }
}

impl fmt::Debug for FactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FactPath({})", self.text)
    }
}

impl PartialEq for FactPath {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

fn walk<'v>(mut value: &'v Value, steps: &[Step]) -> Option<&'v Value> {
    for step in steps {
        value = match (step, value) {
            (Step::Member(name), Value::Object(map)) => map.get(name)?,
            (Step::Index(i), Value::Array(items)) => {
                let len = i64::try_from(items.len()).ok()?;
                let at = if *i < 0 { len + i } else { *i };
                items.get(usize::try_from(at).ok()?)?
            }
            _ => return None,
        };
    }
    Some(value)
}

/// Recognises paths built only of `.name`, `[int]` and `['name']` selectors.
fn simple_steps(text: &str) -> Option<Vec<Step>> {
    let mut rest = text.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            if !is_shorthand_name(name) {
                return None;
            }
            steps.push(Step::Member(name.to_string()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']')?;
            steps.push(bracket_step(&after[..close])?);
            rest = &after[close + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

fn bracket_step(inner: &str) -> Option<Step> {
    for quote in ['\'', '"'] {
        if let Some(body) = inner
            .strip_prefix(quote)
            .and_then(|s| s.strip_suffix(quote))
        {
            if body.contains(['\\', '\'', '"']) || body.chars().any(char::is_control) {
                return None;
            }
            return Some(Step::Member(body.to_string()));
        }
    }
    let digits = inner.strip_prefix('-').unwrap_or(inner);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && inner != "-0";
    if !canonical {
        return None;
    }
    inner.parse().ok().map(Step::Index)
}

fn is_shorthand_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii());
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "a": {"b": [1, 2, {"c": "x"}], "d/e": true, "f.g": null},
            "list": [{"n": 1}, {"n": 2}, {"m": 3}],
            "empty": []
        })
    }

    #[test]
    fn one_node_is_the_value_several_are_an_array_none_is_absent() {
        let d = doc();
        let sel = |p: &str| FactPath::parse(p).unwrap().select(&d).map(Cow::into_owned);
        assert_eq!(sel("$.a.b[2].c"), Some(json!("x")));
        assert_eq!(sel("$.list[*].n"), Some(json!([1, 2])));
        assert_eq!(sel("$.list[*].zzz"), None);
        assert_eq!(sel("$.a['d/e']"), Some(json!(true)));
        assert_eq!(sel("$.a[\"f.g\"]"), Some(json!(null)));
        assert_eq!(sel("$.a.b[-1].c"), Some(json!("x")));
        assert_eq!(sel("$.empty"), Some(json!([])));
        assert_eq!(sel("$.empty[0]"), None);
        assert_eq!(sel("$"), Some(d.clone()));
    }

    #[test]
    fn invalid_paths_report_a_position() {
        let err = FactPath::parse("$.a[").unwrap_err();
        assert_eq!(err.path, "$.a[");
        assert!(FactPath::parse("a.b").is_err());
        assert!(FactPath::parse("$.foo-bar").is_err());
    }

    #[test]
    fn simple_paths_use_the_fast_walk() {
        for p in ["$", "$.a", "$.a.b[0]", "$['x y']", "$[-1]", "$.é"] {
            assert!(FactPath::parse(p).unwrap().steps.is_some(), "{p}");
        }
        for p in [
            "$..a",
            "$.a[*]",
            "$.a[0:1]",
            "$[?@.n]",
            "$[ 0 ]",
            "$['a\\'b']",
            "$[01]",
        ] {
            if let Ok(path) = FactPath::parse(p) {
                assert!(path.steps.is_none(), "{p}");
            }
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-5i64..5).prop_map(|n| json!(n)),
            "[a-c]{0,2}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn fast_walk_agrees_with_the_general_engine(
            data in json_value(),
            steps in prop::collection::vec(prop_oneof![
                "[a-c]".prop_map(|n| format!(".{n}")),
                "[a-c]".prop_map(|n| format!("['{n}']")),
                (-3i64..4).prop_map(|i| format!("[{i}]")),
            ], 0..4),
        ) {
            let text = format!("${}", steps.concat());
            let path = FactPath::parse(&text).unwrap();
            prop_assert!(path.steps.is_some());
            prop_assert_eq!(path.select(&data), path.select_general(&data));
        }
    }
}
