//! A synthetic, deterministic workload: a catalog of components, facts from five sources and
//! checks that use every operator, for benchmarks and the json-rules-engine comparison. The
//! checks stay inside the semantics both engines share (scalar `equal`, integer numbers,
//! simple regexes), so any disagreement is a real bug.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Flags of `soundcheck bench generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of catalog entities.
    #[arg(long, default_value_t = 10_000)]
    pub entities: usize,
    /// Number of checks.
    #[arg(long, default_value_t = 50)]
    pub checks: usize,
    /// Number of tracks (3 levels each).
    #[arg(long, default_value_t = 6)]
    pub tracks: usize,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Output directory (created): app-config.yaml, catalog.jsonl, facts.jsonl.
    #[arg(long)]
    pub out: PathBuf,
}

const TYPES: [&str; 3] = ["service", "website", "library"];
const LIFECYCLES: [&str; 3] = ["production", "experimental", "deprecated"];
const TAGS: [&str; 6] = ["java", "go", "python", "payments", "internal", "pii"];
const LICENSES: [&str; 4] = ["Apache-2.0", "MIT", "GPL-3.0", "NOASSERTION"];

/// Writes the workload.
pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create `{}`", args.out.display()))?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let config = json!({"soundcheck": {"checks": checks(args.checks), "tracks": tracks(args.tracks, args.checks, &mut rng)}});
    std::fs::write(
        args.out.join("app-config.yaml"),
        serde_json::to_string_pretty(&config)?,
    )?;
    let mut catalog = BufWriter::new(File::create(args.out.join("catalog.jsonl"))?);
    let mut facts = BufWriter::new(File::create(args.out.join("facts.jsonl"))?);
    for i in 0..args.entities {
        let entity = entity(i, &mut rng);
        serde_json::to_writer(&mut catalog, &entity)?;
        catalog.write_all(b"\n")?;
        let entity_ref = format!("component:default/svc-{i:06}");
        for (fact_ref, data) in entity_facts(&mut rng) {
            if rng.random_bool(0.08) {
                continue;
            }
            let line = json!({"factRef": fact_ref, "entityRef": entity_ref, "data": data, "timestamp": "2026-11-20T10:00:00Z"});
            serde_json::to_writer(&mut facts, &line)?;
            facts.write_all(b"\n")?;
        }
    }
    catalog.flush()?;
    facts.flush()?;
    eprintln!(
        "wrote {} entities, {} checks, {} tracks to {}",
        args.entities,
        args.checks,
        args.tracks,
        args.out.display()
    );
    Ok(())
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

pub(crate) fn entity(i: usize, rng: &mut StdRng) -> Value {
    let tags: Vec<&str> = TAGS
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.3))
        .collect();
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": format!("svc-{i:06}"),
            "description": if rng.random_bool(0.8) { "A generated component" } else { "" },
            "tags": tags,
            "annotations": {"github.com/project-slug": format!("acme/svc-{i:06}"), "pagerduty.com/service-id": format!("P{i}")}
        },
        "spec": {
            "type": pick(rng, &TYPES),
            "lifecycle": pick(rng, &LIFECYCLES),
            "owner": format!("group:default/team-{}", rng.random_range(0..40))
        }
    })
}

pub(crate) fn entity_facts(rng: &mut StdRng) -> Vec<(&'static str, Value)> {
    vec![
        (
            "github:default/repo_details",
            json!({
                "private": rng.random_bool(0.7), "default_branch": if rng.random_bool(0.85) { "main" } else { "master" },
                "open_issues_count": rng.random_range(0..60), "license": {"spdx_id": pick(rng, &LICENSES)},
                "topics": TAGS.iter().copied().filter(|_| rng.random_bool(0.25)).collect::<Vec<_>>(), "archived": rng.random_bool(0.05)
            }),
        ),
        (
            "scm:default/files",
            json!({
                "readme": rng.random_bool(0.9), "codeowners": rng.random_bool(0.6), "dockerfile": rng.random_bool(0.7),
                "java_version": pick(rng, &["11", "17", "21"]), "node_version": pick(rng, &["16.20.0", "18.19.0", "20.11.1"])
            }),
        ),
        (
            "sonarqube:default/measures",
            json!({
                "coverage": rng.random_range(20..100), "bugs": rng.random_range(0..8), "vulnerabilities": rng.random_range(0..4),
                "quality_gate": pick(rng, &["OK", "OK", "WARN", "ERROR"])
            }),
        ),
        (
            "pagerduty:default/service",
            json!({
                "status": pick(rng, &["active", "active", "disabled"]), "on_call_count": rng.random_range(0..4),
                "incidents_last_30d": rng.random_range(0..12)
            }),
        ),
        (
            "ci:default/pipeline",
            json!({"passing": rng.random_bool(0.8), "duration_seconds": rng.random_range(60..1800), "max_duration_seconds": 900}),
        ),
    ]
}

