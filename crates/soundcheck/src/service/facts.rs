//! `POST /facts`: facts pushed by collectors and CI, validated item by item (every problem
//! reported at its JSON pointer, nothing stored when any item is bad), then stored and
//! evaluated incrementally.

use serde_json::Value;
use soundcheck_core::model::{EntityRef, FactRef};

use super::{App, ServiceError, ServiceResult};
use crate::state::live::SubmitOutcome;
use crate::store::FactRecord;

/// Reads one submitted fact `{factRef, entityRef, data, timestamp?, scope?}` found at
/// `pointer`.
pub fn parse_fact(value: &Value, pointer: &str) -> Result<FactRecord, String> {
    let Some(obj) = value.as_object() else {
        return Err(format!("{pointer}: expected a fact object"));
    };
    for key in obj.keys() {
        if !["factRef", "entityRef", "data", "timestamp", "scope"].contains(&key.as_str()) {
            return Err(format!(
                "{pointer}/{key}: unknown key; expected factRef, entityRef, data, timestamp or scope"
            ));
        }
    }
    let fact_ref: FactRef = match obj.get("factRef") {
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| format!("{pointer}/factRef: {e}"))?
        }
        None => return Err(format!("{pointer}: missing required key `factRef`")),
    };
    let entity_ref = match obj.get("entityRef") {
        Some(Value::String(s)) => {
            EntityRef::parse(s).map_err(|e| format!("{pointer}/entityRef: {e}"))?
        }
        Some(_) => return Err(format!("{pointer}/entityRef: expected a string")),
        None => return Err(format!("{pointer}: missing required key `entityRef`")),
    };
    let data = match obj.get("data") {
        Some(d @ Value::Object(_)) => d.clone(),
        Some(_) => return Err(format!("{pointer}/data: expected an object")),
        None => return Err(format!("{pointer}: missing required key `data`")),
    };
    let timestamp_ms = match obj.get("timestamp") {
        None | Some(Value::Null) => chrono::Utc::now().timestamp_millis(),
        Some(Value::String(t)) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| format!("{pointer}/timestamp: expected an RFC 3339 date-time ({e})"))?
            .timestamp_millis(),
        Some(_) => return Err(format!("{pointer}/timestamp: expected an RFC 3339 string")),
    };
    let scope = match obj.get("scope") {
        None | Some(Value::Null) => "default".to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(format!("{pointer}/scope: expected a non-empty string")),
    };
    Ok(FactRecord {
        entity_ref: entity_ref.to_string(),
        fact_ref: fact_ref.as_str().to_string(),
        scope,
        data,
        timestamp_ms,
    })
}

impl App {
    /// Validates every fact, then stores and evaluates them; returns (factRef, entityRef) of
    /// each in request order.
    pub async fn submit_facts(
        &self,
        facts: &[Value],
        pointer: &str,
    ) -> ServiceResult<(Vec<(String, String)>, SubmitOutcome)> {
        let mut records = Vec::with_capacity(facts.len());
        let mut problems = Vec::new();
        for (i, f) in facts.iter().enumerate() {
            match parse_fact(f, &format!("{pointer}/{i}")) {
                Ok(r) => records.push(r),
                Err(e) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems.join("\n")));
        }
        let echo = records
            .iter()
            .map(|r| (r.fact_ref.clone(), r.entity_ref.clone()))
            .collect();
        let outcome = self.live().submit_facts(records).await?;
        Ok((echo, outcome))
    }
}
