//! Check definitions (soundcheck.md §3.1).

use serde::Serialize;

use crate::filter::{Applicability, EntityFilter};
use crate::rules::Rule;

/// How a check gets its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckType {
    /// Evaluated by the engine from its `rule`.
    Default,
    /// Set by a person, with a justification.
    Manual,
    /// Pushed by another system through `POST /results` (no `rule`, no `type`).
    External,
}

/// When a check re-runs on its own (`schedule.frequency`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Frequency {
    /// A 5- or 6-field cron expression, validated at load.
    Cron(String),
    /// A fixed interval, in seconds.
    #[serde(rename = "seconds")]
    Every(u64),
}

impl Frequency {
    /// The first run strictly after `now_ms` (milliseconds since the epoch, UTC); `None` when
    /// a cron expression has no further occurrence or cannot be parsed.
    pub fn next_after(&self, now_ms: i64) -> Option<i64> {
        match self {
            Frequency::Every(seconds) => {
                let step = i64::try_from(*seconds).ok()?.checked_mul(1000)?;
                now_ms.checked_add(step.max(1))
            }
            Frequency::Cron(expr) => {
                let cron: croner::Cron = expr.parse().ok()?;
                let now = chrono::DateTime::from_timestamp_millis(now_ms)?;
                cron.find_next_occurrence(&now, false)
                    .ok()
                    .map(|t| t.timestamp_millis())
            }
        }
    }
}

/// `schedule: {frequency, filter, exclude}` of a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    /// How often.
    pub frequency: Frequency,
    /// Which entities to run for.
    #[serde(skip_serializing_if = "EntityFilter::is_empty")]
    pub filter: EntityFilter,
    /// Which entities to skip.
    #[serde(skip_serializing_if = "EntityFilter::is_empty")]
    pub exclude: EntityFilter,
}

/// A check: a standard graded per entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Unique id, referenced by tracks.
    pub id: String,
    /// Display name (1–100 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Markdown description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Owning group or user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_entity_ref: Option<String>,
    /// Default, manual or external.
    #[serde(rename = "type")]
    pub check_type: CheckType,
    /// The rule of a default check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// Fact-based applicability rule: false makes the result `not-applicable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applicable: Option<Rule>,
    /// Which entities the check applies to.
    #[serde(flatten)]
    pub applies_to: Applicability,
    /// A failing rule yields `warning` instead of `failed`.
    pub warning: bool,
    /// Shown when passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed_message: Option<String>,
    /// Shown when failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_message: Option<String>,
    /// Shown when not applicable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_applicable_message: Option<String>,
    /// Where to ask for help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub support_channel: Option<String>,
    /// Link to the standard.
    #[serde(rename = "documentationURL", skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
    /// Periodic re-execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

impl Check {
    /// A default check with only an id and a rule; the other fields empty.
    pub fn with_rule(id: &str, rule: Rule) -> Self {
        Self {
            id: id.to_string(),
            name: None,
            description: None,
            owner_entity_ref: None,
            check_type: CheckType::Default,
            rule: Some(rule),
            applicable: None,
            applies_to: Applicability::default(),
            warning: false,
            passed_message: None,
            failed_message: None,
            not_applicable_message: None,
            support_channel: None,
            documentation_url: None,
            schedule: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Frequency;

    #[test]
    fn intervals_and_cron_expressions_give_the_next_run() {
        let noon = 1_764_244_800_000; // 2025-11-27T12:00:00Z
        assert_eq!(Frequency::Every(90).next_after(noon), Some(noon + 90_000));
        let hourly = Frequency::Cron("0 * * * *".into());
        assert_eq!(hourly.next_after(noon), Some(noon + 3_600_000));
        assert_eq!(hourly.next_after(noon + 1), Some(noon + 3_600_000));
        assert_eq!(Frequency::Cron("not cron".into()).next_after(noon), None);
    }
}
