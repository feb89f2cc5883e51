//! Track definitions (soundcheck.md §4.1): ordered levels of check entries.

use serde::Serialize;
use serde_json::Value;

use crate::filter::Applicability;

/// Badge shown for a track or level.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Badge {
    /// CSS colour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Badge type, e.g. `medal`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub badge_type: Option<String>,
    /// Inline SVG.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svg: Option<String>,
}

/// A check entry of a level, with its own applicability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelCheck {
    /// The check id (validated to exist).
    pub id: String,
    /// Display override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Display override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Per-entry filter/exclude.
    #[serde(flatten)]
    pub applies_to: Applicability,
}

/// A level: an ordinal and its check entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackLevel {
    /// 1 = first level; unique within a track.
    pub ordinal: u32,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Badge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub badge: Option<Badge>,
    /// Entries.
    pub checks: Vec<LevelCheck>,
}

/// A track (or a campaign, `type: campaign`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Track {
    /// Unique id.
    pub id: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Owning group or user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_entity_ref: Option<String>,
    /// `standard` (default) or `campaign`.
    #[serde(rename = "type")]
    pub track_type: String,
    /// Grouping label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Link to the standard.
    #[serde(rename = "documentationURL", skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
    /// Where to ask for help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub support_channel: Option<String>,
    /// Hidden from normal views.
    pub draft: bool,
    /// Retired: not certified any more.
    pub archived: bool,
    /// Which entities the track applies to.
    #[serde(flatten)]
    pub applies_to: Applicability,
    /// Badge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub badge: Option<Badge>,
    /// Top-level badge type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub badge_type: Option<String>,
    /// Campaign start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// Campaign target date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_completion_date: Option<String>,
    /// Campaign milestones, kept as given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub milestones: Vec<Value>,
    /// Levels sorted by ordinal.
    pub levels: Vec<TrackLevel>,
}
