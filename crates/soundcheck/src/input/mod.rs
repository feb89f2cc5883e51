//! Reading batch inputs: catalog entities (Backstage YAML or JSON lines) and facts (JSON
//! lines shaped like `POST /facts` items). Bad records are reported with file and line.

pub mod catalog;
pub mod facts;

use std::fmt;

/// One bad record of an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// All the bad records of an input, reported together.
#[derive(Debug, Clone, thiserror::Error)]
pub struct InputError {
    /// Every problem found (capped at [`MAX_REPORTED`]).
    pub problems: Vec<InputProblem>,
    /// How many problems there were in all.
    pub total: usize,
}

/// At most this many problems are kept for the report.
pub const MAX_REPORTED: usize = 50;

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        if self.total > self.problems.len() {
            writeln!(f, "... and {} more", self.total - self.problems.len())?;
        }
        Ok(())
    }
}
