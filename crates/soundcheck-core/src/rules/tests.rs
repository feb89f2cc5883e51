//! Pins decisions.md §2: every operator on every JSON type, absent values, multi-node paths,
//! nesting, `not`, fact-valued comparisons, and the all/any equivalence as a property.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::compiled::{CompiledRule, FactTable, SlotFacts};
use super::{Condition, ConditionValue, FactPath, Operator, Rule};
use crate::model::FactRef;

const FACT: &str = "test:default/fact";
const OTHER: &str = "test:default/other";

fn leaf_on(path: &str, op: Operator, value: ConditionValue) -> Rule {
    let cond = Condition::new(
        FactRef::parse(FACT).unwrap(),
        FactPath::parse(path).unwrap(),
        op,
        value,
    )
    .unwrap();
    Rule::Condition(Box::new(cond))
}

fn leaf(path: &str, op: Operator, value: Value) -> Rule {
    leaf_on(path, op, ConditionValue::Literal(value))
}

/// Evaluates `rule` with `fact` as the data of FACT (absent when `None`) and `other` as OTHER.
fn eval_with(rule: &Rule, fact: Option<&Value>, other: Option<&Value>) -> bool {
    let mut table = FactTable::default();
    table.intern(&FactRef::parse(FACT).unwrap());
    table.intern(&FactRef::parse(OTHER).unwrap());
    let compiled = CompiledRule::compile(rule, &mut table);
    compiled.evaluate(&SlotFacts {
        table: &table,
        data: &[fact, other],
    })
}

fn eval(rule: &Rule, fact: &Value) -> bool {
    eval_with(rule, Some(fact), None)
}

/// `op` applied to the fact value `v` (at `$.v`) and literal `value`.
fn check(op: Operator, v: Value, value: Value) -> bool {
    eval(&leaf("$.v", op, value), &json!({ "v": v }))
}

#[test]
fn equal_is_structural_and_numeric() {
    use Operator::Equal;
    assert!(check(Equal, json!(1), json!(1.0)));
    assert!(check(Equal, json!("a"), json!("a")));
    assert!(!check(Equal, json!("1"), json!(1)));
    assert!(check(Equal, json!(true), json!(true)));
    assert!(!check(Equal, json!(false), json!(0)));
    assert!(check(Equal, json!(null), json!(null)));
    assert!(check(Equal, json!([1, "x"]), json!([1.0, "x"])));
    assert!(!check(Equal, json!([1, 2]), json!([2, 1])));
    assert!(check(Equal, json!({"a": [1]}), json!({"a": [1]})));
    assert!(!check(Equal, json!({"a": 1}), json!({"a": 1, "b": 2})));
}

#[test]
fn not_equal_is_the_negation_when_present() {
    use Operator::NotEqual;
    assert!(!check(NotEqual, json!(1), json!(1.0)));
    assert!(check(NotEqual, json!("a"), json!("b")));
    assert!(check(NotEqual, json!({"a": 1}), json!({"a": 2})));
    assert!(check(NotEqual, json!(null), json!(false)));
}

#[test]
fn ordering_needs_a_number_or_wholly_numeric_string_and_a_number_value() {
    use Operator::*;
    assert!(check(LessThan, json!(1), json!(2)));
    assert!(!check(LessThan, json!(2), json!(2)));
    assert!(check(LessThanInclusive, json!(2), json!(2.0)));
    assert!(check(GreaterThan, json!(2.5), json!(2)));
    assert!(!check(GreaterThan, json!(2), json!(2)));
    assert!(check(GreaterThanInclusive, json!(-1), json!(-1)));
    assert!(check(GreaterThanInclusive, json!("17"), json!(11)));
    assert!(check(LessThan, json!("1.5e1"), json!(16)));
    for fact in [
        json!("17 "),
        json!("v17"),
        json!(true),
        json!(null),
        json!([1]),
        json!({"n": 1}),
    ] {
        assert!(!check(GreaterThan, fact.clone(), json!(0)), "{fact}");
        assert!(!check(LessThan, fact.clone(), json!(100)), "{fact}");
    }
    assert!(
        !check(LessThan, json!(1), json!("2")),
        "a string value is not a number"
    );
}

