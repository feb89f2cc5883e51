//! The evaluation engine: a config compiled once (fact refs interned, filters deduplicated)
//! and evaluated per entity, following decisions.md §3 for results and §4 for certification.

use std::collections::HashMap;

use serde_json::Value;

use crate::certification::{EntryOutcome, LevelOutcome, certify_levels};
use crate::filter::Applicability;
use crate::model::{CheckState, CheckType, SoundcheckConfig};
use crate::rules::compiled::{CompiledRule, FactSlot, FactTable, FactView};

/// A compiled config.
#[derive(Debug, Clone)]
pub struct Engine {
    facts: FactTable,
    filters: Vec<Applicability>,
    checks: Vec<CompiledCheck>,
    tracks: Vec<CompiledTrack>,
    check_index: HashMap<String, usize>,
    readers: Vec<Vec<usize>>,
    reads: Vec<Vec<FactSlot>>,
    containing: Vec<Vec<usize>>,
}

#[derive(Debug, Clone)]
struct CompiledCheck {
    id: String,
    filter: usize,
    rule: Option<CompiledRule>,
    rule_slots: Box<[FactSlot]>,
    applicable: Option<CompiledRule>,
    warning: bool,
}

#[derive(Debug, Clone)]
struct CompiledTrack {
    id: String,
    filter: usize,
    levels: Vec<CompiledLevel>,
}

#[derive(Debug, Clone)]
struct CompiledLevel {
    ordinal: u32,
    entries: Vec<(usize, usize)>,
}

/// For each fact slot the checks reading it, and for each check the slots it reads (its rule
/// and its applicability rule).
fn readers_of(
    facts: &FactTable,
    checks: &[CompiledCheck],
    config: &SoundcheckConfig,
) -> (Vec<Vec<usize>>, Vec<Vec<FactSlot>>) {
    let mut readers = vec![Vec::new(); facts.len()];
    let mut reads = vec![Vec::new(); checks.len()];
    for (i, check) in checks.iter().enumerate().filter(|(_, c)| c.rule.is_some()) {
        let mut slots: Vec<FactSlot> = check.rule_slots.to_vec();
        if let Some(app) = config.checks.get(i).and_then(|c| c.applicable.as_ref()) {
            slots.extend(app.fact_refs().into_iter().filter_map(|r| facts.get(r)));
        }
        slots.sort_unstable();
        slots.dedup();
        for &slot in &slots {
            readers[slot.index()].push(i);
        }
        reads[i] = slots;
    }
    (readers, reads)
}

fn containing_tracks(check_count: usize, tracks: &[CompiledTrack]) -> Vec<Vec<usize>> {
    let mut containing = vec![Vec::new(); check_count];
    for (t, track) in tracks.iter().enumerate() {
        for &(check, _) in track.levels.iter().flat_map(|l| &l.entries) {
            if !containing[check].contains(&t) {
                containing[check].push(t);
            }
        }
    }
    containing
}

/// Which of the engine's distinct filters admit one entity; computed once per entity.
#[derive(Debug, Clone)]
pub struct Admissions(Vec<bool>);

/// A stored view of one check for one entity, as certification reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckView {
    /// The stored state; `None` when not reported.
    pub state: Option<CheckState>,
    /// Covered by an active exemption.
    pub exempt: bool,
}

