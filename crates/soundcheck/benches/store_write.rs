//! The write of a fact submission on SQLite, apart from HTTP and evaluation: one transaction
//! holding a batch's facts, result and level changes and their events, into a database that
//! already holds a catalog's worth of state. In `soundcheck serve` this write is the critical
//! path of ingestion (BENCHMARKS.md § 5); here it is measured alone, so two storage layouts
//! or settings can be compared in one run on a noisy machine.
//!
//! The shape of a batch follows the end-to-end load (`soundcheck bench load ... ingest`):
//! 500 random entities, each with one new fact, three changed results and two changed
//! levels (about 1,350 and 900 per batch were measured there). `SOUNDCHECK_BENCH_ENTITIES`
//! sets the catalog size (default 20,000; the end-to-end runs use 100,000, whose tables are
//! deeper and whose writes cost more per row).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark with fixed inputs; a failure should stop it loudly"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use serde_json::json;
use soundcheck::store::{
    CertificationChange, FactRecord, ResultChange, SqlStore, StateChanges, StateStore,
    StoredCertification, StoredResult,
};
use soundcheck_core::model::{CertState, CheckState};

const CHECKS: usize = 50;
const TRACKS: usize = 6;
const LEVELS: u32 = 3;
const FACT_REFS: [&str; 4] = [
    "github:default/repo_details",
    "scm:default/files",
    "sonarqube:default/measures",
    "ci:default/pipeline",
];
/// Entities per batch (one fact each) and per transaction while filling.
const BATCH: usize = 500;
const RESULTS_PER_ENTITY: usize = 3;
const LEVELS_PER_ENTITY: usize = 2;
/// Distinct batches cycled through while measuring.
const PREPARED: usize = 64;

fn entity(i: usize) -> String {
    format!("component:default/svc-{i:06}")
}

fn check(j: usize) -> String {
    format!("check-{j:02}-has-a-descriptive-id")
}

fn track(t: usize) -> String {
    format!("track-{t}-readiness")
}

fn result(entity_ref: &str, check_id: String, state: CheckState) -> ResultChange {
    ResultChange {
        result: StoredResult {
            check_id,
            entity_ref: entity_ref.to_string(),
            scope: "default".into(),
            state,
        },
        previous: None,
        details: None,
        message: None,
        submitted_by: None,
    }
}

fn level(
    entity_ref: &str,
    track_id: String,
    ordinal: u32,
    state: CertState,
) -> CertificationChange {
    CertificationChange {
        certification: StoredCertification {
            track_id,
            entity_ref: entity_ref.to_string(),
            level_ordinal: ordinal,
            scope: "default".into(),
            state,
            cumulative_state: state,
        },
        previous_state: None,
        previous_cumulative: None,
    }
}

fn fact(entity_ref: &str, fact_ref: &str, n: u64, timestamp_ms: i64) -> FactRecord {
    FactRecord {
        entity_ref: entity_ref.to_string(),
        fact_ref: fact_ref.to_string(),
        scope: "default".into(),
        data: json!({"passing": n.is_multiple_of(2), "duration_seconds": 60 + n % 1740, "max_duration_seconds": 900}),
        timestamp_ms,
    }
}

/// Every entity's results, levels and facts, `BATCH` entities per transaction.
async fn fill(store: &SqlStore, entities: usize) {
    for start in (0..entities).step_by(BATCH) {
        let mut changes = StateChanges {
            now_ms: 1,
            ..Default::default()
        };
        for i in start..(start + BATCH).min(entities) {
            let e = entity(i);
            changes
                .results
                .extend((0..CHECKS).map(|j| result(&e, check(j), CheckState::Passed)));
            for t in 0..TRACKS {
                changes
                    .certifications
                    .extend((1..=LEVELS).map(|l| level(&e, track(t), l, CertState::Passed)));
            }
            changes
                .facts
                .extend(FACT_REFS.iter().map(|f| fact(&e, f, i as u64, 1)));
        }
        store.apply(&changes, false).await.unwrap();
    }
}

/// One submission's changes: `BATCH` random entities, each with a new fact and a few changed
/// results and levels.
fn batch(rng: &mut StdRng, entities: usize, round: usize) -> StateChanges {
    let now_ms = 1_000 + i64::try_from(round).unwrap();
    let mut changes = StateChanges {
        now_ms,
        ..Default::default()
    };
    for _ in 0..BATCH {
        let e = entity(rng.random_range(0..entities));
        let state = if rng.random_bool(0.5) {
            CheckState::Passed
        } else {
            CheckState::Failed
        };
        for j in sample(rng, CHECKS, RESULTS_PER_ENTITY) {
            changes.results.push(result(&e, check(j), state));
        }
        let level_state = if state == CheckState::Passed {
            CertState::Passed
        } else {
            CertState::Failed
        };
        let t = rng.random_range(0..TRACKS);
        for l in 1..=u32::try_from(LEVELS_PER_ENTITY).unwrap() {
            changes
                .certifications
                .push(level(&e, track(t), l, level_state));
        }
        changes
            .facts
            .push(fact(&e, "ci:default/pipeline", rng.random(), now_ms));
    }
    changes
}

fn bench_write(c: &mut Criterion) {
    let entities: usize = std::env::var("SOUNDCHECK_BENCH_ENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = runtime.block_on(async {
        let store = SqlStore::open(&url)
            .await
            .expect("a SQLite file in a new temporary directory opens");
        fill(&store, entities).await;
        store
    });
    let mut rng = StdRng::seed_from_u64(7);
    let batches: Vec<StateChanges> = (0..PREPARED)
        .map(|round| batch(&mut rng, entities, round))
        .collect();
    let mut group = c.benchmark_group("store write");
    group.sample_size(20);
    let mut next = 0;
    group.bench_function(
        format!("SQLite: one submission of {BATCH} facts, events on ({entities} entities stored)"),
        |b| {
            b.iter(|| {
                let changes = &batches[next % PREPARED];
                next += 1;
                runtime.block_on(store.apply(changes, true)).unwrap()
            });
        },
    );
    group.finish();
}

criterion_group!(benches, bench_write);
criterion_main!(benches);
