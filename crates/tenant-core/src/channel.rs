//! Channels: a tenant's account on one messaging network (at most one per kind per tenant).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::channel_kind::ChannelKind;
use crate::credentials::{Credentials, CredentialsPatch};
use crate::error::reject_control_chars;
use crate::{ChannelId, TenantId, ValidationError, ValidationErrors};

/// A channel's display name: trimmed, 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// The most characters (not bytes) a display name may have.
    pub const MAX_CHARS: usize = 100;

    /// Trims and validates a display name.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let field = "displayName";
        let v = raw.trim();
        if v.is_empty() {
            return Err(ValidationError::new(field, "required", "must not be empty"));
        }
        if v.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                field,
                "too_long",
                "must be at most 100 characters",
            ));
        }
        reject_control_chars(field, v)?;
        Ok(Self(v.to_owned()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a channel can be served by the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelState {
    /// Enabled and complete: it is in the gateway config.
    Ready,
    /// Switched off by its owner: left out of the gateway config.
    Disabled,
    /// Enabled, but required credential fields are missing: left out until they are set.
    AwaitingCredentials {
        /// The missing fields.
        missing: Vec<&'static str>,
    },
}

impl ChannelState {
    /// The state's name in the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelState::Ready => "ready",
            ChannelState::Disabled => "disabled",
            ChannelState::AwaitingCredentials { .. } => "awaiting_credentials",
        }
    }
}

/// A tenant's channel as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Primary key.
    pub id: ChannelId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The network; unique per tenant.
    pub kind: ChannelKind,
    /// Whether the owner wants it served.
    pub enabled: bool,
    /// Name of the account on the gateway; the tenant's name is used when unset.
    pub display_name: Option<DisplayName>,
    /// The credentials, possibly incomplete.
    pub credentials: Credentials,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Channel {
    /// Whether the gateway config carries this channel, and if not, why.
    pub fn state(&self) -> ChannelState {
        if !self.enabled {
            return ChannelState::Disabled;
        }
        let missing = self.credentials.missing_fields();
        if missing.is_empty() {
            ChannelState::Ready
        } else {
            ChannelState::AwaitingCredentials { missing }
        }
    }

    /// Whether the gateway config carries this channel: `state()` is [`ChannelState::Ready`]
    /// (computed without allocating).
    pub fn is_served(&self) -> bool {
        self.enabled && self.credentials.is_complete()
    }
}

/// A validated request to add a channel.
#[derive(Debug, Clone)]
pub struct NewChannel {
    /// The network.
    pub kind: ChannelKind,
    /// Whether to serve it (default `true`).
    pub enabled: bool,
    /// Optional display name.
    pub display_name: Option<DisplayName>,
    /// Credentials given so far (may be incomplete).
    pub credentials: Credentials,
}

