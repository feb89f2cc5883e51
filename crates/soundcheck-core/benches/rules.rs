//! Micro-benchmarks of rule evaluation: one leaf (fast path and general JSONPath), a nested
//! rule, and every check of a realistic config for one entity.

#![expect(
    clippy::unwrap_used,
    reason = "a benchmark with fixed inputs; a failure should stop it loudly"
)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use soundcheck_core::Engine;
use soundcheck_core::config::load_str;
use soundcheck_core::model::FactRef;
use soundcheck_core::rules::compiled::{CompiledRule, FactTable, SlotFacts};
use soundcheck_core::rules::{Condition, ConditionValue, FactPath, Operator, Rule};

fn leaf(path: &str, op: Operator, value: Value) -> Rule {
    let cond = Condition::new(
        FactRef::parse("gh:default/repo").unwrap(),
        FactPath::parse(path).unwrap(),
        op,
        ConditionValue::Literal(value),
    )
    .unwrap();
    Rule::Condition(Box::new(cond))
}

fn compile(rule: &Rule, table: &mut FactTable) -> CompiledRule {
    CompiledRule::compile(rule, table)
}

fn bench_leaves(c: &mut Criterion) {
    let data = json!({"private": true, "license": {"spdx_id": "MIT"}, "topics": ["a", "b", "pii"], "items": [{"n": 1}, {"n": 2}]});
    let data_slots = [Some(&data)];
    let cases = [
        (
            "leaf equal (fast path)",
            leaf("$.license.spdx_id", Operator::Equal, json!("MIT")),
        ),
        (
            "leaf in (fast path)",
            leaf(
                "$.license.spdx_id",
                Operator::In,
                json!(["Apache-2.0", "MIT"]),
            ),
        ),
        (
            "leaf matches (fast path)",
            leaf("$.license.spdx_id", Operator::Matches, json!("^M")),
        ),
        (
            "leaf contains (wildcard JSONPath)",
            leaf("$.items[*].n", Operator::Contains, json!(2)),
        ),
        (
            "nested all/any/not",
            Rule::All(vec![
                leaf("$.private", Operator::Equal, json!(true)),
                Rule::Any(vec![
                    leaf("$.topics", Operator::Contains, json!("x")),
                    Rule::Not(Box::new(leaf(
                        "$.topics",
                        Operator::DoesNotContain,
                        json!("pii"),
                    ))),
                ]),
            ]),
        ),
    ];
    for (name, rule) in cases {
        let mut table = FactTable::default();
        let compiled = compile(&rule, &mut table);
        let facts = SlotFacts {
            table: &table,
            data: &data_slots,
        };
        c.bench_function(name, |b| {
            b.iter(|| black_box(compiled.evaluate(black_box(&facts))))
        });
    }
}

fn bench_engine(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let text = std::fs::read_to_string(root.join("app-config.yaml")).unwrap();
    let loaded = load_str("app-config.yaml", &text, &root, &|_| None).unwrap();
    let engine = Engine::new(&loaded.config);
    let entity = json!({"kind": "Component", "metadata": {"name": "payments-api", "tags": ["tier-1"], "description": "Payments"},
                        "spec": {"type": "service", "lifecycle": "production", "owner": "group:default/payments"}});
    let facts: Vec<Option<&Value>> = engine
        .fact_table()
        .refs()
        .iter()
        .map(|r| {
            if r.as_str() == "catalog:default/entity_descriptor" {
                Some(&entity)
            } else {
                None
            }
        })
        .collect();
    let admissions = engine.admissions(&entity);
    let mut out = Vec::new();
    c.bench_function("engine: all example checks for one entity", |b| {
        let view = SlotFacts {
            table: engine.fact_table(),
            data: &facts,
        };
        b.iter(|| engine.evaluate_all(black_box(&admissions), black_box(&view), &mut out))
    });
    c.bench_function("engine: filters for one entity", |b| {
        b.iter(|| black_box(engine.admissions(black_box(&entity))))
    });
}

criterion_group!(benches, bench_leaves, bench_engine);
criterion_main!(benches);
