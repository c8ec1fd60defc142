//! Webhook endpoints: one model, [`Endpoint`], owned by a tenant or by the operator (no tenant,
//! `tenant_id` NULL). Functions here on one endpoint take the tenant id first; the operator's
//! finders are in [`crate::operator_webhooks`], and share the row mapping, the sealing and the
//! patching here.
//!
//! The signing secrets live in one column, `secret` (the current secret and, during a rotation's
//! overlap window, the previous one, space-separated), sealed with the key ring (see
//! [`crate::webhook_secrets`]), written by [`insert`]/[`rotate_secret`] and read only through
//! [`signing_secrets`]. No other function returns a secret.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::{Secret, TenantId};
use uuid::Uuid;

use crate::crypto::KeyRing;
use crate::error::is_foreign_key_violation;
use crate::schema::webhook_endpoints;
use crate::webhook_secrets::{self, StoredSecret};
use crate::{AnyConnection, StoreError, StoreResult, write_transaction};

/// The most endpoints one tenant may have.
pub const MAX_ENDPOINTS_PER_TENANT: i64 = 50;

/// Why an endpoint was disabled automatically.
pub const DISABLED_GONE: &str = "gone";
/// Why an endpoint was disabled automatically: failing past the grace period.
pub const DISABLED_FAILING: &str = "failing";

/// A webhook endpoint, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its id.
    pub id: Uuid,
    /// The owning tenant; `None`: the operator's endpoint.
    pub tenant_id: Option<TenantId>,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// The event types delivered; empty means all.
    pub event_types: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why it was disabled automatically (`gone`, `failing`), if it was.
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed, while it does.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the previous secret still signs deliveries (during a rotation).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Its delivery queue and circuit, when asked for (see
    /// [`crate::deliveries::queue_states`]).
    pub queue: Option<crate::endpoint_circuits::EndpointQueue>,
}

impl Endpoint {
    /// Whether events of this type go to this endpoint.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

/// A new endpoint, validated by the caller.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Destination URL.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// Event-type filter; empty means all.
    pub event_types: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// The `whsec_…` signing secret.
    pub secret: Secret,
}

/// Changes to an endpoint; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    /// New URL.
    pub url: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New filter.
    pub event_types: Option<Vec<String>>,
    /// Enable or disable; enabling clears the automatic-disable state.
    pub enabled: Option<bool>,
}

/// An endpoint's row as read (every column but the secret's).
#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = webhook_endpoints)]
pub(crate) struct EndpointRow {
    pub(crate) id: String,
    pub(crate) tenant_id: Option<String>,
    pub(crate) url: String,
    pub(crate) description: Option<String>,
    pub(crate) event_types: String,
    pub(crate) enabled: bool,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) updated_at: NaiveDateTime,
    pub(crate) previous_secret_expires_at: Option<NaiveDateTime>,
    pub(crate) failing_since: Option<NaiveDateTime>,
    pub(crate) disabled_reason: Option<String>,
}

impl TryFrom<EndpointRow> for Endpoint {
    type Error = StoreError;

    fn try_from(r: EndpointRow) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            table: "webhook_endpoints",
            id: r.id.clone(),
            reason,
        };
        Ok(Endpoint {
            id: Uuid::parse_str(&r.id).map_err(|e| corrupt(e.to_string()))?,
            tenant_id: r
                .tenant_id
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| corrupt(format!("{e}")))?,
            event_types: serde_json::from_str(&r.event_types)
                .map_err(|e| corrupt(e.to_string()))?,
            url: r.url,
            description: r.description,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            failing_since: r.failing_since.map(|t| t.and_utc()),
            previous_secret_expires_at: r.previous_secret_expires_at.map(|t| t.and_utc()),
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
            queue: None,
        })
    }
}

/// An event-type filter as stored: a JSON array.
pub(crate) fn encode_types(types: &[String]) -> String {
    serde_json::Value::from(types.to_vec()).to_string()
}

/// A new endpoint's row, its secret sealed: what [`insert`] writes, and what a batch of
/// creates writes together ([`crate::endpoint_batch`]).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct NewEndpointRow {
    /// UUID text.
    pub id: String,
    /// The owning tenant (none: the operator).
    pub tenant_id: Option<String>,
    /// Destination URL.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// The filter, a JSON array.
    pub event_types: String,
    /// The sealed secret.
    pub secret: String,
    /// The key that sealed it.
    pub secret_key_id: Option<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Creation time.
    pub created_at: NaiveDateTime,
    /// Last change.
    pub updated_at: NaiveDateTime,
}

