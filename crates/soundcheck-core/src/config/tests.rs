//! Pins every validation error's message and location, and the loading conveniences.

use std::path::Path;

use super::{Loaded, load_files, load_str};
use crate::model::CheckType;
use crate::rules::Rule;

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(yaml: &str) -> Result<Loaded, Vec<String>> {
    load_str("c.yaml", yaml, Path::new("."), &no_env)
        .map_err(|e| e.errors().map(ToString::to_string).collect())
}

fn errors(yaml: &str) -> Vec<String> {
    match load(yaml) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(errors) => errors,
    }
}

const LEAF: &str =
    "{ factRef: 'github:default/repo', path: '$.private', operator: equal, value: true }";

#[test]
fn a_valid_check_and_track_load() {
    let yaml = format!(
        "soundcheck:\n  checks:\n    - id: private\n      name: Private repo\n      rule: {LEAF}\n      filter: {{ kind: component }}\n  tracks:\n    - id: basic\n      levels:\n        - ordinal: 1\n          checks: [{{ id: private }}]\n"
    );
    let loaded = load(&yaml).unwrap();
    assert_eq!(loaded.config.checks.len(), 1);
    assert_eq!(loaded.config.checks[0].check_type, CheckType::Default);
    assert_eq!(loaded.config.tracks[0].levels[0].checks[0].id, "private");
    assert!(loaded.warnings.is_empty());
}

#[test]
fn unknown_operator_points_at_the_operator() {
    let yaml = "soundcheck:\n  checks:\n    - id: a\n      rule:\n        factRef: github:default/repo\n        path: $.x\n        operator: equals\n        value: 1\n";
    assert_eq!(
        errors(yaml),
        [
            "c.yaml:7:19: unknown operator `equals`; expected one of: equal, notEqual, lessThan, lessThanInclusive, greaterThan, greaterThanInclusive, in, notIn, contains, doesNotContain, matches"
        ]
    );
}

#[test]
fn invalid_jsonpath_points_at_the_path() {
    let yaml = "soundcheck:\n  checks:\n    - id: a\n      rule: { factRef: 'x:default/y', path: '$.a[', operator: equal, value: 1 }\n";
    let errs = errors(yaml);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("c.yaml:4:45: invalid JSONPath `$.a[` at character"),
        "{}",
        errs[0]
    );
}

#[test]
fn invalid_regex_points_at_the_value() {
    let yaml = "soundcheck:\n  checks:\n    - id: a\n      rule:\n        factRef: x:default/y\n        operator: matches\n        value: '(unclosed'\n";
    let errs = errors(yaml);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("c.yaml:7:16: invalid regular expression `(unclosed`"),
        "{}",
        errs[0]
    );
}

#[test]
fn duplicate_ids_name_the_first_definition() {
    let yaml = format!(
        "soundcheck:\n  checks:\n    - id: a\n      rule: {LEAF}\n    - id: a\n      rule: {LEAF}\n  tracks:\n    - id: t\n      levels: []\n    - id: t\n      levels: []\n"
    );
    assert_eq!(
        errors(&yaml),
        [
            "c.yaml:5:7: duplicate check id `a` (first defined at c.yaml:3:7)",
            "c.yaml:10:7: duplicate track id `t` (first defined at c.yaml:8:7)",
        ]
    );
}

#[test]
fn unknown_check_in_a_level_and_duplicate_ordinals() {
    let yaml = format!(
        "soundcheck:\n  checks:\n    - id: a\n      rule: {LEAF}\n  tracks:\n    - id: t\n      levels:\n        - ordinal: 1\n          checks: [{{ id: a }}]\n        - ordinal: 1\n          checks:\n            - id: nope\n"
    );
    assert_eq!(
        errors(&yaml),
        [
            "c.yaml:10:11: duplicate level ordinal 1 (first used at c.yaml:8:11)",
            "c.yaml:12:19: track `t` names unknown check `nope`"
        ]
    );
}

