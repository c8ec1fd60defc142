//! Webhooks: endpoints ([`endpoints`]: URL rules, validation, secrets, with their audit rows;
//! a tenant's, or the operator's through [`operator`], which differ only in the event types
//! they may subscribe to), their deliveries ([`deliveries`]: listing, replay, test sends), and
//! the configuration of delivery read at start.

use std::time::Duration;

use tenant_webhooks::DispatcherConfig;

use crate::webhooks::endpoints::UrlRules;

pub mod deliveries;
pub mod endpoint_writes;
pub mod endpoints;
pub mod operator;

/// Events, sessions and webhook delivery, as this process runs them.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The dispatcher's configuration, when this process delivers (`SAAS_WEBHOOK_DISPATCHER`).
    pub dispatcher: Option<DispatcherConfig>,
    /// URL checks when an endpoint is saved.
    pub rules: UrlRules,
    /// How long the previous secret keeps signing after a rotation.
    pub secret_overlap: Duration,
    /// Sessions inactive this long are purged.
    pub session_ttl: Duration,
}
