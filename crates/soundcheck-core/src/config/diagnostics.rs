//! Problems found while loading config, each with the place it was found.

use std::fmt;
use std::sync::Arc;

/// A place in a source file: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// The file as given on the command line (or an include path relative to it).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Pos {
    /// A position at the start of `file` (for whole-file problems).
    pub fn file_start(file: &str) -> Self {
        Self {
            file: file.into(),
            line: 1,
            column: 1,
        }
    }
}

impl Pos {
    /// A place in a JSON document given as a JSON pointer (`/checks/0/rule`); shown as the
    /// pointer alone.
    pub fn json_pointer(pointer: &str) -> Self {
        Self {
            file: pointer.into(),
            line: 0,
            column: 0,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            let pointer: &str = &self.file;
            return f.write_str(if pointer.is_empty() { "/" } else { pointer });
        }
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Stops loading: nothing is evaluated.
    Error,
    /// Accepted, but the user should change it (legacy forms).
    Warning,
}

/// One problem: where, how bad, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where.
    pub pos: Pos,
    /// Error or warning.
    pub severity: Severity,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `file:line:column: message` for errors, `file:line:column: warning: message` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}: {}", self.pos, self.message),
            Severity::Warning => write!(f, "{}: warning: {}", self.pos, self.message),
        }
    }
}

/// Collects problems so that every one is reported at once.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records an error.
    pub fn error(&mut self, pos: &Pos, message: impl Into<String>) {
        self.push(pos, Severity::Error, message.into());
    }

    /// Records a warning.
    pub fn warning(&mut self, pos: &Pos, message: impl Into<String>) {
        self.push(pos, Severity::Warning, message.into());
    }

    fn push(&mut self, pos: &Pos, severity: Severity, message: String) {
        self.items.push(Diagnostic {
            pos: pos.clone(),
            severity,
            message,
        });
    }

    /// True when at least one error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// Every problem, in the order found.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }

    /// Every problem recorded so far.
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }
}
