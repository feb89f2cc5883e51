//! Pins decisions.md §3 (the order in which a result is decided) and §4 (certification of a
//! track from evaluated results), through config text so the tests read like user setups.

use std::path::Path;

use serde_json::{Value, json};

use crate::config::load_str;
use crate::engine::{CheckView, Engine};
use crate::model::{CertState, CheckState};
use crate::rules::compiled::SlotFacts;

const CONFIG: &str = r#"
soundcheck:
  checks:
    - id: private
      rule: { factRef: 'github:default/repo', path: '$.private', operator: equal, value: true }
      filter: { kind: component }
      exclude: { spec.lifecycle: deprecated }
    - id: covered
      warning: true
      rule: { factRef: 'sonar:default/measures', path: '$.coverage', operator: greaterThan, value: 80 }
      applicable: { factRef: 'catalog:default/entity_descriptor', path: '$.spec.type', operator: equal, value: service }
    - id: two-facts
      rule:
        any:
          - { factRef: 'github:default/repo', path: '$.archived', operator: equal, value: true }
          - { factRef: 'ci:default/pipeline', path: '$.passing', operator: notEqual, value: false }
    - id: manual
      type: manual
  tracks:
    - id: health
      filter: { kind: component }
      levels:
        - ordinal: 1
          checks: [ { id: private } ]
        - ordinal: 2
          checks: [ { id: covered }, { id: two-facts, filter: { spec.type: service } } ]
        - ordinal: 4
          checks: [ { id: manual } ]
"#;

fn engine() -> Engine {
    let loaded = load_str("c.yaml", CONFIG, Path::new("."), &|_| None).unwrap();
    Engine::new(&loaded.config)
}

fn entity(kind: &str, spec_type: &str, lifecycle: &str) -> Value {
    json!({"kind": kind, "metadata": {"name": "x"}, "spec": {"type": spec_type, "lifecycle": lifecycle}})
}

/// Evaluates every check with facts given by fact ref string.
fn results(engine: &Engine, entity: &Value, facts: &[(&str, Value)]) -> Vec<Option<CheckState>> {
    let table = engine.fact_table();
    let mut slots: Vec<Option<&Value>> = vec![None; table.len()];
    if let Some(slot) = table.get_str("catalog:default/entity_descriptor") {
        slots[slot.index()] = Some(entity);
    }
    for (fact_ref, data) in facts {
        if let Some(slot) = table.get_str(fact_ref) {
            slots[slot.index()] = Some(data);
        }
    }
    let mut out = Vec::new();
    engine.evaluate_all(
        &engine.admissions(entity),
        &SlotFacts {
            table,
            data: &slots,
        },
        &mut out,
    );
    out
}

#[test]
fn outside_the_filter_is_not_applicable_even_without_facts() {
    let e = engine();
    let r = results(&e, &entity("API", "openapi", "production"), &[]);
    assert_eq!(r[0], Some(CheckState::NotApplicable));
    let r = results(&e, &entity("Component", "service", "deprecated"), &[]);
    assert_eq!(r[0], Some(CheckState::NotApplicable), "exclude wins");
}

#[test]
fn no_referenced_fact_means_not_reported() {
    let e = engine();
    let r = results(&e, &entity("Component", "service", "production"), &[]);
    assert_eq!(r[0], None);
    assert_eq!(r[2], None);
    assert_eq!(r[3], None, "manual checks are never evaluated");
}

#[test]
fn some_facts_present_makes_the_missing_ones_absent() {
    let e = engine();
    // two-facts: archived is absent (no github fact); ci says passing=false -> notEqual false
    let r = results(
        &e,
        &entity("Component", "service", "production"),
        &[("ci:default/pipeline", json!({"passing": false}))],
    );
    assert_eq!(r[2], Some(CheckState::Failed));
    // no ci fact at all: the notEqual leaf sees an absent value and is true
    let r = results(
        &e,
        &entity("Component", "service", "production"),
        &[("github:default/repo", json!({"archived": false}))],
    );
    assert_eq!(r[2], Some(CheckState::Passed));
}

#[test]
fn applicability_rule_then_warning() {
    let e = engine();
    let low = [("sonar:default/measures", json!({"coverage": 50}))];
    assert_eq!(
        results(&e, &entity("Component", "website", "production"), &low)[1],
        Some(CheckState::NotApplicable)
    );
    assert_eq!(
        results(&e, &entity("Component", "service", "production"), &low)[1],
        Some(CheckState::Warning)
    );
    let high = [("sonar:default/measures", json!({"coverage": 90}))];
    assert_eq!(
        results(&e, &entity("Component", "service", "production"), &high)[1],
        Some(CheckState::Passed)
    );
}

fn certify(
    e: &Engine,
    entity: &Value,
    states: [Option<CheckState>; 4],
    exempt: [bool; 4],
) -> Option<Vec<(u32, CertState, CertState)>> {
    e.certify(0, &e.admissions(entity), |i| CheckView {
        state: states[i],
        exempt: exempt[i],
    })
    .map(|levels| {
        levels
            .into_iter()
            .map(|l| (l.level_ordinal, l.state, l.cumulative_state))
            .collect()
    })
}

#[test]
fn certification_uses_entry_filters_warnings_exemptions_and_gaps() {
    use CertState::{Failed as F, Passed as P};
    use CheckState::*;
    let e = engine();
    let service = entity("Component", "service", "production");
    let website = entity("Component", "website", "production");
    assert_eq!(
        certify(&e, &entity("API", "x", "y"), [None; 4], [false; 4]),
        None,
        "track filter"
    );
    // two-facts failing only counts for services (entry filter); manual not reported fails level 4
    let states = [Some(Passed), Some(Warning), Some(Failed), None];
    assert_eq!(
        certify(&e, &service, states, [false; 4]),
        Some(vec![(1, P, P), (2, F, F), (4, F, F)])
    );
    assert_eq!(
        certify(&e, &website, states, [false; 4]),
        Some(vec![(1, P, P), (2, P, P), (4, F, F)])
    );
    // an exemption counts as passing; error does not
    assert_eq!(
        certify(
            &e,
            &service,
            [Some(Error), None, None, Some(Passed)],
            [false, true, true, false]
        ),
        Some(vec![(1, F, F), (2, P, F), (4, P, F)])
    );
}
