//! A string that must never be printed, logged or serialized by accident.

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// A secret string (a bot token, an API key, a password).
///
/// It implements neither `Display` nor `Serialize`, and its `Debug` output is redacted, so it cannot
/// reach a log line or a response body by accident. Reading it takes an explicit call to
/// [`Secret::expose`]. The memory is zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The plain value. Call this only where the value must leave the process on purpose:
    /// encryption, the rendered gateway config, a one-time display to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The last four characters, for recognising a credential without revealing it; `None` when
    /// the value is too short for four characters to be harmless.
    pub fn last4(&self) -> Option<String> {
        let n = self.0.chars().count();
        if n < 12 {
            return None;
        }
        Some(self.0.chars().skip(n - 4).collect())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("123456:very-secret-token");
        let printed = format!("{s:?} {:?}", Some(&s));
        assert!(!printed.contains("very-secret"), "{printed}");
        assert!(printed.contains("REDACTED"));
    }

    #[test]
    fn last4_only_for_long_values() {
        assert_eq!(Secret::new("short").last4(), None);
        assert_eq!(
            Secret::new("abcdefghijklmnop").last4().as_deref(),
            Some("mnop")
        );
    }
}
