//! Result and certification states, with their exact wire strings.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The stored state of one check for one entity (decisions.md §3). "Not reported" is the
/// absence of a state, and "exempt" an overlay, so neither is a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckState {
    /// The rule held.
    Passed,
    /// The rule did not hold.
    Failed,
    /// The rule did not hold on a `warning: true` check; does not block certification.
    Warning,
    /// Outside the check's filter, or its applicability rule is false.
    NotApplicable,
    /// A collector or a submitted result reported an error.
    Error,
}

impl CheckState {
    /// Every state.
    pub const ALL: [CheckState; 5] = [
        CheckState::Passed,
        CheckState::Failed,
        CheckState::Warning,
        CheckState::NotApplicable,
        CheckState::Error,
    ];

    /// The kebab-case wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Passed => "passed",
            CheckState::Failed => "failed",
            CheckState::Warning => "warning",
            CheckState::NotApplicable => "not-applicable",
            CheckState::Error => "error",
        }
    }

    /// Parses the wire string.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// True for states that let a level certify (`passed`, `warning`).
    pub fn is_passing(self) -> bool {
        matches!(self, CheckState::Passed | CheckState::Warning)
    }
}

impl fmt::Display for CheckState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The certification state of a level, alone (`state`) or with all levels below
/// (`cumulativeState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertState {
    /// Certified.
    Passed,
    /// Not certified.
    Failed,
}

impl CertState {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            CertState::Passed => "passed",
            CertState::Failed => "failed",
        }
    }

    /// Parses the wire string.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "passed" => Some(CertState::Passed),
            "failed" => Some(CertState::Failed),
            _ => None,
        }
    }

    /// `Passed` when `ok`.
    pub fn from_bool(ok: bool) -> Self {
        if ok {
            CertState::Passed
        } else {
            CertState::Failed
        }
    }
}

impl fmt::Display for CertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
