//! The messaging networks a channel can be on (its own module: both channels and their
//! credentials depend on it).

use crate::tenant::string_enum;

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
