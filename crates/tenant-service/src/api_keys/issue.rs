//! API key use cases: issue, list, revoke, rotate, with their rules (a key's name, role and
//! expiry; a rotation's overlap). Each change runs in one transaction with its audit entry
//! (`key.created`, `key.revoked`, `key.rotated`); the key itself exists in clear only in the
//! returned [`IssuedKey`], to be shown once.

use chrono::{DateTime, Utc};
use serde_json::json;
use tenant_core::{Page, PageRequest, Role, Secret, TenantId, ValidationError};
use tenant_store::api_keys::{self, ApiKeyRow, NewApiKey};
use tenant_store::audit::{self, AuditContext, AuditEvent, AuditRow};
use tenant_store::{AnyConnection, StoreError, StoreResult, tenants, write_transaction};
use uuid::Uuid;

use super::{ApiKeyHasher, visible_prefix};
use crate::error::ServiceResult;
use crate::tenant_scope::require_tenant;
use crate::tokens::{API_KEY_PREFIX, generate_token};

/// The default overlap of a rotation: how long the old key keeps working.
pub const DEFAULT_ROTATION_OVERLAP_SECS: u32 = 24 * 3600;
/// The longest overlap a rotation may ask for.
pub const MAX_ROTATION_OVERLAP_SECS: u32 = 7 * 24 * 3600;

/// A key just issued: the stored row and the key in clear (shown once).
#[derive(Debug)]
pub struct IssuedKey {
    /// As stored.
    pub row: ApiKeyRow,
    /// The key.
    pub key: Secret,
}

/// What a new key is issued with.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// Label.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

impl KeySpec {
    /// A key as asked: a label of 1–100 characters (trimmed, no control characters), a role
    /// (`member` when absent), an expiry in the future (never when absent). The first rule
    /// broken is answered.
    pub fn parse(
        name: &str,
        role: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
    ) -> ServiceResult<Self> {
        Ok(Self {
            name: key_name(name)?,
            role: role.map_or(Ok(Role::Member), str::parse::<Role>)?,
            expires_at: future_expiry(expires_at)?,
        })
    }
}

/// What a rotation is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    /// How long the old key keeps working, in seconds.
    pub overlap_secs: u32,
    /// When the new key stops working.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Rotation {
    /// A rotation as asked: an overlap of 0–[`MAX_ROTATION_OVERLAP_SECS`] (default
    /// [`DEFAULT_ROTATION_OVERLAP_SECS`]), an expiry in the future (never when absent).
    pub fn parse(
        overlap_secs: Option<u32>,
        expires_at: Option<DateTime<Utc>>,
    ) -> ServiceResult<Self> {
        let overlap_secs = overlap_secs.unwrap_or(DEFAULT_ROTATION_OVERLAP_SECS);
        if overlap_secs > MAX_ROTATION_OVERLAP_SECS {
            return Err(ValidationError::new(
                "overlapSeconds",
                "out_of_range",
                format!("must be between 0 and {MAX_ROTATION_OVERLAP_SECS}"),
            )
            .into());
        }
        Ok(Self {
            overlap_secs,
            expires_at: future_expiry(expires_at)?,
        })
    }
}

fn future_expiry(at: Option<DateTime<Utc>>) -> Result<Option<DateTime<Utc>>, ValidationError> {
    match at {
        Some(t) if t <= tenant_core::now() => Err(ValidationError::new(
            "expiresAt",
            "in_the_past",
            "must be in the future",
        )),
        other => Ok(other),
    }
}

/// The most characters (not bytes) an API key's name may have.
pub const MAX_NAME_CHARS: usize = 100;