impl NewChannel {
    /// Validates raw input, collecting every problem. `credentials` may be absent: the channel then
    /// awaits them.
    pub fn parse(
        kind: &str,
        enabled: Option<bool>,
        display_name: Option<&str>,
        credentials: Option<&serde_json::Value>,
    ) -> Result<Self, ValidationErrors> {
        let kind: ChannelKind = kind.parse()?;
        let mut errors = ValidationErrors::default();
        let display_name = display_name.and_then(|d| errors.check(DisplayName::parse(d)));
        let credentials = match credentials {
            None => Some(Credentials::empty(kind)),
            Some(v) => match Credentials::parse(kind, v) {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.0.extend(e.0);
                    None
                }
            },
        };
        errors.into_result()?;
        Ok(Self {
            kind,
            enabled: enabled.unwrap_or(true),
            display_name,
            credentials: credentials.unwrap_or_else(|| Credentials::empty(kind)),
        })
    }

    /// Builds the channel of `tenant_id` under a new id at time `now`.
    pub fn into_channel(self, tenant_id: TenantId, now: DateTime<Utc>) -> Channel {
        Channel {
            id: ChannelId::random(),
            tenant_id,
            kind: self.kind,
            enabled: self.enabled,
            display_name: self.display_name,
            credentials: self.credentials,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A validated partial update of a channel; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ChannelUpdate {
    /// Switch serving on or off.
    pub enabled: Option<bool>,
    /// `Some(None)` clears the display name.
    pub display_name: Option<Option<DisplayName>>,
    /// Credential fields to set or clear.
    pub credentials: Option<CredentialsPatch>,
}

impl ChannelUpdate {
    /// Validates raw input for a channel of `kind`, collecting every problem.
    pub fn parse(
        kind: ChannelKind,
        enabled: Option<bool>,
        display_name: Option<Option<&str>>,
        credentials: Option<&serde_json::Value>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let display_name = match display_name {
            None => None,
            Some(None) => Some(None),
            Some(Some(d)) => errors.check(DisplayName::parse(d)).map(Some),
        };
        let credentials = match credentials.map(|v| CredentialsPatch::parse(kind, v)) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                errors.0.extend(e.0);
                None
            }
        };
        errors.into_result()?;
        Ok(Self {
            enabled,
            display_name,
            credentials,
        })
    }

    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.enabled.is_none() && self.display_name.is_none() && self.credentials.is_none()
    }

    /// Applies the update to a channel at time `now`.
    pub fn apply(self, channel: &mut Channel, now: DateTime<Utc>) {
        if let Some(enabled) = self.enabled {
            channel.enabled = enabled;
        }
        if let Some(display_name) = self.display_name {
            channel.display_name = display_name;
        }
        if let Some(patch) = self.credentials {
            channel.credentials.apply(patch);
        }
        channel.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn channel(kind: ChannelKind, enabled: bool, creds: serde_json::Value) -> Channel {
        Channel {
            id: ChannelId::random(),
            tenant_id: TenantId::random(),
            kind,
            enabled,
            display_name: None,
            credentials: Credentials::parse(kind, &creds).unwrap(),
            created_at: crate::now(),
            updated_at: crate::now(),
        }
    }

    #[test]
    fn state_reflects_enabled_and_completeness() {
        assert_eq!(
            channel(ChannelKind::Telegram, true, json!({"botToken": "1:a"})).state(),
            ChannelState::Ready
        );
        assert_eq!(
            channel(ChannelKind::Telegram, false, json!({"botToken": "1:a"})).state(),
            ChannelState::Disabled
        );
        assert_eq!(
            channel(ChannelKind::Telegram, true, json!({})).state(),
            ChannelState::AwaitingCredentials {
                missing: vec!["botToken"]
            }
        );
        assert!(channel(ChannelKind::Whatsapp, true, json!({})).is_served());
        for (kind, enabled, creds) in [
            (ChannelKind::Telegram, true, json!({"botToken": "1:a"})),
            (ChannelKind::Telegram, false, json!({"botToken": "1:a"})),
            (ChannelKind::Telegram, true, json!({})),
            (
                ChannelKind::Slack,
                true,
                json!({"mode": "http", "botToken": "xoxb-1"}),
            ),
            (ChannelKind::Whatsapp, false, json!({})),
        ] {
            let c = channel(kind, enabled, creds);
            assert_eq!(c.is_served(), c.state() == ChannelState::Ready, "{c:?}");
        }
    }

    #[test]
    fn kinds_parse_from_text() {
        assert_eq!("slack".parse::<ChannelKind>().unwrap(), ChannelKind::Slack);
        let e = "icq".parse::<ChannelKind>().unwrap_err();
        assert_eq!(e.field, "channel");
        assert!(e.message.contains("telegram"));
    }

    #[test]
    fn new_channel_without_credentials_awaits_them() {
        let c = NewChannel::parse("telegram", Some(true), None, None)
            .unwrap()
            .into_channel(TenantId::random(), crate::now());
        assert_eq!(c.state().as_str(), "awaiting_credentials");
        let e = NewChannel::parse("telegram", None, Some(""), Some(&json!({"botToken": 1})))
            .unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["displayName", "credentials.botToken"]);
    }

    #[test]
    fn update_patches_credentials_and_clears_display_name() {
        let mut c = NewChannel::parse("telegram", None, Some("Bot"), None)
            .unwrap()
            .into_channel(TenantId::random(), crate::now());
        let u = ChannelUpdate::parse(
            ChannelKind::Telegram,
            Some(false),
            Some(None),
            Some(&json!({"botToken": "1:x"})),
        )
        .unwrap();
        u.apply(&mut c, crate::now());
        assert!(!c.enabled);
        assert!(c.display_name.is_none());
        assert!(c.credentials.is_complete());
    }

    #[test]
    fn display_name_is_validated() {
        assert_eq!(DisplayName::parse(" Bot ").unwrap().as_str(), "Bot");
        assert!(DisplayName::parse("").is_err());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
    }
}
