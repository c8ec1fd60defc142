//! Channels: a tenant's account on one messaging network (at most one per kind per tenant).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::reject_control_chars;
use crate::tenant::string_enum;
use crate::{ChannelId, Credentials, TenantId, ValidationError};

string_enum!(
    /// A messaging network the gateway can connect a tenant's agent to.
    ChannelKind, "channel" {
        /// Telegram bot (bot token from @BotFather).
        Telegram => "telegram",
        /// Discord bot.
        Discord => "discord",
        /// Slack app, in Socket Mode or over HTTP.
        Slack => "slack",
        /// WhatsApp, linked by QR code on the gateway host.
        Whatsapp => "whatsapp",
        /// Signal, through signal-cli.
        Signal => "signal",
    }
);

/// A channel's display name: trimmed, 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// Trims and validates a display name.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let field = "displayName";
        let v = raw.trim();
        if v.is_empty() {
            return Err(ValidationError::new(field, "required", "must not be empty"));
        }
        if v.chars().count() > 100 {
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

    /// Whether the gateway config carries this channel.
    pub fn is_served(&self) -> bool {
        self.state() == ChannelState::Ready
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
    }

    #[test]
    fn kinds_parse_from_text() {
        assert_eq!("slack".parse::<ChannelKind>().unwrap(), ChannelKind::Slack);
        let e = "icq".parse::<ChannelKind>().unwrap_err();
        assert_eq!(e.field, "channel");
        assert!(e.message.contains("telegram"));
    }

    #[test]
    fn display_name_is_validated() {
        assert_eq!(DisplayName::parse(" Bot ").unwrap().as_str(), "Bot");
        assert!(DisplayName::parse("").is_err());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
    }
}
