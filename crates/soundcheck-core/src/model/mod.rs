//! The domain model: references, states, checks, tracks and the parsed configuration.

pub mod check;
pub mod refs;
pub mod state;
pub mod track;

pub use check::{Check, CheckType, Frequency, Schedule};
pub use refs::{EntityRef, FactRef, RefError};
pub use state::{CertState, CheckState};
pub use track::{Badge, LevelCheck, Track, TrackLevel};

/// The `soundcheck:` section as loaded and validated: every check and track, in file order.
#[derive(Debug, Clone, Default)]
pub struct SoundcheckConfig {
    /// Checks, ids unique.
    pub checks: Vec<Check>,
    /// Tracks, ids unique, every level entry naming a known check.
    pub tracks: Vec<Track>,
    /// `soundcheck.events.enabled`.
    pub events_enabled: bool,
}

impl SoundcheckConfig {
    /// The check with this id.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The track with this id.
    pub fn track(&self, id: &str) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }
}