#[test]
fn in_and_not_in_need_an_array_value() {
    use Operator::*;
    assert!(check(In, json!("b"), json!(["a", "b"])));
    assert!(check(In, json!(2), json!([1, 2.0])));
    assert!(check(In, json!({"k": 1}), json!([{"k": 1}])));
    assert!(!check(In, json!("c"), json!(["a", "b"])));
    assert!(
        !check(In, json!("a"), json!("abc")),
        "a string is not an array"
    );
    assert!(check(NotIn, json!("c"), json!(["a", "b"])));
    assert!(!check(NotIn, json!("a"), json!(["a"])));
    assert!(
        !check(NotIn, json!("a"), json!("xyz")),
        "notIn needs an array too"
    );
}

#[test]
fn contains_needs_an_array_fact() {
    use Operator::*;
    assert!(check(Contains, json!(["a", "b"]), json!("a")));
    assert!(check(Contains, json!([1, [2]]), json!([2.0])));
    assert!(
        !check(Contains, json!("abc"), json!("a")),
        "strings are not arrays"
    );
    assert!(!check(Contains, json!({"a": 1}), json!("a")));
    assert!(check(DoesNotContain, json!(["a"]), json!("b")));
    assert!(!check(DoesNotContain, json!(["a"]), json!("a")));
    assert!(
        !check(DoesNotContain, json!("abc"), json!("z")),
        "not an array: false"
    );
}

#[test]
fn matches_is_an_unanchored_regex_on_strings_only() {
    use Operator::Matches;
    assert!(check(Matches, json!("release-1.2"), json!(r"\d+\.\d+")));
    assert!(check(Matches, json!("abc"), json!(".+")));
    assert!(!check(Matches, json!(""), json!(".+")));
    assert!(!check(Matches, json!("abc"), json!("^b")));
    assert!(
        !check(Matches, json!(12), json!("1")),
        "numbers are not strings"
    );
    assert!(!check(Matches, json!(["abc"]), json!("a")));
}

#[test]
fn absent_values_make_only_not_equal_and_not_in_true() {
    let data = json!({"v": 1});
    for op in Operator::ALL {
        let value = match op {
            Operator::In | Operator::NotIn => json!([1]),
            Operator::Matches => json!(".*"),
            _ => json!(1),
        };
        let expected = matches!(op, Operator::NotEqual | Operator::NotIn);
        assert_eq!(
            eval(&leaf("$.missing", op, value.clone()), &data),
            expected,
            "{op} on a missing path"
        );
        assert_eq!(
            eval_with(&leaf("$.v", op, value), None, None),
            expected,
            "{op} on a missing fact"
        );
    }
}

#[test]
fn several_nodes_are_an_array_in_document_order() {
    let data = json!({"items": [{"n": "a"}, {"n": "b"}, {"m": "c"}]});
    assert!(eval(
        &leaf("$.items[*].n", Operator::Equal, json!(["a", "b"])),
        &data
    ));
    assert!(eval(
        &leaf("$.items[*].n", Operator::Contains, json!("b")),
        &data
    ));
    assert!(
        eval(&leaf("$.items[*].m", Operator::Equal, json!("c")), &data),
        "one node is the value itself"
    );
    assert!(eval(
        &leaf("$..n", Operator::DoesNotContain, json!("c")),
        &data
    ));
}

#[test]
fn empty_all_is_true_and_empty_any_is_false() {
    let data = json!({});
    assert!(eval(&Rule::All(vec![]), &data));
    assert!(!eval(&Rule::Any(vec![]), &data));
    assert!(eval(&Rule::Not(Box::new(Rule::Any(vec![]))), &data));
}

#[test]
fn nesting_and_not() {
    let data = json!({"a": 1, "b": "x"});
    let rule = Rule::Any(vec![
        Rule::All(vec![
            leaf("$.a", Operator::Equal, json!(2)),
            leaf("$.b", Operator::Equal, json!("x")),
        ]),
        Rule::Not(Box::new(Rule::All(vec![
            leaf("$.a", Operator::Equal, json!(1)),
            Rule::Not(Box::new(leaf("$.b", Operator::Equal, json!("x")))),
        ]))),
    ]);
    assert!(eval(&rule, &data));
}

