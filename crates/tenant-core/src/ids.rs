//! Identifiers: tenant and channel ids, and the gateway-facing account and agent ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ValidationError;

/// A tenant's primary key (a random UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(Uuid);

impl TenantId {
    /// A new random id.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The wrapped UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The first 8 hex digits, which name the tenant on the gateway.
    pub fn short_hex(&self) -> String {
        let mut buf = Uuid::encode_buffer();
        self.0.simple().encode_lower(&mut buf)[..8].to_owned()
    }
}

impl From<Uuid> for TenantId {
    fn from(u: Uuid) -> Self {
        Self(u)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for TenantId {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| ValidationError::new("id", "invalid_id", "must be a UUID"))
    }
}

/// A channel's primary key (a random UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChannelId(Uuid);

impl ChannelId {
    /// A new random id.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl From<Uuid> for ChannelId {
    fn from(u: Uuid) -> Self {
        Self(u)
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

macro_rules! gateway_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every such id starts with.
            pub const PREFIX: &'static str = $prefix;

            /// The id the gateway knows this tenant by: the prefix and the first 8 hex digits of
            /// the tenant id.
            pub fn for_tenant(id: &TenantId) -> Self {
                Self(format!("{}{}", $prefix, id.short_hex()))
            }

            /// Parses an id as stored or received; it must be the prefix and 8 lowercase hex digits.
            pub fn parse(s: &str) -> Result<Self, ValidationError> {
                let ok = s
                    .strip_prefix($prefix)
                    .is_some_and(|hex| hex.len() == 8 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
                if ok {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(ValidationError::new(
                        stringify!($name),
                        "invalid_format",
                        concat!("must be `", $prefix, "` followed by 8 lowercase hex digits"),
                    ))
                }
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

gateway_id!(
    /// The account id of a tenant's channel accounts on the gateway (`tenant-<8 hex>`).
    AccountId,
    "tenant-"
);
gateway_id!(
    /// The id of a tenant's agent on the gateway (`agent-<8 hex>`).
    AgentId,
    "agent-"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_ids_derive_from_the_tenant_id() {
        let id: TenantId = "1a2b3c4d-0000-4000-8000-000000000000".parse().unwrap();
        assert_eq!(AccountId::for_tenant(&id).as_str(), "tenant-1a2b3c4d");
        assert_eq!(AgentId::for_tenant(&id).as_str(), "agent-1a2b3c4d");
    }

    #[test]
    fn gateway_ids_parse_strictly() {
        assert!(AccountId::parse("tenant-1a2b3c4d").is_ok());
        assert!(AccountId::parse("tenant-1A2B3C4D").is_err());
        assert!(AccountId::parse("tenant-1a2b3c4").is_err());
        assert!(AgentId::parse("tenant-1a2b3c4d").is_err());
        assert!(AgentId::parse("agent-1a2b3c4d").is_ok());
    }

    #[test]
    fn tenant_id_rejects_garbage() {
        let err = "not-a-uuid".parse::<TenantId>().unwrap_err();
        assert_eq!(err.code, "invalid_id");
    }
}