#[test]
fn wrong_types_and_unknown_keys_are_all_reported_at_once_in_file_order() {
    let yaml = format!(
        "soundcheck:\n  checks:\n    - id: a\n      name: 12\n      warning: 'yes'\n      operatr: equal\n      rule: {LEAF}\n  tracks:\n    - id: t\n      levels:\n        - ordinal: zero\n          checks: []\n        - ordinal: 5000000000\n          checks: []\n"
    );
    let errs = errors(&yaml);
    assert_eq!(
        errs,
        [
            "c.yaml:4:13: expected a string for `name`, found a number",
            "c.yaml:5:16: expected a boolean for `warning`, found a string",
            "c.yaml:6:7: unknown key `operatr` in a check; expected one of: id, name, description, ownerEntityRef, type, rule, applicable, pathResolver, filter, exclude, warning, passedMessage, failedMessage, notApplicableMessage, supportChannel, documentationURL, schedule",
            "c.yaml:11:20: expected a positive integer up to 4294967295 for `ordinal`",
            "c.yaml:13:20: expected a positive integer up to 4294967295 for `ordinal`",
        ]
    );
}

#[test]
fn values_that_can_never_match_load_with_a_warning() {
    let yaml = "soundcheck:\n  checks:\n    - id: a\n      rule: [ { factRef: 'x:default/y', operator: in, value: abc }, { factRef: 'x:default/y', operator: lessThan, value: '3' }, { factRef: 'x:default/y', operator: matches, value: 3 } ]\n";
    let loaded = load(yaml).unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert_eq!(
        warnings[0],
        "c.yaml:4:62: warning: operator `in` needs a list as its value, found a string; this condition is always false"
    );
    assert!(
        warnings[1].contains("operator `lessThan` needs a number as its value, found a string"),
        "{}",
        warnings[1]
    );
    assert!(
        warnings[2].contains(
            "operator `matches` needs a string regular expression as its value, found a number"
        ),
        "{}",
        warnings[2]
    );
}

#[test]
fn an_empty_later_file_or_key_erases_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        format!("soundcheck:\n  checks:\n    - id: a\n      rule: {LEAF}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.yaml"), "# nothing here\n").unwrap();
    std::fs::write(dir.path().join("nulls.yaml"), "soundcheck:\n  checks:\n").unwrap();
    let paths = ["a.yaml", "empty.yaml", "nulls.yaml"].map(|p| dir.path().join(p));
    let loaded = load_files(&paths, &no_env).unwrap();
    assert_eq!(loaded.config.checks.len(), 1);
}

