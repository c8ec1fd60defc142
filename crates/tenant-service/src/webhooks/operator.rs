//! Use cases of the operator's webhook endpoints (`/operator/webhooks`, operators only): the
//! same URL rules, secrets and audit as a tenant's endpoints, but owned by no tenant and
//! subscribed only to the fleet's events (`tenant_webhooks::ingest::OPERATOR_EVENT_TYPES`).
//! Each change is one transaction with its audit row (no tenant: the operator's audit log).

use serde_json::json;
use tenant_core::{Secret, ValidationError};
use tenant_store::audit::{self, AuditContext, AuditEvent};
use tenant_store::crypto::KeyRing;
use tenant_store::operator_webhooks::{self as store, OperatorEndpoint};
use tenant_store::webhooks::{EndpointPatch, NewEndpoint};
use tenant_store::{AnyConnection, write_transaction};
use tenant_webhooks::SigningSecret;
use tenant_webhooks::ingest::{OPERATOR_EVENT_TYPES, is_operator_type};
use uuid::Uuid;

use super::endpoints::{MAX_EVENT_TYPES, UrlRules, validate_description, validate_url};
use crate::error::ServiceResult;

/// Validates an operator endpoint's event-type filter (empty: every type); duplicates dropped.
pub fn validate_event_types(types: &[String]) -> Result<Vec<String>, ValidationError> {
    if types.len() > MAX_EVENT_TYPES {
        return Err(ValidationError::new(
            "eventTypes",
            "too_many",
            format!("at most {MAX_EVENT_TYPES} event types"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if !is_operator_type(t) {
            return Err(ValidationError::new(
                "eventTypes",
                "unknown_event_type",
                format!(
                    "lists an unknown event type; known: {}",
                    OPERATOR_EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// An operator endpoint as asked for.
#[derive(Debug, Clone)]
pub struct NewOperatorWebhook {
    /// Where deliveries are POSTed.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// Event types to deliver; absent or empty: all.
    pub event_types: Option<Vec<String>>,
    /// Whether deliveries are made (default true).
    pub enabled: Option<bool>,
}

impl NewOperatorWebhook {
    /// The endpoint to store if it follows the rules, with a new signing secret (returned to
    /// be shown once).
    pub fn check(self, rules: &UrlRules) -> ServiceResult<(NewEndpoint, Secret)> {
        let secret = Secret::new(SigningSecret::generate().expose().to_owned());
        Ok((
            NewEndpoint {
                url: validate_url(&self.url, rules)?,
                description: validate_description(self.description.as_deref())?,
                event_types: validate_event_types(&self.event_types.unwrap_or_default())?,
                enabled: self.enabled.unwrap_or(true),
                secret: secret.clone(),
            },
            secret,
        ))
    }
}

/// A change to an operator endpoint as asked for: only the fields present change.
#[derive(Debug, Clone, Default)]
pub struct OperatorWebhookPatch {
    /// New URL.
    pub url: Option<String>,
    /// New description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// New filter (empty: all).
    pub event_types: Option<Vec<String>>,
    /// Enable (also clears an automatic disable) or disable.
    pub enabled: Option<bool>,
}

impl OperatorWebhookPatch {
    /// The change to store if every field present follows the rules.
    pub fn check(self, rules: &UrlRules) -> ServiceResult<EndpointPatch> {
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
                .as_deref()
                .map(validate_event_types)
                .transpose()?,
            enabled: self.enabled,
        })
    }
}

fn endpoint_event(
    action: &'static str,
    id: Uuid,
    details: Option<serde_json::Value>,
) -> AuditEvent<'static> {
    AuditEvent {
        tenant_id: None,
        action,
        resource_type: "operator_webhook_endpoint",
        resource_id: Some(id.to_string()),
        details,
    }
}

/// Creates an operator endpoint; returns it and its secret (shown once).
pub fn create(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    new: NewEndpoint,
    shown: Secret,
    ring: &KeyRing,
) -> ServiceResult<(OperatorEndpoint, Secret)> {
    Ok(write_transaction(conn, |c| {
        let now = tenant_core::now();
        let endpoint = store::insert(c, &new, now, ring)?;
        let details = json!({"url": endpoint.url, "eventTypes": endpoint.event_types});
        audit::record(
            c,
            ctx,
            endpoint_event("operator_webhook.created", endpoint.id, Some(details)),
            now,
        )?;
        Ok::<_, tenant_store::StoreError>((endpoint, shown))
    })?)
}

/// Every operator endpoint, oldest first.
pub fn list(conn: &mut AnyConnection) -> ServiceResult<Vec<OperatorEndpoint>> {
    Ok(store::list(conn)?)
}

/// One operator endpoint.
pub fn find(conn: &mut AnyConnection, id: Uuid) -> ServiceResult<OperatorEndpoint> {
    Ok(store::find(conn, id)?)
}

/// Changes an operator endpoint.
pub fn update(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    id: Uuid,
    patch: EndpointPatch,
) -> ServiceResult<OperatorEndpoint> {
    Ok(write_transaction(conn, |c| {
        let now = tenant_core::now();
        let fields = crate::audit::changed_fields(&[
            ("url", patch.url.is_some()),
            ("description", patch.description.is_some()),
            ("eventTypes", patch.event_types.is_some()),
            ("enabled", patch.enabled.is_some()),
        ]);
        let endpoint = store::update(c, id, &patch, now)?;
        audit::record(
            c,
            ctx,
            endpoint_event(
                "operator_webhook.updated",
                id,
                Some(json!({ "fields": fields })),
            ),
            now,
        )?;
        Ok::<_, tenant_store::StoreError>(endpoint)
    })?)
}

/// Removes an operator endpoint and its deliveries.
pub fn delete(conn: &mut AnyConnection, ctx: &AuditContext, id: Uuid) -> ServiceResult<()> {
    Ok(write_transaction(conn, |c| {
        let now = tenant_core::now();
        store::delete(c, id)?;
        audit::record(
            c,
            ctx,
            endpoint_event("operator_webhook.deleted", id, None),
            now,
        )
    })?)
}
