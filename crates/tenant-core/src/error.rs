//! Validation errors: which field was wrong and why, phrased for the API's caller.

use std::fmt;

/// One rejected input value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The field's name as the caller spelled it (camelCase, dotted for nested fields).
    pub field: String,
    /// A stable machine-readable reason, e.g. `too_long`, `invalid_format`.
    pub code: &'static str,
    /// A human-readable sentence. Never contains the rejected value when it may be a secret.
    pub message: String,
}

impl ValidationError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    /// Prefixes the field name, for errors raised inside a nested object.
    #[must_use]
    pub fn nested_in(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Every problem found in one input, so a caller can fix them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// Records an outcome: keeps the value, or remembers the error.
    pub fn check<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    /// Adds one error.
    pub fn push(&mut self, error: ValidationError) {
        self.0.push(error);
    }

    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), Self> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<ValidationError> for ValidationErrors {
    fn from(e: ValidationError) -> Self {
        Self(vec![e])
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for e in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Rejects ASCII and Unicode control characters (including newlines and NUL).
pub(crate) fn reject_control_chars(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "control_characters",
            "must not contain control characters",
        ));
    }
    Ok(())
}