fn leaf(fact: &str, path: &str, operator: &str, value: Value) -> Value {
    json!({"factRef": fact, "path": path, "operator": operator, "value": value})
}

/// The check templates; check `i` uses template `i % len` with a threshold varied by `i`.
fn template(i: usize) -> Value {
    let n = (i / 16) as i64;
    let (gh, scm, sq, pd, ci, cat) = (
        "github:default/repo_details",
        "scm:default/files",
        "sonarqube:default/measures",
        "pagerduty:default/service",
        "ci:default/pipeline",
        "catalog:default/entity_descriptor",
    );
    match i % 16 {
        0 => json!({"rule": leaf(scm, "$.readme", "equal", json!(true))}),
        1 => json!({"rule": leaf(gh, "$.default_branch", "notEqual", json!("master"))}),
        2 => json!({"rule": leaf(sq, "$.bugs", "lessThan", json!(3 + n))}),
        3 => {
            json!({"rule": leaf(gh, "$.open_issues_count", "lessThanInclusive", json!(30 + n)), "warning": true})
        }
        4 => json!({"rule": leaf(sq, "$.coverage", "greaterThan", json!(60 + n))}),
        5 => {
            json!({"rule": leaf(scm, "$.java_version", "greaterThanInclusive", json!(17)), "filter": {"spec.type": "service"}})
        }
        6 => json!({"rule": leaf(gh, "$.license.spdx_id", "in", json!(["Apache-2.0", "MIT"]))}),
        7 => json!({"rule": leaf(sq, "$.quality_gate", "notIn", json!(["ERROR"]))}),
        8 => {
            json!({"rule": leaf(cat, "$.metadata.tags", "contains", json!("internal")), "exclude": {"spec.lifecycle": "experimental"}})
        }
        9 => json!({"rule": leaf(gh, "$.topics", "doesNotContain", json!("pii"))}),
        10 => {
            json!({"rule": leaf(scm, "$.node_version", "matches", json!("^(18|20)\\.")), "warning": true})
        }
        11 => {
            json!({"rule": {"all": [leaf(pd, "$.status", "equal", json!("active")), leaf(pd, "$.on_call_count", "greaterThanInclusive", json!(1))]},
                     "filter": [{"spec.type": "service"}, {"spec.type": "website"}]})
        }
        12 => {
            json!({"rule": {"any": [leaf(scm, "$.codeowners", "equal", json!(true)), {"not": leaf(cat, "$.spec.lifecycle", "equal", json!("production"))}]}})
        }
        13 => {
            json!({"rule": leaf(ci, "$.duration_seconds", "lessThanInclusive", json!({"factRef": ci, "path": "$.max_duration_seconds"}))})
        }
        14 => json!({"rule": leaf(pd, "$.incidents_last_30d", "lessThan", json!(6 + n)),
                     "applicable": leaf(cat, "$.spec.lifecycle", "equal", json!("production"))}),
        _ => json!({"rule": {"all": [leaf(cat, "$.metadata.description", "matches", json!(".+")),
                                     {"any": [leaf(ci, "$.passing", "equal", json!(true)), leaf(gh, "$.archived", "equal", json!(true))]}]}}),
    }
}

pub(crate) fn checks(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let mut check = template(i);
            if let Some(obj) = check.as_object_mut() {
                obj.insert("id".into(), json!(format!("check-{i:03}")));
                obj.insert("name".into(), json!(format!("Generated check {i}")));
            }
            check
        })
        .collect()
}

pub(crate) fn tracks(count: usize, checks: usize, rng: &mut StdRng) -> Vec<Value> {
    (0..count)
        .map(|t| {
            let levels: Vec<Value> = (1..=3)
                .map(|ordinal| {
                    let ids: Vec<Value> = (0..4).map(|_| json!({"id": format!("check-{:03}", rng.random_range(0..checks.max(1)))})).collect();
                    json!({"ordinal": ordinal, "name": format!("Level {ordinal}"), "checks": ids})
                })
                .collect();
            let filter = if t % 2 == 0 { json!({"kind": "component"}) } else { json!({"spec.type": ["service", "website"]}) };
            json!({"id": format!("track-{t}"), "name": format!("Generated track {t}"), "filter": filter, "levels": levels})
        })
        .collect()
}