#[test]
fn include_cycles_through_parent_directories_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("sub/a.yaml"),
        "x:\n  $include: ../sub/a.yaml\n",
    )
    .unwrap();
    let err = load_files(&[dir.path().join("sub/a.yaml")], &no_env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("forms a cycle"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn cron_and_interval_keys_do_not_mix() {
    let yaml = "soundcheck:\n  checks:\n    - id: a\n      type: manual\n      schedule: { frequency: { cron: '0 * * * *', hours: -3 } }\n";
    assert_eq!(
        errors(yaml),
        ["c.yaml:5:58: `hours` cannot be combined with `cron`; use one or the other"]
    );
}

#[test]
fn missing_required_keys() {
    let yaml = "soundcheck:\n  checks:\n    - name: no id\n      type: default\n    - id: b\n      rule: { path: '$' }\n";
    assert_eq!(
        errors(yaml),
        [
            "c.yaml:3:7: a check is missing required key `id`",
            "c.yaml:3:7: a check of type `default` needs a `rule`",
            "c.yaml:6:13: a rule condition is missing required key `factRef`",
            "c.yaml:6:13: a rule condition is missing required key `operator`",
            "c.yaml:6:13: a rule condition is missing required key `value`",
        ]
    );
}

#[test]
fn invalid_yaml_reports_the_parser_position() {
    let errs = errors("soundcheck:\n  checks: [\n");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("c.yaml:3:1: invalid YAML"),
        "{}",
        errs[0]
    );
}

#[test]
fn a_bare_list_rule_means_all_and_types_default_by_rule() {
    let yaml = format!(
        "soundcheck:\n  checks:\n    - id: a\n      rule: [{LEAF}, {LEAF}]\n    - id: ext\n    - id: man\n      type: manual\n"
    );
    let loaded = load(&yaml).unwrap();
    assert!(
        matches!(&loaded.config.checks[0].rule, Some(Rule::All(children)) if children.len() == 2)
    );
    assert_eq!(loaded.config.checks[1].check_type, CheckType::External);
    assert_eq!(loaded.config.checks[2].check_type, CheckType::Manual);
}

#[test]
fn legacy_programs_and_catalog_filters_load_with_warnings() {
    let yaml = format!(
        "soundcheck:\n  checks:\n    - id: a\n      rule: {LEAF}\n      filter: {{ catalog: {{ kind: component }} }}\n  programs:\n    - id: p\n      levels: [{{ ordinal: 1, checks: [a] }}]\n"
    );
    let loaded = load(&yaml).unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "c.yaml:5:17: warning: the `{catalog: ...}` form of `filter` is deprecated; write the keys directly under `filter`",
            "c.yaml:7:5: warning: `programs` is the legacy name of `tracks`; rename the key",
        ]
    );
    assert_eq!(loaded.config.tracks[0].id, "p");
    assert!(!loaded.config.checks[0].applies_to.filter.is_empty());
}

#[test]
fn env_substitution_and_missing_variables() {
    let env = |name: &str| (name == "TEAM").then(|| "payments".to_string());
    let yaml = format!(
        "soundcheck:\n  checks:\n    - id: a\n      ownerEntityRef: group:default/${{TEAM}}\n      description: costs $${{PRICE}}\n      rule: {LEAF}\n"
    );
    let loaded = load_str("c.yaml", &yaml, Path::new("."), &env).unwrap();
    assert_eq!(
        loaded.config.checks[0].owner_entity_ref.as_deref(),
        Some("group:default/payments")
    );
    assert_eq!(
        loaded.config.checks[0].description.as_deref(),
        Some("costs ${PRICE}")
    );
    let yaml = "soundcheck:\n  checks:\n    - id: ${MISSING}\n      type: manual\n";
    assert_eq!(
        errors(yaml),
        ["c.yaml:3:11: environment variable `MISSING` is not set"]
    );
}

#[test]
fn includes_and_several_files_merge_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("checks.yaml", &format!("- id: a\n  rule: {LEAF}\n"));
    write(
        "base.yaml",
        "soundcheck:\n  checks:\n    $include: ./checks.yaml\n  events:\n    enabled: false\n",
    );
    write(
        "more.yaml",
        &format!(
            "soundcheck:\n  checks:\n    - id: b\n      rule: {LEAF}\n  events:\n    enabled: true\n"
        ),
    );
    let loaded = load_files(
        &[dir.path().join("base.yaml"), dir.path().join("more.yaml")],
        &no_env,
    )
    .unwrap();
    let ids: Vec<&str> = loaded.config.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(loaded.config.events_enabled, "later files win for scalars");

    write(
        "dup.yaml",
        "soundcheck:\n  checks:\n    - id: a\n      type: manual\n",
    );
    let err = load_files(
        &[dir.path().join("base.yaml"), dir.path().join("dup.yaml")],
        &no_env,
    )
    .unwrap_err();
    let first = dir.path().join("checks.yaml").display().to_string();
    let second = dir.path().join("dup.yaml").display().to_string();
    assert_eq!(
        err.to_string(),
        format!("{second}:3:7: duplicate check id `a` (first defined at {first}:1:3)")
    );
}

