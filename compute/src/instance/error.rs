//! Errors of the instance document: a parse failure, or the list of invalid fields.

use std::fmt;

/// One invalid field: where it is, what it holds, what is wrong and how to mend it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// A path into the document, like `network.networks[1].link`.
    pub field: String,
    /// The offending value, shortened when long.
    pub value: String,
    pub problem: String,
}

impl FieldError {
    pub(crate) fn new(
        field: impl Into<String>,
        value: impl AsRef<str>,
        problem: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            value: shorten(value.as_ref()),
            problem: problem.into(),
        }
    }
}

/// A value as errors show it: cut to 80 characters when longer.
pub(super) fn shorten(value: &str) -> String {
    if value.chars().count() > 80 {
        format!("{}…", value.chars().take(77).collect::<String>())
    } else {
        value.to_owned()
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {:?}: {}", self.field, self.value, self.problem)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceError {
    #[error("instance document does not parse at `{path}`: {message}")]
    Parse { path: String, message: String },
    #[error("instance document has {} invalid field(s):\n  {}", .0.len(), join(.0))]
    Invalid(Vec<FieldError>),
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}
