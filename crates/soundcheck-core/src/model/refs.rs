//! Entity and fact references: the `kind:namespace/name` and `source:scope/name` strings that
//! name things across config, facts, results and events (decisions.md §1).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a reference string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// An entity ref without `kind:`.
    #[error("entity ref `{0}` has no kind; expected `kind:namespace/name`")]
    MissingKind(String),
    /// A part of the ref is empty.
    #[error("entity ref `{0}` has an empty {1}; expected `kind:namespace/name`")]
    EmptyPart(String, &'static str),
    /// A fact ref that is not `source:scope/name`.
    #[error("fact ref `{0}` is not of the form `source:scope/name`")]
    BadFactRef(String),
}

/// A catalog entity reference, normalised: `kind` and `namespace` lower-case, `name` as given.
///
/// Equality is on the normalised form, so refs parse case-insensitively in kind and namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityRef(String);

impl EntityRef {
    /// Parses `kind:namespace/name` or `kind:name` (namespace `default`).
    pub fn parse(input: &str) -> Result<Self, RefError> {
        let trimmed = input.trim();
        let Some((kind, rest)) = trimmed.split_once(':') else {
            return Err(RefError::MissingKind(input.to_string()));
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((ns, name)) => (ns, name),
            None => ("default", rest),
        };
        for (part, what) in [(kind, "kind"), (namespace, "namespace"), (name, "name")] {
            if part.is_empty() {
                return Err(RefError::EmptyPart(input.to_string(), what));
            }
        }
        Ok(Self::from_parts(kind, namespace, name))
    }

    /// Builds a ref from its parts, normalising case.
    pub fn from_parts(kind: &str, namespace: &str, name: &str) -> Self {
        Self(format!(
            "{}:{}/{}",
            kind.to_ascii_lowercase(),
            namespace.to_ascii_lowercase(),
            name
        ))
    }

    /// The normalised string form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-case kind.
    pub fn kind(&self) -> &str {
        self.0.split_once(':').map_or("", |(kind, _)| kind)
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for EntityRef {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for EntityRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EntityRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A fact reference `source:scope/name`; the name may itself contain `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FactRef {
    text: String,
    colon: usize,
    slash: usize,
}

impl FactRef {
    /// Parses the string form, splitting at the first `:` and the first `/` after it.
    pub fn parse(input: &str) -> Result<Self, RefError> {
        let bad = || RefError::BadFactRef(input.to_string());
        let colon = input.find(':').ok_or_else(bad)?;
        let slash = input[colon + 1..].find('/').ok_or_else(bad)? + colon + 1;
        let (source, scope, name) = (
            &input[..colon],
            &input[colon + 1..slash],
            &input[slash + 1..],
        );
        if source.is_empty() || scope.is_empty() || name.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            text: input.to_string(),
            colon,
            slash,
        })
    }

    /// Builds a ref from the object form `{source, scope, name}`; `scope` defaults to `default`.
    pub fn from_parts(source: &str, scope: Option<&str>, name: &str) -> Result<Self, RefError> {
        Self::parse(&format!("{source}:{}/{name}", scope.unwrap_or("default")))
    }

    /// The collector id part.
    pub fn source(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The scope part.
    pub fn scope(&self) -> &str {
        &self.text[self.colon + 1..self.slash]
    }

    /// The fact name part (may contain `/`).
    pub fn name(&self) -> &str {
        &self.text[self.slash + 1..]
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for FactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for FactRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Accepts both the string form and the object form `{source, scope, name}`.
impl<'de> Deserialize<'de> for FactRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FactRefVisitor)
    }
}

struct FactRefVisitor;

impl<'de> serde::de::Visitor<'de> for FactRefVisitor {
    type Value = FactRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a fact ref `source:scope/name` or an object {source, scope, name}")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FactRef, E> {
        FactRef::parse(v).map_err(E::custom)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<FactRef, A::Error> {
        let (mut source, mut scope, mut name) = (None::<String>, None::<String>, None::<String>);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "source" => source = Some(map.next_value()?),
                "scope" => scope = Some(map.next_value()?),
                "name" => name = Some(map.next_value()?),
                other => {
                    return Err(serde::de::Error::unknown_field(
                        other,
                        &["source", "scope", "name"],
                    ));
                }
            }
        }
        let source = source.ok_or_else(|| serde::de::Error::missing_field("source"))?;
        let name = name.ok_or_else(|| serde::de::Error::missing_field("name"))?;
        FactRef::from_parts(&source, scope.as_deref(), &name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ref_normalises_kind_and_namespace_but_not_name() {
        let r = EntityRef::parse("Component:Default/MyService").unwrap();
        assert_eq!(r.as_str(), "component:default/MyService");
        assert_eq!(r.kind(), "component");
    }

    #[test]
    fn entity_ref_defaults_namespace() {
        assert_eq!(
            EntityRef::parse("group:guests").unwrap().as_str(),
            "group:default/guests"
        );
    }

    #[test]
    fn entity_ref_without_kind_is_an_error() {
        assert_eq!(
            EntityRef::parse("default/foo"),
            Err(RefError::MissingKind("default/foo".into()))
        );
        assert!(matches!(
            EntityRef::parse("component:/x"),
            Err(RefError::EmptyPart(_, "namespace"))
        ));
    }

    #[test]
    fn fact_ref_name_may_contain_slashes() {
        let r = FactRef::parse("soundcheck:default/track/basic-health").unwrap();
        assert_eq!(
            (r.source(), r.scope(), r.name()),
            ("soundcheck", "default", "track/basic-health")
        );
    }

    #[test]
    fn fact_ref_object_form_defaults_scope() {
        let r: FactRef = serde_json::from_str(r#"{"source":"ci","name":"unit_tests"}"#).unwrap();
        assert_eq!(r.as_str(), "ci:default/unit_tests");
        let r: FactRef = serde_json::from_str(r#""github:default/repo""#).unwrap();
        assert_eq!(r.name(), "repo");
    }

    #[test]
    fn fact_ref_rejects_missing_parts() {
        for bad in [
            "github",
            "github:default",
            ":default/x",
            "github:/x",
            "github:default/",
        ] {
            assert!(FactRef::parse(bad).is_err(), "{bad}");
        }
    }
}
