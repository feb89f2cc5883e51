//! Entity filters (soundcheck.md §2.6, decisions.md §3): Backstage `EntityFilterQuery`
//! semantics. A filter is a list of sets (OR); a set maps dot-path keys to accepted values
//! (AND across keys, any-of across values); keys and values match case-insensitively; an array
//! field matches when any element matches. Absent or empty filters admit everything.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// One `key: values` clause of a filter set.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterClause {
    key: String,
    key_lower: String,
    values: Vec<String>,
    values_lower: Vec<String>,
}

impl FilterClause {
    /// A clause accepting any of `values` at the dot-path `key`.
    pub fn new(key: &str, values: Vec<String>) -> Self {
        Self {
            key: key.to_string(),
            key_lower: key.to_lowercase(),
            values_lower: values.iter().map(|v| v.to_lowercase()).collect(),
            values,
        }
    }

    /// The key as written.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn matches(&self, entity: &Value) -> bool {
        let mut found = false;
        visit_path(entity, &self.key_lower, &mut |leaf| {
            found = found || self.values_lower.iter().any(|v| scalar_matches(leaf, v));
        });
        found
    }
}

/// A set of clauses that must all match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FilterSet {
    clauses: Vec<FilterClause>,
}

impl FilterSet {
    /// A set of clauses (AND).
    pub fn new(clauses: Vec<FilterClause>) -> Self {
        Self { clauses }
    }

    /// The clauses.
    pub fn clauses(&self) -> &[FilterClause] {
        &self.clauses
    }

    fn matches(&self, entity: &Value) -> bool {
        self.clauses.iter().all(|c| c.matches(entity))
    }
}

/// An entity filter: sets OR-ed together. The empty filter is "no filter".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntityFilter {
    sets: Vec<FilterSet>,
}

impl EntityFilter {
    /// A filter from its sets; sets with no clauses are dropped, so `{}` is "no filter".
    pub fn new(sets: Vec<FilterSet>) -> Self {
        Self {
            sets: sets.into_iter().filter(|s| !s.clauses.is_empty()).collect(),
        }
    }

    /// True when the filter has no clause at all.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The OR-ed sets.
    pub fn sets(&self) -> &[FilterSet] {
        &self.sets
    }

    /// Used as an include filter: empty admits every entity.
    pub fn admits(&self, entity: &Value) -> bool {
        self.is_empty() || self.sets.iter().any(|s| s.matches(entity))
    }

    /// Used as an exclude filter: empty excludes none.
    pub fn excludes(&self, entity: &Value) -> bool {
        !self.is_empty() && self.sets.iter().any(|s| s.matches(entity))
    }
}

/// An include filter and an exclude filter together; exclude wins.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Applicability {
    /// Entities must match this (empty = all).
    #[serde(skip_serializing_if = "EntityFilter::is_empty")]
    pub filter: EntityFilter,
    /// Entities matching this are out (empty = none).
    #[serde(skip_serializing_if = "EntityFilter::is_empty")]
    pub exclude: EntityFilter,
}

impl Applicability {
    /// True when the entity is inside `filter` and outside `exclude`.
    pub fn admits(&self, entity: &Value) -> bool {
        self.filter.admits(entity) && !self.exclude.excludes(entity)
    }

    /// True when neither filter has clauses.
    pub fn is_unrestricted(&self) -> bool {
        self.filter.is_empty() && self.exclude.is_empty()
    }
}

/// Calls `f` on every scalar reached by the lower-case dot-path `key` from `value`. Object keys
/// are compared case-insensitively and may themselves contain dots (annotation keys), so every
/// split of the path that names existing keys is followed; arrays are descended element-wise.
fn visit_path(value: &Value, key: &str, f: &mut dyn FnMut(&Value)) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| visit_path(item, key, f)),
        Value::Object(map) => {
            for (k, v) in map {
                if key.len() < k.len() || !key.is_char_boundary(k.len()) {
                    continue;
                }
                let (head, rest) = key.split_at(k.len());
                if !eq_lower(k, head) {
                    continue;
                }
                if rest.is_empty() {
                    visit_leaf(v, f);
                } else if let Some(rest) = rest.strip_prefix('.') {
                    visit_path(v, rest, f);
                }
            }
        }
        _ => {}
    }
}

fn visit_leaf(value: &Value, f: &mut dyn FnMut(&Value)) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| visit_leaf(item, f)),
        other => f(other),
    }
}

/// Compares `text` with an already lower-cased `lower`, ignoring case.
fn eq_lower(text: &str, lower: &str) -> bool {
    if text.is_ascii() {
        text.eq_ignore_ascii_case(lower)
    } else {
        text.to_lowercase() == lower
    }
}