fn key_name(raw: &str) -> Result<String, ValidationError> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ValidationError::new(
            "name",
            "invalid_name",
            "must be 1–100 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A tenant's keys (revoked and expired ones included), oldest first (`NotFound("tenant")` for a
/// missing tenant).
pub fn list_keys(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    page: &PageRequest,
) -> ServiceResult<Page<ApiKeyRow>> {
    require_tenant(conn, tenant_id)?;
    Ok(api_keys::page(conn, tenant_id, page)?)
}

/// One of a tenant's keys.
pub fn find_key(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    id: &Uuid,
) -> StoreResult<ApiKeyRow> {
    api_keys::find(conn, tenant_id, id)
}

/// Generates a key and stores its hash; audit included. The caller holds the transaction.
pub fn issue(
    c: &mut AnyConnection,
    ctx: &AuditContext,
    hasher: &ApiKeyHasher,
    tenant_id: &TenantId,
    spec: &KeySpec,
    now: DateTime<Utc>,
) -> StoreResult<IssuedKey> {
    let (issued, entry) = prepare(ctx, hasher, tenant_id, spec, now);
    api_keys::insert_row(c, &issued.row)?;
    audit::insert_row(c, &entry)?;
    Ok(issued)
}

/// Generates a key and the rows [`issue`] would store (the key's and its `key.created` audit
/// entry) without storing them: for creates that insert them with others.
pub fn prepare(
    ctx: &AuditContext,
    hasher: &ApiKeyHasher,
    tenant_id: &TenantId,
    spec: &KeySpec,
    now: DateTime<Utc>,
) -> (IssuedKey, AuditRow) {
    let key = generate_token(API_KEY_PREFIX);
    let prefix = visible_prefix(&key);
    let hash = hasher.hash_hex(key.expose());
    let row = api_keys::new_row(
        tenant_id,
        &NewApiKey {
            name: &spec.name,
            prefix: &prefix,
            key_hash: &hash,
            role: spec.role,
            expires_at: spec.expires_at,
        },
        now,
    );
    let entry = audit::row(
        ctx,
        key_event(
            tenant_id,
            "key.created",
            &row.id,
            json!({"name": spec.name, "role": spec.role.as_str()}),
        ),
        now,
    );
    (IssuedKey { row, key }, entry)
}

/// Issues a new key for an existing tenant.
pub fn create_key(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    hasher: &ApiKeyHasher,
    tenant_id: &TenantId,
    spec: KeySpec,
) -> StoreResult<IssuedKey> {
    write_transaction(conn, |c| {
        if !tenants::exists(c, tenant_id)? {
            return Err(StoreError::NotFound("tenant"));
        }
        issue(c, ctx, hasher, tenant_id, &spec, tenant_core::now())
    })
}

/// Revokes a key; revoking a revoked key changes nothing (and records nothing).
pub fn revoke_key(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    id: &Uuid,
) -> StoreResult<()> {
    write_transaction(conn, |c| {
        let now = tenant_core::now();
        let key = api_keys::find(c, tenant_id, id)?;
        if key.revoked_at.is_some() {
            return Ok(());
        }
        api_keys::revoke(c, tenant_id, id, now)?;
        audit::record(
            c,
            ctx,
            key_event(tenant_id, "key.revoked", &key.id, json!({"name": key.name})),
            now,
        )
    })
}

/// Replaces a usable key by a new one with the same name and role; the old key keeps working
/// for `overlap_secs` (or until its own earlier expiry).
pub fn rotate_key(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    hasher: &ApiKeyHasher,
    tenant_id: &TenantId,
    id: &Uuid,
    rotation: Rotation,
) -> StoreResult<IssuedKey> {
    let Rotation {
        overlap_secs,
        expires_at,
    } = rotation;
    write_transaction(conn, |c| {
        let now = tenant_core::now();
        let old = api_keys::find(c, tenant_id, id)?;
        if !old.is_usable(now) || old.replaced_by.is_some() {
            return Err(StoreError::Conflict {
                field: "kid",
                message: "only an active key that was not rotated yet can be rotated".into(),
            });
        }
        let spec = KeySpec {
            name: old.name.clone(),
            role: old.role(),
            expires_at,
        };
        let new = issue(c, ctx, hasher, tenant_id, &spec, now)?;
        let mut until = now + chrono::Duration::seconds(i64::from(overlap_secs));
        if let Some(own) = old.expires_at.map(|e| e.and_utc()) {
            until = until.min(own);
        }
        api_keys::mark_replaced(c, tenant_id, id, &new.row.id, until)?;
        audit::record(
            c,
            ctx,
            key_event(
                tenant_id,
                "key.rotated",
                &old.id,
                json!({"replacedBy": new.row.id, "oldKeyExpiresAt": until}),
            ),
            now,
        )?;
        Ok(new)
    })
}

fn key_event<'a>(
    tenant_id: &'a TenantId,
    action: &'a str,
    key_id: &str,
    details: serde_json::Value,
) -> AuditEvent<'a> {
    AuditEvent {
        tenant_id: Some(tenant_id),
        action,
        resource_type: "api_key",
        resource_id: Some(key_id.to_owned()),
        details: Some(details),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roles_and_expiries_follow_the_rules() {
        assert_eq!(key_name("  ci ").ok(), Some("ci".to_owned()));
        assert!(key_name("").is_err() && key_name("a\nb").is_err());
        assert!(key_name(&"x".repeat(101)).is_err());
        let spec = KeySpec::parse("ci", None, None).unwrap();
        assert_eq!(spec.role, Role::Member);
        assert!(KeySpec::parse("ci", Some("root"), None).is_err());
        let past = tenant_core::now() - chrono::Duration::seconds(1);
        assert!(KeySpec::parse("ci", None, Some(past)).is_err());
        assert!(Rotation::parse(Some(MAX_ROTATION_OVERLAP_SECS + 1), None).is_err());
        assert_eq!(
            Rotation::parse(None, None).unwrap().overlap_secs,
            DEFAULT_ROTATION_OVERLAP_SECS
        );
    }
}