#[test]
fn fact_valued_comparisons_read_the_other_fact() {
    let other = |path: &str| ConditionValue::Fact {
        fact_ref: FactRef::parse(OTHER).unwrap(),
        path: FactPath::parse(path).unwrap(),
    };
    let rule = leaf_on("$.bugs", Operator::LessThanInclusive, other("$.budget"));
    assert!(eval_with(
        &rule,
        Some(&json!({"bugs": 3})),
        Some(&json!({"budget": 3}))
    ));
    assert!(!eval_with(
        &rule,
        Some(&json!({"bugs": 4})),
        Some(&json!({"budget": 3}))
    ));
    assert!(
        !eval_with(&rule, Some(&json!({"bugs": 1})), None),
        "absent comparand: false"
    );
    let ne = leaf_on("$.a", Operator::NotEqual, other("$.a"));
    assert!(
        eval_with(&ne, Some(&json!({"a": 1})), None),
        "notEqual with an absent side is true"
    );
    assert!(!eval_with(
        &ne,
        Some(&json!({"a": 1})),
        Some(&json!({"a": 1.0}))
    ));
}

#[test]
fn matches_with_a_bad_pattern_is_rejected_and_a_non_string_is_always_false() {
    let f = || FactRef::parse(FACT).unwrap();
    let p = || FactPath::parse("$").unwrap();
    assert!(
        Condition::new(
            f(),
            p(),
            Operator::Matches,
            ConditionValue::Literal(json!("("))
        )
        .is_err()
    );
    let numeric = leaf("$.v", Operator::Matches, json!(1));
    assert!(!eval(&numeric, &json!({"v": "1"})));
}

#[test]
fn matches_can_take_its_pattern_from_another_fact() {
    let other = ConditionValue::Fact {
        fact_ref: FactRef::parse(OTHER).unwrap(),
        path: FactPath::parse("$.pattern").unwrap(),
    };
    let rule = leaf_on("$.version", Operator::Matches, other);
    let fact = json!({"version": "20.1.0"});
    assert!(eval_with(
        &rule,
        Some(&fact),
        Some(&json!({"pattern": "^20\\."}))
    ));
    assert!(!eval_with(
        &rule,
        Some(&fact),
        Some(&json!({"pattern": "^18\\."}))
    ));
    assert!(
        !eval_with(&rule, Some(&fact), Some(&json!({"pattern": "("}))),
        "an invalid pattern is false"
    );
    assert!(!eval_with(&rule, Some(&fact), None));
}

fn arb_leaf() -> impl Strategy<Value = Rule> {
    (
        prop::sample::select(vec!["$.a", "$.b", "$.c", "$.list"]),
        prop::sample::select(Operator::ALL.to_vec()),
        -2i64..3,
    )
        .prop_map(|(path, op, n)| {
            let value = match op {
                Operator::In | Operator::NotIn => json!([n, n + 1]),
                Operator::Matches => json!(format!("{}", n.abs())),
                _ => json!(n),
            };
            leaf(path, op, value)
        })
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    arb_leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Rule::All),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Rule::Any),
            inner.prop_map(|r| Rule::Not(Box::new(r))),
        ]
    })
}

fn arb_data() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        (-2i64..3).prop_map(|n| json!(n)),
        (-2i64..3).prop_map(|n| json!(n.to_string())),
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b))
    ];
    (
        prop::option::of(scalar.clone()),
        prop::option::of(scalar.clone()),
        prop::option::of(scalar.clone()),
        prop::collection::vec(scalar, 0..3),
    )
        .prop_map(|(a, b, c, list)| {
            let mut obj = serde_json::Map::new();
            for (k, v) in [("a", a), ("b", b), ("c", c)] {
                if let Some(v) = v {
                    obj.insert(k.into(), v);
                }
            }
            obj.insert("list".into(), Value::Array(list));
            Value::Object(obj)
        })
}

proptest! {
    #[test]
    fn a_rule_equals_its_children_combined_by_hand(rule in arb_rule(), data in arb_data()) {
        let expected = match &rule {
            Rule::All(children) => children.iter().all(|c| eval(c, &data)),
            Rule::Any(children) => children.iter().any(|c| eval(c, &data)),
            Rule::Not(inner) => !eval(inner, &data),
            Rule::Condition(_) => eval(&rule, &data),
        };
        prop_assert_eq!(eval(&rule, &data), expected);
    }

    #[test]
    fn double_negation_is_identity(rule in arb_rule(), data in arb_data()) {
        let doubled = Rule::Not(Box::new(Rule::Not(Box::new(rule.clone()))));
        prop_assert_eq!(eval(&doubled, &data), eval(&rule, &data));
    }
}
