//! Turns the `soundcheck:` node tree into checks and tracks, reporting every problem with its
//! position. Cross-references (duplicate ids, unknown checks in levels) are checked last.

use std::collections::HashMap;
use std::str::FromStr;

use super::decode_rule::decode_rule;
use super::diagnostics::{Diagnostics, Pos};
use super::fields::{Fields, list, string};
use super::yaml::{Node, NodeKind};
use crate::filter::{Applicability, EntityFilter, FilterClause, FilterSet};
use crate::model::{
    Badge, Check, CheckType, EntityRef, Frequency, LevelCheck, Schedule, SoundcheckConfig, Track,
    TrackLevel,
};

const SOUNDCHECK_KEYS: &[&str] = &[
    "checks",
    "tracks",
    "programs",
    "collectors",
    "events",
    "retention",
    "server",
    "notifications",
    "job",
    "catalogOptions",
    "cacheWarmer",
    "addStartingConfigurations",
    "slack",
    "email",
    "health",
];
const CHECK_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "ownerEntityRef",
    "type",
    "rule",
    "applicable",
    "pathResolver",
    "filter",
    "exclude",
    "warning",
    "passedMessage",
    "failedMessage",
    "notApplicableMessage",
    "supportChannel",
    "documentationURL",
    "schedule",
];
const TRACK_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "ownerEntityRef",
    "type",
    "group",
    "documentationURL",
    "supportChannel",
    "draft",
    "archived",
    "filter",
    "exclude",
    "badge",
    "badgeType",
    "levels",
    "startDate",
    "targetCompletionDate",
    "milestones",
    "isEditable",
    "createdAt",
    "updatedAt",
];
const LEVEL_KEYS: &[&str] = &["ordinal", "name", "description", "badge", "checks"];
const LEVEL_CHECK_KEYS: &[&str] = &["id", "name", "description", "filter", "exclude"];
const MAX_NAME_CHARS: usize = 100;

/// Decodes the merged config root (the whole app-config) into the model.
pub fn decode_root(root: &Node, diags: &mut Diagnostics) -> SoundcheckConfig {
    let mut located = Located::default();
    let Some(section) = root.get("soundcheck") else {
        if diags.has_errors() {
            return SoundcheckConfig::default();
        }
        diags.warning(
            &root.pos,
            "no `soundcheck:` section: there are no checks or tracks",
        );
        return SoundcheckConfig::default();
    };
    let Some(fields) = Fields::new(section, "the `soundcheck` section", SOUNDCHECK_KEYS, diags)
    else {
        return SoundcheckConfig::default();
    };
    for node in fields
        .get("checks")
        .map_or(&[][..], |n| list(n, "checks", diags))
    {
        if let Some(check) = decode_check(node, diags) {
            located.checks.push((check, node.pos.clone()));
        }
    }
    let mut track_nodes: Vec<&Node> = Vec::new();
    if let Some(tracks) = fields.get("tracks") {
        track_nodes.extend(list(tracks, "tracks", diags));
    }
    if let Some(programs) = fields.get("programs") {
        diags.warning(
            &programs.pos,
            "`programs` is the legacy name of `tracks`; rename the key",
        );
        track_nodes.extend(list(programs, "programs", diags));
    }
    for node in track_nodes {
        if let Some((track, entries)) = decode_track(node, diags) {
            located.tracks.push((track, node.pos.clone(), entries));
        }
    }
    let (events_enabled, delivery, sinks) = fields
        .get("events")
        .map(|n| super::decode_service::events(n, diags))
        .unwrap_or_default();
    let retention = fields
        .get("retention")
        .map(|n| super::decode_service::retention(n, diags))
        .unwrap_or_default();
    let collectors = fields
        .get("collectors")
        .map(|n| super::decode_collectors::collectors(n, diags))
        .unwrap_or_default();
    let limiters = fields
        .get("job")
        .map(|n| super::decode_collectors::limiters(n, diags))
        .unwrap_or_default();
    let server = fields
        .get("server")
        .map(|n| super::decode_server::server(n, diags))
        .unwrap_or_default();
    cross_check(&located, diags);
    SoundcheckConfig {
        checks: located.checks.into_iter().map(|(c, _)| c).collect(),
        tracks: located.tracks.into_iter().map(|(t, _, _)| t).collect(),
        events_enabled,
        delivery,
        retention,
        sinks,
        server,
        collectors,
        limiters,
    }
}

/// Checks and tracks with the positions they were defined at, for cross-checking.
#[derive(Default)]
struct Located {
    checks: Vec<(Check, Pos)>,
    tracks: Vec<(Track, Pos, TrackEntries)>,
}

