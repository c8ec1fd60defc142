//! Channels of one tenant. Every function takes the tenant id first: a channel is only ever
//! reached through its tenant. Every change bumps the gateway-config revision in the same
//! transaction.
//!
//! Credentials are sealed at rest: every write seals them under the key ring's active key, bound
//! to the row's tenant id and channel kind (see [`credentials_aad`]), and every read opens them.
//! A row whose credentials do not open is an error naming the tenant and the kind.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::{
    Channel, ChannelId, ChannelKind, ChannelUpdate, Credentials, DisplayName, NewChannel, TenantId,
};

use crate::crypto::{Envelope, KeyRing};
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
    /// Stored credentials: a sealed envelope (`v1.<key id>.…`), or the plaintext JSON of a row
    /// written before encryption at rest.
    pub credentials: String,
    /// The key that sealed `credentials`; `None` for a legacy plaintext row.
    pub credentials_key_id: Option<String>,
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

/// The associated data that binds a channel's sealed credentials to its row: the tenant id and
/// the channel kind (the row's identity; a tenant has at most one channel per kind).
pub fn credentials_aad(tenant_id: &str, kind: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(tenant_id.len() + kind.len() + 24);
    aad.extend_from_slice(b"channels.credentials\0");
    aad.extend_from_slice(tenant_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(kind.as_bytes());
    aad
}

impl ChannelRow {
    /// The row of a channel, its credentials sealed under the ring's active key.
    pub fn seal(c: &Channel, ring: &KeyRing) -> StoreResult<Self> {
        let tenant_id = c.tenant_id.to_string();
        let kind = c.kind.as_str().to_owned();
        let plaintext = zeroize::Zeroizing::new(c.credentials.expose_json());
        let credentials = ring
            .seal(&credentials_aad(&tenant_id, &kind), plaintext.as_bytes())
            .map_err(|e| StoreError::Credentials {
                tenant_id: tenant_id.clone(),
                kind: kind.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            id: c.id.to_string(),
            tenant_id,
            kind,
            enabled: c.enabled,
            display_name: c.display_name.as_ref().map(|d| d.as_str().to_owned()),
            credentials,
            credentials_key_id: Some(ring.active_id().to_owned()),
            created_at: c.created_at.naive_utc(),
            updated_at: c.updated_at.naive_utc(),
        })
    }

    /// The plaintext JSON of the stored credentials: the envelope opened with the row's identity,
    /// or a legacy plaintext value (only when no key id is recorded).
    pub fn open_credentials(&self, ring: &KeyRing) -> StoreResult<zeroize::Zeroizing<String>> {
        let fail = |reason: String| StoreError::Credentials {
            tenant_id: self.tenant_id.clone(),
            kind: self.kind.clone(),
            reason,
        };
        if !Envelope::is_envelope(&self.credentials) {
            return match self.credentials_key_id {
                None if self.credentials.starts_with('{') => {
                    Ok(zeroize::Zeroizing::new(self.credentials.clone()))
                }
                None => Err(fail("the stored value is neither sealed nor JSON".into())),
                Some(_) => Err(fail(
                    "a key id is recorded but the value is not sealed".into(),
                )),
            };
        }
        let envelope = Envelope::parse(&self.credentials).map_err(|e| fail(e.to_string()))?;
        if self.credentials_key_id.as_deref() != Some(envelope.key_id) {
            return Err(fail(
                "the recorded key id does not match the envelope's".into(),
            ));
        }
        let bytes = ring
            .open(
                &credentials_aad(&self.tenant_id, &self.kind),
                &self.credentials,
            )
            .map_err(|e| fail(e.to_string()))?;
        String::from_utf8(bytes.to_vec())
            .map(zeroize::Zeroizing::new)
            .map_err(|_| fail("the opened value is not UTF-8".into()))
    }

    /// The channel, its credentials opened with `ring`.
    pub fn open(self, ring: &KeyRing) -> StoreResult<Channel> {
        let plaintext = self.open_credentials(ring)?;
        let corrupt = |reason: String| StoreError::Corrupt {
            table: "channels",
            id: self.id.clone(),
            reason,
        };
        let id = uuid::Uuid::parse_str(&self.id).map_err(|e| corrupt(e.to_string()))?;
        let tenant_id: TenantId = self
            .tenant_id
            .parse()
            .map_err(|e| corrupt(format!("{e}")))?;
        let kind: ChannelKind = self.kind.parse().map_err(|e| corrupt(format!("{e}")))?;
        let display_name = self
            .display_name
            .as_deref()
            .map(DisplayName::parse)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        // The message of a credentials error names fields, never values.
        let credentials =
            Credentials::from_json_str(kind, &plaintext).map_err(|e| corrupt(e.to_string()))?;
        Ok(Channel {
            id: ChannelId::from(id),
            tenant_id,
            kind,
            enabled: self.enabled,
            display_name,
            credentials,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
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
    ring: &KeyRing,
) -> StoreResult<Channel> {
    let kind = new.kind;
    let channel = new.into_channel(*tenant_id, now);
    let row = ChannelRow::seal(&channel, ring)?;
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
    ring: &KeyRing,
) -> StoreResult<Channel> {
    channels::table
        .filter(channels::tenant_id.eq(tenant_id.to_string()))
        .filter(channels::kind.eq(kind.as_str()))
        .select(ChannelRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("channel"))?
        .open(ring)
}

/// Every channel of a tenant, in kind order (at most one per kind, so never long).
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    ring: &KeyRing,
) -> StoreResult<Vec<Channel>> {
    channels::table
        .filter(channels::tenant_id.eq(tenant_id.to_string()))
        .order(channels::kind.asc())
        .select(ChannelRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|row| row.open(ring))
        .collect()
}

/// Every channel of every tenant, in storage order. A sequential scan: reading 200k channels
/// through the `(tenant_id, kind)` index instead costs a random table lookup per row.
pub fn list_all(conn: &mut AnyConnection, ring: &KeyRing) -> StoreResult<Vec<Channel>> {
    channels::table
        .select(ChannelRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|row| row.open(ring))
        .collect()
}

/// Applies an update to a tenant's channel; returns it as stored.
pub fn update(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    kind: ChannelKind,
    update: ChannelUpdate,
    now: DateTime<Utc>,
    ring: &KeyRing,
) -> StoreResult<Channel> {
    conn.transaction(|c| {
        let mut channel = find(c, tenant_id, kind, ring)?;
        update.apply(&mut channel, now);
        let row = ChannelRow::seal(&channel, ring)?;
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
