//! Slugs: a tenant's DNS-label-safe handle, used for its subdomain.

use std::fmt;

use serde::Serialize;

use crate::{TenantId, ValidationError};

/// Labels the control plane itself may serve, which no tenant may take.
const RESERVED: &[&str] = &[
    "admin", "api", "app", "assets", "auth", "docs", "gateway", "mail", "metrics", "static",
    "status", "www",
];

/// The longest DNS label.
const MAX_LEN: usize = 63;

/// A DNS label: 1–63 characters of `a-z`, `0-9` and `-`, neither starting nor ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// The longest slug (a DNS label).
    pub const MAX_LEN: usize = MAX_LEN;
    /// The labels no tenant may take.
    pub const RESERVED: &'static [&'static str] = RESERVED;

    /// Validates a slug chosen by a caller.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let field = "slug";
        if s.is_empty() || s.len() > MAX_LEN {
            return Err(ValidationError::new(
                field,
                "invalid_length",
                "must be 1 to 63 characters long",
            ));
        }
        let valid_chars = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_chars || s.starts_with('-') || s.ends_with('-') {
            return Err(ValidationError::new(
                field,
                "invalid_format",
                "must contain only a-z, 0-9 and '-', and neither start nor end with '-'",
            ));
        }
        if RESERVED.contains(&s) {
            return Err(ValidationError::new(
                field,
                "reserved",
                format!("`{s}` is reserved"),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Derives a slug from a tenant name: transliterated to ASCII, lowercased, every run of other
    /// characters turned into one `-`. A name with nothing usable (or a reserved result) falls back
    /// to `tenant-<8 hex of the id>`.
    pub fn derive(name: &str, id: &TenantId) -> Self {
        let ascii = deunicode::deunicode(name).to_ascii_lowercase();
        let mut out = String::with_capacity(ascii.len().min(MAX_LEN));
        for c in ascii.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            if out.len() >= MAX_LEN {
                break;
            }
        }
        let trimmed = out.trim_end_matches('-');
        match Slug::parse(trimmed) {
            Ok(slug) => slug,
            Err(_) => Self(format!("tenant-{}", id.short_hex())),
        }
    }

    /// This slug made unique with the tenant's 8 hex digits, for when the derived slug is taken.
    #[must_use]
    pub fn disambiguated(&self, id: &TenantId) -> Self {
        let hex = id.short_hex();
        let keep = MAX_LEN - hex.len() - 1;
        let base = if self.0.len() > keep {
            self.0[..keep].trim_end_matches('-')
        } else {
            &self.0
        };
        Self(format!("{base}-{hex}"))
    }

    /// The slug as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> TenantId {
        "1a2b3c4d-0000-4000-8000-000000000000".parse().unwrap()
    }

    #[test]
    fn derive_transliterates_and_collapses() {
        assert_eq!(Slug::derive("Acme Corp", &id()).as_str(), "acme-corp");
        assert_eq!(
            Slug::derive("  Café — Über!! ", &id()).as_str(),
            "cafe-uber"
        );
        assert_eq!(
            Slug::derive("O'Reilly & Sons, Ltd.", &id()).as_str(),
            "o-reilly-sons-ltd"
        );
    }

    #[test]
    fn derive_falls_back_when_nothing_usable() {
        assert_eq!(Slug::derive("!!!", &id()).as_str(), "tenant-1a2b3c4d");
        assert_eq!(Slug::derive("www", &id()).as_str(), "tenant-1a2b3c4d");
    }

    #[test]
    fn derive_caps_length_at_a_dns_label() {
        let s = Slug::derive(&"ab ".repeat(100), &id());
        assert!(s.as_str().len() <= 63);
        assert!(Slug::parse(s.as_str()).is_ok());
    }

    #[test]
    fn disambiguated_stays_a_label() {
        let long = Slug::parse(&"a".repeat(63)).unwrap();
        let d = long.disambiguated(&id());
        assert!(d.as_str().len() <= 63);
        assert!(d.as_str().ends_with("-1a2b3c4d"));
        assert!(Slug::parse(d.as_str()).is_ok());
    }

    #[test]
    fn parse_rejects_non_labels() {
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "www", &"a".repeat(64)] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Slug::parse("acme-2").is_ok());
    }
}
