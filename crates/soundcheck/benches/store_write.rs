//! The write of a fact submission on SQLite, apart from HTTP and evaluation: one transaction
//! holding a batch's facts, result and level changes and their events, into a database that
//! already holds a catalog's worth of state. In `soundcheck serve` this write is the critical
//! path of ingestion (BENCHMARKS.md § 5); here it is measured alone, so two storage layouts
//! or settings can be compared in one run on a noisy machine.
//!
//! A batch is close to the end-to-end load's (`soundcheck bench load ... ingest`): 500
//! distinct random entities, each with one new fact, three results and two levels that
//! change (1,500 and 1,000 rows, 12 % more than the 1,340 and 890 measured there). Every
//! measured batch is new, changes what is stored, is in key order and is encoded before the
//! clock starts, as in `serve`. Unlike `serve`, the store has no state cache to update
//! after the commit. `SOUNDCHECK_BENCH_ENTITIES` sets the catalog size (default 20,000; the
//! end-to-end runs use 100,000, whose tables are deeper and whose writes cost more per row).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark with fixed inputs; a failure should stop it loudly"
)]

use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use soundcheck::store::{
    CertificationChange, FactRecord, ResultChange, SqlStore, StateChanges, StateStore,
    StoredCertification, StoredResult,
};
use soundcheck_core::model::{CertState, CheckState};

const CHECKS: usize = 50;
const TRACKS: usize = 6;
const LEVELS: usize = 3;
const FACT_REFS: [&str; 4] = [
    "github:default/repo_details",
    "scm:default/files",
    "sonarqube:default/measures",
    PIPELINE,
];
const PIPELINE: &str = "ci:default/pipeline";
/// Entities per batch (one fact each) and per transaction while filling.
const BATCH: usize = 500;
const RESULTS_PER_ENTITY: usize = 3;
const LEVELS_PER_ENTITY: usize = 2;
/// Times are milliseconds since the epoch, as in `serve`: a stored time keeps its size in
/// the row when it moves, so an update can overwrite a row in place.
const START_MS: i64 = 1_795_000_000_000;

/// Ids shaped like `soundcheck bench generate`'s, so keys are as long as in the end-to-end run.
fn entity(i: usize) -> String {
    format!("component:default/svc-{i:06}")
}

fn check(j: usize) -> String {
    format!("check-{j:03}")
}

fn track(t: usize) -> String {
    format!("track-{t}")
}

fn check_state(passed: bool) -> CheckState {
    if passed {
        CheckState::Passed
    } else {
        CheckState::Failed
    }
}

fn cert_state(passed: bool) -> CertState {
    if passed {
        CertState::Passed
    } else {
        CertState::Failed
    }
}

fn result(entity_ref: &str, check_id: String, passed: bool) -> ResultChange {
    ResultChange {
        result: StoredResult {
            check_id,
            entity_ref: entity_ref.to_string(),
            scope: "default".into(),
            state: check_state(passed),
        },
        previous: Some(check_state(!passed)),
        details: None,
        message: None,
        submitted_by: None,
    }
}

fn level(entity_ref: &str, track_id: String, ordinal: usize, passed: bool) -> CertificationChange {
    CertificationChange {
        certification: StoredCertification {
            track_id,
            entity_ref: entity_ref.to_string(),
            level_ordinal: u32::try_from(ordinal).unwrap(),
            scope: "default".into(),
            state: cert_state(passed),
            cumulative_state: cert_state(passed),
        },
        previous_state: Some(cert_state(!passed)),
        previous_cumulative: Some(cert_state(!passed)),
    }
}

/// Stored facts other than the CI pipeline, about as large as the generated repository
/// facts (about 140 bytes of JSON).
fn fact_data(n: u64) -> Value {
    json!({"archived": false, "default_branch": "main", "license": {"spdx_id": "Apache-2.0"},
        "open_issues_count": n % 40, "private": n.is_multiple_of(2), "topics": ["go", "python"]})
}

/// A CI pipeline fact as the load tool sends it (about 66 bytes of JSON).
fn pipeline_data(rng: &mut StdRng) -> Value {
    json!({"passing": rng.random_bool(0.5), "duration_seconds": rng.random_range(60..1800),
        "max_duration_seconds": 900})
}

fn fact(entity_ref: &str, fact_ref: &str, data: Value, timestamp_ms: i64) -> FactRecord {
    FactRecord {
        entity_ref: entity_ref.to_string(),
        fact_ref: fact_ref.to_string(),
        scope: "default".into(),
        data,
        timestamp_ms,
    }
}

