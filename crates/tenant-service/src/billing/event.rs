//! Stripe events as the control plane reads them: the envelope (`id`, `type`, `created`,
//! `data.object`) and the few fields of the objects it acts on — subscriptions, invoices and
//! Checkout Sessions — read leniently, so that the API versions an endpoint may be pinned to
//! (the period end on the subscription or on its items; the invoice's subscription at its top
//! level or under `parent`) all work.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The types that change something; every other type is acknowledged and ignored.
pub const HANDLED_TYPES: &[&str] = &[
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
];

/// A Stripe event (its signature already checked).
#[derive(Debug, Clone)]
pub struct StripeEvent {
    /// `evt_…`: applied once.
    pub id: String,
    /// E.g. `invoice.paid`.
    pub event_type: String,
    /// When it happened, on Stripe's clock.
    pub created: DateTime<Utc>,
    /// `data.object`.
    pub object: Value,
}

/// A subscription as an event shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `sub_…`.
    pub id: String,
    /// Its customer.
    pub customer: Option<String>,
    /// Stripe's status (`active`, `trialing`, `past_due`, `unpaid`, `paused`, `incomplete`,
    /// `incomplete_expired`, `canceled`).
    pub status: String,
    /// When it was created.
    pub created: Option<DateTime<Utc>>,
    /// The prices of its items.
    pub prices: Vec<String>,
    /// The end of the period paid for.
    pub current_period_end: Option<DateTime<Utc>>,
    /// `metadata.tenant_id` (Checkout puts it there).
    pub tenant_id: Option<String>,
}

/// An invoice as an event shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// Its customer.
    pub customer: Option<String>,
    /// The subscription it bills, if any.
    pub subscription: Option<String>,
    /// The subscription's `metadata.tenant_id`, when the invoice carries it.
    pub tenant_id: Option<String>,
}

/// A completed Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    /// `client_reference_id`: the tenant id.
    pub client_reference_id: Option<String>,
    /// Its customer.
    pub customer: Option<String>,
    /// The subscription it created.
    pub subscription: Option<String>,
    /// `subscription`, `payment` or `setup`.
    pub mode: Option<String>,
}

/// Parses an event's envelope; says what is missing.
pub fn parse(body: &[u8]) -> Result<StripeEvent, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let id = text(&v["id"]).ok_or("no `id`")?;
    if id.is_empty() || id.len() > 255 {
        return Err("`id` must be 1–255 characters".into());
    }
    let event_type = text(&v["type"]).ok_or("no `type`")?;
    let created = v["created"]
        .as_i64()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or("no `created` (unix seconds)")?;
    let object = v["data"]["object"].clone();
    if !object.is_object() {
        return Err("no `data.object`".into());
    }
    Ok(StripeEvent {
        id,
        event_type,
        created,
        object,
    })
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// An id field that may be a string or an expanded object with an `id`.
fn id_of(v: &Value) -> Option<String> {
    text(v).or_else(|| text(&v["id"]))
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_i64().and_then(|s| DateTime::from_timestamp(s, 0))
}

/// The subscription of a `customer.subscription.*` event.
pub fn subscription(o: &Value) -> Result<Subscription, String> {
    let id = text(&o["id"]).ok_or("subscription without `id`")?;
    let status = text(&o["status"]).ok_or("subscription without `status`")?;
    let items = o["items"]["data"].as_array().cloned().unwrap_or_default();
    let prices = items
        .iter()
        .filter_map(|i| id_of(&i["price"]).or_else(|| id_of(&i["plan"])))
        .collect();
    let current_period_end = time(&o["current_period_end"]).or_else(|| {
        items
            .iter()
            .filter_map(|i| time(&i["current_period_end"]))
            .max()
    });
    Ok(Subscription {
        id,
        customer: id_of(&o["customer"]),
        status,
        created: time(&o["created"]).or_else(|| time(&o["start_date"])),
        prices,
        current_period_end,
        tenant_id: text(&o["metadata"]["tenant_id"]),
    })
}

/// The invoice of an `invoice.*` event.
pub fn invoice(o: &Value) -> Invoice {
    let details = &o["parent"]["subscription_details"];
    Invoice {
        customer: id_of(&o["customer"]),
        subscription: id_of(&o["subscription"]).or_else(|| id_of(&details["subscription"])),
        tenant_id: text(&o["subscription_details"]["metadata"]["tenant_id"])
            .or_else(|| text(&details["metadata"]["tenant_id"])),
    }
}

/// The session of a `checkout.session.completed` event.
pub fn checkout_session(o: &Value) -> CheckoutSession {
    CheckoutSession {
        client_reference_id: text(&o["client_reference_id"]),
        customer: id_of(&o["customer"]),
        subscription: id_of(&o["subscription"]),
        mode: text(&o["mode"]),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_envelope_needs_id_type_created_and_object() {
        let ok = json!({"id": "evt_1", "type": "invoice.paid", "created": 1_780_000_000,
                        "data": {"object": {"id": "in_1"}}});
        let e = parse(ok.to_string().as_bytes()).unwrap();
        assert_eq!(
            (e.id.as_str(), e.event_type.as_str()),
            ("evt_1", "invoice.paid")
        );
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"id": "evt_1", "type": "x", "created": 1}"#).is_err());
        assert!(parse(br#"{"type": "x", "created": 1, "data": {"object": {}}}"#).is_err());
    }

    #[test]
    fn both_shapes_of_period_end_and_invoice_subscription_are_read() {
        let old = subscription(&json!({"id": "sub_1", "status": "active", "customer": "cus_1",
            "current_period_end": 1_780_000_000, "items": {"data": [{"price": {"id": "price_a"}}]}}))
        .unwrap();
        let new = subscription(
            &json!({"id": "sub_1", "status": "active", "customer": {"id": "cus_1"},
            "items": {"data": [{"price": "price_a", "current_period_end": 1_780_000_000}]}}),
        )
        .unwrap();
        assert_eq!(old, new);
        assert_eq!(old.prices, ["price_a"]);
        let a = invoice(&json!({"customer": "cus_1", "subscription": "sub_1"}));
        let b = invoice(&json!({"customer": "cus_1",
            "parent": {"subscription_details": {"subscription": "sub_1"}}}));
        assert_eq!(a, b);
    }
}
