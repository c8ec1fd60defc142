//! A tenant's channels: list and read (credentials opened with the key ring, shown redacted by
//! the caller), add, change, remove, each change in one transaction with its audit entry. The
//! audit entry names the credential fields touched, never their values.

use serde_json::json;
use tenant_core::{Channel, ChannelKind, ChannelUpdate, NewChannel, TenantId};
use tenant_store::audit::{self, AuditContext, AuditEvent};
use tenant_store::crypto::KeyRing;
use tenant_store::{AnyConnection, StoreResult, channels, write_transaction};

use crate::audit::{changed_fields, event};
use crate::error::ServiceResult;
use crate::idempotency::{Ticket, within};
use crate::plans::Plans;
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

/// Adds a channel to a tenant after checking it exists and has room under its plan; with a
/// ticket, its `Idempotency-Key` row is written in the same transaction. The one-request path:
/// the batch of [`crate::channel_writes`] comes here for what it cannot write itself.
pub fn add_channel(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    plans: &Plans,
    tenant_id: &TenantId,
    new: NewChannel,
    ring: &KeyRing,
    once: Option<&Ticket<Channel>>,
) -> ServiceResult<Channel> {
    within(conn, once, |c| {
        require_tenant(c, tenant_id)?;
        crate::usage::require_room(c, plans, tenant_id, crate::usage::Counted::Channels)?;
        Ok(create_channel(c, ctx, tenant_id, new, ring)?)
    })
}

/// The audit entry of a channel added.
pub(crate) fn created_event<'a>(tenant_id: &'a TenantId, channel: &Channel) -> AuditEvent<'a> {
    let details = json!({"channel": channel.kind.as_str()});
    event(
        tenant_id,
        "channel.created",
        "channel",
        channel.id.to_string(),
        Some(details),
    )
}

/// The names of the fields an update touches (for its audit entry: never their values).
pub(crate) fn fields_of(update: &ChannelUpdate) -> Vec<&'static str> {
    changed_fields(&[
        ("enabled", update.enabled.is_some()),
        ("displayName", update.display_name.is_some()),
        ("credentials", update.credentials.is_some()),
    ])
}

/// The audit entry of a channel changed, with the fields touched ([`fields_of`]).
pub(crate) fn updated_event<'a>(
    tenant_id: &'a TenantId,
    channel: &Channel,
    changed: Vec<&'static str>,
) -> AuditEvent<'a> {
    let details = json!({"channel": channel.kind.as_str(), "fields": changed});
    event(
        tenant_id,
        "channel.updated",
        "channel",
        channel.id.to_string(),
        Some(details),
    )
}

/// The audit entry of a channel removed.
pub(crate) fn deleted_event(tenant_id: &TenantId, kind: ChannelKind) -> AuditEvent<'_> {
    let details = json!({"channel": kind.as_str()});
    event(
        tenant_id,
        "channel.deleted",
        "channel",
        kind.as_str().to_owned(),
        Some(details),
    )
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
        audit::record(c, ctx, created_event(tenant_id, &channel), now)?;
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
        let changed = fields_of(&update);
        let channel = channels::update(c, tenant_id, kind, update, now, ring)?;
        audit::record(c, ctx, updated_event(tenant_id, &channel, changed), now)?;
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
        audit::record(c, ctx, deleted_event(tenant_id, kind), now)
    })
}