fn cross_check(config: &Located, diags: &mut Diagnostics) {
    let mut seen: HashMap<&str, &Pos> = HashMap::new();
    for (check, pos) in &config.checks {
        if let Some(first) = seen.insert(&check.id, pos) {
            diags.error(
                pos,
                format!(
                    "duplicate check id `{}` (first defined at {first})",
                    check.id
                ),
            );
        }
    }
    let mut tracks_seen: HashMap<&str, &Pos> = HashMap::new();
    for (track, pos, entries) in &config.tracks {
        if let Some(first) = tracks_seen.insert(&track.id, pos) {
            diags.error(
                pos,
                format!(
                    "duplicate track id `{}` (first defined at {first})",
                    track.id
                ),
            );
        }
        for (id, entry_pos) in entries {
            if !seen.contains_key(id.as_str()) {
                diags.error(
                    entry_pos,
                    format!("track `{}` names unknown check `{id}`", track.id),
                );
            }
        }
    }
}

fn decode_check(node: &Node, diags: &mut Diagnostics) -> Option<Check> {
    let f = Fields::new(node, "a check", CHECK_KEYS, diags)?;
    let id = f.required_str("id", "a check", diags);
    let name = f.opt_str("name", diags);
    check_name_length(&f, name.as_deref(), diags);
    let rule = f.get("rule").and_then(|n| decode_rule(n, diags));
    let applicable = f.get("applicable").and_then(|n| decode_rule(n, diags));
    let check_type = match f.opt_str("type", diags).as_deref() {
        None if f.get("rule").is_none() => CheckType::External,
        None | Some("default") => CheckType::Default,
        Some("manual") => CheckType::Manual,
        Some("external") => CheckType::External,
        Some(other) => {
            let pos = f.get("type").map_or(&node.pos, |n| &n.pos);
            diags.error(
                pos,
                format!("unknown check type `{other}`; expected one of: default, manual, external"),
            );
            CheckType::Default
        }
    };
    if check_type == CheckType::Default && f.get("rule").is_none() {
        diags.error(&node.pos, "a check of type `default` needs a `rule`");
    }
    if let Some(resolver) = f.opt_str("pathResolver", diags)
        && resolver != "jsonpath"
    {
        let pos = f.get("pathResolver").map_or(&node.pos, |n| &n.pos);
        diags.error(
            pos,
            format!("unknown pathResolver `{resolver}`; expected `jsonpath`"),
        );
    }
    let applies_to = decode_applicability(&f, diags);
    let schedule = f.get("schedule").and_then(|n| decode_schedule(n, diags));
    Some(Check {
        id: id?,
        name,
        description: f.opt_str("description", diags),
        owner_entity_ref: owner_ref(&f, diags),
        check_type,
        rule,
        applicable,
        applies_to,
        warning: f.flag("warning", diags),
        passed_message: f.opt_str("passedMessage", diags),
        failed_message: f.opt_str("failedMessage", diags),
        not_applicable_message: f.opt_str("notApplicableMessage", diags),
        support_channel: f.opt_str("supportChannel", diags),
        documentation_url: f.opt_str("documentationURL", diags),
        schedule,
    })
}

/// `ownerEntityRef`, parsed and normalised as an entity ref (`kind:namespace/name`).
fn owner_ref(f: &Fields<'_>, diags: &mut Diagnostics) -> Option<String> {
    let text = f.opt_str("ownerEntityRef", diags)?;
    match EntityRef::parse(&text) {
        Ok(r) => Some(r.to_string()),
        Err(e) => {
            let pos = f.get("ownerEntityRef").map(|n| n.pos.clone());
            if let Some(pos) = pos {
                diags.error(&pos, format!("invalid `ownerEntityRef`: {e}"));
            }
            None
        }
    }
}

fn check_name_length(f: &Fields<'_>, name: Option<&str>, diags: &mut Diagnostics) {
    if let (Some(name), Some(node)) = (name, f.get("name")) {
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS {
            diags.error(
                &node.pos,
                format!("`name` must be 1 to {MAX_NAME_CHARS} characters long, found {chars}"),
            );
        }
    }
}

fn decode_applicability(f: &Fields<'_>, diags: &mut Diagnostics) -> Applicability {
    Applicability {
        filter: f
            .get("filter")
            .map(|n| decode_filter(n, "filter", diags))
            .unwrap_or_default(),
        exclude: f
            .get("exclude")
            .map(|n| decode_filter(n, "exclude", diags))
            .unwrap_or_default(),
    }
}

fn decode_schedule(node: &Node, diags: &mut Diagnostics) -> Option<Schedule> {
    let f = Fields::new(
        node,
        "a schedule",
        &["frequency", "filter", "exclude"],
        diags,
    )?;
    let Some(freq) = f.get("frequency") else {
        diags.error(&node.pos, "a schedule is missing required key `frequency`");
        return None;
    };
    let frequency = decode_frequency(freq, diags)?;
    let Applicability { filter, exclude } = decode_applicability(&f, diags);
    Some(Schedule {
        frequency,
        filter,
        exclude,
    })
}

