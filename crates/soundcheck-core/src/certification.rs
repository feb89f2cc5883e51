//! Certification of one entity on one track (decisions.md §4): per-level `state`, the
//! cumulative state over levels 1..n, and the highest certified level.

use serde::Serialize;

use crate::model::{CertState, CheckState};

/// What certification needs to know about one level entry for one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryOutcome {
    /// The check's stored state; `None` when not reported.
    pub state: Option<CheckState>,
    /// An active exemption covers the pair.
    pub exempt: bool,
    /// The entry's own filter/exclude admits the entity.
    pub entry_admits: bool,
}

impl EntryOutcome {
    /// The entry counts for the level: the check is applicable and the entry admits the entity.
    pub fn applies(&self) -> bool {
        self.entry_admits && self.state != Some(CheckState::NotApplicable)
    }

    /// The entry lets the level pass: `passed`, `warning` or exempt.
    pub fn passing(&self) -> bool {
        self.exempt || self.state.is_some_and(CheckState::is_passing)
    }
}

/// The certification of one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelOutcome {
    /// The level's ordinal.
    pub level_ordinal: u32,
    /// This level alone: every applying entry passing (or none applying).
    pub state: CertState,
    /// This level and every level below it passed.
    pub cumulative_state: CertState,
}

/// Certifies levels given in ascending ordinal order.
pub fn certify_levels<L, E>(levels: L) -> Vec<LevelOutcome>
where
    L: IntoIterator<Item = (u32, E)>,
    E: IntoIterator<Item = EntryOutcome>,
{
    let mut all_below = true;
    levels
        .into_iter()
        .map(|(ordinal, entries)| {
            let passed = entries
                .into_iter()
                .filter(EntryOutcome::applies)
                .all(|e| e.passing());
            all_below = all_below && passed;
            LevelOutcome {
                level_ordinal: ordinal,
                state: CertState::from_bool(passed),
                cumulative_state: CertState::from_bool(all_below),
            }
        })
        .collect()
}

/// The highest level whose cumulative state is passed, if any.
pub fn highest_level(levels: &[LevelOutcome]) -> Option<u32> {
    levels
        .iter()
        .take_while(|l| l.cumulative_state == CertState::Passed)
        .map(|l| l.level_ordinal)
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(state: Option<CheckState>) -> EntryOutcome {
        EntryOutcome {
            state,
            exempt: false,
            entry_admits: true,
        }
    }

    fn states(levels: &[LevelOutcome]) -> Vec<(&str, &str)> {
        levels
            .iter()
            .map(|l| (l.state.as_str(), l.cumulative_state.as_str()))
            .collect()
    }

    #[test]
    fn passing_level_three_above_failing_level_two_leaves_level_one() {
        let levels = certify_levels([
            (1, vec![entry(Some(CheckState::Passed))]),
            (
                2,
                vec![
                    entry(Some(CheckState::Failed)),
                    entry(Some(CheckState::Passed)),
                ],
            ),
            (3, vec![entry(Some(CheckState::Passed))]),
        ]);
        assert_eq!(
            states(&levels),
            [
                ("passed", "passed"),
                ("failed", "failed"),
                ("passed", "failed")
            ]
        );
        assert_eq!(highest_level(&levels), Some(1));
    }

    #[test]
    fn warning_and_exempt_pass_not_reported_and_error_do_not() {
        let exempt_failed = EntryOutcome {
            state: Some(CheckState::Failed),
            exempt: true,
            entry_admits: true,
        };
        let levels = certify_levels([
            (1, vec![entry(Some(CheckState::Warning)), exempt_failed]),
            (2, vec![entry(None)]),
            (3, vec![entry(Some(CheckState::Error))]),
        ]);
        assert_eq!(
            states(&levels),
            [
                ("passed", "passed"),
                ("failed", "failed"),
                ("failed", "failed")
            ]
        );
    }

    #[test]
    fn empty_and_not_applicable_levels_pass() {
        let filtered = EntryOutcome {
            state: Some(CheckState::Failed),
            exempt: false,
            entry_admits: false,
        };
        let levels = certify_levels([
            (1, vec![]),
            (2, vec![entry(Some(CheckState::NotApplicable)), filtered]),
        ]);
        assert_eq!(
            states(&levels),
            [("passed", "passed"), ("passed", "passed")]
        );
        assert_eq!(highest_level(&levels), Some(2));
    }

    #[test]
    fn gaps_between_ordinals_keep_order() {
        let levels = certify_levels([
            (1, vec![entry(Some(CheckState::Passed))]),
            (5, vec![entry(None)]),
        ]);
        assert_eq!(levels[1].level_ordinal, 5);
        assert_eq!(highest_level(&levels), Some(1));
        assert_eq!(
            highest_level(&certify_levels([(2, vec![entry(None)])])),
            None
        );
    }

    fn any_state() -> impl Strategy<Value = Option<CheckState>> {
        prop_oneof![
            Just(None),
            prop::sample::select(CheckState::ALL.to_vec()).prop_map(Some)
        ]
    }

    proptest! {
        #[test]
        fn cumulative_state_is_monotone(levels in prop::collection::vec(
            prop::collection::vec((any_state(), any::<bool>(), any::<bool>()), 0..4), 0..6)) {
            let input = levels.iter().enumerate().map(|(i, entries)| {
                (i as u32 + 1, entries.iter().map(|(state, exempt, admits)| {
                    EntryOutcome { state: *state, exempt: *exempt, entry_admits: *admits }
                }).collect::<Vec<_>>())
            });
            let out = certify_levels(input);
            for pair in out.windows(2) {
                prop_assert!(!(pair[0].cumulative_state == CertState::Failed
                    && pair[1].cumulative_state == CertState::Passed));
            }
            for (i, level) in out.iter().enumerate() {
                let expected = out[..=i].iter().all(|l| l.state == CertState::Passed);
                prop_assert_eq!(level.cumulative_state == CertState::Passed, expected);
            }
        }
    }
}