#[test]
fn include_errors_point_at_the_include() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "soundcheck:\n  checks:\n    $include: ./missing.yaml\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("loop.yaml"),
        "soundcheck:\n  checks:\n    $include: ./loop.yaml\n",
    )
    .unwrap();
    let err = load_files(&[dir.path().join("a.yaml")], &no_env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a.yaml:3:15: cannot read"), "{err}");
    let err = load_files(&[dir.path().join("loop.yaml")], &no_env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("loop.yaml:3:15: `$include` of"), "{err}");
    assert!(err.contains("forms a cycle"), "{err}");
}

#[test]
fn schedules_accept_cron_or_intervals() {
    let yaml = "soundcheck:\n  checks:\n    - id: a\n      type: manual\n      schedule: { frequency: { cron: '*/30 * * * *' }, filter: { kind: component } }\n    - id: b\n      type: manual\n      schedule: { frequency: { hours: 1, minutes: 30 } }\n";
    let loaded = load(yaml).unwrap();
    assert!(loaded.config.checks.iter().all(|c| c.schedule.is_some()));
    let bad = "soundcheck:\n  checks:\n    - id: a\n      type: manual\n      schedule: { frequency: { cron: 'every day' } }\n";
    let errs = errors(bad);
    assert!(
        errs[0].starts_with("c.yaml:5:38: invalid cron expression `every day`"),
        "{}",
        errs[0]
    );
}

#[test]
fn names_longer_than_100_characters_are_rejected() {
    let long = "n".repeat(101);
    let yaml =
        format!("soundcheck:\n  checks:\n    - id: a\n      type: manual\n      name: {long}\n");
    assert_eq!(
        errors(&yaml),
        ["c.yaml:5:13: `name` must be 1 to 100 characters long, found 101"]
    );
}

#[test]
fn owner_refs_must_be_entity_refs_and_are_normalised() {
    let yaml = "soundcheck:\n  checks:\n    - id: a\n      type: manual\n      ownerEntityRef: Group:Default/Platform\n    - id: b\n      type: manual\n      ownerEntityRef: platform\n";
    assert_eq!(
        errors(yaml),
        [
            "c.yaml:8:23: invalid `ownerEntityRef`: entity ref `platform` has no kind; expected `kind:namespace/name`"
        ]
    );
    let ok = "soundcheck:\n  checks:\n    - id: a\n      type: manual\n      ownerEntityRef: Group:Default/Platform\n";
    assert_eq!(
        load(ok).unwrap().config.checks[0]
            .owner_entity_ref
            .as_deref(),
        Some("group:default/Platform")
    );
}

/// Every complete config in the user docs (a ```yaml block starting with `soundcheck:`) loads
/// without errors or warnings, so the docs cannot drift from the loader.
#[test]
fn configs_in_the_docs_load() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&docs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, block) in text.split("```yaml\n").skip(1).enumerate() {
            let body = block.split("```").next().unwrap_or_default();
            if !body.starts_with("soundcheck:") {
                continue;
            }
            let name = format!("{}#{}", path.display(), i + 1);
            // Docs show secrets as `${VARIABLE}`; any such variable reads as a sample token.
            let sample_env = |_: &str| Some("sample-secret-0123456789".to_string());
            match load_str(&name, body, &docs, &sample_env) {
                Ok(loaded) => assert!(loaded.warnings.is_empty(), "{name}: {:?}", loaded.warnings),
                Err(e) => panic!("{name} does not load:\n{e}"),
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "expected config examples in docs/, found {checked}"
    );
}