impl NewEndpointRow {
    /// The row of `new` for `tenant_id`, under a new id, its secret sealed under the ring's
    /// active key; with the endpoint as it will read once stored.
    pub fn seal(
        tenant_id: &TenantId,
        new: &NewEndpoint,
        now: DateTime<Utc>,
        ring: &KeyRing,
    ) -> StoreResult<(Self, Endpoint)> {
        Self::seal_for(Some(tenant_id), new, now, ring)
    }

    /// [`NewEndpointRow::seal`] for a tenant's endpoint or (`None`) the operator's.
    pub(crate) fn seal_for(
        tenant_id: Option<&TenantId>,
        new: &NewEndpoint,
        now: DateTime<Utc>,
        ring: &KeyRing,
    ) -> StoreResult<(Self, Endpoint)> {
        let id = Uuid::new_v4();
        let (tenant, key) = (tenant_id.map(TenantId::to_string), id.to_string());
        let owner = webhook_secrets::owner(tenant.as_deref());
        let sealed = webhook_secrets::seal(ring, owner, &key, new.secret.expose())?;
        let endpoint = Endpoint {
            id,
            tenant_id: tenant_id.copied(),
            url: new.url.clone(),
            description: new.description.clone(),
            event_types: new.event_types.clone(),
            enabled: new.enabled,
            disabled_reason: None,
            failing_since: None,
            previous_secret_expires_at: None,
            created_at: now,
            updated_at: now,
            queue: None,
        };
        let row = Self {
            id: key,
            tenant_id: tenant,
            url: new.url.clone(),
            description: new.description.clone(),
            event_types: encode_types(&new.event_types),
            secret: sealed.value,
            secret_key_id: sealed.key_id,
            enabled: new.enabled,
            created_at: now.naive_utc(),
            updated_at: now.naive_utc(),
        };
        Ok((row, endpoint))
    }

    /// Its tenant's id, as stored (empty for the operator's: it is only ever asked of a
    /// tenant's row).
    pub(crate) fn tenant(&self) -> &str {
        self.tenant_id.as_deref().unwrap_or_default()
    }
}

/// Adds an endpoint to a tenant (at most [`MAX_ENDPOINTS_PER_TENANT`]), its secret sealed under
/// the ring's active key.
pub fn insert(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    new: NewEndpoint,
    now: DateTime<Utc>,
    ring: &KeyRing,
) -> StoreResult<Endpoint> {
    let (row, endpoint) = NewEndpointRow::seal(tenant_id, &new, now, ring)?;
    write_transaction(conn, |c| {
        if !crate::tenants::exists(c, tenant_id)? {
            return Err(StoreError::NotFound("tenant"));
        }
        if count(c, row.tenant())? >= MAX_ENDPOINTS_PER_TENANT {
            return Err(StoreError::Conflict {
                field: "url",
                message: format!(
                    "a tenant may have at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints"
                ),
            });
        }
        diesel::insert_into(webhook_endpoints::table)
            .values(&row)
            .execute(c)
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound("tenant")
                } else {
                    e.into()
                }
            })?;
        find(c, tenant_id, endpoint.id)
    })
}

/// A tenant's endpoints.
pub(crate) fn count(conn: &mut AnyConnection, tenant_id: &str) -> QueryResult<i64> {
    webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant_id))
        .count()
        .get_result(conn)
}

/// One endpoint of a tenant.
pub fn find(conn: &mut AnyConnection, tenant_id: &TenantId, id: Uuid) -> StoreResult<Endpoint> {
    webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant_id.to_string()))
        .filter(webhook_endpoints::id.eq(id.to_string()))
        .select(EndpointRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("webhook endpoint"))?
        .try_into()
}

/// Every endpoint of a tenant (at most [`MAX_ENDPOINTS_PER_TENANT`]), oldest first.
pub fn list(conn: &mut AnyConnection, tenant_id: &TenantId) -> StoreResult<Vec<Endpoint>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant_id.to_string()))
        .order((
            webhook_endpoints::created_at.asc(),
            webhook_endpoints::id.asc(),
        ))
        .select(EndpointRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Endpoint::try_from)
        .collect()
}

/// The tenant's enabled endpoints that want events of `event_type`.
pub fn subscribed(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    event_type: &str,
) -> StoreResult<Vec<Endpoint>> {
    let all = webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant_id.to_string()))
        .filter(webhook_endpoints::enabled.eq(true))
        .select(EndpointRow::as_select())
        .load(conn)?;
    wanting(all, event_type)
}

/// The endpoints of `rows` that want events of `event_type`.
pub(crate) fn wanting(rows: Vec<EndpointRow>, event_type: &str) -> StoreResult<Vec<Endpoint>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let e = Endpoint::try_from(row)?;
        if e.wants(event_type) {
            out.push(e);
        }
    }
    Ok(out)
}

