//! Check rules as written in config: leaf conditions `{factRef, path, operator, value}` and the
//! boolean nodes `all`, `any` and `not` (decisions.md §2). [`compiled`] turns them into the form
//! the engine evaluates.

pub mod compiled;
pub mod json;
pub mod path;

use std::fmt;

use regex::Regex;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::model::refs::FactRef;
pub use path::{FactPath, PathError};

/// The comparison operators of a leaf condition (the json-rules-engine family plus `matches`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// Structural equality.
    Equal,
    /// Structural inequality; true when the fact value is absent.
    NotEqual,
    /// Fact value `<` value.
    LessThan,
    /// Fact value `<=` value.
    LessThanInclusive,
    /// Fact value `>` value.
    GreaterThan,
    /// Fact value `>=` value.
    GreaterThanInclusive,
    /// `value` is an array containing the fact value.
    In,
    /// `value` is an array not containing the fact value; true when the fact value is absent.
    NotIn,
    /// The fact value is an array containing `value`.
    Contains,
    /// The fact value is an array not containing `value`.
    DoesNotContain,
    /// The fact value is a string in which the regular expression `value` finds a match.
    Matches,
}

impl Operator {
    /// Every operator, in documentation order.
    pub const ALL: [Operator; 11] = [
        Operator::Equal,
        Operator::NotEqual,
        Operator::LessThan,
        Operator::LessThanInclusive,
        Operator::GreaterThan,
        Operator::GreaterThanInclusive,
        Operator::In,
        Operator::NotIn,
        Operator::Contains,
        Operator::DoesNotContain,
        Operator::Matches,
    ];

    /// The name used in YAML and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Operator::Equal => "equal",
            Operator::NotEqual => "notEqual",
            Operator::LessThan => "lessThan",
            Operator::LessThanInclusive => "lessThanInclusive",
            Operator::GreaterThan => "greaterThan",
            Operator::GreaterThanInclusive => "greaterThanInclusive",
            Operator::In => "in",
            Operator::NotIn => "notIn",
            Operator::Contains => "contains",
            Operator::DoesNotContain => "doesNotContain",
            Operator::Matches => "matches",
        }
    }

    /// Looks an operator up by its exact name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule tree. A bare list in YAML is read as `All`.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// True when every child is true (an empty `all` is true).
    All(Vec<Rule>),
    /// True when some child is true (an empty `any` is false).
    Any(Vec<Rule>),
    /// Negation (an extension to Soundcheck's grammar).
    Not(Box<Rule>),
    /// A leaf comparison.
    Condition(Box<Condition>),
}

impl Rule {
    /// Every fact ref the rule reads, leaves and fact-valued comparands alike, in order of
    /// appearance (may repeat).
    pub fn fact_refs(&self) -> Vec<&FactRef> {
        let mut out = Vec::new();
        self.collect_fact_refs(&mut out);
        out
    }

    fn collect_fact_refs<'a>(&'a self, out: &mut Vec<&'a FactRef>) {
        match self {
            Rule::All(children) | Rule::Any(children) => {
                children.iter().for_each(|c| c.collect_fact_refs(out));
            }
            Rule::Not(inner) => inner.collect_fact_refs(out),
            Rule::Condition(cond) => {
                out.push(&cond.fact_ref);
                if let ConditionValue::Fact { fact_ref, .. } = &cond.value {
                    out.push(fact_ref);
                }
            }
        }
    }
}

/// What a leaf compares against: a literal, or the value of another fact.
#[derive(Debug, Clone, PartialEq)]
pub enum ConditionValue {
    /// A JSON literal from the config.
    Literal(Value),
    /// `{factRef, path}`: the value of another fact of the same entity (multi-fact checks).
    Fact {
        /// The other fact.
        fact_ref: FactRef,
        /// Where in its data.
        path: FactPath,
    },
}

/// A leaf condition `{factRef, path, operator, value}`.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The fact read.
    pub fact_ref: FactRef,
    /// Where in the fact's data (`$` when omitted).
    pub path: FactPath,
    /// How to compare.
    pub operator: Operator,
    /// What to compare against.
    pub value: ConditionValue,
    pattern: Option<Regex>,
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.fact_ref == other.fact_ref
            && self.path == other.path
            && self.operator == other.operator
            && self.value == other.value
    }
}

/// Why a leaf condition cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// The pattern does not compile.
    #[error("invalid regular expression `{pattern}`: {reason}")]
    InvalidRegex {
        /// The pattern as written.
        pattern: String,
        /// The regex compiler's message.
        reason: String,
    },
}

impl Condition {
    /// Builds a leaf, compiling a literal regular expression of `matches` once. A `matches`
    /// against another fact compiles that fact's string when evaluated; any other value makes
    /// the leaf always false.
    pub fn new(
        fact_ref: FactRef,
        path: FactPath,
        operator: Operator,
        value: ConditionValue,
    ) -> Result<Self, ConditionError> {
        let pattern = match (operator, &value) {
            (Operator::Matches, ConditionValue::Literal(Value::String(p))) => {
                Some(Regex::new(p).map_err(|e| {
                    ConditionError::InvalidRegex {
                        pattern: p.clone(),
                        reason: e
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    }
                })?)
            }
            _ => None,
        };
        Ok(Self {
            fact_ref,
            path,
            operator,
            value,
            pattern,
        })
    }

    /// The compiled pattern of a `matches` leaf.
    pub fn pattern(&self) -> Option<&Regex> {
        self.pattern.as_ref()
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Rule::All(children) => single_entry(s, "all", children),
            Rule::Any(children) => single_entry(s, "any", children),
            Rule::Not(inner) => single_entry(s, "not", inner),
            Rule::Condition(cond) => cond.serialize(s),
        }
    }
}

fn single_entry<S: Serializer, T: Serialize + ?Sized>(
    s: S,
    key: &str,
    value: &T,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry(key, value)?;
    map.end()
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("factRef", &self.fact_ref)?;
        map.serialize_entry("path", self.path.as_str())?;
        map.serialize_entry("operator", self.operator.name())?;
        match &self.value {
            ConditionValue::Literal(v) => map.serialize_entry("value", v)?,
            ConditionValue::Fact { fact_ref, path } => map.serialize_entry(
                "value",
                &serde_json::json!({"factRef": fact_ref.as_str(), "path": path.as_str()}),
            )?,
        }
        map.end()
    }
}

#[cfg(test)]
mod tests;
