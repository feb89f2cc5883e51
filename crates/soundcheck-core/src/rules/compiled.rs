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

/// Index of an interned (fact, path) pair: one value a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectionId(pub u32);

impl ProjectionId {
    /// The id as an index into a projected values slice.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Interns the fact refs that compiled rules read, and the (fact, path) pairs they select, so
/// a caller can keep just the selected values of a fact instead of all of its data.
#[derive(Debug, Default, Clone)]
pub struct FactTable {
    refs: Vec<FactRef>,
    index: HashMap<FactRef, FactSlot>,
    projections: Vec<(FactSlot, FactPath)>,
    projection_index: HashMap<(FactSlot, String), ProjectionId>,
    by_slot: Vec<Vec<ProjectionId>>,
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
        self.by_slot.push(Vec::new());
        slot
    }

    /// The id of the value at `path` in `fact_ref`, adding it when new.
    pub fn project(&mut self, fact_ref: &FactRef, path: &FactPath) -> ProjectionId {
        let slot = self.intern(fact_ref);
        let key = (slot, path.as_str().to_string());
        if let Some(id) = self.projection_index.get(&key) {
            return *id;
        }
        let id = ProjectionId(u32::try_from(self.projections.len()).unwrap_or(u32::MAX));
        self.projections.push((slot, path.clone()));
        self.projection_index.insert(key, id);
        self.by_slot[slot.index()].push(id);
        id
    }

    /// Number of projections: the length of a projected values slice.
    pub fn projection_count(&self) -> usize {
        self.projections.len()
    }

    /// The projections that read `slot`.
    pub fn projections_of(&self, slot: FactSlot) -> &[ProjectionId] {
        self.by_slot.get(slot.index()).map_or(&[], Vec::as_slice)
    }

    /// The fact and path of a projection.
    pub fn projection(&self, id: ProjectionId) -> (FactSlot, &FactPath) {
        let (slot, path) = &self.projections[id.index()];
        (*slot, path)
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

/// What a compiled rule needs from the facts of one entity (in one scope).
pub trait FactView {
    /// True when the entity has the fact in `slot`.
    fn has_fact(&self, slot: FactSlot) -> bool;
    /// The value of a projection: `None` when absent.
    fn select(&self, id: ProjectionId) -> Option<Cow<'_, Value>>;
}

/// Whole fact data by slot; paths are walked at evaluation.
#[derive(Debug, Clone, Copy)]
pub struct SlotFacts<'a> {
    /// The table the rules were compiled with.
    pub table: &'a FactTable,
    /// Data by slot; `None` where the entity has no such fact.
    pub data: &'a [Option<&'a Value>],
}

impl FactView for SlotFacts<'_> {
    fn has_fact(&self, slot: FactSlot) -> bool {
        self.data.get(slot.index()).is_some_and(Option::is_some)
    }

    fn select(&self, id: ProjectionId) -> Option<Cow<'_, Value>> {
        let (slot, path) = self.table.projection(id);
        self.data
            .get(slot.index())
            .copied()
            .flatten()
            .and_then(|data| path.select(data))
    }
}

/// Values selected ahead of time, by projection, plus which facts exist: what the batch run
/// keeps instead of whole fact data.
#[derive(Debug, Clone, Copy)]
pub struct ProjectedFacts<'a> {
    /// By slot: the entity has this fact.
    pub present: &'a [bool],
    /// By projection: the selected value, `None` when absent.
    pub values: &'a [Option<&'a Value>],
}

impl FactView for ProjectedFacts<'_> {
    fn has_fact(&self, slot: FactSlot) -> bool {
        self.present.get(slot.index()).copied().unwrap_or(false)
    }

    fn select(&self, id: ProjectionId) -> Option<Cow<'_, Value>> {
        self.values
            .get(id.index())
            .copied()
            .flatten()
            .map(Cow::Borrowed)
    }
}

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
    value: ProjectionId,
    test: Test,
}

#[derive(Debug, Clone)]
enum Operand {
    Literal(Value),
    Fact(ProjectionId),
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
    MatchesFact(ProjectionId),
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
    pub fn evaluate(&self, facts: &impl FactView) -> bool {
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
            ConditionValue::Fact { fact_ref, path } => Operand::Fact(facts.project(fact_ref, path)),
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
            Operator::Matches => match operand {
                Operand::Fact(id) => Test::MatchesFact(id),
                Operand::Literal(_) => Test::Matches(cond.pattern().cloned()),
            },
        };
        Self {
            value: facts.project(&cond.fact_ref, &cond.path),
            test,
        }
    }

    fn evaluate(&self, facts: &impl FactView) -> bool {
        let value = facts.select(self.value);
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
            Test::MatchesFact(id) => match (value, facts.select(*id).as_deref()) {
                (Some(Value::String(s)), Some(Value::String(pattern))) => {
                    Regex::new(pattern).is_ok_and(|re| re.is_match(s))
                }
                _ => false,
            },
        }
    }
}

fn operand<'v>(facts: &'v impl FactView, op: &'v Operand) -> Option<Cow<'v, Value>> {
    match op {
        Operand::Literal(v) => Some(Cow::Borrowed(v)),
        Operand::Fact(id) => facts.select(*id),
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
