//! What an import or export could not carry over, per operation, with the
//! JSON pointer of the field.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Kept as documentation, or mapped with a difference worth knowing.
    Note,
    /// Read but not enforced by Pylon; `--strict` fails.
    Unsupported,
    /// The object was left out; `--strict` fails.
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub level: Level,
    /// `#/paths/~1users~1{id}/get/x-apigateway-backend/type`
    pub pointer: String,
    /// `GET /users/{id}` or the API's name; empty at document level.
    pub operation: String,
    pub message: String,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let level = match self.level {
            Level::Note => "note",
            Level::Unsupported => "unsupported",
            Level::Refused => "refused",
        };
        if self.operation.is_empty() {
            write!(f, "{level}: {}: {}", self.pointer, self.message)
        } else {
            write!(
                f,
                "{level}: {} ({}): {}",
                self.pointer, self.operation, self.message
            )
        }
    }
}

/// Collects reports for one document.
#[derive(Debug, Default)]
pub struct Reports {
    pub items: Vec<Report>,
    pub operation: String,
}

impl Reports {
    pub fn push(&mut self, level: Level, pointer: &str, message: impl Into<String>) {
        self.items.push(Report {
            level,
            pointer: pointer.to_string(),
            operation: self.operation.clone(),
            message: message.into(),
        });
    }
    /// Reports that the object at `pointer` was left out, for `return`.
    pub fn refuse<T>(&mut self, pointer: &str, message: impl Into<String>) -> Option<T> {
        self.push(Level::Refused, pointer, message);
        None
    }
}
