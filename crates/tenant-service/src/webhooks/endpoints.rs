//! Use cases of webhook endpoints: validation (URL rules, description, event-type filter),
//! secrets, and the audit log, each change in one transaction. The signing secret is returned
//! only by [`create_endpoint`] and [`rotate_secret`], to be shown once.

use chrono::{DateTime, Utc};
use serde_json::json;
use tenant_core::{Secret, TenantId, ValidationError};
use tenant_store::audit::{self, AuditContext, AuditEvent};
use tenant_store::crypto::KeyRing;
use tenant_store::webhooks::{self as store, Endpoint, EndpointPatch, NewEndpoint};
use tenant_store::{AnyConnection, StoreResult, write_transaction};
use tenant_webhooks::SigningSecret;
use tenant_webhooks::delivery::{AddressPolicy, check_url};
use tenant_webhooks::ingest::{OPERATOR_EVENT_TYPES, is_known_type, is_operator_type};
use uuid::Uuid;

use crate::error::ServiceResult;
use crate::idempotency::{Ticket, within};
use crate::plans::Plans;
use crate::tenant_scope::require_tenant;

/// The most event types one endpoint may filter on.
pub const MAX_EVENT_TYPES: usize = 20;
/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// The longest description accepted.
pub const MAX_DESCRIPTION_LEN: usize = 500;

/// What URL checks apply when an endpoint is saved.
#[derive(Debug, Clone)]
pub struct UrlRules {
    /// Forbidden destinations (checked again at every delivery).
    pub policy: AddressPolicy,
    /// Refuse `http://`.
    pub require_https: bool,
}

/// Validates an endpoint URL.
pub fn validate_url(url: &str, rules: &UrlRules) -> Result<String, ValidationError> {
    let url = url.trim();
    if url.is_empty() || url.len() > MAX_URL_LEN {
        return Err(ValidationError::new(
            "url",
            "invalid_length",
            format!("must be 1 to {MAX_URL_LEN} characters"),
        ));
    }
    check_url(url, &rules.policy, rules.require_https)
        .map(|u| u.to_string())
        .map_err(|m| ValidationError::new("url", "invalid_url", m))
}

/// Validates a description (trimmed; empty clears it).
pub fn validate_description(d: Option<&str>) -> Result<Option<String>, ValidationError> {
    let Some(d) = d.map(str::trim).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    if d.chars().count() > MAX_DESCRIPTION_LEN || d.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "description",
            "invalid_description",
            format!("must be at most {MAX_DESCRIPTION_LEN} characters without control characters"),
        ));
    }
    Ok(Some(d.to_owned()))
}

/// Whose endpoint it is, which decides the event types it may subscribe to. The rest of the
/// rules (URL, description, how many types) are the same for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointOwner {
    /// A tenant's (`/tenants/{id}/webhooks`): its gateway's, usage and billing events, and
    /// `webhook.test`.
    Tenant,
    /// The operator's (`/operator/webhooks`): the fleet's events.
    Operator,
}

impl EndpointOwner {
    fn knows(self, event_type: &str) -> bool {
        match self {
            Self::Tenant => is_known_type(event_type),
            Self::Operator => is_operator_type(event_type),
        }
    }

    fn unknown_event_type(self) -> ValidationError {
        let message = match self {
            Self::Tenant => "lists an unknown event type; known: message.received, message.sent, \
                             session.started, session.ended, usage.threshold, usage.exceeded, \
                             webhook.test"
                .to_owned(),
            Self::Operator => format!(
                "lists an unknown event type; known: {}",
                OPERATOR_EVENT_TYPES.join(", ")
            ),
        };
        ValidationError::new("eventTypes", "unknown_event_type", message)
    }
}

