//! Unit tests of `store::deferred`: holding, taking back, bulk writes and merged reads.
use super::*;
use crate::store::write_behind::{WRITE_LEVELS, WRITE_RESULTS};
use crate::store::{
    CertificationChange, ResultChange, ResultRow, StoredCertification, StoredResult,
};

fn change(entity: &str, check: &str, state: CheckState, at: i64) -> StateChanges {
    StateChanges {
        now_ms: at,
        results: vec![ResultChange {
            result: StoredResult {
                check_id: check.into(),
                entity_ref: entity.into(),
                scope: "default".into(),
                state,
            },
            previous: None,
            details: None,
            message: None,
            submitted_by: None,
        }],
        certifications: vec![CertificationChange {
            certification: StoredCertification {
                track_id: "t".into(),
                entity_ref: entity.into(),
                level_ordinal: 1,
                scope: "default".into(),
                state: CertState::Passed,
                cumulative_state: CertState::Failed,
            },
            previous_state: None,
            previous_cumulative: None,
        }],
        ..Default::default()
    }
}

/// Held results of `entity`, the layer being written first.
fn held_states(d: &Deferred, entity: &str) -> Vec<(String, CheckState, i64)> {
    let layers = d.lock();
    layers
        .writing
        .as_deref()
        .into_iter()
        .chain([&layers.pending])
        .filter_map(|rows| rows.entities.get(entity))
        .flat_map(|e| e.results.iter().map(|(_, c, (s, at))| (c.clone(), *s, *at)))
        .collect()
}

#[test]
fn a_hold_whose_commit_failed_is_taken_back_and_a_kept_one_stays() {
    let d = Deferred::new(1_000, 0);
    d.hold(&change("e", "c1", CheckState::Passed, 10)).keep();
    // Not kept: the commit failed, the earlier value comes back.
    drop(d.hold(&change("e", "c1", CheckState::Failed, 20)));
    drop(d.hold(&change("e", "c2", CheckState::Failed, 20)));
    assert_eq!(
        held_states(&d, "e"),
        [("c1".into(), CheckState::Passed, 10)]
    );
    assert_eq!(d.lock().pending.len, 2, "one result and one level");
}

#[test]
fn a_bulk_write_that_fails_goes_back_under_newer_changes() {
    let d = Deferred::new(1_000, 0);
    d.hold(&change("e", "c1", CheckState::Passed, 10)).keep();
    d.hold(&change("e", "c2", CheckState::Passed, 10)).keep();
    let taken = d.take().unwrap();
    // Held while the write runs: newer, so it stays over the failed write's copy.
    d.hold(&change("e", "c1", CheckState::Failed, 20)).keep();
    assert_eq!(
        held_states(&d, "e"),
        [
            ("c1".into(), CheckState::Passed, 10),
            ("c2".into(), CheckState::Passed, 10),
            ("c1".into(), CheckState::Failed, 20)
        ]
    );
    drop(taken);
    let mut states = held_states(&d, "e");
    states.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        states,
        [
            ("c1".into(), CheckState::Failed, 20),
            ("c2".into(), CheckState::Passed, 10)
        ]
    );
}