/// What the store holds, so every measured change really changes a row.
struct Model {
    entities: usize,
    /// Per entity: whether each check passed, then whether each (track, level) passed.
    results: Vec<[bool; CHECKS]>,
    levels: Vec<[bool; TRACKS * LEVELS]>,
    round: i64,
    rng: StdRng,
}

impl Model {
    fn new(entities: usize) -> Self {
        Self {
            entities,
            results: vec![[true; CHECKS]; entities],
            levels: vec![[true; TRACKS * LEVELS]; entities],
            round: 0,
            rng: StdRng::seed_from_u64(7),
        }
    }

    /// The model's state, `BATCH` entities per transaction.
    async fn fill(&self, store: &SqlStore) {
        for start in (0..self.entities).step_by(BATCH) {
            let mut changes = StateChanges {
                now_ms: START_MS,
                ..Default::default()
            };
            for i in start..(start + BATCH).min(self.entities) {
                let e = entity(i);
                changes
                    .results
                    .extend((0..CHECKS).map(|j| result(&e, check(j), self.results[i][j])));
                for t in 0..TRACKS {
                    changes.certifications.extend(
                        (0..LEVELS)
                            .map(|l| level(&e, track(t), l + 1, self.levels[i][t * LEVELS + l])),
                    );
                }
                changes.facts.extend(FACT_REFS.iter().map(|f| {
                    let data = if *f == PIPELINE {
                        json!({"passing": true, "duration_seconds": 600, "max_duration_seconds": 900})
                    } else {
                        fact_data(i as u64)
                    };
                    fact(&e, f, data, START_MS)
                }));
            }
            store.apply(&changes, false).await.unwrap();
        }
    }

    /// The next submission: `BATCH` distinct random entities, each with a new fact, a few
    /// results flipped and a few levels flipped, one second after the previous one.
    fn next_batch(&mut self) -> StateChanges {
        self.round += 1;
        let now_ms = START_MS + 1_000 * self.round;
        let mut changes = StateChanges {
            now_ms,
            ..Default::default()
        };
        // In key order, as `serve` writes a submission (grouped by entity, checks and levels
        // in their order); zero-padded ids sort as their numbers do.
        for i in sorted(sample(&mut self.rng, self.entities, BATCH)) {
            let e = entity(i);
            for j in sorted(sample(&mut self.rng, CHECKS, RESULTS_PER_ENTITY)) {
                let passed = !self.results[i][j];
                self.results[i][j] = passed;
                changes.results.push(result(&e, check(j), passed));
            }
            let t = self.rng.random_range(0..TRACKS);
            for l in sorted(sample(&mut self.rng, LEVELS, LEVELS_PER_ENTITY)) {
                let passed = !self.levels[i][t * LEVELS + l];
                self.levels[i][t * LEVELS + l] = passed;
                changes
                    .certifications
                    .push(level(&e, track(t), l + 1, passed));
            }
            let data = pipeline_data(&mut self.rng);
            changes.facts.push(fact(&e, PIPELINE, data, now_ms));
        }
        changes
    }
}

fn sorted(indices: rand::seq::index::IndexVec) -> Vec<usize> {
    let mut indices = indices.into_vec();
    indices.sort_unstable();
    indices
}

fn bench_write(c: &mut Criterion) {
    let entities: usize = std::env::var("SOUNDCHECK_BENCH_ENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    // Multi-threaded, as in `serve`: the background WAL checkpointer runs alongside.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut model = Model::new(entities);
    let store = runtime.block_on(async {
        let store = SqlStore::open(&url)
            .await
            .expect("a SQLite file in a new temporary directory opens");
        model.fill(&store).await;
        store
    });
    let mut group = c.benchmark_group("store write");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function(
        format!("SQLite: one submission of {BATCH} facts, events on ({entities} entities stored)"),
        |b| {
            b.iter_batched_ref(
                // Encoded beforehand, as `serve` does while the previous submission commits.
                || {
                    let changes = model.next_batch();
                    let encoded = store.encode(&changes);
                    (changes, encoded)
                },
                |(changes, encoded)| {
                    runtime
                        .block_on(store.apply_encoded(changes, encoded, true))
                        .unwrap()
                },
                BatchSize::PerIteration,
            );
        },
    );
    group.finish();
}

criterion_group!(benches, bench_write);
criterion_main!(benches);
