//! Rules compiled for evaluation: fact refs interned into slots, literal numbers pre-read,
//! regexes compiled. Evaluating a leaf reads one slot, walks a path and compares, without
//! allocating in the common case. A leaf never fails: type mismatches are `false`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

use super::json::{as_number, json_equal};
use super::{Condition, ConditionValue, FactPath, Operator, Rule};
use crate::model::refs::FactRef;

/// Index of an interned fact ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FactSlot(pub u32);

impl FactSlot {
    /// The slot as an index into a facts slice.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Interns the fact refs that compiled rules read.
#[derive(Debug, Default, Clone)]
pub struct FactTable {
    refs: Vec<FactRef>,
    index: HashMap<FactRef, FactSlot>,
}

impl FactTable {
    /// The slot of `fact_ref`, adding it when new.
    pub fn intern(&mut self, fact_ref: &FactRef) -> FactSlot {
        if let Some(slot) = self.index.get(fact_ref) {
            return *slot;
        }
        let slot = FactSlot(u32::try_from(self.refs.len()).unwrap_or(u32::MAX));
        self.refs.push(fact_ref.clone());
        self.index.insert(fact_ref.clone(), slot);
        slot
    }

    /// The slot of `fact_ref`, if any rule reads it.
    pub fn get(&self, fact_ref: &FactRef) -> Option<FactSlot> {
        self.index.get(fact_ref).copied()
    }

    /// The slot of a fact ref given as a string, if any rule reads it.
    pub fn get_str(&self, fact_ref: &str) -> Option<FactSlot> {
        FactRef::parse(fact_ref).ok().and_then(|r| self.get(&r))
    }

    /// Number of interned refs: the length of a facts slice.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// True when no rule reads any fact.
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// The ref behind a slot.
    pub fn fact_ref(&self, slot: FactSlot) -> &FactRef {
        &self.refs[slot.index()]
    }

    /// All interned refs, by slot.
    pub fn refs(&self) -> &[FactRef] {
        &self.refs
    }
}

/// The facts of one entity (in one scope), by slot; `None` where the entity has no such fact.
pub type Facts<'a> = [Option<&'a Value>];

/// A rule ready to evaluate.
#[derive(Debug, Clone)]
pub enum CompiledRule {
    /// Every child true.
    All(Box<[CompiledRule]>),
    /// Some child true.
    Any(Box<[CompiledRule]>),
    /// Negation.
    Not(Box<CompiledRule>),
    /// A comparison.
    Leaf(Box<Leaf>),
}

/// A compiled leaf condition.
#[derive(Debug, Clone)]
pub struct Leaf {
    slot: FactSlot,
    path: FactPath,
    test: Test,
}

#[derive(Debug, Clone)]
enum Operand {
    Literal(Value),
    Fact(FactSlot, FactPath),
}

#[derive(Debug, Clone)]
enum Test {
    Equal(Operand),
    NotEqual(Operand),
    Order(Operator, Operand),
    In(Operand),
    NotIn(Operand),
    Contains(Operand),
    DoesNotContain(Operand),
    Matches(Option<Regex>),
}

impl CompiledRule {
    /// Compiles `rule`, interning its fact refs into `facts`.
    pub fn compile(rule: &Rule, facts: &mut FactTable) -> Self {
        match rule {
            Rule::All(children) => {
                Self::All(children.iter().map(|c| Self::compile(c, facts)).collect())
            }
            Rule::Any(children) => {
                Self::Any(children.iter().map(|c| Self::compile(c, facts)).collect())
            }
            Rule::Not(inner) => Self::Not(Box::new(Self::compile(inner, facts))),
            Rule::Condition(cond) => Self::Leaf(Box::new(Leaf::compile(cond, facts))),
        }
    }

    /// Evaluates against one entity's facts.
    pub fn evaluate(&self, facts: &Facts<'_>) -> bool {
        match self {
            Self::All(children) => children.iter().all(|c| c.evaluate(facts)),
            Self::Any(children) => children.iter().any(|c| c.evaluate(facts)),
            Self::Not(inner) => !inner.evaluate(facts),
            Self::Leaf(leaf) => leaf.evaluate(facts),
        }
    }
}