/// Validates an event-type filter (empty: every type) against the types `owner` may subscribe
/// to; duplicates are dropped.
pub fn validate_event_types(
    types: &[String],
    owner: EndpointOwner,
) -> Result<Vec<String>, ValidationError> {
    if types.len() > MAX_EVENT_TYPES {
        return Err(ValidationError::new(
            "eventTypes",
            "too_many",
            format!("at most {MAX_EVENT_TYPES} event types"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if !owner.knows(t) {
            return Err(owner.unknown_event_type());
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// An endpoint as asked for, a tenant's or the operator's: checked by [`NewWebhook::check`].
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Where deliveries are POSTed.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// Event types to deliver; absent or empty: all.
    pub event_types: Option<Vec<String>>,
    /// Whether deliveries are made (default true).
    pub enabled: Option<bool>,
}

impl NewWebhook {
    /// The endpoint to store if it follows the rules (URL, description, `owner`'s filter; the
    /// first rule broken is answered). Its secret is made when it is created
    /// ([`with_new_secret`]).
    pub fn check(self, rules: &UrlRules, owner: EndpointOwner) -> ServiceResult<NewEndpoint> {
        Ok(NewEndpoint {
            url: validate_url(&self.url, rules)?,
            description: validate_description(self.description.as_deref())?,
            event_types: validate_event_types(&self.event_types.unwrap_or_default(), owner)?,
            enabled: self.enabled.unwrap_or(true),
            secret: Secret::new(String::new()),
        })
    }
}

/// A change to an endpoint (a tenant's or the operator's) as asked for: only the fields
/// present change.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    /// New URL.
    pub url: Option<String>,
    /// New description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// New filter (empty: all).
    pub event_types: Option<Vec<String>>,
    /// Enable (also clears an automatic disable) or disable.
    pub enabled: Option<bool>,
}

impl WebhookPatch {
    /// The change to store if every field present follows the rules (`owner`'s filter).
    pub fn check(self, rules: &UrlRules, owner: EndpointOwner) -> ServiceResult<EndpointPatch> {
        Ok(EndpointPatch {
            url: self
                .url
                .as_deref()
                .map(|u| validate_url(u, rules))
                .transpose()?,
            description: self
                .description
                .map(|d| validate_description(d.as_deref()))
                .transpose()?,
            event_types: self
                .event_types
                .map(|t| validate_event_types(&t, owner))
                .transpose()?,
            enabled: self.enabled,
        })
    }
}

/// A tenant's endpoints, oldest first, each with its delivery queue and circuit
/// (`NotFound("tenant")` for a missing tenant).
pub fn list_endpoints(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
) -> ServiceResult<Vec<Endpoint>> {
    require_tenant(conn, tenant_id)?;
    let mut all = store::list(conn, tenant_id)?;
    with_queue_states(conn, &mut all)?;
    Ok(all)
}

/// One of a tenant's endpoints, with its delivery queue and circuit.
pub fn find_endpoint(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    id: Uuid,
) -> StoreResult<Endpoint> {
    let mut one = [store::find(conn, tenant_id, id)?];
    with_queue_states(conn, &mut one)?;
    let [e] = one;
    Ok(e)
}

/// Fills in the endpoints' delivery queue and circuit, now.
fn with_queue_states(conn: &mut AnyConnection, endpoints: &mut [Endpoint]) -> StoreResult<()> {
    let ids: Vec<String> = endpoints.iter().map(|e| e.id.to_string()).collect();
    let mut states = tenant_store::deliveries::queue_states(conn, &ids, tenant_core::now())?;
    for e in endpoints {
        e.queue = states.remove(&e.id.to_string());
    }
    Ok(())
}

/// An audit entry of an endpoint.
fn endpoint_event<'a>(
    tenant_id: &'a TenantId,
    action: &'a str,
    id: Uuid,
    details: Option<serde_json::Value>,
) -> AuditEvent<'a> {
    crate::audit::event(
        tenant_id,
        action,
        "webhook_endpoint",
        id.to_string(),
        details,
    )
}

fn record(
    c: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    action: &str,
    id: Uuid,
    details: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    audit::record(c, ctx, endpoint_event(tenant_id, action, id, details), now)?;
    Ok(())
}

/// The audit details of an endpoint added (a tenant's or the operator's).
pub(crate) fn created_details(endpoint: &Endpoint) -> serde_json::Value {
    json!({"url": endpoint.url, "eventTypes": endpoint.event_types})
}

/// The audit details of an endpoint changed: the fields the patch touches.
pub(crate) fn updated_details(patch: &EndpointPatch) -> serde_json::Value {
    let fields = crate::audit::changed_fields(&[
        ("url", patch.url.is_some()),
        ("description", patch.description.is_some()),
        ("eventTypes", patch.event_types.is_some()),
        ("enabled", patch.enabled.is_some()),
    ]);
    json!({ "fields": fields })
}

/// The audit entry of an endpoint added.
pub(crate) fn created_event<'a>(tenant_id: &'a TenantId, endpoint: &Endpoint) -> AuditEvent<'a> {
    let details = created_details(endpoint);
    endpoint_event(tenant_id, "webhook.created", endpoint.id, Some(details))
}

