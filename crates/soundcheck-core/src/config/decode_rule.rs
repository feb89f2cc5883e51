//! Decodes rule trees: leaves `{factRef, path, operator, value}`, `all`/`any`/`not` nodes and
//! bare lists (read as `all`), rejecting unknown operators, invalid paths and regexes at load.

use super::diagnostics::Diagnostics;
use super::fields::{Fields, string};
use super::yaml::{Node, NodeKind};
use crate::model::FactRef;
use crate::rules::{Condition, ConditionError, ConditionValue, FactPath, Operator, Rule};

const CONDITION_KEYS: &[&str] = &["factRef", "path", "operator", "value"];

/// Decodes a rule; `None` (with diagnostics) when any part is invalid.
pub fn decode_rule(node: &Node, diags: &mut Diagnostics) -> Option<Rule> {
    match &node.kind {
        NodeKind::Seq(items) => children(items, diags).map(Rule::All),
        NodeKind::Map(entries) => {
            let has = |k: &str| entries.iter().any(|e| e.key == k);
            if has("all") {
                let f = Fields::new(node, "an `all` rule", &["all"], diags)?;
                children(seq(f.get("all")?, "all", diags)?, diags).map(Rule::All)
            } else if has("any") {
                let f = Fields::new(node, "an `any` rule", &["any"], diags)?;
                children(seq(f.get("any")?, "any", diags)?, diags).map(Rule::Any)
            } else if has("not") {
                let f = Fields::new(node, "a `not` rule", &["not"], diags)?;
                decode_rule(f.get("not")?, diags).map(|r| Rule::Not(Box::new(r)))
            } else {
                decode_condition(node, diags).map(|c| Rule::Condition(Box::new(c)))
            }
        }
        _ => {
            diags.error(&node.pos, format!(
                "expected a rule (a condition {{factRef, path, operator, value}}, `all`, `any`, `not` or a list), found {}",
                node.type_name()
            ));
            None
        }
    }
}

fn seq<'n>(node: &'n Node, key: &str, diags: &mut Diagnostics) -> Option<&'n [Node]> {
    match &node.kind {
        NodeKind::Seq(items) => Some(items),
        _ => {
            diags.error(
                &node.pos,
                format!(
                    "expected a list of rules under `{key}`, found {}",
                    node.type_name()
                ),
            );
            None
        }
    }
}

fn children(items: &[Node], diags: &mut Diagnostics) -> Option<Vec<Rule>> {
    let decoded: Vec<Option<Rule>> = items.iter().map(|n| decode_rule(n, diags)).collect();
    decoded.into_iter().collect()
}

fn decode_condition(node: &Node, diags: &mut Diagnostics) -> Option<Condition> {
    let f = Fields::new(node, "a rule condition", CONDITION_KEYS, diags)?;
    let fact_ref = match f.get("factRef") {
        Some(n) => decode_fact_ref(n, diags),
        None => {
            diags.error(
                &node.pos,
                "a rule condition is missing required key `factRef`",
            );
            None
        }
    };
    let path = decode_path(f.get("path"), diags);
    let operator = match f.get("operator") {
        Some(n) => decode_operator(n, diags),
        None => {
            diags.error(
                &node.pos,
                "a rule condition is missing required key `operator`",
            );
            None
        }
    };
    let Some(value_node) = f.get("value") else {
        diags.error(
            &node.pos,
            "a rule condition is missing required key `value`",
        );
        return None;
    };
    let value = decode_value(value_node, diags)?;
    let (fact_ref, path, operator) = (fact_ref?, path?, operator?);
    check_value_type(operator, &value, value_node, diags);
    match Condition::new(fact_ref, path, operator, value) {
        Ok(cond) => Some(cond),
        Err(e @ ConditionError::InvalidRegex { .. }) => {
            diags.error(&value_node.pos, e.to_string());
            None
        }
    }
}

/// Rejects literal values that can never satisfy the operator (a typo, not a data problem).
fn check_value_type(
    operator: Operator,
    value: &ConditionValue,
    node: &Node,
    diags: &mut Diagnostics,
) {
    let ConditionValue::Literal(literal) = value else {
        return;
    };
    let expected = match operator {
        Operator::LessThan
        | Operator::LessThanInclusive
        | Operator::GreaterThan
        | Operator::GreaterThanInclusive
            if !literal.is_number() =>
        {
            "a number"
        }
        Operator::In | Operator::NotIn if !literal.is_array() => "a list",
        Operator::Matches if !literal.is_string() => "a string regular expression",
        _ => return,
    };
    let outcome = if operator == Operator::NotIn {
        "it is true only when the fact value is absent"
    } else {
        "this condition is always false"
    };
    diags.warning(
        &node.pos,
        format!(
            "operator `{operator}` needs {expected} as its value, found {}; {outcome}",
            node.type_name()
        ),
    );
}

/// A fact ref in string form or as `{source, scope, name}`.
pub fn decode_fact_ref(node: &Node, diags: &mut Diagnostics) -> Option<FactRef> {
    let parsed = match &node.kind {
        NodeKind::Str(s) => FactRef::parse(s),
        NodeKind::Map(_) => {
            let f = Fields::new(node, "a fact ref", &["source", "scope", "name"], diags)?;
            let source = f.required_str("source", "a fact ref", diags)?;
            let name = f.required_str("name", "a fact ref", diags)?;
            FactRef::from_parts(&source, f.opt_str("scope", diags).as_deref(), &name)
        }
        _ => {
            diags.error(
                &node.pos,
                format!(
                    "expected a fact ref `source:scope/name`, found {}",
                    node.type_name()
                ),
            );
            return None;
        }
    };
    parsed
        .map_err(|e| diags.error(&node.pos, e.to_string()))
        .ok()
}

fn decode_path(node: Option<&Node>, diags: &mut Diagnostics) -> Option<FactPath> {
    let Some(node) = node else {
        return FactPath::parse("$").ok();
    };
    let text = string(node, "path", diags)?;
    FactPath::parse(&text)
        .map_err(|e| diags.error(&node.pos, e.to_string()))
        .ok()
}

fn decode_operator(node: &Node, diags: &mut Diagnostics) -> Option<Operator> {
    let name = string(node, "operator", diags)?;
    let op = Operator::from_name(&name);
    if op.is_none() {
        let known: Vec<&str> = Operator::ALL.iter().map(|o| o.name()).collect();
        diags.error(
            &node.pos,
            format!(
                "unknown operator `{name}`; expected one of: {}",
                known.join(", ")
            ),
        );
    }
    op
}

/// A literal, or `{factRef, path?}` naming another fact.
fn decode_value(node: &Node, diags: &mut Diagnostics) -> Option<ConditionValue> {
    if let Some(entries) = node.entries()
        && entries.iter().any(|e| e.key == "factRef")
        && entries
            .iter()
            .all(|e| e.key == "factRef" || e.key == "path")
    {
        let fact_ref = decode_fact_ref(node.get("factRef")?, diags)?;
        let path = decode_path(node.get("path"), diags)?;
        return Some(ConditionValue::Fact { fact_ref, path });
    }
    Some(ConditionValue::Literal(node.to_json()))
}
