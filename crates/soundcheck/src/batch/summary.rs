//! Counts for the end-of-run summary: per check, how many results of each state; per track
//! and level, how many admitted entities are certified.

use std::fmt::Write as _;

use serde::Serialize;
use soundcheck_core::Engine;
use soundcheck_core::model::{CertState, CheckState};

use super::EntityReport;

/// Result counts of one check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckCounts {
    /// The check id.
    pub id: String,
    /// `passed` results.
    pub passed: u64,
    /// `failed` results.
    pub failed: u64,
    /// `warning` results.
    pub warning: u64,
    /// `not-applicable` results.
    pub not_applicable: u64,
    /// `error` results.
    pub error: u64,
    /// Pairs with no result.
    pub not_reported: u64,
}

/// Certification counts of one level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelCounts {
    /// The level's ordinal.
    pub ordinal: u32,
    /// Entities passing this level on its own (`state`).
    pub passed: u64,
    /// Entities certified at this level (`cumulativeState`).
    pub certified: u64,
}

/// Certification counts of one track.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackCounts {
    /// The track id.
    pub id: String,
    /// Entity-scopes the track admits.
    pub admitted: u64,
    /// By level.
    pub levels: Vec<LevelCounts>,
}

/// The whole run's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Entities evaluated.
    pub entities: u64,
    /// (entity, scope) evaluations.
    pub scope_evaluations: u64,
    /// (entity, scope, check) pairs evaluated.
    pub pairs: u64,
    /// By check.
    pub checks: Vec<CheckCounts>,
    /// By track.
    pub tracks: Vec<TrackCounts>,
}

impl Summary {
    /// Empty counts for every check and track of `engine`.
    pub fn new(engine: &Engine) -> Self {
        Self {
            checks: (0..engine.check_count())
                .map(|i| CheckCounts {
                    id: engine.check_id(i).to_string(),
                    ..Default::default()
                })
                .collect(),
            tracks: (0..engine.track_count())
                .map(|t| TrackCounts {
                    id: engine.track_id(t).to_string(),
                    admitted: 0,
                    levels: engine
                        .track_ordinals(t)
                        .map(|ordinal| LevelCounts {
                            ordinal,
                            ..Default::default()
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Adds a block of reports.
    pub fn add(&mut self, reports: &[EntityReport]) {
        for report in reports {
            self.entities += 1;
            for scope in &report.scopes {
                self.scope_evaluations += 1;
                self.pairs += scope.results.len() as u64;
                for (counts, state) in self.checks.iter_mut().zip(&scope.results) {
                    match state {
                        Some(CheckState::Passed) => counts.passed += 1,
                        Some(CheckState::Failed) => counts.failed += 1,
                        Some(CheckState::Warning) => counts.warning += 1,
                        Some(CheckState::NotApplicable) => counts.not_applicable += 1,
                        Some(CheckState::Error) => counts.error += 1,
                        None => counts.not_reported += 1,
                    }
                }
                for (counts, cert) in self.tracks.iter_mut().zip(&scope.certifications) {
                    let Some(levels) = cert else { continue };
                    counts.admitted += 1;
                    for (lc, outcome) in counts.levels.iter_mut().zip(levels) {
                        lc.passed += u64::from(outcome.state == CertState::Passed);
                        lc.certified += u64::from(outcome.cumulative_state == CertState::Passed);
                    }
                }
            }
        }
    }

    /// The human-readable tables.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Certification ({} entities)", self.entities);
        let _ = writeln!(
            out,
            "  {:<28} {:>5} {:>9} {:>10} {:>9}",
            "track", "level", "admitted", "certified", "share"
        );
        for track in &self.tracks {
            for level in &track.levels {
                let share = if track.admitted == 0 {
                    0.0
                } else {
                    100.0 * level.certified as f64 / track.admitted as f64
                };
                let _ = writeln!(
                    out,
                    "  {:<28} {:>5} {:>9} {:>10} {:>8.1}%",
                    track.id, level.ordinal, track.admitted, level.certified, share
                );
            }
        }
        let _ = writeln!(out, "\nCheck results");
        let _ = writeln!(
            out,
            "  {:<32} {:>8} {:>8} {:>8} {:>8} {:>8} {:>12}",
            "check", "passed", "failed", "warning", "n/a", "error", "not-reported"
        );
        for c in &self.checks {
            let _ = writeln!(
                out,
                "  {:<32} {:>8} {:>8} {:>8} {:>8} {:>8} {:>12}",
                c.id, c.passed, c.failed, c.warning, c.not_applicable, c.error, c.not_reported
            );
        }
        out
    }
}