impl Leaf {
    fn compile(cond: &Condition, facts: &mut FactTable) -> Self {
        let operand = match &cond.value {
            ConditionValue::Literal(v) => Operand::Literal(v.clone()),
            ConditionValue::Fact { fact_ref, path } => {
                Operand::Fact(facts.intern(fact_ref), path.clone())
            }
        };
        let test = match cond.operator {
            Operator::Equal => Test::Equal(operand),
            Operator::NotEqual => Test::NotEqual(operand),
            op @ (Operator::LessThan
            | Operator::LessThanInclusive
            | Operator::GreaterThan
            | Operator::GreaterThanInclusive) => Test::Order(op, operand),
            Operator::In => Test::In(operand),
            Operator::NotIn => Test::NotIn(operand),
            Operator::Contains => Test::Contains(operand),
            Operator::DoesNotContain => Test::DoesNotContain(operand),
            // Condition::new guarantees a pattern for `matches`.
            Operator::Matches => Test::Matches(cond.pattern().cloned()),
        };
        Self {
            slot: facts.intern(&cond.fact_ref),
            path: cond.path.clone(),
            test,
        }
    }

    fn evaluate(&self, facts: &Facts<'_>) -> bool {
        let value = select(facts, self.slot, &self.path);
        let value = value.as_deref();
        match &self.test {
            Test::Equal(op) => both(value, operand(facts, op).as_deref(), json_equal),
            Test::NotEqual(op) => match (value, operand(facts, op).as_deref()) {
                (Some(v), Some(o)) => !json_equal(v, o),
                _ => true,
            },
            Test::Order(operator, op) => {
                let ordering = value
                    .and_then(as_number)
                    .zip(operand(facts, op).as_deref().and_then(Value::as_f64));
                ordering
                    .and_then(|(l, r)| l.partial_cmp(&r))
                    .is_some_and(|ord| holds(*operator, ord))
            }
            Test::In(op) => both(value, operand(facts, op).as_deref(), |v, list| {
                array_contains(list, v)
            }),
            Test::NotIn(op) => match (value, operand(facts, op).as_deref()) {
                (None, _) => true,
                (Some(v), Some(list @ Value::Array(_))) => !array_contains(list, v),
                _ => false,
            },
            Test::Contains(op) => both(value, operand(facts, op).as_deref(), array_contains),
            Test::DoesNotContain(op) => match (value, operand(facts, op).as_deref()) {
                (Some(list @ Value::Array(_)), Some(o)) => !array_contains(list, o),
                _ => false,
            },
            Test::Matches(re) => match (re, value) {
                (Some(re), Some(Value::String(s))) => re.is_match(s),
                _ => false,
            },
        }
    }
}

fn select<'v>(facts: &Facts<'v>, slot: FactSlot, path: &FactPath) -> Option<Cow<'v, Value>> {
    facts
        .get(slot.index())
        .copied()
        .flatten()
        .and_then(|data| path.select(data))
}

fn operand<'v>(facts: &Facts<'v>, op: &'v Operand) -> Option<Cow<'v, Value>> {
    match op {
        Operand::Literal(v) => Some(Cow::Borrowed(v)),
        Operand::Fact(slot, path) => select(facts, *slot, path),
    }
}

fn both(a: Option<&Value>, b: Option<&Value>, f: impl Fn(&Value, &Value) -> bool) -> bool {
    matches!((a, b), (Some(a), Some(b)) if f(a, b))
}

fn array_contains(list: &Value, item: &Value) -> bool {
    matches!(list, Value::Array(items) if items.iter().any(|x| json_equal(x, item)))
}

fn holds(operator: Operator, ord: Ordering) -> bool {
    match operator {
        Operator::LessThan => ord == Ordering::Less,
        Operator::LessThanInclusive => ord != Ordering::Greater,
        Operator::GreaterThan => ord == Ordering::Greater,
        Operator::GreaterThanInclusive => ord != Ordering::Less,
        _ => false,
    }
}