#[test]
fn events_delivery_and_retention_settings() {
    let yaml = "soundcheck:\n  events:\n    enabled: true\n    delivery: { maxAttempts: 8, initialBackoffMs: 50, cursorSaveIntervalMs: 0 }\n  retention:\n    factHistory: { maxAgeDays: 90, maxPerFact: 100 }\n";
    let c = load(yaml).unwrap().config;
    assert!(c.events_enabled);
    assert_eq!(
        (
            c.delivery.max_attempts,
            c.delivery.initial_backoff_ms,
            c.delivery.max_backoff_ms,
            c.delivery.cursor_save_interval_ms
        ),
        (8, 50, 30_000, 0)
    );
    assert_eq!(
        (c.retention.max_age_days, c.retention.max_per_fact),
        (Some(90), Some(100))
    );
    let bad = "soundcheck:\n  events:\n    delivery: { maxAttempts: 0, retries: 3 }\n";
    assert_eq!(
        errors(bad),
        [
            "c.yaml:3:30: expected an integer from 1 to 100 for `maxAttempts`, found a number",
            "c.yaml:3:33: unknown key `retries` in `soundcheck.events.delivery`; expected one of: maxAttempts, initialBackoffMs, maxBackoffMs, batchSize, pollIntervalMs, cursorSaveIntervalMs, leaseMs",
        ]
    );
}

#[test]
fn backstage_sinks_with_their_routes_and_errors() {
    let yaml = "soundcheck:\n  events:\n    sinks:\n      backstage:\n        - { id: main, baseUrl: 'http://backstage:7007/', token: tok-0123456789, requireSubscriber: true }\n        - { id: ingress, baseUrl: 'https://b.example', route: http, topics: [soundcheck-certification-change], timeoutMs: 900 }\n";
    let sinks = load(yaml).unwrap().config.sinks.backstage;
    assert_eq!(sinks.len(), 2);
    assert_eq!(
        (
            sinks[0].base_url.as_str(),
            sinks[0].route,
            sinks[0].require_subscriber
        ),
        (
            "http://backstage:7007",
            crate::model::BackstageRoute::Bus,
            true
        )
    );
    assert_eq!(
        (sinks[1].route, sinks[1].timeout_ms, sinks[1].topics.len()),
        (crate::model::BackstageRoute::Http, 900, 1)
    );
    assert!(!format!("{:?}", sinks[0]).contains("tok-0123456789"));
    let bad = "soundcheck:\n  events:\n    sinks:\n      backstage:\n        - { id: a, baseUrl: 'ftp://x' }\n        - { id: b, baseUrl: 'http://x', route: kafka, token: tok-0123456789 }\n        - { id: c, baseUrl: 'http://x', route: http, requireSubscriber: true }\n        - { id: c, baseUrl: 'http://y', route: http }\n        - { id: d, baseUrl: 'http://y', token: short }\n        - { id: e, baseUrl: 'http://y', route: http, token: tok-0123456789 }\n";
    assert_eq!(
        errors(bad),
        [
            "c.yaml:5:11: a backstage sink on the `bus` route needs a `token` (a static token of Backstage's `backend.auth.externalAccess`)",
            "c.yaml:5:29: `ftp://x` is not an http:// or https:// URL",
            "c.yaml:6:48: unknown route `kafka`; expected `bus` or `http`",
            "c.yaml:7:73: `requireSubscriber` applies to the `bus` route only",
            "c.yaml:8:11: duplicate backstage sink id `c`",
            "c.yaml:9:48: Backstage static tokens are at least 8 characters without whitespace",
            "c.yaml:10:61: the `http` route sends no `token`: HTTP ingress needs none, and Backstage would hand the `authorization` header to subscribers as metadata",
        ]
    );
}

#[test]
fn the_state_cache_size_is_read_and_range_checked() {
    let c = load("soundcheck:\n  server: { stateCacheEntities: 0 }\n")
        .unwrap()
        .config;
    assert_eq!(c.server.state_cache_entities, 0);
    let c = load("soundcheck: {}\n").unwrap().config;
    assert_eq!(c.server.state_cache_entities, 200_000);
    assert_eq!(
        errors("soundcheck:\n  server: { stateCacheEntities: -1 }\n"),
        [
            "c.yaml:2:33: expected an integer from 0 to 10000000 for `stateCacheEntities`, found a number"
        ]
    );
}
