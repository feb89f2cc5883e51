//! When a result was last checked. A fact submission re-evaluates every check that reads the
//! incoming facts but writes only the results whose state changed: rewriting the time of every
//! unchanged result was a third of the rows each submission wrote. The time is kept where it is
//! written anyway, on the stored fact (`received_at`), and a result's `lastChecked` is the later
//! of its own row's time and the last arrival of any fact its check reads (in its rules or its
//! applicability), by the definitions in force when the results are read.

use std::collections::HashMap;

use soundcheck_core::Engine;

use crate::store::{FactArrival, QueryStore, ResultRow, StoreResult};

/// An entity's stored results (optionally of one scope and some checks; empty: all) with
/// `last_checked` as the API reports it.
pub async fn result_rows<S: QueryStore>(
    store: &S,
    engine: &Engine,
    entity_ref: &str,
    scope: Option<&str>,
    checks: &[String],
) -> StoreResult<Vec<ResultRow>> {
    let mut rows = store.result_rows(entity_ref, scope, checks).await?;
    if rows.is_empty() {
        return Ok(rows);
    }
    let arrivals = store.fact_arrivals(entity_ref, scope).await?;
    fold_arrivals(engine, &mut rows, &arrivals);
    Ok(rows)
}

/// Moves each row's `last_checked` to the latest arrival of a fact its check reads, in the
/// row's scope, when that is later. Checks the engine does not know (removed from the
/// definitions) and rule-less checks read no facts and keep their row's time.
pub fn fold_arrivals(engine: &Engine, rows: &mut [ResultRow], arrivals: &[FactArrival]) {
    let table = engine.fact_table();
    let arrived: HashMap<(&str, &str), i64> = arrivals
        .iter()
        .map(|a| ((a.fact_ref.as_str(), a.scope.as_str()), a.received_at))
        .collect();
    for row in rows {
        let Some(check) = engine.check_position(&row.check_id) else {
            continue;
        };
        let read_at = engine
            .slots_read_by(check)
            .iter()
            .filter_map(|slot| {
                let fact_ref = table.fact_ref(*slot).as_str();
                arrived.get(&(fact_ref, row.scope.as_str())).copied()
            })
            .max();
        if let Some(at) = read_at {
            row.last_checked = row.last_checked.max(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use soundcheck_core::model::CheckState;

    use super::*;

    const CONFIG: &str = r#"
soundcheck:
  checks:
    - id: private
      rule: { factRef: "github:default/repo", path: "$.private", operator: equal, value: true }
    - id: both
      rule:
        all:
          - { factRef: "github:default/repo", path: "$.private", operator: equal, value: true }
          - { factRef: "scm:default/files", path: "$.readme", operator: equal, value: true }
    - id: manual
      type: manual
"#;

    fn row(check_id: &str, scope: &str, last_checked: i64) -> ResultRow {
        ResultRow {
            check_id: check_id.into(),
            entity_ref: "component:default/a".into(),
            scope: scope.into(),
            state: CheckState::Passed,
            details: None,
            message: None,
            submitted_by: None,
            last_checked,
            last_changed: 1,
        }
    }

    fn arrival(fact_ref: &str, scope: &str, received_at: i64) -> FactArrival {
        FactArrival {
            fact_ref: fact_ref.into(),
            scope: scope.into(),
            received_at,
        }
    }

    #[test]
    fn a_result_was_checked_when_a_fact_it_reads_last_arrived_in_its_scope() {
        let loaded = soundcheck_core::config::load_str("c.yaml", CONFIG, Path::new("."), &|_| None)
            .expect("config");
        let engine = Engine::new(&loaded.config);
        let mut rows = vec![
            row("private", "default", 10),
            row("both", "default", 10),
            row("manual", "default", 10),
            row("private", "other", 10),
            row("removed", "default", 10),
        ];
        let arrivals = [
            arrival("scm:default/files", "default", 30),
            arrival("github:default/repo", "default", 20),
            arrival("github:default/repo", "other", 5),
            arrival("unread:default/fact", "default", 99),
        ];
        fold_arrivals(&engine, &mut rows, &arrivals);
        let times: Vec<(&str, &str, i64)> = rows
            .iter()
            .map(|r| (r.check_id.as_str(), r.scope.as_str(), r.last_checked))
            .collect();
        assert_eq!(
            times,
            vec![
                ("private", "default", 20),
                ("both", "default", 30),
                ("manual", "default", 10),
                ("private", "other", 10),
                ("removed", "default", 10),
            ]
        );
    }
}