/// Applies a patch; returns the endpoint as stored.
pub fn update(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    id: Uuid,
    patch: EndpointPatch,
    now: DateTime<Utc>,
) -> StoreResult<Endpoint> {
    write_transaction(conn, |c| {
        patched(c, tenant_id, id, &patch, now)?.ok_or(StoreError::NotFound("webhook endpoint"))
    })
}

/// Applies a patch to an endpoint if it exists (the caller holds the transaction); returns it
/// as stored.
pub(crate) fn patched(
    c: &mut AnyConnection,
    tenant_id: &TenantId,
    id: Uuid,
    patch: &EndpointPatch,
    now: DateTime<Utc>,
) -> StoreResult<Option<Endpoint>> {
    let e = match find(c, tenant_id, id) {
        Ok(e) => e,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(other) => return Err(other),
    };
    apply(c, e, patch, now)?;
    find(c, tenant_id, id).map(Some)
}

/// Applies a patch to an endpoint as read (the caller found it under its owner and holds the
/// transaction); enabling clears an automatic disable.
pub(crate) fn apply(
    c: &mut AnyConnection,
    mut e: Endpoint,
    patch: &EndpointPatch,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if let Some(url) = &patch.url {
        e.url.clone_from(url);
    }
    if let Some(d) = &patch.description {
        e.description.clone_from(d);
    }
    if let Some(t) = &patch.event_types {
        e.event_types.clone_from(t);
    }
    if let Some(enabled) = patch.enabled {
        if enabled && !e.enabled {
            e.disabled_reason = None;
            e.failing_since = None;
        }
        e.enabled = enabled;
    }
    diesel::update(webhook_endpoints::table.find(e.id.to_string()))
        .set((
            webhook_endpoints::url.eq(&e.url),
            webhook_endpoints::description.eq(&e.description),
            webhook_endpoints::event_types.eq(encode_types(&e.event_types)),
            webhook_endpoints::enabled.eq(e.enabled),
            webhook_endpoints::disabled_reason.eq(&e.disabled_reason),
            webhook_endpoints::failing_since.eq(e.failing_since.map(|t| t.naive_utc())),
            webhook_endpoints::updated_at.eq(now.naive_utc()),
        ))
        .execute(c)?;
    Ok(())
}

/// Removes an endpoint and its deliveries.
pub fn delete(conn: &mut AnyConnection, tenant_id: &TenantId, id: Uuid) -> StoreResult<()> {
    lock_for_delete(conn, &id.to_string())?;
    let n = diesel::delete(
        webhook_endpoints::table
            .filter(webhook_endpoints::tenant_id.eq(tenant_id.to_string()))
            .filter(webhook_endpoints::id.eq(id.to_string())),
    )
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("webhook endpoint"));
    }
    Ok(())
}

/// Before an endpoint is deleted, in the deleting transaction (PostgreSQL; SQLite writes one
/// transaction at a time): locks its deliveries, then its circuit, the order in which a
/// dispatcher recording a delivery's result takes them (the delivery's row, then the circuit's,
/// whose insert also locks the endpoint's key). Without this, the delete locks the endpoint
/// first and its deliveries through the cascade after, and the two deadlock: one of them fails.
pub(crate) fn lock_for_delete(conn: &mut AnyConnection, endpoint_id: &str) -> StoreResult<()> {
    use crate::schema::{webhook_deliveries, webhook_endpoint_circuits};
    if let AnyConnection::Postgresql(pg) = conn {
        webhook_deliveries::table
            .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
            .select(webhook_deliveries::id)
            .for_update()
            .load::<String>(pg)?;
        webhook_endpoint_circuits::table
            .filter(webhook_endpoint_circuits::endpoint_id.eq(endpoint_id))
            .select(webhook_endpoint_circuits::endpoint_id)
            .for_update()
            .load::<String>(pg)?;
    }
    Ok(())
}

/// An endpoint's tenant (none: the operator's), sealed secret, its key and the previous
/// secret's expiry.
type SecretRow = (
    Option<String>,
    String,
    Option<String>,
    Option<NaiveDateTime>,
);

/// The stored (sealed) secret of an endpoint and its tenant, by endpoint id.
fn stored_secret(
    conn: &mut AnyConnection,
    endpoint_id: &str,
) -> StoreResult<Option<(String, StoredSecret, Option<NaiveDateTime>)>> {
    let row: Option<SecretRow> = webhook_endpoints::table
        .find(endpoint_id)
        .select((
            webhook_endpoints::tenant_id,
            webhook_endpoints::secret,
            webhook_endpoints::secret_key_id,
            webhook_endpoints::previous_secret_expires_at,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(tenant_id, value, key_id, until)| {
        (
            webhook_secrets::owner(tenant_id.as_deref()).to_owned(),
            StoredSecret { value, key_id },
            until,
        )
    }))
}