#[test]
fn a_finished_bulk_write_leaves_memory_and_is_encoded_in_key_order() {
    let d = Deferred::new(1_000, 0);
    assert!(!d.due(5_000), "nothing held");
    d.hold(&change("b", "c1", CheckState::Passed, 10)).keep();
    d.hold(&change("a", "c9", CheckState::Failed, 11)).keep();
    assert!(!d.due(500));
    assert!(d.due(1_000));
    let taken = d.take().unwrap();
    assert!(!d.due(5_000), "a write is running");
    assert_eq!(
        taken.chunks(10),
        [
            (WRITE_RESULTS, r#"[["c9","a","default","failed",11],["c1","b","default","passed",10]]"#.to_string()),
            (WRITE_LEVELS, r#"[["t","a",1,"default","passed","failed",11],["t","b",1,"default","passed","failed",10]]"#.to_string()),
        ]
    );
    assert_eq!(taken.chunks(1).len(), 4);
    assert!(taken.still_writing());
    assert_eq!(taken.len(), 4);
    taken.done(2_000);
    d.finished();
    assert!(d.is_empty() && !d.due(2_500));
    d.hold(&change("a", "c9", CheckState::Passed, 2_100)).keep();
    assert!(d.due(3_000), "due again once the last one finished");
    assert!(!d.due(3_000), "and started only once");
}

#[test]
fn reads_of_one_entity_see_the_held_rows_over_the_stored_ones() {
    let d = Deferred::new(1_000, 0);
    d.hold(&change("e", "c2", CheckState::Failed, 50)).keep();
    let stored = |check: &str| ResultRow {
        check_id: check.into(),
        entity_ref: "e".into(),
        scope: "default".into(),
        state: CheckState::Passed,
        details: Some(serde_json::json!({"a": 1})),
        message: None,
        submitted_by: None,
        last_checked: 1,
        last_changed: 1,
    };
    let mut rows = vec![stored("c1"), stored("c2")];
    let view = d.view(["e", "f"], d.epoch()).unwrap();
    view.patch_result_rows("e", None, &[], &mut rows);
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.check_id.as_str(), r.state, r.details.is_some()))
        .collect();
    assert_eq!(
        got,
        [
            ("c1", CheckState::Passed, true),
            ("c2", CheckState::Failed, false)
        ]
    );
    let mut other_scope = vec![];
    view.patch_result_rows("e", Some("other"), &[], &mut other_scope);
    assert!(other_scope.is_empty());
    let mut levels = vec![];
    view.patch_level_rows("e", &mut levels);
    assert_eq!(
        (levels.len(), levels[0].cumulative_state),
        (1, CertState::Failed)
    );
    let mut none = vec![];
    view.patch_level_rows("f", &mut none);
    assert!(none.is_empty(), "another entity");
}

#[test]
fn a_read_that_spans_a_finished_bulk_write_is_made_again() {
    let d = Deferred::new(1_000, 0);
    d.hold(&change("e", "c1", CheckState::Failed, 10)).keep();
    let before = d.epoch();
    let taken = d.take().unwrap();
    // Still held while being written: a read merges it.
    assert!(d.view(["e"], before).is_some());
    taken.done(20);
    // Written and gone from memory: a table read from before may have missed it.
    assert!(d.view(["e"], before).is_none());
    let view = d.view(["e"], d.epoch()).unwrap();
    let mut rows = vec![];
    view.patch_results(&mut rows);
    assert!(rows.is_empty(), "nothing held any more");
}

#[test]
fn a_view_puts_pending_rows_over_the_ones_being_written() {
    let d = Deferred::new(1_000, 0);
    d.hold(&change("e", "c1", CheckState::Failed, 10)).keep();
    d.hold(&change("e", "c2", CheckState::Failed, 10)).keep();
    let _taken = d.take().unwrap();
    d.hold(&change("e", "c1", CheckState::Passed, 20)).keep();
    let mut rows = vec![];
    d.view(["e"], d.epoch()).unwrap().patch_results(&mut rows);
    rows.sort_by(|a, b| a.check_id.cmp(&b.check_id));
    let states: Vec<_> = rows
        .iter()
        .map(|r| (r.check_id.as_str(), r.state))
        .collect();
    assert_eq!(
        states,
        [("c1", CheckState::Passed), ("c2", CheckState::Failed)]
    );
}

#[test]
fn a_dropped_hold_asks_for_a_roll_forward_and_spares_a_later_hold() {
    let d = Deferred::new(1_000, 0);
    assert_eq!(d.unsure(), None);
    let first = change("e", "c1", CheckState::Failed, 20);
    let unsure = d.hold(&first);
    d.hold(&change("e", "c1", CheckState::Passed, 30)).keep();
    drop(unsure);
    assert_eq!(
        held_states(&d, "e"),
        [("c1".into(), CheckState::Passed, 30)]
    );
    assert_eq!(d.unsure(), Some(1));
    d.rolled_forward(1);
    assert_eq!(d.unsure(), None);
}
