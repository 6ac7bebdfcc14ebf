//! SQL errors that point at the statement, line and column they are about.

use std::fmt;

/// A 1-based line and column in the submitted text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    pub line: u64,
    pub column: u64,
}

impl From<sqlparser::tokenizer::Location> for Location {
    fn from(l: sqlparser::tokenizer::Location) -> Self {
        Self {
            line: l.line,
            column: l.column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Who has to act on a SQL error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlErrorKind {
    /// The text does not parse.
    Syntax,
    /// It parses but means something Quiver refuses (stateful query, unknown name, bad option).
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub kind: SqlErrorKind,
    pub message: String,
    pub location: Option<Location>,
}

impl SqlError {
    pub fn syntax(message: impl Into<String>, location: Option<Location>) -> Self {
        Self {
            kind: SqlErrorKind::Syntax,
            message: message.into(),
            location,
        }
    }
    pub fn invalid(message: impl Into<String>, location: Option<Location>) -> Self {
        Self {
            kind: SqlErrorKind::Invalid,
            message: message.into(),
            location,
        }
    }
    /// Keeps an existing location, or sets one.
    pub fn at(mut self, location: Location) -> Self {
        self.location.get_or_insert(location);
        self
    }
    /// `file:line:col: message`, the form `quiver validate` prints.
    pub fn render(&self, file: &str) -> String {
        match self.location {
            Some(l) => format!("{file}:{}:{}: {}", l.line, l.column, self.message),
            None => format!("{file}: {}", self.message),
        }
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(l) => write!(f, "line {}, column {}: {}", l.line, l.column, self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SqlError {}

pub type Result<T, E = SqlError> = std::result::Result<T, E>;
