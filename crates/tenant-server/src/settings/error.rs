//! The error of a setting that cannot be used: which variable, and what is wrong with it (never
//! its value, which may be a secret).

/// A setting that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {var}: {message}")]
pub struct SettingsError {
    /// The environment variable.
    pub var: &'static str,
    /// What is wrong.
    pub message: String,
}
