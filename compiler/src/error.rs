//! Located definition errors: file, object, field, message.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefError {
    pub file: PathBuf,
    /// `api 'get-item'`, `group 'shop'`, ...; empty for file-level errors.
    pub object: String,
    /// Dotted field path inside the object, e.g. `backend.http.address`.
    pub field: String,
    pub message: String,
}

impl DefError {
    pub fn new(file: &Path, object: &str, field: &str, message: impl Into<String>) -> DefError {
        DefError {
            file: file.to_path_buf(),
            object: object.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn file(file: &Path, message: impl Into<String>) -> DefError {
        DefError::new(file, "", "", message)
    }
}

impl fmt::Display for DefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if !self.object.is_empty() {
            write!(f, ": {}", self.object)?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}
