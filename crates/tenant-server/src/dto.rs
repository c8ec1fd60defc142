//! Request and response bodies of the HTTP API (camelCase JSON).
//!
//! Requests reject unknown fields, so a typo is an error rather than a silently ignored value.
//! Responses never carry a credential: a channel's credentials are shown as which fields are set,
//! with at most the last four characters of long secrets.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use tenant_core::{Channel, Tenant};
use utoipa::{IntoParams, ToSchema};

/// `POST /tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTenantRequest {
    /// Display name: 1–200 characters, trimmed, no control characters.
    #[schema(example = "Acme Corp")]
    pub name: String,
    /// DNS-label handle; derived from the name when absent.
    #[schema(example = "acme")]
    pub slug: Option<String>,
    /// `free` (default), `starter`, `pro` or `enterprise`.
    #[schema(example = "pro")]
    pub plan: Option<String>,
}

/// `PATCH /tenants/{id}`: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateTenantRequest {
    /// New display name.
    pub name: Option<String>,
    /// New slug.
    pub slug: Option<String>,
    /// New plan: `free`, `starter`, `pro` or `enterprise`.
    pub plan: Option<String>,
    /// New status: `active` or `suspended` (suspended tenants leave the gateway config).
    pub status: Option<String>,
}

/// A tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantResponse {
    /// Tenant id (UUID).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Unique DNS-label handle.
    pub slug: String,
    /// The tenant's account id on the gateway (`tenant-<8 hex>`).
    #[schema(example = "tenant-1a2b3c4d")]
    pub account_id: String,
    /// The tenant's agent id on the gateway (`agent-<8 hex>`).
    #[schema(example = "agent-1a2b3c4d")]
    pub agent_id: String,
    /// `free`, `starter`, `pro` or `enterprise`.
    pub plan: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&Tenant> for TenantResponse {
    fn from(t: &Tenant) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.as_str().to_owned(),
            slug: t.slug.as_str().to_owned(),
            account_id: t.account_id.as_str().to_owned(),
            agent_id: t.agent_id.as_str().to_owned(),
            plan: t.plan.as_str().to_owned(),
            status: t.status.as_str().to_owned(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// `POST /tenants` answer: the tenant and its first API key, shown this once (`Debug` hides it).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTenantResponse {
    /// The tenant.
    #[serde(flatten)]
    pub tenant: TenantResponse,
    /// The tenant's API key. Only its hash is stored: it cannot be shown again.
    #[schema(example = "msk_live_…")]
    pub api_key: String,
}

impl std::fmt::Debug for CreatedTenantResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedTenantResponse")
            .field("tenant", &self.tenant)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// Query of `GET /tenants`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTenantsQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Only tenants with this status (`active` or `suspended`).
    pub status: Option<String>,
    /// Only tenants on this plan.
    pub plan: Option<String>,
    /// Only tenants whose name contains this text (case-insensitive).
    pub q: Option<String>,
}

/// A page of tenants, in creation order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantListResponse {
    /// The tenants.
    pub tenants: Vec<TenantResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /tenants/{id}/channels`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateChannelRequest {
    /// `telegram`, `discord`, `slack`, `whatsapp` or `signal`.
    #[schema(example = "telegram")]
    pub channel: String,
    /// Whether to serve it (default `true`).
    pub enabled: Option<bool>,
    /// Name of the account on the gateway (default: the tenant's name).
    pub display_name: Option<String>,
    /// Credential fields of the kind, e.g. `{"botToken": "123:AA…"}` for telegram. May be
    /// omitted: the channel then awaits them and stays out of the gateway config.
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<serde_json::Value>,
}

/// `PATCH /tenants/{id}/channels/{kind}`: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateChannelRequest {
    /// Switch serving on or off.
    pub enabled: Option<bool>,
    /// New display name; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// Credential fields to set (strings) or clear (`null`); other fields keep their values.
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<serde_json::Value>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// What is shown of one credential field.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialFieldView {
    /// Whether a value is stored.
    pub set: bool,
    /// Whether the channel needs this field to be served.
    pub required: bool,
    /// Last four characters of a long secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last4: Option<String>,
    /// Whole value of a non-secret field (ids, modes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A channel of a tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelResponse {
    /// Channel id (UUID).
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// The kind: `telegram`, `discord`, `slack`, `whatsapp` or `signal`.
    pub channel: String,
    /// Whether the owner wants it served.
    pub enabled: bool,
    /// Display name, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `ready` (in the gateway config), `disabled`, or `awaiting_credentials`.
    pub state: String,
    /// Required credential fields not yet set.
    pub missing_fields: Vec<String>,
    /// Every credential field of the kind, redacted.
    pub credentials: BTreeMap<String, CredentialFieldView>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&Channel> for ChannelResponse {
    fn from(c: &Channel) -> Self {
        Self {
            id: c.id.to_string(),
            tenant_id: c.tenant_id.to_string(),
            channel: c.kind.as_str().to_owned(),
            enabled: c.enabled,
            display_name: c.display_name.as_ref().map(|d| d.as_str().to_owned()),
            state: c.state().as_str().to_owned(),
            missing_fields: c
                .credentials
                .missing_fields()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            credentials: c
                .credentials
                .describe()
                .into_iter()
                .map(|f| {
                    let view = CredentialFieldView {
                        set: f.set,
                        required: f.required,
                        last4: f.last4,
                        value: f.value,
                    };
                    (f.name.to_owned(), view)
                })
                .collect(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A tenant's channels.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelListResponse {
    /// The channels, in kind order.
    pub channels: Vec<ChannelResponse>,
}

/// `GET /health` and `GET /ready`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    /// `ok`, or `unavailable` (`/ready` while the database cannot be reached).
    pub status: String,
    /// The database backend (`/ready` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}
