//! A tenant's channels: list and read (credentials opened with the key ring, shown redacted by
//! the caller), add, change, remove, each change in one transaction with its audit entry. The
//! audit entry names the credential fields touched, never their values.

use serde_json::json;
use tenant_core::{Channel, ChannelKind, ChannelUpdate, NewChannel, TenantId};
use tenant_store::audit::{self, AuditContext};
use tenant_store::crypto::KeyRing;
use tenant_store::{AnyConnection, StoreResult, channels, write_transaction};

use crate::audit::{changed_fields, event};
use crate::error::ServiceResult;
use crate::tenant_scope::require_tenant;

/// A tenant's channels, in kind order (`NotFound("tenant")` for a missing tenant).
pub fn list_channels(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    ring: &KeyRing,
) -> ServiceResult<Vec<Channel>> {
    require_tenant(conn, tenant_id)?;
    Ok(channels::list(conn, tenant_id, ring)?)
}

/// One of a tenant's channels.
pub fn find_channel(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    kind: ChannelKind,
    ring: &KeyRing,
) -> StoreResult<Channel> {
    channels::find(conn, tenant_id, kind, ring)
}

/// Adds a channel to a tenant.
pub fn create_channel(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    new: NewChannel,
    ring: &KeyRing,
) -> StoreResult<Channel> {
    write_transaction(conn, |c| {
        let now = tenant_core::now();
        let channel = channels::insert(c, tenant_id, new, now, ring)?;
        let details = json!({"channel": channel.kind.as_str()});
        audit::record(
            c,
            ctx,
            event(
                tenant_id,
                "channel.created",
                "channel",
                channel.id.to_string(),
                Some(details),
            ),
            now,
        )?;
        Ok(channel)
    })
}

/// Updates a tenant's channel. The audit entry names the credential fields touched, never values.
pub fn update_channel(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    kind: ChannelKind,
    update: ChannelUpdate,
    ring: &KeyRing,
) -> StoreResult<Channel> {
    write_transaction(conn, |c| {
        let now = tenant_core::now();
        let changed = changed_fields(&[
            ("enabled", update.enabled.is_some()),
            ("displayName", update.display_name.is_some()),
            ("credentials", update.credentials.is_some()),
        ]);
        let channel = channels::update(c, tenant_id, kind, update, now, ring)?;
        let details = json!({"channel": kind.as_str(), "fields": changed});
        audit::record(
            c,
            ctx,
            event(
                tenant_id,
                "channel.updated",
                "channel",
                channel.id.to_string(),
                Some(details),
            ),
            now,
        )?;
        Ok(channel)
    })
}

/// Removes a tenant's channel.
pub fn delete_channel(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    kind: ChannelKind,
) -> StoreResult<()> {
    write_transaction(conn, |c| {
        let now = tenant_core::now();
        channels::delete(c, tenant_id, kind)?;
        let details = json!({"channel": kind.as_str()});
        audit::record(
            c,
            ctx,
            event(
                tenant_id,
                "channel.deleted",
                "channel",
                kind.as_str().to_owned(),
                Some(details),
            ),
            now,
        )
    })
}
