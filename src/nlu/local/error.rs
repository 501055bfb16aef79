//! Why a bot export could not be loaded, naming the file and field.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    /// The file inside the export (or the export itself).
    pub file: String,
    /// JSON path of the offending field, e.g. `sampleUtterances[3].utterance`.
    pub field: Option<String>,
    pub reason: String,
}

impl LoadError {
    pub fn new(file: impl Into<String>, field: Option<String>, reason: impl Into<String>) -> Self {
        LoadError {
            file: file.into(),
            field,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: field `{}`: {}", self.file, field, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

impl std::error::Error for LoadError {}