/// The audit entry of an endpoint changed: the fields the patch touches.
pub(crate) fn updated_event<'a>(
    tenant_id: &'a TenantId,
    id: Uuid,
    patch: &EndpointPatch,
) -> AuditEvent<'a> {
    let details = updated_details(patch);
    endpoint_event(tenant_id, "webhook.updated", id, Some(details))
}

/// `new` with a fresh signing secret, and the secret (to be shown once).
pub(crate) fn with_new_secret(mut new: NewEndpoint) -> (NewEndpoint, Secret) {
    let secret = Secret::new(SigningSecret::generate().expose().to_owned());
    new.secret = secret.clone();
    (new, secret)
}

/// Adds an endpoint to a tenant after checking it exists and has room under its plan; with a
/// ticket, its `Idempotency-Key` row is written in the same transaction. The one-request path:
/// the batch of [`super::endpoint_writes`] comes here for what it cannot write itself.
pub fn add_endpoint(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    plans: &Plans,
    tenant_id: &TenantId,
    new: NewEndpoint,
    ring: &KeyRing,
    once: Option<&Ticket<(Endpoint, Secret)>>,
) -> ServiceResult<(Endpoint, Secret)> {
    within(conn, once, |c| {
        require_tenant(c, tenant_id)?;
        crate::usage::require_room(c, plans, tenant_id, crate::usage::Counted::WebhookEndpoints)?;
        Ok(create_endpoint(c, ctx, tenant_id, new, ring)?)
    })
}

/// Creates an endpoint with a new secret; returns both (the secret is shown once).
pub fn create_endpoint(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    new: NewEndpoint,
    ring: &KeyRing,
) -> StoreResult<(Endpoint, Secret)> {
    let (new, shown) = with_new_secret(new);
    write_transaction(conn, |c| {
        let now = tenant_core::now();
        let endpoint = store::insert(c, tenant_id, new, now, ring)?;
        audit::record(c, ctx, created_event(tenant_id, &endpoint), now)?;
        Ok((endpoint, shown))
    })
}

/// Changes an endpoint.
pub fn update_endpoint(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    id: Uuid,
    patch: EndpointPatch,
) -> StoreResult<Endpoint> {
    write_transaction(conn, |c| {
        let now = tenant_core::now();
        let event = updated_event(tenant_id, id, &patch);
        let endpoint = store::update(c, tenant_id, id, patch, now)?;
        audit::record(c, ctx, event, now)?;
        Ok(endpoint)
    })
}

/// Removes an endpoint and its deliveries.
pub fn delete_endpoint(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    id: Uuid,
) -> StoreResult<()> {
    write_transaction(conn, |c| {
        let now = tenant_core::now();
        store::delete(c, tenant_id, id)?;
        record(c, ctx, tenant_id, "webhook.deleted", id, None, now)
    })
}

/// Starts a rotation: a new secret signs from now on, the old one also until `overlap` ends.
pub fn rotate_secret(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    id: Uuid,
    overlap: std::time::Duration,
    ring: &KeyRing,
) -> StoreResult<(Endpoint, Secret)> {
    let secret = Secret::new(SigningSecret::generate().expose().to_owned());
    write_transaction(conn, |c| {
        let now = tenant_core::now();
        let until = now + chrono::Duration::from_std(overlap).unwrap_or(chrono::Duration::MAX);
        let endpoint = store::rotate_secret(c, tenant_id, id, &secret, until, now, ring)?;
        record(c, ctx, tenant_id, "webhook.secret_rotated", id, None, now)?;
        Ok((endpoint, secret))
    })
}

/// What handlers of events and webhooks share.
#[derive(Debug)]
pub struct WebhookState {
    /// URL checks on save.
    pub rules: UrlRules,
    /// How long the previous secret keeps signing after a rotation.
    pub secret_overlap: std::time::Duration,
    /// Wakes the in-process dispatcher after deliveries are enqueued.
    pub wake: std::sync::Arc<tokio::sync::Notify>,
}