/// `{cron: '...'}` or an interval `{days, hours, minutes, seconds}` (summed).
pub(crate) fn decode_frequency(node: &Node, diags: &mut Diagnostics) -> Option<Frequency> {
    let f = Fields::new(
        node,
        "a frequency",
        &["cron", "days", "hours", "minutes", "seconds"],
        diags,
    )?;
    if let Some(cron_node) = f.get("cron") {
        for key in ["days", "hours", "minutes", "seconds"] {
            if let Some(n) = f.get(key) {
                diags.error(
                    &n.pos,
                    format!("`{key}` cannot be combined with `cron`; use one or the other"),
                );
            }
        }
        let expr = string(cron_node, "cron", diags)?;
        return match croner::Cron::from_str(&expr) {
            Ok(_) => Some(Frequency::Cron(expr)),
            Err(e) => {
                diags.error(
                    &cron_node.pos,
                    format!("invalid cron expression `{expr}`: {e}"),
                );
                None
            }
        };
    }
    let mut seconds = 0u64;
    for (key, unit) in [
        ("days", 86_400u64),
        ("hours", 3_600),
        ("minutes", 60),
        ("seconds", 1),
    ] {
        match f.get(key).map(|n| (&n.kind, n)) {
            None => {}
            Some((NodeKind::Int(n), _)) if *n >= 0 => {
                seconds =
                    seconds.saturating_add(u64::try_from(*n).unwrap_or(0).saturating_mul(unit));
            }
            Some((_, n)) => diags.error(
                &n.pos,
                format!("expected a non-negative integer for `{key}`"),
            ),
        }
    }
    if seconds == 0 {
        diags.error(
            &node.pos,
            "a frequency needs `cron` or a positive interval (`days`, `hours`, `minutes`, `seconds`)",
        );
        return None;
    }
    Some(Frequency::Every(seconds))
}

/// Reads a filter: a mapping (one set) or a list of mappings (OR); the legacy
/// `{catalog: ...}` wrapper is accepted with a warning.
pub(crate) fn decode_filter(node: &Node, key: &str, diags: &mut Diagnostics) -> EntityFilter {
    if let Some(entries) = node.entries()
        && let [entry] = entries
        && entry.key == "catalog"
    {
        diags.warning(
            &entry.key_pos,
            format!("the `{{catalog: ...}}` form of `{key}` is deprecated; write the keys directly under `{key}`"),
        );
        return decode_filter(&entry.value, key, diags);
    }
    let sets = match &node.kind {
        NodeKind::Null => Vec::new(),
        NodeKind::Map(_) => vec![decode_filter_set(node, key, diags)],
        NodeKind::Seq(items) => items
            .iter()
            .map(|n| decode_filter_set(n, key, diags))
            .collect(),
        _ => {
            diags.error(
                &node.pos,
                format!(
                    "expected a mapping or a list of mappings for `{key}`, found {}",
                    node.type_name()
                ),
            );
            Vec::new()
        }
    };
    EntityFilter::new(sets)
}

fn decode_filter_set(node: &Node, key: &str, diags: &mut Diagnostics) -> FilterSet {
    let Some(entries) = node.entries() else {
        diags.error(
            &node.pos,
            format!("expected a mapping in `{key}`, found {}", node.type_name()),
        );
        return FilterSet::default();
    };
    let clauses = entries
        .iter()
        .map(|entry| {
            let values: Vec<String> = match &entry.value.kind {
                NodeKind::Seq(items) => items
                    .iter()
                    .filter_map(|n| filter_value(n, &entry.key, diags))
                    .collect(),
                _ => filter_value(&entry.value, &entry.key, diags)
                    .into_iter()
                    .collect(),
            };
            FilterClause::new(&entry.key, values)
        })
        .collect();
    FilterSet::new(clauses)
}

fn filter_value(node: &Node, key: &str, diags: &mut Diagnostics) -> Option<String> {
    match &node.kind {
        NodeKind::Str(s) => Some(s.clone()),
        NodeKind::Bool(b) => Some(b.to_string()),
        NodeKind::Int(i) => Some(i.to_string()),
        // Written as JSON writes it, so `1.0` matches an entity's `1.0`.
        NodeKind::Float(f) => {
            Some(serde_json::Number::from_f64(*f).map_or_else(|| f.to_string(), |n| n.to_string()))
        }
        _ => {
            diags.error(
                &node.pos,
                format!(
                    "expected a string or a list of strings for filter key `{key}`, found {}",
                    node.type_name()
                ),
            );
            None
        }
    }
}

type TrackEntries = Vec<(String, Pos)>;

