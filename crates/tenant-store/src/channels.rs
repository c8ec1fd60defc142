//! Channels of one tenant. Every function takes the tenant id first: a channel is only ever
//! reached through its tenant. Every change bumps the gateway-config revision in the same
//! transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::{
    Channel, ChannelId, ChannelKind, ChannelUpdate, Credentials, DisplayName, NewChannel, TenantId,
};

use crate::error::{is_foreign_key_violation, unique_violation};
use crate::schema::channels;
use crate::{AnyConnection, StoreError, StoreResult};

/// A `channels` row. `credentials` holds the stored form of the credentials.
#[derive(Clone, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = channels, treat_none_as_null = true)]
pub struct ChannelRow {
    /// UUID text.
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// Channel kind name.
    pub kind: String,
    /// Whether it is served.
    pub enabled: bool,
    /// Optional display name.
    pub display_name: Option<String>,
    /// Stored credentials (JSON).
    pub credentials: String,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
}

impl std::fmt::Debug for ChannelRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("kind", &self.kind)
            .field("credentials", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl From<&Channel> for ChannelRow {
    fn from(c: &Channel) -> Self {
        Self {
            id: c.id.to_string(),
            tenant_id: c.tenant_id.to_string(),
            kind: c.kind.as_str().to_owned(),
            enabled: c.enabled,
            display_name: c.display_name.as_ref().map(|d| d.as_str().to_owned()),
            credentials: c.credentials.expose_json(),
            created_at: c.created_at.naive_utc(),
            updated_at: c.updated_at.naive_utc(),
        }
    }
}

impl TryFrom<ChannelRow> for Channel {
    type Error = StoreError;

    fn try_from(r: ChannelRow) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            table: "channels",
            id: r.id.clone(),
            reason,
        };
        let id = uuid::Uuid::parse_str(&r.id).map_err(|e| corrupt(e.to_string()))?;
        let tenant_id: TenantId = r.tenant_id.parse().map_err(|e| corrupt(format!("{e}")))?;
        let kind: ChannelKind = r.kind.parse().map_err(|e| corrupt(format!("{e}")))?;
        let display_name = r
            .display_name
            .as_deref()
            .map(DisplayName::parse)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        // The message of a credentials error names fields, never values.
        let credentials =
            Credentials::from_json_str(kind, &r.credentials).map_err(|e| corrupt(e.to_string()))?;
        Ok(Channel {
            id: ChannelId::from(id),
            tenant_id,
            kind,
            enabled: r.enabled,
            display_name,
            credentials,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        })
    }
}

fn channel_exists(kind: ChannelKind) -> StoreError {
    StoreError::Conflict {
        field: "channel",
        message: format!("the tenant already has a {kind} channel"),
    }
}

/// Adds a channel to a tenant. The tenant must exist; a second channel of the same kind is a
/// conflict.
pub fn insert(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    new: NewChannel,
    now: DateTime<Utc>,
) -> StoreResult<Channel> {
    let kind = new.kind;
    let channel = new.into_channel(*tenant_id, now);
    let row = ChannelRow::from(&channel);
    conn.transaction(|c| {
        if !crate::tenants::exists(c, tenant_id)? {
            return Err(StoreError::NotFound("tenant"));
        }
        c.transaction(|c| diesel::insert_into(channels::table).values(&row).execute(c))
            .map_err(|e| {
                if unique_violation(&e).is_some() {
                    channel_exists(kind)
                } else if is_foreign_key_violation(&e) {
                    StoreError::NotFound("tenant")
                } else {
                    e.into()
                }
            })?;
        crate::config_revision::bump(c)?;
        Ok(channel)
    })
}

/// One channel of a tenant.
pub fn find(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    kind: ChannelKind,
) -> StoreResult<Channel> {
    channels::table
        .filter(channels::tenant_id.eq(tenant_id.to_string()))
        .filter(channels::kind.eq(kind.as_str()))
        .select(ChannelRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("channel"))?
        .try_into()
}

/// Every channel of a tenant, in kind order (at most one per kind, so never long).
pub fn list(conn: &mut AnyConnection, tenant_id: &TenantId) -> StoreResult<Vec<Channel>> {
    channels::table
        .filter(channels::tenant_id.eq(tenant_id.to_string()))
        .order(channels::kind.asc())
        .select(ChannelRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Channel::try_from)
        .collect()
}

/// Every channel of every tenant, in storage order. A sequential scan: reading 200k channels
/// through the `(tenant_id, kind)` index instead costs a random table lookup per row.
pub fn list_all(conn: &mut AnyConnection) -> StoreResult<Vec<Channel>> {
    channels::table
        .select(ChannelRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Channel::try_from)
        .collect()
}

/// Applies an update to a tenant's channel; returns it as stored.
pub fn update(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    kind: ChannelKind,
    update: ChannelUpdate,
    now: DateTime<Utc>,
) -> StoreResult<Channel> {
    conn.transaction(|c| {
        let mut channel = find(c, tenant_id, kind)?;
        update.apply(&mut channel, now);
        let row = ChannelRow::from(&channel);
        diesel::update(channels::table.find(&row.id))
            .set(&row)
            .execute(c)?;
        crate::config_revision::bump(c)?;
        Ok(channel)
    })
}

/// Removes a tenant's channel.
pub fn delete(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    kind: ChannelKind,
) -> StoreResult<()> {
    conn.transaction(|c| {
        let n = diesel::delete(
            channels::table
                .filter(channels::tenant_id.eq(tenant_id.to_string()))
                .filter(channels::kind.eq(kind.as_str())),
        )
        .execute(c)?;
        if n == 0 {
            return Err(StoreError::NotFound("channel"));
        }
        Ok(crate::config_revision::bump(c)?)
    })
}
