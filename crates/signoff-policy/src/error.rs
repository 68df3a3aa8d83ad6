//! Policy validation errors and warnings, each with the line and column of the offending YAML node.

use std::fmt;

/// One problem found in a policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// What is wrong, e.g. ``rule `x`: unknown group `foo` ``.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            (Some(l), None) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Every problem found in a policy document, sorted by position. Never empty.
///
/// `Display` prints one problem per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyErrors {
    /// The problems, sorted by line and column.
    pub errors: Vec<PolicyError>,
}

impl PolicyErrors {
    /// Number of problems.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false for a value returned by `Policy::parse`.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Iterates over the problems.
    pub fn iter(&self) -> std::slice::Iter<'_, PolicyError> {
        self.errors.iter()
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

impl<'a> IntoIterator for &'a PolicyErrors {
    type Item = &'a PolicyError;
    type IntoIter = std::slice::Iter<'a, PolicyError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

/// Something in a valid policy that is probably a mistake (see `Policy::warnings`).
///
/// `Display` prints it like an error, labelled as a warning: `line 12, column 20: warning: ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyWarning {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What looks wrong, e.g. ``rule `x`: condition reads `args.amont` ...``.
    pub message: String,
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: warning: {}", self.line, self.column, self.message)
    }
}
