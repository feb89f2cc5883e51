//! `soundcheck evaluate` on the bundled example and on small hand-made inputs.

use crate::helpers::{Scratch, assert_golden, code, soundcheck, stderr, stdout};

const EXAMPLE: [&str; 6] = [
    "--config",
    "examples/app-config.yaml",
    "--catalog",
    "examples/catalog/catalog-info.yaml",
    "--facts",
    "examples/facts.jsonl",
];

fn evaluate(extra: &[&str]) -> std::process::Output {
    let mut args = vec!["evaluate"];
    args.extend(EXAMPLE);
    args.extend(extra);
    soundcheck(&args)
}

#[test]
fn the_example_matches_its_golden_results_and_certifications() {
    let s = Scratch::new();
    let (results, certs) = (s.path("results.jsonl"), s.path("certs.jsonl"));
    let out = evaluate(&["--results-out", &results, "--certifications-out", &certs]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_golden("example-results.jsonl", &s.read("results.jsonl"));
    assert_golden("example-certifications.jsonl", &s.read("certs.jsonl"));
    assert_golden("example-summary.txt", &stdout(&out));
}

#[test]
fn the_release_gate_lists_offenders_and_exits_1() {
    let out = evaluate(&[
        "--quiet",
        "--require",
        "basic-health:1",
        "--require",
        "security:1",
    ]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("release gate failed"), "{err}");
    assert!(
        err.contains("component:default/checkout-legacy: basic-health at no level, needs level 1"),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "--quiet prints no summary");
    let out = evaluate(&[
        "--quiet",
        "--require",
        "reliability:1",
        "--require",
        "nosuch:1",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no track `nosuch`"),
        "{}",
        stderr(&out)
    );
    let out = evaluate(&["--quiet", "--require", "basic-health:9"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("has no level 9 (highest is 3)"),
        "{}",
        stderr(&out)
    );
}

const SMALL_CONFIG: &str = r#"soundcheck:
  checks:
    - id: fresh
      rule: { factRef: 'ci:default/build', path: '$.ok', operator: equal, value: true }
  tracks:
    - id: t
      levels:
        - { ordinal: 1, checks: [ { id: fresh } ] }
"#;
const SMALL_CATALOG: &str = "{\"kind\":\"Component\",\"metadata\":{\"name\":\"A\"}}\n{\"kind\":\"Component\",\"metadata\":{\"name\":\"b\",\"namespace\":\"Other\"}}\n";

fn small(facts: &str) -> (Scratch, std::process::Output) {
    let s = Scratch::new();
    let config = s.file("c.yaml", SMALL_CONFIG);
    let catalog = s.file("catalog.jsonl", SMALL_CATALOG);
    let facts = s.file("facts.jsonl", facts);
    let results = s.path("results.jsonl");
    let certs = s.path("certs.jsonl");
    let out = soundcheck(&[
        "evaluate",
        "-q",
        "--config",
        &config,
        "--catalog",
        &catalog,
        "--facts",
        &facts,
        "--results-out",
        &results,
        "--certifications-out",
        &certs,
    ]);
    (s, out)
}

#[test]
fn newest_timestamp_wins_whatever_the_line_order() {
    let facts = concat!(
        r#"{"factRef":"ci:default/build","entityRef":"component:default/A","data":{"ok":true},"timestamp":"2026-01-02T00:00:00Z"}"#,
        "\n",
        r#"{"factRef":{"source":"ci","name":"build"},"entityRef":"Component:default/A","data":{"ok":false},"timestamp":"2026-01-01T00:00:00Z"}"#,
        "\n",
        r#"{"factRef":"ci:default/build","entityRef":"component:other/b","data":{"ok":false},"timestamp":"2026-01-01T00:00:00Z"}"#,
        "\n",
        r#"{"factRef":"ci:default/build","entityRef":"component:other/b","data":{"ok":true},"timestamp":"2026-01-03T00:00:00+01:00"}"#,
        "\n",
    );
    let (s, out) = small(facts);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        s.read("results.jsonl"),
        concat!(
            r#"{"entityRef":"component:default/A","checkId":"fresh","state":"passed","scope":"default"}"#,
            "\n",
            r#"{"entityRef":"component:other/b","checkId":"fresh","state":"passed","scope":"default"}"#,
            "\n",
        )
    );
}

#[test]
fn scopes_are_evaluated_separately() {
    let facts = concat!(
        r#"{"factRef":"ci:default/build","entityRef":"component:default/A","data":{"ok":true}}"#,
        "\n",
        r#"{"factRef":"ci:default/build","entityRef":"component:default/A","data":{"ok":false},"scope":"release-1"}"#,
        "\n",
    );
    let (s, out) = small(facts);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let results = s.read("results.jsonl");
    assert!(
        results.contains(r#""state":"passed","scope":"default""#),
        "{results}"
    );
    assert!(
        results.contains(r#""state":"failed","scope":"release-1""#),
        "{results}"
    );
    let certs = s.read("certs.jsonl");
    assert_eq!(
        certs.lines().count(),
        3,
        "A in two scopes, b in default: {certs}"
    );
    assert!(certs.contains(r#"{"entityRef":"component:other/b","trackId":"t","levelOrdinal":1,"state":"failed","cumulativeState":"failed","scope":"default"}"#), "{certs}");
}

#[test]
fn bad_fact_lines_are_reported_with_line_numbers_and_nothing_is_evaluated() {
    let facts = concat!(
        r#"{"factRef":"ci:default/build","entityRef":"component:default/A","data":{"ok":true}}"#,
        "\n",
        "\n",
        r#"{"factRef":"ci:default/build","entityRef":"default/A","data":{}}"#,
        "\n",
        "not json\n",
        r#"{"factRef":"ci:default/build","entityRef":"component:default/A","data":{},"timestamp":"yesterday"}"#,
        "\n",
    );
    let (s, out) = small(facts);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    let file = s.path("facts.jsonl");
    assert!(
        err.contains(&format!("{file}:3: entity ref `default/A` has no kind")),
        "{err}"
    );
    assert!(err.contains(&format!("{file}:4: invalid fact")), "{err}");
    assert!(
        err.contains(&format!("{file}:5: invalid timestamp `yesterday`")),
        "{err}"
    );
    assert!(err.contains("3 invalid fact line(s)"), "{err}");
    assert!(!std::path::Path::new(&s.path("results.jsonl")).exists());
}

#[test]
fn facts_for_unknown_entities_are_ignored_with_a_note() {
    let facts = r#"{"factRef":"ci:default/build","entityRef":"component:default/ghost","data":{"ok":true}}"#;
    let (s, out) = small(facts);
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("1 fact(s) name entities that are not in the catalog"),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.read("results.jsonl"), "", "no facts: nothing reported");
}

#[test]
fn yaml_and_json_lines_catalogs_agree() {
    let s = Scratch::new();
    let catalog = s.file("c.yaml", "kind: Component\nmetadata: { name: A }\n---\nkind: Component\nmetadata:\n  name: b\n  namespace: Other\n");
    let bad = s.file(
        "bad.yaml",
        "kind: Component\nmetadata: { name: A }\n---\nmetadata: { name: nokind }\n",
    );
    let config = s.file("config.yaml", SMALL_CONFIG);
    let results = s.path("r.jsonl");
    let out = soundcheck(&[
        "evaluate",
        "-q",
        "--config",
        &config,
        "--catalog",
        &catalog,
        "--certifications-out",
        &results,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s.read("r.jsonl").lines().count(), 2);
    let out = soundcheck(&["evaluate", "-q", "--config", &config, "--catalog", &bad]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(&format!("{bad}:4: entity has no string `kind`")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_generated_workload_evaluates_and_reports_stats() {
    let s = Scratch::new();
    let dir = s.path("w");
    let out = soundcheck(&[
        "bench",
        "generate",
        "--entities",
        "300",
        "--checks",
        "20",
        "--tracks",
        "2",
        "--out",
        &dir,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats = s.path("stats.json");
    let out = soundcheck(&[
        "evaluate",
        "-q",
        "--config",
        &format!("{dir}/app-config.yaml"),
        "--catalog",
        &format!("{dir}/catalog.jsonl"),
        "--facts",
        &format!("{dir}/facts.jsonl"),
        "--stats-out",
        &stats,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats: serde_json::Value = serde_json::from_str(&s.read("stats.json")).unwrap();
    assert_eq!(stats["entities"], 300);
    assert_eq!(stats["pairs"], 300 * 20);
    assert_eq!(stats["checks"], 20);
    let passed: u64 = stats["summary"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["passed"].as_u64().unwrap())
        .sum();
    let failed: u64 = stats["summary"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["failed"].as_u64().unwrap())
        .sum();
    assert!(
        passed > 0 && failed > 0,
        "a useful workload has both outcomes: {passed} passed, {failed} failed"
    );
}

#[test]
fn with_no_inputs_the_bundled_example_is_evaluated() {
    let out = soundcheck(&["evaluate"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("evaluating the bundled example"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with("Certification (57 entities)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn facts_without_config_and_catalog_are_refused() {
    let out = soundcheck(&["evaluate", "--facts", "examples/facts.jsonl"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--facts needs --config and --catalog"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_json_array_catalog_is_read_and_entity_descriptor_lines_are_skipped() {
    let s = Scratch::new();
    let config = s.file(
        "c.yaml",
        "soundcheck:\n  checks:\n    - id: service\n      rule: { factRef: 'catalog:default/entity_descriptor', path: '$.spec.type', operator: equal, value: service }\n",
    );
    let catalog = s.file(
        "catalog.json",
        r#"[{"kind":"Component","metadata":{"name":"a"},"spec":{"type":"service"}}]"#,
    );
    let facts = s.file(
        "facts.jsonl",
        r#"{"factRef":"catalog:default/entity_descriptor","entityRef":"component:default/a","data":{"spec":{"type":"website"}}}"#,
    );
    let results = s.path("r.jsonl");
    let out = soundcheck(&[
        "evaluate",
        "-q",
        "--config",
        &config,
        "--catalog",
        &catalog,
        "--facts",
        &facts,
        "--results-out",
        &results,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        s.read("r.jsonl"),
        "{\"entityRef\":\"component:default/a\",\"checkId\":\"service\",\"state\":\"passed\",\"scope\":\"default\"}\n"
    );
}

const EVENTS_CONFIG: &str = r#"soundcheck:
  events:
    enabled: true
  checks:
    - id: private
      rule: { factRef: 'github:default/repo', path: '$.private', operator: equal, value: true }
    - id: coverage
      warning: true
      rule: { factRef: 'sonar:default/measures', path: '$.coverage', operator: greaterThan, value: 80 }
    - id: service-only
      filter: { spec.type: service }
      rule: { factRef: 'github:default/repo', path: '$.archived', operator: equal, value: false }
  tracks:
    - id: health
      levels:
        - { ordinal: 1, checks: [ { id: private } ] }
        - { ordinal: 2, checks: [ { id: coverage }, { id: service-only } ] }
"#;

/// Replaces the values that differ per run (event ids, times), keeping the emitted key order.
fn redact(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let id = v["metadata"]["eventId"].as_str().unwrap();
    let ts = &v["eventPayload"]["timestampMs"];
    line.replace(id, "<event-id>")
        .replace(&format!("\"timestampMs\":{ts}"), "\"timestampMs\":0")
}

#[test]
fn events_out_has_exact_envelopes_and_repeats_nothing() {
    let s = Scratch::new();
    let config = s.file("c.yaml", EVENTS_CONFIG);
    let catalog = s.file("catalog.jsonl", "{\"kind\":\"Component\",\"metadata\":{\"name\":\"web\"},\"spec\":{\"type\":\"website\"}}\n");
    let facts_a = s.file(
        "a.jsonl",
        concat!(
            r#"{"factRef":"github:default/repo","entityRef":"component:default/web","data":{"private":true,"archived":false}}"#, "\n",
            r#"{"factRef":"sonar:default/measures","entityRef":"component:default/web","data":{"coverage":50}}"#, "\n",
        ),
    );
    let facts_b = s.file(
        "b.jsonl",
        concat!(
            r#"{"factRef":"github:default/repo","entityRef":"component:default/web","data":{"private":false,"archived":false}}"#, "\n",
            r#"{"factRef":"sonar:default/measures","entityRef":"component:default/web","data":{"coverage":50}}"#, "\n",
        ),
    );
    let url = format!("sqlite://{}", s.path("state.db"));
    let events = s.path("events.jsonl");
    let mut counts = Vec::new();
    for facts in [&facts_a, &facts_a, &facts_b] {
        let out = soundcheck(&[
            "evaluate",
            "-q",
            "--config",
            &config,
            "--catalog",
            &catalog,
            "--facts",
            facts,
            "--database",
            &url,
            "--events-out",
            &events,
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        counts.push(std::fs::read_to_string(&events).unwrap().lines().count());
    }
    assert_eq!(
        counts,
        [5, 5, 8],
        "first run: 3 checks + 2 levels; second: nothing; third: the check and both levels"
    );
    let redacted: Vec<String> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(redact)
        .collect();
    assert_golden("events-out.jsonl", &(redacted.join("\n") + "\n"));
}

/// Event lines without what differs between runs (event id, time), sorted.
fn comparable_events(path: &str) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(redact)
        .collect();
    lines.sort();
    lines
}

/// Several blocks (PostgreSQL writes one while it compares the next): every backend stores
/// the same events, at contiguous outbox positions, each with its transition, and a second
/// run on the same input adds nothing.
#[tokio::test]
async fn batch_runs_of_several_blocks_store_the_same_events_on_every_backend() {
    use soundcheck::store::StateStore;
    let s = Scratch::new();
    let dir = s.path("w");
    let generated = soundcheck(&[
        "bench",
        "generate",
        "--entities",
        "5000",
        "--checks",
        "8",
        "--tracks",
        "2",
        "--out",
        &dir,
    ]);
    assert_eq!(code(&generated), 0, "{}", stderr(&generated));
    let events_on = s.file("events.yaml", "soundcheck:\n  events:\n    enabled: true\n");
    let mut per_backend = Vec::new();
    for b in crate::backends::all().await {
        let out_file = s.path(&format!("{}-events.jsonl", b.name));
        for run in 0..2 {
            let out = soundcheck(&[
                "evaluate",
                "-q",
                "--config",
                &format!("{dir}/app-config.yaml"),
                &events_on,
                "--catalog",
                &format!("{dir}/catalog.jsonl"),
                "--facts",
                &format!("{dir}/facts.jsonl"),
                "--database",
                &b.url,
                "--events-out",
                &out_file,
            ]);
            assert_eq!(code(&out), 0, "{} run {run}: {}", b.name, stderr(&out));
        }
        let audit = b.store.audit_outbox().await.unwrap();
        assert_eq!(
            (
                audit.transitions_without_event,
                audit.events_without_transition
            ),
            (0, 0),
            "{}: {audit:?}",
            b.name
        );
        let seqs: Vec<i64> = b
            .store
            .events_after(0, i64::MAX)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        let n = i64::try_from(seqs.len()).unwrap();
        assert!(n > 10_000, "{}: {n} events", b.name);
        assert_eq!(
            seqs,
            (1..=n).collect::<Vec<_>>(),
            "{}: contiguous positions",
            b.name
        );
        let lines = comparable_events(&out_file);
        assert_eq!(
            lines.len() as i64,
            n,
            "{}: the second run added nothing",
            b.name
        );
        per_backend.push((b.name, lines));
    }
    if let [(_, sqlite), (_, postgres)] = per_backend.as_slice() {
        assert!(
            sqlite == postgres,
            "SQLite and PostgreSQL stored different events"
        );
    }
}