impl Engine {
    /// Compiles a validated config. Archived tracks are left out: they certify nobody.
    pub fn new(config: &SoundcheckConfig) -> Self {
        let mut facts = FactTable::default();
        let mut filters: Vec<Applicability> = Vec::new();
        let mut filter_id = |app: &Applicability| match filters.iter().position(|f| f == app) {
            Some(i) => i,
            None => {
                filters.push(app.clone());
                filters.len() - 1
            }
        };
        let checks: Vec<CompiledCheck> = config
            .checks
            .iter()
            .map(|check| {
                let evaluated = check.check_type == CheckType::Default;
                let rule = check.rule.as_ref().filter(|_| evaluated);
                let rule_slots = rule
                    .map(|r| {
                        let mut slots: Vec<_> =
                            r.fact_refs().into_iter().map(|f| facts.intern(f)).collect();
                        slots.sort_unstable();
                        slots.dedup();
                        slots.into_boxed_slice()
                    })
                    .unwrap_or_default();
                CompiledCheck {
                    id: check.id.clone(),
                    filter: filter_id(&check.applies_to),
                    rule: rule.map(|r| CompiledRule::compile(r, &mut facts)),
                    rule_slots,
                    applicable: check
                        .applicable
                        .as_ref()
                        .filter(|_| evaluated)
                        .map(|r| CompiledRule::compile(r, &mut facts)),
                    warning: check.warning,
                }
            })
            .collect();
        let check_index: HashMap<String, usize> = checks
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        let tracks: Vec<CompiledTrack> = config
            .tracks
            .iter()
            .filter(|t| !t.archived)
            .map(|track| CompiledTrack {
                id: track.id.clone(),
                filter: filter_id(&track.applies_to),
                levels: track
                    .levels
                    .iter()
                    .map(|level| CompiledLevel {
                        ordinal: level.ordinal,
                        entries: level
                            .checks
                            .iter()
                            .filter_map(|e| {
                                Some((*check_index.get(&e.id)?, filter_id(&e.applies_to)))
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        let (readers, reads) = readers_of(&facts, &checks, config);
        let containing = containing_tracks(checks.len(), &tracks);
        Self {
            facts,
            filters,
            checks,
            tracks,
            check_index,
            readers,
            reads,
            containing,
        }
    }

    /// The checks (by position) whose rule or applicability rule reads the fact in `slot`:
    /// the ones to re-evaluate when that fact changes.
    pub fn checks_reading(&self, slot: FactSlot) -> &[usize] {
        self.readers.get(slot.index()).map_or(&[], Vec::as_slice)
    }

    /// The fact slots the check at `check` reads (rule and applicability rule): what
    /// evaluating it needs besides the entity.
    pub fn slots_read_by(&self, check: usize) -> &[FactSlot] {
        self.reads.get(check).map_or(&[], Vec::as_slice)
    }

    /// The tracks (by position) with the check at `check` in some level.
    pub fn tracks_with_check(&self, check: usize) -> &[usize] {
        self.containing.get(check).map_or(&[], Vec::as_slice)
    }

    /// The interned fact refs: facts slices passed to the engine are indexed by these slots.
    pub fn fact_table(&self) -> &FactTable {
        &self.facts
    }

    /// Number of checks (result vectors are indexed by check position).
    pub fn check_count(&self) -> usize {
        self.checks.len()
    }

    /// The id of the check at `index`.
    pub fn check_id(&self, index: usize) -> &str {
        &self.checks[index].id
    }

    /// The position of a check by id.
    pub fn check_position(&self, id: &str) -> Option<usize> {
        self.check_index.get(id).copied()
    }

    /// Number of certified (non-archived) tracks.
    pub fn track_count(&self) -> usize {
        self.tracks.len()
    }

    /// The id of the track at `index`.
    pub fn track_id(&self, index: usize) -> &str {
        &self.tracks[index].id
    }

    /// The ordinals of a track's levels, ascending.
    pub fn track_ordinals(&self, index: usize) -> impl Iterator<Item = u32> + '_ {
        self.tracks[index].levels.iter().map(|l| l.ordinal)
    }

    /// Evaluates every distinct filter against one entity.
    pub fn admissions(&self, entity: &Value) -> Admissions {
        Admissions(self.filters.iter().map(|f| f.admits(entity)).collect())
    }

    /// The result of one check for one entity (decisions.md §3): `None` when not reported.
    pub fn evaluate_check(
        &self,
        index: usize,
        admissions: &Admissions,
        facts: &impl FactView,
    ) -> Option<CheckState> {
        let check = &self.checks[index];
        if !admissions.0[check.filter] {
            return Some(CheckState::NotApplicable);
        }
        let rule = check.rule.as_ref()?;
        let any_fact = check.rule_slots.iter().any(|s| facts.has_fact(*s));
        if !any_fact {
            return None;
        }
        if check
            .applicable
            .as_ref()
            .is_some_and(|a| !a.evaluate(facts))
        {
            return Some(CheckState::NotApplicable);
        }
        Some(match (rule.evaluate(facts), check.warning) {
            (true, _) => CheckState::Passed,
            (false, true) => CheckState::Warning,
            (false, false) => CheckState::Failed,
        })
    }

    /// Evaluates every check for one entity into `out` (cleared first), by check position.
    pub fn evaluate_all(
        &self,
        admissions: &Admissions,
        facts: &impl FactView,
        out: &mut Vec<Option<CheckState>>,
    ) {
        out.clear();
        out.extend((0..self.checks.len()).map(|i| self.evaluate_check(i, admissions, facts)));
    }

    /// True when the track at `index` admits the entity.
    pub fn track_admits(&self, index: usize, admissions: &Admissions) -> bool {
        admissions.0[self.tracks[index].filter]
    }

    /// Certifies one entity on one track (decisions.md §4); `None` when the track does not
    /// admit the entity. `view` gives the stored state of a check by position.
    pub fn certify(
        &self,
        index: usize,
        admissions: &Admissions,
        view: impl Fn(usize) -> CheckView,
    ) -> Option<Vec<LevelOutcome>> {
        let track = &self.tracks[index];
        if !admissions.0[track.filter] {
            return None;
        }
        Some(certify_levels(track.levels.iter().map(|level| {
            (
                level.ordinal,
                level.entries.iter().map(|&(check, filter)| {
                    let v = view(check);
                    EntryOutcome {
                        state: v.state,
                        exempt: v.exempt,
                        entry_admits: admissions.0[filter],
                    }
                }),
            )
        })))
    }
}
