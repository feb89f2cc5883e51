//! The release gate of `--require TRACK_ID:LEVEL`: every entity a track admits must be
//! certified at that level or higher, or it is listed as an offender.

use soundcheck_core::Engine;
use soundcheck_core::certification::highest_level;

use super::EntityReport;
use crate::input::catalog::Catalog;
use crate::input::facts::FactSet;

/// One `--require` requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Track position in the engine.
    pub track: usize,
    /// The level asked for.
    pub level: u32,
}

/// Why a `--require` argument was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    /// Not `TRACK:LEVEL`.
    #[error("`--require {0}`: expected TRACK_ID:LEVEL, e.g. basic-health:2")]
    Syntax(String),
    /// No such track (or it is archived).
    #[error("`--require {0}`: no track `{1}` in the config")]
    UnknownTrack(String, String),
    /// The track has no level that high.
    #[error("`--require {0}`: track `{1}` has no level {2} (highest is {3})")]
    UnknownLevel(String, String, u32, u32),
}

/// Parses `TRACK_ID:LEVEL` against the engine's tracks.
pub fn parse_requirement(arg: &str, engine: &Engine) -> Result<Requirement, RequirementError> {
    let (track_id, level) = arg
        .rsplit_once(':')
        .ok_or_else(|| RequirementError::Syntax(arg.to_string()))?;
    let level: u32 = level
        .parse()
        .ok()
        .filter(|l| *l >= 1)
        .ok_or_else(|| RequirementError::Syntax(arg.to_string()))?;
    let track = (0..engine.track_count())
        .find(|&t| engine.track_id(t) == track_id)
        .ok_or_else(|| RequirementError::UnknownTrack(arg.to_string(), track_id.to_string()))?;
    let max = engine.track_ordinals(track).max().unwrap_or(0);
    if level > max {
        return Err(RequirementError::UnknownLevel(
            arg.to_string(),
            track_id.to_string(),
            level,
            max,
        ));
    }
    Ok(Requirement { track, level })
}

/// An entity below a required level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offender {
    /// The entity ref.
    pub entity_ref: String,
    /// The scope.
    pub scope: String,
    /// The track id.
    pub track_id: String,
    /// Its highest certified level.
    pub highest: Option<u32>,
    /// The level required.
    pub required: u32,
}

/// Collects the offenders of a block of reports.
pub fn offenders(
    requirements: &[Requirement],
    engine: &Engine,
    catalog: &Catalog,
    facts: &FactSet,
    reports: &[EntityReport],
    out: &mut Vec<Offender>,
) {
    for report in reports {
        for scope in &report.scopes {
            for req in requirements {
                let Some(Some(levels)) = scope.certifications.get(req.track) else {
                    continue;
                };
                let highest = highest_level(levels);
                if highest.is_none_or(|h| h < req.level) {
                    out.push(Offender {
                        entity_ref: catalog.entities[report.entity].entity_ref.to_string(),
                        scope: facts.scopes[scope.scope as usize].clone(),
                        track_id: engine.track_id(req.track).to_string(),
                        highest,
                        required: req.level,
                    });
                }
            }
        }
    }
}