/// Replaces the signing secret with `new_secret`; the current one keeps signing deliveries (beside
/// the new one) until `overlap_until`. The pair is sealed anew under the ring's active key.
pub fn rotate_secret(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    id: Uuid,
    new_secret: &Secret,
    overlap_until: DateTime<Utc>,
    now: DateTime<Utc>,
    ring: &KeyRing,
) -> StoreResult<Endpoint> {
    write_transaction(conn, |c| {
        find(c, tenant_id, id)?;
        let key = id.to_string();
        let (owner, stored, _) =
            stored_secret(c, &key)?.ok_or(StoreError::NotFound("webhook endpoint"))?;
        let opened = webhook_secrets::open(ring, &owner, &key, &stored)?;
        let current = opened.split(' ').next().unwrap_or_default();
        let pair = zeroize::Zeroizing::new(format!("{} {current}", new_secret.expose()));
        let sealed = webhook_secrets::seal(ring, &owner, &key, &pair)?;
        diesel::update(webhook_endpoints::table.find(&key))
            .set((
                webhook_endpoints::secret.eq(&sealed.value),
                webhook_endpoints::secret_key_id.eq(&sealed.key_id),
                webhook_endpoints::previous_secret_expires_at.eq(Some(overlap_until.naive_utc())),
                webhook_endpoints::updated_at.eq(now.naive_utc()),
            ))
            .execute(c)?;
        find(c, tenant_id, id)
    })
}

/// The secrets that sign a delivery to this endpoint at `now`: the current one first, then the
/// previous one while its overlap window lasts. The only reader of the `secret` column's
/// plaintext.
pub fn signing_secrets(
    conn: &mut AnyConnection,
    endpoint_id: Uuid,
    now: DateTime<Utc>,
    ring: &KeyRing,
) -> StoreResult<Vec<Secret>> {
    let key = endpoint_id.to_string();
    let (tenant_id, stored, until) =
        stored_secret(conn, &key)?.ok_or(StoreError::NotFound("webhook endpoint"))?;
    let opened = webhook_secrets::open(ring, &tenant_id, &key, &stored)?;
    let overlap = until.is_some_and(|u| u.and_utc() > now);
    Ok(opened
        .split(' ')
        .filter(|s| !s.is_empty())
        .take(if overlap { 2 } else { 1 })
        .map(|s| Secret::new(s.to_owned()))
        .collect())
}

/// Records the outcome of a delivery on its endpoint's health: success clears `failing_since`;
/// failure sets it if unset and, once it is older than `grace`, disables the endpoint. `gone`
/// (a `410`) disables it at once. Returns whether the endpoint is (now) disabled.
pub fn record_health(
    conn: &mut AnyConnection,
    endpoint_id: Uuid,
    success: bool,
    gone: bool,
    grace: chrono::Duration,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let key = endpoint_id.to_string();
    let row: Option<(bool, Option<NaiveDateTime>)> = webhook_endpoints::table
        .find(&key)
        .select((webhook_endpoints::enabled, webhook_endpoints::failing_since))
        .first(conn)
        .optional()?;
    let Some((enabled, failing_since)) = row else {
        return Ok(true);
    };
    let target = webhook_endpoints::table.find(&key);
    if success {
        if failing_since.is_some() {
            diesel::update(target)
                .set(webhook_endpoints::failing_since.eq(None::<NaiveDateTime>))
                .execute(conn)?;
        }
        return Ok(!enabled);
    }
    let since = failing_since.map_or(now, |t| t.and_utc());
    let reason = if gone {
        Some(DISABLED_GONE)
    } else if now - since >= grace {
        Some(DISABLED_FAILING)
    } else {
        None
    };
    match reason {
        Some(reason) if enabled => {
            diesel::update(target)
                .set((
                    webhook_endpoints::enabled.eq(false),
                    webhook_endpoints::disabled_reason.eq(Some(reason)),
                    webhook_endpoints::failing_since.eq(Some(since.naive_utc())),
                    webhook_endpoints::updated_at.eq(now.naive_utc()),
                ))
                .execute(conn)?;
            tracing::warn!(endpoint.id = %endpoint_id, reason, "webhook endpoint disabled");
            Ok(true)
        }
        _ => {
            if failing_since.is_none() {
                diesel::update(target)
                    .set(webhook_endpoints::failing_since.eq(Some(now.naive_utc())))
                    .execute(conn)?;
            }
            Ok(!enabled || reason.is_some())
        }
    }
}