fn scalar_matches(value: &Value, lower: &str) -> bool {
    match value {
        Value::String(s) => eq_lower(s, lower),
        Value::Bool(b) => lower == if *b { "true" } else { "false" },
        Value::Number(n) => n.to_string() == lower,
        _ => false,
    }
}

impl Serialize for EntityFilter {
    /// One set serialises as a map, several as a list of maps; values as a string or a list.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let [single] = self.sets.as_slice() {
            return single.serialize(s);
        }
        let mut seq = s.serialize_seq(Some(self.sets.len()))?;
        for set in &self.sets {
            seq.serialize_element(set)?;
        }
        seq.end()
    }
}

impl Serialize for FilterSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.clauses.len()))?;
        for clause in &self.clauses {
            match clause.values.as_slice() {
                [one] => map.serialize_entry(&clause.key, one)?,
                many => map.serialize_entry(&clause.key, many)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn entity() -> Value {
        json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {
                "name": "payments-api",
                "tags": ["java", "Payments"],
                "annotations": {"backstage.io/techdocs-ref": "dir:.", "pagerduty.com/service-id": "P1"}
            },
            "spec": {"type": "service", "lifecycle": "production", "owner": "group:default/payments"}
        })
    }

    fn set(pairs: &[(&str, &[&str])]) -> FilterSet {
        FilterSet::new(
            pairs
                .iter()
                .map(|(k, vs)| FilterClause::new(k, vs.iter().map(|v| v.to_string()).collect()))
                .collect(),
        )
    }

    #[test]
    fn keys_and_values_ignore_case() {
        let f = EntityFilter::new(vec![set(&[
            ("KIND", &["component"]),
            ("spec.TYPE", &["Service"]),
        ])]);
        assert!(f.admits(&entity()));
    }

    #[test]
    fn and_across_keys_or_across_values_and_sets() {
        let e = entity();
        assert!(
            !EntityFilter::new(vec![set(&[
                ("kind", &["component"]),
                ("spec.type", &["website"])
            ])])
            .admits(&e)
        );
        assert!(EntityFilter::new(vec![set(&[("spec.type", &["website", "service"])])]).admits(&e));
        let or = EntityFilter::new(vec![
            set(&[("kind", &["api"])]),
            set(&[("spec.lifecycle", &["production"])]),
        ]);
        assert!(or.admits(&e));
    }

    #[test]
    fn array_fields_match_any_element() {
        let f = EntityFilter::new(vec![set(&[("metadata.tags", &["payments"])])]);
        assert!(f.admits(&entity()));
        assert!(!EntityFilter::new(vec![set(&[("metadata.tags", &["python"])])]).admits(&entity()));
    }

    #[test]
    fn annotation_keys_may_contain_dots_and_slashes() {
        let f = EntityFilter::new(vec![set(&[(
            "metadata.annotations.backstage.io/techdocs-ref",
            &["DIR:."],
        )])]);
        assert!(f.admits(&entity()));
        let f = EntityFilter::new(vec![set(&[(
            "metadata.annotations.pagerduty.com/service-id",
            &["p1"],
        )])]);
        assert!(f.admits(&entity()));
    }

    #[test]
    fn empty_filters_admit_all_and_exclude_none() {
        let app = Applicability::default();
        assert!(app.admits(&entity()));
        let empty_set = EntityFilter::new(vec![FilterSet::default()]);
        assert!(empty_set.is_empty());
    }

    #[test]
    fn exclude_wins_over_filter() {
        let app = Applicability {
            filter: EntityFilter::new(vec![set(&[("kind", &["component"])])]),
            exclude: EntityFilter::new(vec![set(&[("spec.lifecycle", &["production"])])]),
        };
        assert!(!app.admits(&entity()));
    }

    #[test]
    fn missing_keys_do_not_match() {
        assert!(!EntityFilter::new(vec![set(&[("spec.system", &["x"])])]).admits(&entity()));
    }

    proptest! {
        #[test]
        fn matching_ignores_case(value in "[a-zA-Z0-9-]{1,12}", flips in prop::collection::vec(any::<bool>(), 12)) {
            let flipped: String = value.chars().zip(flips.iter().cycle()).map(|(c, up)| {
                if *up { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }
            }).collect();
            let e = json!({"kind": "Component", "spec": {"type": value}});
            let f = EntityFilter::new(vec![set(&[("Spec.Type", &[flipped.as_str()])])]);
            prop_assert!(f.admits(&e));
        }
    }
}
