//! Email addresses of tenant users and operators.

use std::fmt;

use serde::Serialize;

use crate::ValidationError;

/// The longest address accepted (RFC 5321's path limit).
const MAX_LEN: usize = 254;
/// The longest local part (RFC 5321).
const MAX_LOCAL_LEN: usize = 64;

/// An email address: trimmed, `local@domain` with a dotted domain, no whitespace or control
/// characters, at most 254 bytes. The whole address is lowercased: the domain is
/// case-insensitive anyway, and folding the local part too means `Alice@` and `alice@` cannot
/// become two accounts of one person (no mainstream mail server distinguishes them).
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// The longest address accepted, in bytes.
    pub const MAX_LEN: usize = MAX_LEN;

    /// Validates and normalises an address given by a caller.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let field = "email";
        let s = raw.trim();
        if s.is_empty() || s.len() > MAX_LEN {
            return Err(ValidationError::new(
                field,
                "invalid_length",
                "must be 1 to 254 characters long",
            ));
        }
        let invalid = || {
            ValidationError::new(
                field,
                "invalid_format",
                "must be an address like name@example.com",
            )
        };
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if local.is_empty() || local.len() > MAX_LOCAL_LEN || local.contains('@') || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(format!(
            "{}@{}",
            local.to_lowercase(),
            domain.to_lowercase()
        )))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Addresses are personal data: `Debug` shows only the domain, so a stray `{:?}` in a log line
/// does not leak who someone is.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = self.0.rsplit_once('@').map_or("", |(_, d)| d);
        write!(f, "Email(***@{domain})")
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let e = Email::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "alice@example.com");
        assert_eq!(format!("{e:?}"), "Email(***@example.com)");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "alice@.example.com",
            "alice@example..com",
            "al ice@example.com",
            "alice@exa mple.com",
            "alice\u{0}@example.com",
            "a@b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Email::parse(&long).unwrap_err().code, "invalid_format");
        let huge = format!("a@{}.com", "b".repeat(260));
        assert_eq!(Email::parse(&huge).unwrap_err().code, "invalid_length");
    }
}