fn decode_track(node: &Node, diags: &mut Diagnostics) -> Option<(Track, TrackEntries)> {
    let f = Fields::new(node, "a track", TRACK_KEYS, diags)?;
    let id = f.required_str("id", "a track", diags);
    let track_type = f
        .opt_str("type", diags)
        .unwrap_or_else(|| "standard".to_string());
    if track_type != "standard" && track_type != "campaign" {
        let pos = f.get("type").map_or(&node.pos, |n| &n.pos);
        diags.error(
            pos,
            format!("unknown track type `{track_type}`; expected `standard` or `campaign`"),
        );
    }
    let mut entries = Vec::new();
    let mut levels = Vec::new();
    match f.get("levels") {
        Some(levels_node) => {
            for level_node in list(levels_node, "levels", diags) {
                if let Some(level) = decode_level(level_node, &mut entries, diags) {
                    levels.push((level, level_node.pos.clone()));
                }
            }
        }
        None => diags.error(&node.pos, "a track is missing required key `levels`"),
    }
    let mut by_ordinal: HashMap<u32, &Pos> = HashMap::new();
    for (level, pos) in &levels {
        if let Some(first) = by_ordinal.insert(level.ordinal, pos) {
            diags.error(
                pos,
                format!(
                    "duplicate level ordinal {} (first used at {first})",
                    level.ordinal
                ),
            );
        }
    }
    let mut levels: Vec<TrackLevel> = levels.into_iter().map(|(l, _)| l).collect();
    levels.sort_by_key(|l| l.ordinal);
    let milestones = f.get("milestones").map_or_else(Vec::new, |n| {
        list(n, "milestones", diags)
            .iter()
            .map(Node::to_json)
            .collect()
    });
    let track = Track {
        id: id?,
        name: f.opt_str("name", diags),
        description: f.opt_str("description", diags),
        owner_entity_ref: owner_ref(&f, diags),
        track_type,
        group: f.opt_str("group", diags),
        documentation_url: f.opt_str("documentationURL", diags),
        support_channel: f.opt_str("supportChannel", diags),
        draft: f.flag("draft", diags),
        archived: f.flag("archived", diags),
        applies_to: decode_applicability(&f, diags),
        badge: f.get("badge").and_then(|n| decode_badge(n, diags)),
        badge_type: f.opt_str("badgeType", diags),
        start_date: f.opt_str("startDate", diags),
        target_completion_date: f.opt_str("targetCompletionDate", diags),
        milestones,
        levels,
    };
    Some((track, entries))
}

fn decode_level(
    node: &Node,
    entries: &mut TrackEntries,
    diags: &mut Diagnostics,
) -> Option<TrackLevel> {
    let f = Fields::new(node, "a level", LEVEL_KEYS, diags)?;
    let ordinal = match f.get("ordinal").map(|n| (&n.kind, n)) {
        Some((NodeKind::Int(i), _)) if *i >= 1 && u32::try_from(*i).is_ok() => {
            u32::try_from(*i).ok()
        }
        Some((_, n)) => {
            diags.error(
                &n.pos,
                format!(
                    "expected a positive integer up to {} for `ordinal`",
                    u32::MAX
                ),
            );
            None
        }
        None => {
            diags.error(&node.pos, "a level is missing required key `ordinal`");
            None
        }
    };
    let mut checks = Vec::new();
    for entry in f
        .get("checks")
        .map_or(&[][..], |n| list(n, "checks", diags))
    {
        let decoded = match &entry.kind {
            NodeKind::Str(id) => Some(LevelCheck {
                id: id.clone(),
                name: None,
                description: None,
                applies_to: Applicability::default(),
            }),
            _ => Fields::new(entry, "a level check", LEVEL_CHECK_KEYS, diags).and_then(|ef| {
                Some(LevelCheck {
                    id: ef.required_str("id", "a level check", diags)?,
                    name: ef.opt_str("name", diags),
                    description: ef.opt_str("description", diags),
                    applies_to: decode_applicability(&ef, diags),
                })
            }),
        };
        if let Some(level_check) = decoded {
            let pos = entry.get("id").map_or(&entry.pos, |n| &n.pos).clone();
            entries.push((level_check.id.clone(), pos));
            checks.push(level_check);
        }
    }
    Some(TrackLevel {
        ordinal: ordinal?,
        name: f.opt_str("name", diags),
        description: f.opt_str("description", diags),
        badge: f.get("badge").and_then(|n| decode_badge(n, diags)),
        checks,
    })
}

fn decode_badge(node: &Node, diags: &mut Diagnostics) -> Option<Badge> {
    let f = Fields::new(node, "a badge", &["color", "type", "svg"], diags)?;
    Some(Badge {
        color: f.opt_str("color", diags),
        badge_type: f.opt_str("type", diags),
        svg: f.opt_str("svg", diags),
    })
}
